/*
 * store_pg_dispatch: the PostgreSQL backend's side of the dispatcher (see
 * store.h): claiming due deliveries across nodes, recording batches of
 * attempts, and the LISTEN thread that wakes this node when another one
 * publishes. The design notes are at the top of store_pg.c.
 *
 * Locking order: endpoints before their deliveries, everywhere. PATCH locks
 * an endpoint's row only; DELETE its row, then its deliveries (cascade). A
 * record locks its endpoints first, in id order, then updates deliveries and
 * counters, so it can deadlock neither with those nor with another node's
 * record. A claim locks delivery rows only (FOR UPDATE OF d SKIP LOCKED:
 * rows another node holds are passed over, never waited for).
 */
#include <errno.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_pg_int.h"
#include "timeutil.h"

/* ---- claiming ------------------------------------------------------------ */

/* Fill a job from a claim row: url, secret and body share one allocation. */
static int job_from_row(const struct pg_store *ps, const PGresult *res, int row,
                        struct store_memo *memo, struct store_job *j)
{
	memset(j, 0, sizeof(*j));
	pg_copy(res, row, 0, j->delivery_id, sizeof(j->delivery_id));
	pg_copy(res, row, 1, j->event_id, sizeof(j->event_id));
	pg_copy(res, row, 2, j->endpoint_id, sizeof(j->endpoint_id));
	j->attempt_count = (int)pg_int(res, row, 3);
	j->no_retry = pg_int(res, row, 4) != 0;
	j->is_primary = pg_int(res, row, 5) != 0;
	const char *stored = PQgetvalue(res, row, 7);
	const char *sec = store_memo_find(memo, j->endpoint_id, stored);
	if (!sec)
		sec = store_memo_keep(memo, j->endpoint_id, stored,
		                      pg_open_secret(ps, j->endpoint_id, stored));
	if (!sec)
		return -1;
	return store_job_fill(j, PQgetvalue(res, row, 6), (size_t)PQgetlength(res, row, 6), sec,
	                      PQgetvalue(res, row, 8), (size_t)PQgetlength(res, row, 8));
}

/* Lease the claimed deliveries: one token for the whole claim. */
static hk_status lease_rows(const struct pg_store *ps, struct pg_conn *c, struct store_job *jobs,
                            size_t n, int64_t lease_until, struct hk_err *err)
{
	int64_t lease;
	RAND_bytes((unsigned char *)&lease, sizeof(lease));
	lease &= INT64_MAX;
	struct pg_array ids;
	if (!pg_array_open(&ids, n, UUID_STR_LEN))
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		jobs[i].lease = lease;
		pg_array_add(&ids, jobs[i].delivery_id);
	}
	struct pg_params p = { 0 };
	pp_text(&p, pg_array_close(&ids));
	pp_int(&p, lease);
	pp_int(&p, lease_until);
	pp_int(&p, ps->node_id);
	hk_status r = pg_do(c, PS_CLAIM_UPDATE, &p, NULL, err);
	free(ids.s);
	return r;
}

/* How often a node walks the database for due times: as often as the
 * dispatcher polls, since other nodes' retries and leases reach it no
 * other way (see struct pg_store). */
#define WALK_MS 1000

/* Lower every active endpoint's due time to what the database says. */
static hk_status due_walk(struct pg_store *ps, struct pg_conn *c, struct hk_err *err)
{
	static const struct pg_params none = { 0 };
	PGresult *res = pg_run(c, PS_DUE_WALK, &none, err);
	if (!res)
		return err->status;
	for (int i = 0; i < PQntuples(res); i++)
		duemap_lower(ps->due, PQgetvalue(res, i, 0), pg_int(res, i, 1));
	PQclear(res);
	return HK_OK;
}

