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

#include "log.h"
#include "store_sqlite_int.h"

/* ---- the dispatcher's side ----------------------------------------------- */

/* A JSON array of the endpoints already at their cap, for json_each(), so
 * the claim query never even reads their due rows. Caller frees. */
static char *full_json(const struct store_claim_room *room)
{
	char *s = malloc(3 + room->n * (UUID_STR_LEN + 3));
	if (!s)
		return NULL;
	size_t n = 0;
	s[n++] = '[';
	for (size_t i = 0; i < room->n; i++)
		if (room->per_endpoint && room->in_flight[i] >= room->per_endpoint)
			n += (size_t)sprintf(s + n, "%s\"%s\"", n > 1 ? "," : "", room->endpoints[i]);
	s[n++] = ']';
	s[n] = '\0';
	return s;
}

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

static hk_status claim_rows(const struct sq_store *ss, struct sq_conn *c, int64_t now, int64_t lease_until, unsigned cap,
                            const struct store_claim_room *room, const char *full,
                            struct store_job *jobs, size_t *n, struct hk_err *err)
{
	sqlite3_stmt *sel = sq_stmt(c, ST_CLAIM_SELECT, err);
	if (!sel)
		return HK_ESTORE;
	sqlite3_bind_int64(sel, 1, now);
	sq_bind_text(sel, 2, full);
	/* Read a few more rows than we may take: some may lack room. */
	sqlite3_bind_int(sel, 3, (int)cap * 4);
	int rc = SQLITE_DONE;
	unsigned streak = 0;
	struct store_tally t = { 0 };
	struct store_memo memo = { 0 };
	while (*n < cap && streak < STORE_CLAIM_STREAK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		size_t known = t.n;
		if (!store_room_take(room, &t, (const char *)sqlite3_column_text(sel, 2))) {
			streak++;
			continue;
		}
		streak = 0;
		if (job_from_row(ss, sel, &memo, &jobs[*n]) != 0) {
			store_job_clear(&jobs[*n]);
			store_memo_clear(&memo);
			sqlite3_reset(sel);
			return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		}
		/* The row's text dies at the next step: the tally keeps the job's copy. */
		store_tally_rebase(&t, known, jobs[*n].endpoint_id);
		(*n)++;
	}
	store_memo_clear(&memo);
	sqlite3_reset(sel);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_error(err, c->db, "claim");
	if (*n == 0)
		return HK_OK;
	/* One lease token for the whole claim: a later claim of any of these
	 * deliveries gets another, which is all fencing needs. */
	int64_t lease;
	RAND_bytes((unsigned char *)&lease, sizeof(lease));
	lease &= INT64_MAX;
	char *ids = malloc(*n * 21 + 3); /* rowids: 20 digits and a comma each */
	if (!ids)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	size_t len = 0;
	ids[len++] = '[';
	for (size_t i = 0; i < *n; i++) {
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

hk_status sq_claim(struct store *s, int64_t now, int64_t lease_until, unsigned cap,
                          const struct store_claim_room *room, struct store_job *jobs, size_t *n,
                          struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*n = 0;
	static const struct store_claim_room no_room = { 0 };
	if (!room)
		room = &no_room;
	char *full = full_json(room);
	if (!full)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	/* A lost claim only makes a delivery due again: no fsync for it (see
	 * top). Run as text, not a cached statement: SQLite applies this pragma
	 * when it compiles it, and expires the statement each time it runs. */
	sq_exec(c->db, "PRAGMA synchronous=NORMAL");
	hk_status r = sq_tx_begin(c, err);
	if (r == HK_OK)
		r = claim_rows((struct sq_store *)s, c, now, lease_until, cap, room, full, jobs, n, err);
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK) {
		sq_tx_rollback(c);
		for (size_t i = 0; i < *n; i++)
			store_job_clear(&jobs[i]);
		*n = 0;
	}
	sq_exec(c->db, "PRAGMA synchronous=FULL");
	free(full);
	return r;
}

hk_status sq_next_due(struct store *s, int64_t *when, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_NEXT_DUE, err);
	if (!st)
		return HK_ESTORE;
	if (sqlite3_step(st) != SQLITE_ROW)
		return sq_error(err, c->db, "next_due");
	*when = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
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
	if (h == HK_OK)
		h = sq_endpoint_hold(c, endpoint, err);
	*paused = h == HK_OK;
	return h;
}

static hk_status record_one(struct sq_conn *c, struct store_result *r, struct store_rollup *ru,
                            struct store_breaker *b, struct hk_err *err)
{
	hk_status h = record_delivery(c, r, err);
	if (h != HK_OK || r->fenced)
		return h;
	if ((h = record_attempt(c, r, err)) != HK_OK)
		return h;
	if (!store_rollup_add(ru, r) && (h = rollup_flush(c, ru, err)) == HK_OK)
		store_rollup_add(ru, r);
	if (h == HK_OK && !store_breaker_add(b, r))
		h = hk_fail(err, HK_EINTERNAL, NULL, "record batch has too many endpoints");
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
		h = record_one(c, &r[i], &ru, &b, err);
	if (h == HK_OK)
		h = rollup_flush(c, &ru, err);
	for (size_t i = 0; i < b.n && h == HK_OK; i++) {
		bool tripped = false;
		h = breaker_apply(c, b.e[i].endpoint, b.e[i].reset, b.e[i].add, threshold, &tripped,
		                  err);
		if (tripped)
			memcpy(paused[(*npaused)++], b.e[i].endpoint, UUID_STR_LEN);
	}
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

/* The held deliveries of active endpoints: a release (sq_endpoint_release)
 * that a crash cut short. Safe beside a live release: both only let go. */
static hk_status repair_held(struct sq_conn *c, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_HELD_REPAIR, err);
	if (!st)
		return HK_ESTORE;
	hk_status r = sq_step_done(c, st, err);
	if (r == HK_OK && sqlite3_changes(c->db) > 0)
		log_info("released the rest of an interrupted release", "deliveries=%d",
		         sqlite3_changes(c->db));
	return r;
}

hk_status sq_release_leases(struct store *s, int64_t now, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	hk_status r = repair_held(c, err);
	if (r != HK_OK)
		return r;
	if (!((struct sq_store *)s)->sole) {
		log_warn("another hookd is using this database: leases of earlier runs are left to expire",
		         NULL);
		return HK_OK;
	}
	sqlite3_stmt *st = sq_stmt(c, ST_RELEASE, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_int64(st, 1, now);
	r = sq_step_done(c, st, err);
	if (r == HK_OK && sqlite3_changes(c->db) > 0)
		log_info("released leases of a previous run", "deliveries=%d", sqlite3_changes(c->db));
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
		r = sq_step_done(c, st, err);
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

