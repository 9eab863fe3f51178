/*
 * store_sqlite_dispatch: the SQLite backend's side of the dispatcher (see
 * store.h): claiming due deliveries with a lease, recording batches of
 * attempts with the circuit breaker and the per-minute rollup, releasing
 * dead leases, and answering statistics from the rollup. The design notes
 * (durability, the partial index, leases) are at the top of store_sqlite.c.
 */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duemap.h"
#include "log.h"
#include "store_sqlite_int.h"
#include "timeutil.h"

/* ---- the dispatcher's side ----------------------------------------------- */

/* Fill a job from a claim row: url, secret and body share one allocation. */
static int job_from_row(const struct sq_store *ss, sqlite3_stmt *st, struct store_memo *memo,
                        struct store_job *j)
{
	memset(j, 0, sizeof(*j));
	sq_col_copy(st, 0, j->delivery_id, sizeof(j->delivery_id));
	sq_col_copy(st, 1, j->event_id, sizeof(j->event_id));
	sq_col_copy(st, 2, j->endpoint_id, sizeof(j->endpoint_id));
	j->attempt_count = sqlite3_column_int(st, 3);
	j->no_retry = sqlite3_column_int(st, 4) != 0;
	j->is_primary = sqlite3_column_int(st, 5) != 0;
	j->row = sqlite3_column_int64(st, 9);
	const char *stored = (const char *)sqlite3_column_text(st, 7);
	if (!stored)
		stored = "";
	const char *sec = store_memo_find(memo, j->endpoint_id, stored);
	if (!sec)
		sec = store_memo_keep(memo, j->endpoint_id, stored,
		                      sq_open_secret(ss, j->endpoint_id, stored));
	const char *url = (const char *)sqlite3_column_text(st, 6);
	const char *body = (const char *)sqlite3_column_text(st, 8);
	if (!sec || !url || !body)
		return -1;
	return store_job_fill(j, url, (size_t)sqlite3_column_bytes(st, 6), sec, body,
	                      (size_t)sqlite3_column_bytes(st, 8));
}

/* Take up to `take` due deliveries of one endpoint into jobs[*n...]. */
static hk_status claim_endpoint(struct sq_conn *c, const char *endpoint, int64_t now,
                                unsigned take, struct store_memo *memo, struct store_job *jobs,
                                size_t *n, struct hk_err *err)
{
	sqlite3_stmt *sel = sq_stmt(c, ST_CLAIM_SELECT, err);
	if (!sel)
		return HK_ESTORE;
	sq_bind_text(sel, 1, endpoint);
	sqlite3_bind_int64(sel, 2, now);
	sqlite3_bind_int(sel, 3, (int)take);
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		if (job_from_row(c->ss, sel, memo, &jobs[*n]) != 0) {
			store_job_clear(&jobs[*n]);
			sqlite3_reset(sel);
			return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		}
		(*n)++;
	}
	sqlite3_reset(sel);
	return rc == SQLITE_DONE ? HK_OK : sq_error(err, c->db, "claim");
}

/* How often the claimer checks its due times against the database (a
 * walk, due_refresh): each write of this process lowers them itself, so
 * alone on the database the walk is only a safety net; beside another
 * process, whose writes it does not see, it is as often as the dispatcher
 * polls. */
#define WALK_SOLE_MS 30000
#define WALK_SHARED_MS 1000

/* Lower every active endpoint's due time to what the database says: one
 * pass over the endpoints with anything claimable, a few index seeks each. */
static hk_status due_walk(struct sq_conn *c, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_DUE_WALK, err);
	if (!st)
		return HK_ESTORE;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		duemap_lower(c->ss->due, (const char *)sqlite3_column_text(st, 0),
		             sqlite3_column_int64(st, 1));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? HK_OK : sq_error(err, c->db, "due walk");
}

static hk_status due_refresh(struct sq_conn *c, struct hk_err *err)
{
	struct sq_store *ss = c->ss;
	if (!duemap_walk_wanted(ss->due, tu_now_ms(), ss->sole ? WALK_SOLE_MS : WALK_SHARED_MS))
		return HK_OK;
	hk_status r = due_walk(c, err);
	if (r != HK_OK)
		duemap_stale(ss->due);
	return r;
}

/* What a claim did with an endpoint it took from the duemap. */
struct visit {
	bool claimed; /* it had room: its due deliveries were claimed */
	int64_t next; /* then, when it has something claimable next */
};

/* Endpoint by endpoint, the longest waiting first, as many due deliveries
 * as each has room for. An endpoint at its cap costs nothing, however large
 * its backlog; one with nothing due is not even looked at. */