static hk_status due_refresh(struct pg_store *ps, struct pg_conn *c, struct hk_err *err)
{
	if (!duemap_walk_wanted(ps->due, tu_now_ms(), WALK_MS))
		return HK_OK;
	hk_status r = due_walk(ps, c, err);
	if (r != HK_OK)
		duemap_stale(ps->due);
	return r;
}

/* One claim's endpoints: those taken from the duemap that have room. */
struct claim_set {
	struct duemap_item *due; /* taken, the longest waiting first */
	size_t k;
	size_t *of;   /* of[j]: the index in due of the j-th endpoint with room */
	size_t m;
	size_t seen;  /* the first `seen` of those were visited by the claim */
	int64_t *next; /* then, when each of those has something claimable next */
	char *ids;    /* the m endpoints as a text[] literal */
	char *rooms;  /* and their rooms as an int[] */
};

static void claim_set_free(struct claim_set *cs)
{
	free(cs->of);
	free(cs->next);
	free(cs->ids);
	free(cs->rooms);
}

static bool claim_set_fill(struct claim_set *cs, const struct store_claim_room *room, unsigned cap)
{
	cs->of = malloc((cs->k + 1) * sizeof(*cs->of));
	cs->next = malloc((cs->k + 1) * sizeof(*cs->next));
	struct pg_array ids, rooms;
	bool ok = pg_array_open(&ids, cs->k, UUID_STR_LEN);
	cs->ids = ids.s;
	ok = pg_array_open(&rooms, cs->k, 10) && ok;
	cs->rooms = rooms.s;
	if (!ok || !cs->of || !cs->next)
		return false;
	for (size_t i = 0; i < cs->k; i++) {
		unsigned take = store_room_left(room, cs->due[i].id, cap);
		if (!take)
			continue; /* at its cap: put back as it was, still due */
		pg_array_add(&ids, cs->due[i].id);
		pg_array_add_uint(&rooms, take);
		cs->of[cs->m++] = i;
	}
	pg_array_close(&ids);
	pg_array_close(&rooms);
	return true;
}

/* Which endpoints the claim visited: every one, unless it stopped at cap,
 * and then those up to the last one a row came from (the endpoints are
 * visited in order). A wrong guess costs a later claim a visit, no more. */
static size_t visited(const struct claim_set *cs, const struct store_job *jobs, size_t n,
                      unsigned cap)
{
	if (n < cap)
		return cs->m;
	for (size_t j = cs->m; j-- > 0;)
		if (strcmp(cs->due[cs->of[j]].id, jobs[n - 1].endpoint_id) == 0)
			return j + 1;
	return cs->m;
}

static hk_status claim_rows(const struct pg_store *ps, struct pg_conn *c, int64_t now,
                            unsigned cap, struct claim_set *cs, struct store_job *jobs,
                            size_t *n, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_int(&p, now);
	pp_text(&p, cs->ids);
	pp_text(&p, cs->rooms);
	pp_int(&p, cap);
	PGresult *res = pg_run(c, PS_CLAIM_SELECT, &p, err);
	if (!res)
		return err->status;
	struct store_memo memo = { 0 };
	int rows = PQntuples(res);
	for (int i = 0; i < rows && *n < cap; i++) {
		if (job_from_row(ps, res, i, &memo, &jobs[*n]) != 0) {
			store_job_clear(&jobs[*n]);
			store_memo_clear(&memo);
			PQclear(res);
			return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		}
		(*n)++;
	}
	store_memo_clear(&memo);
	PQclear(res);
	cs->seen = visited(cs, jobs, *n, cap);
	return HK_OK;
}

/* When each visited endpoint has something claimable next, as this
 * transaction sees it after the leases (a leased delivery counts at the end
 * of its lease), into cs->next. */
static hk_status due_reread(struct pg_conn *c, struct claim_set *cs, struct hk_err *err)
{
	struct pg_array ids;
	if (!pg_array_open(&ids, cs->seen, UUID_STR_LEN))
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	for (size_t j = 0; j < cs->seen; j++) {
		pg_array_add(&ids, cs->due[cs->of[j]].id);
		cs->next[j] = DUEMAP_NONE; /* unless found: paused, or nothing pending */
	}
	struct pg_params p = { 0 };
	pp_text(&p, pg_array_close(&ids));
	PGresult *res = pg_run(c, PS_DUE_OF, &p, err);
	free(ids.s);
	if (!res)
		return err->status;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t ord = pg_int(res, i, 0); /* 1-based */
		if (ord >= 1 && (size_t)ord <= cs->seen && !PQgetisnull(res, i, 1))
			cs->next[ord - 1] = pg_int(res, i, 1);
	}
	PQclear(res);
	return HK_OK;
}

static hk_status claim_tx(struct pg_store *ps, struct pg_conn *c, int64_t now,
                          int64_t lease_until, unsigned cap, struct claim_set *cs,
                          struct store_job *jobs, size_t *n, struct hk_err *err)
{
	/* A lost claim only makes a delivery due again: no need to wait for
	 * the commit's flush (the attempt's record is a full commit). */
	hk_status r = pg_tx_begin(c, err);
	if (r == HK_OK)
		r = pg_exec(c, "SET LOCAL synchronous_commit = off", err);
	if (r == HK_OK)
		r = claim_rows(ps, c, now, cap, cs, jobs, n, err);
	if (r == HK_OK && *n)
		r = lease_rows(ps, c, jobs, *n, lease_until, err);
	if (r == HK_OK && cs->seen)
		r = due_reread(c, cs, err);
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK) {
		pg_tx_rollback(c);
		for (size_t i = 0; i < *n; i++)
			store_job_clear(&jobs[i]);
		*n = 0;
	}
	return r;
}

hk_status pg_claim(struct store *s, int64_t now, int64_t lease_until, unsigned cap,
                   const struct store_claim_room *room, struct store_job *jobs, size_t *n,
                   struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_store *ps = (struct pg_store *)s;
	*n = 0;
	static const struct store_claim_room no_room = { 0 };
	hk_status r = due_refresh(ps, c, err);
	struct claim_set cs = { 0 };
	cs.k = r == HK_OK ? duemap_take(ps->due, now, &cs.due) : 0;
	if (cs.k == 0)
		return r;
	if (!claim_set_fill(&cs, room ? room : &no_room, cap))
		r = hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	else if (cs.m)
		r = claim_tx(ps, c, now, lease_until, cap, &cs, jobs, n, err);
	/* A claim that failed puts its endpoints back as they were, still due. */
	for (size_t j = 0; r == HK_OK && j < cs.seen; j++)
		cs.due[cs.of[j]].due = cs.next[j];
	duemap_put(ps->due, cs.due, cs.k);
	claim_set_free(&cs);
	return r;
}

hk_status pg_next_due(struct store *s, int64_t *when, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_store *ps = (struct pg_store *)s;
	hk_status r = due_refresh(ps, c, err);
	if (r != HK_OK)
		return r;
	*when = store_due_first(ps->due);
	return HK_OK;
}

/* ---- recording -----------------------------------------------------------
 *
 * A batch is two pipelines and a commit. The first opens the transaction,
 * locks the endpoints and writes one statement per result: the delivery's
 * new state and, only where the lease still holds, its attempt row (a row
 * count of 0: fenced). The second adds the results that were not fenced to
 * the rollup and to the breaker's counters; an endpoint that reaches the
 * threshold is then paused by plain statements (rare: once per endpoint).
 */

struct rec_batch {
	struct store_result *r;
	size_t n;
	char *endpoints; /* the batch's endpoints as a text[] literal, to lock */
	int threshold;
	struct store_rollup ru;
	size_t nrollups; /* rollup upserts queued */
	struct store_breaker b;
	bool *trip; /* b.e[i] reached the threshold; b.n of them */
};