static hk_status claim_rows(struct sq_conn *c, int64_t now, unsigned cap,
                            const struct store_claim_room *room, const struct duemap_item *due,
                            struct visit *v, size_t k, struct store_job *jobs, size_t *n,
                            struct hk_err *err)
{
	struct store_memo memo = { 0 };
	hk_status r = HK_OK;
	for (size_t i = 0; i < k && r == HK_OK && *n < cap; i++) {
		unsigned take = store_room_left(room, due[i].id, cap - (unsigned)*n);
		v[i].claimed = take > 0;
		if (take)
			r = claim_endpoint(c, due[i].id, now, take, &memo, jobs, n, err);
	}
	store_memo_clear(&memo);
	return r;
}

/* When each endpoint claimed from has something claimable next, as this
 * transaction sees it after the leases (a leased delivery counts at the
 * end of its lease). */
static hk_status due_reread(struct sq_conn *c, const struct duemap_item *due, struct visit *v,
                            size_t k, struct hk_err *err)
{
	for (size_t i = 0; i < k; i++) {
		if (!v[i].claimed)
			continue;
		sqlite3_stmt *st = sq_stmt(c, ST_DUE_OF, err);
		if (!st)
			return HK_ESTORE;
		sq_bind_text(st, 1, due[i].id);
		if (sqlite3_step(st) != SQLITE_ROW)
			return sq_error(err, c->db, "due of");
		v[i].next = sqlite3_column_type(st, 0) == SQLITE_NULL ? DUEMAP_NONE
		                                                      : sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	return HK_OK;
}

/* Lease the n claimed rows until lease_until. One lease token for the
 * whole claim: a later claim of any of these deliveries gets another,
 * which is all fencing needs. */
static hk_status lease_rows(struct sq_conn *c, int64_t lease_until, struct store_job *jobs,
                            size_t n, struct hk_err *err)
{
	int64_t lease;
	RAND_bytes((unsigned char *)&lease, sizeof(lease));
	lease &= INT64_MAX;
	char *ids = malloc(n * 21 + 3); /* rowids: 20 digits and a comma each */
	if (!ids)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	size_t len = 0;
	ids[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		jobs[i].lease = lease;
		len += (size_t)sprintf(ids + len, "%s%lld", i ? "," : "", (long long)jobs[i].row);
	}
	ids[len++] = ']';
	ids[len] = '\0';
	sqlite3_stmt *up = sq_stmt(c, ST_CLAIM_UPDATE, err);
	hk_status r = up ? HK_OK : HK_ESTORE;
	if (up) {
		sqlite3_bind_text(up, 1, ids, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(up, 2, lease);
		sqlite3_bind_int64(up, 3, lease_until);
		r = sq_step_done(c, up, err);
	}
	free(ids);
	return r;
}

/* Claim in one transaction, from the endpoints taken from the duemap (a
 * claim that fails puts them back as they were, still due). */
static hk_status claim_tx(struct sq_conn *c, int64_t now, int64_t lease_until, unsigned cap,
                          const struct store_claim_room *room, struct duemap_item *due,
                          size_t k, struct store_job *jobs, size_t *n, struct hk_err *err)
{
	struct visit *v = calloc(k, sizeof(*v));
	if (!v)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	hk_status r = sq_tx_begin(c, err);
	if (r == HK_OK)
		r = claim_rows(c, now, cap, room, due, v, k, jobs, n, err);
	if (r == HK_OK && *n > 0)
		r = lease_rows(c, lease_until, jobs, *n, err);
	if (r == HK_OK)
		r = due_reread(c, due, v, k, err);
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK) {
		sq_tx_rollback(c);
		for (size_t i = 0; i < *n; i++)
			store_job_clear(&jobs[i]);
		*n = 0;
	}
	for (size_t i = 0; r == HK_OK && i < k; i++)
		if (v[i].claimed)
			due[i].due = v[i].next;
	free(v);
	return r;
}

hk_status sq_claim(struct store *s, int64_t now, int64_t lease_until, unsigned cap,
                   const struct store_claim_room *room, struct store_job *jobs, size_t *n,
                   struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*n = 0;
	static const struct store_claim_room no_room = { 0 };
	hk_status r = due_refresh(c, err);
	struct duemap_item *due = NULL;
	size_t k = r == HK_OK ? duemap_take(c->ss->due, now, &due) : 0;
	if (k == 0)
		return r;
	/* A lost claim only makes a delivery due again: no fsync for it (see
	 * top). Run as text, not a cached statement: SQLite applies this pragma
	 * when it compiles it, and expires the statement each time it runs. */
	sq_exec(c->db, "PRAGMA synchronous=NORMAL");
	r = claim_tx(c, now, lease_until, cap, room ? room : &no_room, due, k, jobs, n, err);
	sq_exec(c->db, "PRAGMA synchronous=FULL");
	duemap_put(c->ss->due, due, k);
	return r;
}

hk_status sq_next_due(struct store *s, int64_t *when, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	hk_status r = due_refresh(c, err);
	if (r != HK_OK)
		return r;
	*when = store_due_first(c->ss->due);
	return HK_OK;
}

/* Write one delivery's new state; *fenced when its lease no longer holds. */
static hk_status record_delivery(struct sq_conn *c, struct store_result *r, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_REC_DELIVERY, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, r->delivery_id);
	sqlite3_bind_int64(st, 2, r->lease);
	sqlite3_bind_int(st, 3, (int)r->status);
	sqlite3_bind_int(st, 4, r->attempt_number);
	if (r->http_status > 0)
		sqlite3_bind_int(st, 5, r->http_status);
	if (r->status == DELIVERY_PENDING)
		sqlite3_bind_int64(st, 6, r->next_attempt_at);
	sqlite3_bind_int64(st, 7, r->row);
	hk_status rc = sq_step_done(c, st, err);
	r->fenced = rc == HK_OK && sqlite3_changes(c->db) == 0;
	if (rc == HK_OK && !r->fenced && r->status == DELIVERY_PENDING)
		duemap_lower(c->ss->due, r->endpoint_id, r->next_attempt_at);
	return rc;
}