/* The batch's endpoints as a text[] literal; NULL when out of memory. */
static char *endpoint_array(const struct store_result *r, size_t n)
{
	struct pg_array ids;
	if (!pg_array_open(&ids, n, UUID_STR_LEN))
		return NULL;
	for (size_t i = 0; i < n; i++)
		pg_array_add(&ids, r[i].endpoint_id);
	return pg_array_close(&ids);
}

static hk_status result_send(struct pg_conn *c, const struct store_result *r, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, r->delivery_id);
	pp_int(&p, r->lease);
	pp_int(&p, r->status);
	pp_int(&p, r->attempt_number);
	if (r->http_status > 0)
		pp_int(&p, r->http_status);
	else
		pp_null(&p);
	if (r->status == DELIVERY_PENDING)
		pp_int(&p, r->next_attempt_at);
	else
		pp_null(&p);
	pp_int(&p, r->started_at);
	pp_int(&p, r->duration_ms);
	pp_text(&p, r->error);
	pp_bin(&p, r->response_body ? r->response_body : "", r->response_len);
	return pg_pipe_send(c, PS_REC_RESULT, &p, err);
}

/* BEGIN, then the endpoint locks in id order (see the top), then the results. */
static hk_status results_send(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct rec_batch *rb = ctx;
	static const struct pg_params none = { 0 };
	struct pg_params p = { 0 };
	pp_text(&p, rb->endpoints);
	hk_status h = pg_pipe_send(c, PS_BEGIN, &none, err);
	if (h == HK_OK)
		h = pg_pipe_send(c, PS_REC_LOCK, &p, err);
	for (size_t i = 0; i < rb->n && h == HK_OK; i++)
		h = result_send(c, &rb->r[i], err);
	return h;
}

static hk_status results_read(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct rec_batch *rb = ctx;
	hk_status h = pg_pipe_do(c, PS_BEGIN, NULL, err);
	if (h == HK_OK)
		h = pg_pipe_do(c, PS_REC_LOCK, NULL, err);
	for (size_t i = 0; i < rb->n && h == HK_OK; i++) {
		long written = 0;
		h = pg_pipe_do(c, PS_REC_RESULT, &written, err);
		rb->r[i].fenced = h == HK_OK && written == 0;
	}
	return h;
}

/* Queue the rollup's upserts and empty it. */
static hk_status rollup_send(struct pg_conn *c, struct rec_batch *rb, struct hk_err *err)
{
	for (size_t i = 0; i < rb->ru.n; i++) {
		struct pg_params p = { 0 };
		pp_text(&p, rb->ru.e[i].endpoint);
		pp_int(&p, rb->ru.e[i].minute);
		pp_int(&p, rb->ru.e[i].succeeded);
		pp_int(&p, rb->ru.e[i].failed);
		hk_status h = pg_pipe_send(c, PS_REC_ROLLUP, &p, err);
		if (h != HK_OK)
			return h;
		rb->nrollups++;
	}
	rb->ru.n = 0;
	return HK_OK;
}

static hk_status counters_send(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct rec_batch *rb = ctx;
	hk_status h = HK_OK;
	for (size_t i = 0; i < rb->n && h == HK_OK; i++) {
		if (rb->r[i].fenced)
			continue;
		if (!store_rollup_add(&rb->ru, &rb->r[i]) && (h = rollup_send(c, rb, err)) == HK_OK)
			store_rollup_add(&rb->ru, &rb->r[i]);
	}
	if (h == HK_OK)
		h = rollup_send(c, rb, err);
	for (size_t i = 0; i < rb->b.n && h == HK_OK; i++) {
		struct pg_params p = { 0 };
		pp_text(&p, rb->b.e[i].endpoint);
		pp_int(&p, rb->b.e[i].reset);
		pp_int(&p, rb->b.e[i].add);
		h = pg_pipe_send(c, PS_REC_ENDPOINT, &p, err);
	}
	return h;
}

static hk_status counters_read(struct pg_conn *c, void *ctx, struct hk_err *err)
{
	struct rec_batch *rb = ctx;
	hk_status h = HK_OK;
	for (size_t i = 0; i < rb->nrollups && h == HK_OK; i++)
		h = pg_pipe_do(c, PS_REC_ROLLUP, NULL, err);
	for (size_t i = 0; i < rb->b.n && h == HK_OK; i++) {
		PGresult *res = pg_pipe_next(c, PS_REC_ENDPOINT, err);
		if (!res)
			return err->status;
		rb->trip[i] = PQntuples(res) == 1 && rb->b.e[i].add > 0 && rb->threshold > 0 &&
		              pg_int(res, 0, 0) >= rb->threshold && pg_int(res, 0, 1) == 1;
		PQclear(res);
	}
	return h;
}

/* Pause an endpoint that reached the threshold. Only the node whose UPDATE
 * flips is_active reports the pause. */
static hk_status breaker_pause(struct pg_conn *c, const char *endpoint, bool *paused,
                               struct hk_err *err)
{
	struct pg_params q = { 0 };
	pp_text(&q, endpoint);
	long changed = 0;
	hk_status h = pg_do(c, PS_REC_PAUSE, &q, &changed, err);
	if (h == HK_OK && changed == 1 && (h = pg_endpoint_paused(c, endpoint, err)) == HK_OK)
		*paused = true;
	return h;
}

static hk_status record_tx(struct pg_conn *c, struct rec_batch *rb, char (*paused)[UUID_STR_LEN],
                           size_t *npaused, struct hk_err *err)
{
	static const enum pg_stmt writes[] = { PS_BEGIN, PS_REC_LOCK, PS_REC_RESULT };
	static const enum pg_stmt counters[] = { PS_REC_ROLLUP, PS_REC_ENDPOINT };
	hk_status h = pg_pipeline(c, writes, 3, results_send, results_read, rb, err);
	if (h == HK_OK && (!store_breaker_fold(&rb->b, rb->r, rb->n) ||
	                   !(rb->trip = calloc(rb->b.n + 1, sizeof(*rb->trip)))))
		h = hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	if (h == HK_OK && rb->b.n > 0)
		h = pg_pipeline(c, counters, 2, counters_send, counters_read, rb, err);
	for (size_t i = 0; i < rb->b.n && h == HK_OK; i++) {
		bool now = false;
		if (rb->trip[i])
			h = breaker_pause(c, rb->b.e[i].endpoint, &now, err);
		if (now)
			memcpy(paused[(*npaused)++], rb->b.e[i].endpoint, UUID_STR_LEN);
	}
	return h;
}

hk_status pg_record(struct store *s, struct store_result *r, size_t n, int breaker_threshold,
                    char (*paused)[UUID_STR_LEN], size_t *npaused, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	*npaused = 0;
	struct rec_batch rb = { .r = r, .n = n, .threshold = breaker_threshold };
	if (!(rb.endpoints = endpoint_array(r, n)))
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	hk_status h = record_tx(c, &rb, paused, npaused, err);
	if (h == HK_OK)
		h = pg_tx_commit(c, err);
	if (h != HK_OK) {
		pg_tx_rollback(c);
		*npaused = 0;
	}
	for (size_t i = 0; h == HK_OK && i < n; i++)
		if (!r[i].fenced && r[i].status == DELIVERY_PENDING) /* a retry, now scheduled */
			duemap_lower(((struct pg_store *)s)->due, r[i].endpoint_id, r[i].next_attempt_at);
	store_breaker_clear(&rb.b);
	free(rb.trip);
	free(rb.endpoints);
	return h;
}

hk_status pg_release_leases(struct store *s, int64_t now, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_params p = { 0 };
	pp_int(&p, now);
	long changed = 0;
	hk_status r = pg_do(c, PS_RELEASE, &p, &changed, err);
	if (r == HK_OK && changed > 0) {
		log_info("released leases of a previous run", "deliveries=%ld", changed);
		duemap_stale(((struct pg_store *)s)->due); /* due now, for any endpoint */
	}
	return r;
}