static hk_status record_attempt(struct sq_conn *c, const struct store_result *r,
                                struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_REC_ATTEMPT, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, r->delivery_id);
	sqlite3_bind_int(st, 2, r->attempt_number);
	sqlite3_bind_int64(st, 3, r->started_at);
	sqlite3_bind_int(st, 4, r->duration_ms);
	if (r->http_status > 0)
		sqlite3_bind_int(st, 5, r->http_status);
	sq_bind_text(st, 6, r->error);
	sqlite3_bind_blob(st, 7, r->response_body ? r->response_body : "", (int)r->response_len,
	                  SQLITE_STATIC);
	return sq_step_done(c, st, err);
}

static hk_status rollup_flush(struct sq_conn *c, struct store_rollup *ru, struct hk_err *err)
{
	for (size_t i = 0; i < ru->n; i++) {
		sqlite3_stmt *st = sq_stmt(c, ST_REC_ROLLUP, err);
		if (!st)
			return HK_ESTORE;
		sq_bind_text(st, 1, ru->e[i].endpoint);
		sqlite3_bind_int64(st, 2, ru->e[i].minute);
		sqlite3_bind_int(st, 3, ru->e[i].succeeded);
		sqlite3_bind_int(st, 4, ru->e[i].failed);
		hk_status h = sq_step_done(c, st, err);
		if (h != HK_OK)
			return h;
	}
	ru->n = 0;
	return HK_OK;
}

/* Apply one endpoint's folded counter change (store_breaker); pause it at
 * the threshold. *paused (OUT) says whether this batch tripped it. */
static hk_status breaker_apply(struct sq_conn *c, const char *endpoint, bool reset, int add,
                               int threshold, bool *paused, struct hk_err *err)
{
	*paused = false;
	sqlite3_stmt *st = sq_stmt(c, ST_REC_ENDPOINT, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, endpoint);
	sqlite3_bind_int(st, 2, reset);
	sqlite3_bind_int(st, 3, add);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_error(err, c->db, "breaker");
	bool trip = rc == SQLITE_ROW && add > 0 && threshold > 0 &&
	            sqlite3_column_int(st, 0) >= threshold && sqlite3_column_int(st, 1) == 1;
	sqlite3_reset(st);
	if (!trip)
		return HK_OK;
	if (!(st = sq_stmt(c, ST_REC_PAUSE, err)))
		return HK_ESTORE;
	sq_bind_text(st, 1, endpoint);
	hk_status h = sq_step_done(c, st, err);
	*paused = h == HK_OK;
	return h;
}

static hk_status record_one(struct sq_conn *c, struct store_result *r, struct store_rollup *ru,
                            struct hk_err *err)
{
	hk_status h = record_delivery(c, r, err);
	if (h != HK_OK || r->fenced)
		return h;
	if ((h = record_attempt(c, r, err)) != HK_OK)
		return h;
	if (!store_rollup_add(ru, r) && (h = rollup_flush(c, ru, err)) == HK_OK)
		store_rollup_add(ru, r);
	return h;
}

/* The breaker counters are changed once per endpoint per batch, after all
 * the attempts: fewer statements, and the same result as one by one. */
static hk_status record_tx(struct sq_conn *c, struct store_result *r, size_t n, int threshold,
                           char (*paused)[UUID_STR_LEN], size_t *npaused, struct hk_err *err)
{
	struct store_rollup ru = { 0 };
	struct store_breaker b = { 0 };
	hk_status h = HK_OK;
	for (size_t i = 0; i < n && h == HK_OK; i++)
		h = record_one(c, &r[i], &ru, err);
	if (h == HK_OK)
		h = rollup_flush(c, &ru, err);
	if (h == HK_OK && !store_breaker_fold(&b, r, n))
		h = hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < b.n && h == HK_OK; i++) {
		bool tripped = false;
		h = breaker_apply(c, b.e[i].endpoint, b.e[i].reset, b.e[i].add, threshold, &tripped,
		                  err);
		if (tripped)
			memcpy(paused[(*npaused)++], b.e[i].endpoint, UUID_STR_LEN);
	}
	store_breaker_clear(&b);
	return h;
}

hk_status sq_record(struct store *s, struct store_result *r, size_t n,
                           int breaker_threshold, char (*paused)[UUID_STR_LEN], size_t *npaused,
                           struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*npaused = 0;
	hk_status h = sq_tx_begin(c, err);
	if (h == HK_OK)
		h = record_tx(c, r, n, breaker_threshold, paused, npaused, err);
	if (h == HK_OK)
		h = sq_tx_commit(c, err);
	if (h != HK_OK) {
		sq_tx_rollback(c);
		*npaused = 0;
	}
	return h;
}

/* Make the leases of a previous run due now, when this is the only process
 * on the file (a live one's are left to expire). */
static hk_status release_dead_leases(struct sq_conn *c, int64_t now, struct hk_err *err)
{
	if (!c->ss->sole) {
		log_warn("another hookd is using this database: leases of earlier runs are left to expire",
		         NULL);
		return HK_OK;
	}
	sqlite3_stmt *st = sq_stmt(c, ST_RELEASE, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_int64(st, 1, now);
	hk_status r = sq_step_done(c, st, err);
	if (r == HK_OK && sqlite3_changes(c->db) > 0)
		log_info("released leases of a previous run", "deliveries=%d", sqlite3_changes(c->db));
	return r;
}

hk_status sq_release_leases(struct store *s, int64_t now, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	hk_status r = release_dead_leases(c, now, err);
	duemap_stale(c->ss->due); /* rows changed in bulk: the next claim walks */
	return r;
}

hk_status sq_unclaim(struct store *s, const struct store_lease *l, size_t n, int64_t now,
                     struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	hk_status r = sq_tx_begin(c, err);
	for (size_t i = 0; r == HK_OK && i < n; i++) {
		sqlite3_stmt *st = sq_stmt(c, ST_UNCLAIM, err);
		if (!st) {
			r = HK_ESTORE;
			break;
		}
		sq_bind_text(st, 1, l[i].delivery_id);
		sqlite3_bind_int64(st, 2, l[i].lease);
		sqlite3_bind_int64(st, 3, now);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			duemap_lower(c->ss->due, (const char *)sqlite3_column_text(st, 0), now);
		else if (rc != SQLITE_DONE)
			r = sq_error(err, c->db, "unclaim");
		sqlite3_reset(st);
	}
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK)
		sq_tx_rollback(c);
	return r;
}

/* ---- statistics ---------------------------------------------------------- */

hk_status sq_stats(struct store *s, const char *endpoint_id, int64_t start, int64_t end,
                          int64_t bucket_ms, struct store_stat **out, size_t *n,
                          struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st = sq_stmt(c, ST_STATS, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, endpoint_id);
	sqlite3_bind_int64(st, 2, start / 60000);
	sqlite3_bind_int64(st, 3, (end + 59999) / 60000);
	sqlite3_bind_int64(st, 4, bucket_ms);
	size_t cap = 0, len = 0;
	struct store_stat *a = NULL;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			struct store_stat *grown = realloc(a, cap * sizeof(*a));
			if (!grown)
				break;
			a = grown;
		}
		a[len].bucket_start = sqlite3_column_int64(st, 0);
		a[len].succeeded = sqlite3_column_int64(st, 1);
		a[len++].failed = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(a);
		return rc == SQLITE_ROW ? hk_fail(err, HK_ENOMEM, NULL, "out of memory")
		                        : sq_error(err, c->db, "stats");
	}
	*out = a;
	*n = len;
	return HK_OK;
}