hk_status pg_unclaim(struct store *s, const struct store_lease *l, size_t n, int64_t now,
                     struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	char(*endpoints)[UUID_STR_LEN] = calloc(n + 1, UUID_STR_LEN);
	if (!endpoints)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	hk_status r = pg_tx_begin(c, err);
	for (size_t i = 0; r == HK_OK && i < n; i++) {
		struct pg_params p = { 0 };
		pp_text(&p, l[i].delivery_id);
		pp_int(&p, l[i].lease);
		pp_int(&p, now);
		PGresult *res = pg_run(c, PS_UNCLAIM, &p, err);
		if (!res)
			r = err->status;
		else if (PQntuples(res) == 1) /* else its lease had ended */
			pg_copy(res, 0, 0, endpoints[i], UUID_STR_LEN);
		PQclear(res);
	}
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK)
		pg_tx_rollback(c);
	for (size_t i = 0; r == HK_OK && i < n; i++) /* given back: due again at once */
		if (endpoints[i][0])
			duemap_lower(((struct pg_store *)s)->due, endpoints[i], now);
	free(endpoints);
	return r;
}

/* ---- statistics ---------------------------------------------------------- */

hk_status pg_stats(struct store *s, const char *endpoint_id, int64_t start, int64_t end,
                   int64_t bucket_ms, struct store_stat **out, size_t *n, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	*out = NULL;
	*n = 0;
	struct pg_params p = { 0 };
	pp_text(&p, endpoint_id);
	pp_int(&p, start / 60000);
	pp_int(&p, (end + 59999) / 60000);
	pp_int(&p, bucket_ms);
	PGresult *res = pg_run(c, PS_STATS, &p, err);
	if (!res)
		return err->status;
	size_t rows = (size_t)PQntuples(res);
	struct store_stat *a = rows ? calloc(rows, sizeof(*a)) : NULL;
	if (rows && !a) {
		PQclear(res);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	for (size_t i = 0; i < rows; i++) {
		a[i].bucket_start = pg_int(res, (int)i, 0);
		a[i].succeeded = pg_int(res, (int)i, 1);
		a[i].failed = pg_int(res, (int)i, 2);
	}
	PQclear(res);
	*out = a;
	*n = rows;
	return HK_OK;
}

/* ---- LISTEN/NOTIFY --------------------------------------------------------
 *
 * One thread per node holds its own connection in LISTEN hookd_due and calls
 * wake() for each batch of notifications, and paused() for each that names
 * a paused endpoint. After its connection comes back from a
 * break it calls wake() once too: notifications sent meanwhile are lost, and
 * a claim finds whatever they were about. Stopped through `stop` (a flag
 * read under the lock) with at most one poll interval of delay.
 */
struct pg_listener {
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	struct pg_store *ps;
	char *url;
	struct store_listener on;
};

/* A notification that names a paused endpoint: tell the dispatcher. */
static void note_paused(struct pg_listener *l, const char *extra)
{
	size_t prefix = strlen(PG_PAUSED);
	if (l->on.paused && strncmp(extra, PG_PAUSED, prefix) == 0 &&
	    strlen(extra + prefix) == UUID_STR_LEN - 1)
		l->on.paused(l->on.arg, extra + prefix);
}

/* A notification that deliveries are due: for the endpoints it names, or
 * (no payload) for any, which the next claim finds by a walk. A node hears
 * its own too; lowering a time twice changes nothing. */
static void note_due(struct pg_listener *l, const char *extra)
{
	size_t prefix = strlen(PG_DUE);
	if (!*extra) {
		duemap_stale(l->ps->due);
		return;
	}
	if (strncmp(extra, PG_DUE, prefix) != 0)
		return;
	int64_t now = tu_now_ms();
	char id[UUID_STR_LEN];
	for (const char *p = extra + prefix; *p;) {
		size_t len = strcspn(p, " ");
		if (len == UUID_STR_LEN - 1) {
			memcpy(id, p, len);
			id[len] = '\0';
			duemap_lower(l->ps->due, id, now);
		}
		p += len;
		p += *p == ' ';
	}
}

static bool listener_stopping(struct pg_listener *l)
{
	pthread_mutex_lock(&l->lock);
	bool stop = l->stop;
	pthread_mutex_unlock(&l->lock);
	return stop;
}

static PGconn *listen_connect(struct pg_listener *l)
{
	PGconn *conn = pg_connect(l->url);
	if (conn && PQstatus(conn) == CONNECTION_OK) {
		PGresult *res = PQexec(conn, "LISTEN " PG_CHANNEL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (ok)
			return conn;
	}
	PQfinish(conn);
	return NULL;
}

/* Wait for notifications on a live connection until it breaks or we stop. */
static void listen_until_broken(struct pg_listener *l, PGconn *conn)
{
	while (!listener_stopping(l)) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		int rc = poll(&pfd, 1, 250);
		if (rc < 0 && errno != EINTR)
			return;
		if (rc > 0 && !PQconsumeInput(conn))
			return;
		bool any = false;
		PGnotify *note;
		while ((note = PQnotifies(conn)) != NULL) {
			any = true;
			note_paused(l, note->extra);
			note_due(l, note->extra);
			PQfreemem(note);
		}
		if (any)
			l->on.wake(l->on.arg);
		if (PQstatus(conn) != CONNECTION_OK)
			return;
	}
}

/* Sleep the back-off (doubling from 50 ms to 2 s), waking early to stop. */
static void listener_nap(struct pg_listener *l, int *backoff)
{
	*backoff = *backoff ? (*backoff * 2 > 2000 ? 2000 : *backoff * 2) : 50;
	for (int waited = 0; waited < *backoff && !listener_stopping(l); waited += 50)
		usleep(50000);
}

static void *listener_main(void *arg)
{
	struct pg_listener *l = arg;
	int backoff = 0;
	while (!listener_stopping(l)) {
		PGconn *conn = listen_connect(l);
		/* A break that took the LISTEN connection took the liveness lock too. */
		if (!conn || !pg_alive_ensure(l->ps)) {
			PQfinish(conn);
			listener_nap(l, &backoff);
			continue;
		}
		if (backoff) {
			log_info("listening for other nodes again", NULL);
			duemap_stale(l->ps->due); /* notifications sent meanwhile are lost */
			l->on.wake(l->on.arg);
		}
		backoff = 0;
		listen_until_broken(l, conn);
		PQfinish(conn);
		if (!listener_stopping(l)) {
			log_warn("lost the LISTEN connection; reconnecting", NULL);
			listener_nap(l, &backoff);
		}
	}
	return NULL;
}

void pg_listener_stop(struct pg_store *ps)
{
	struct pg_listener *l = ps->listener;
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->lock);
	free(l->url);
	free(l);
	ps->listener = NULL;
}

hk_status pg_listen(struct store *s, const struct store_listener *on, struct hk_err *err)
{
	struct pg_store *ps = (struct pg_store *)s;
	pg_listener_stop(ps);
	if (!on || !on->wake)
		return HK_OK;
	struct pg_listener *l = calloc(1, sizeof(*l));
	if (!l || !(l->url = strdup(ps->url))) {
		free(l);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	l->ps = ps;
	l->on = *on;
	pthread_mutex_init(&l->lock, NULL);
	if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
		pthread_mutex_destroy(&l->lock);
		free(l->url);
		free(l);
		return hk_fail(err, HK_EINTERNAL, NULL, "cannot start the listener thread");
	}
	pthread_setname_np(l->thread, "hookd-listen");
	ps->listener = l;
	return HK_OK;
}
