/*
 * store_pg: the PostgreSQL backend of store.h, for running several hookd
 * nodes on one database with no coordinator of our own.
 *
 * Connections: one per thread (a pthread key), each with its own prepared
 * statements, so the node's "pool" is exactly its threads. A connection that
 * breaks (PostgreSQL restarted, network gone) fails its operation with
 * HK_ESTORE (the API answers 503 store_unavailable) and is reset on a later
 * use with a doubling back-off; the dispatcher and the recorder simply retry,
 * so nothing accepted is lost while the database is away.
 *
 * Sharing work between nodes:
 *   - claims lock due rows with SELECT ... FOR UPDATE SKIP LOCKED, endpoint
 *     by endpoint, so two nodes never claim the same delivery, and lease
 *     them as on SQLite: the claimed row's next_attempt_at moves to the
 *     lease's end, so the work of a node that dies becomes due again for
 *     the others by itself;
 *   - a claim visits only the endpoints this node knows to have something
 *     due (struct pg_store's duemap), learnt from its own writes, from the
 *     endpoints other nodes name in their NOTIFY, and from a walk of the
 *     database (HEADS) every second;
 *   - a publish ends with NOTIFY hookd_due naming its endpoints, and every
 *     node LISTENs, so idle nodes wake at once instead of polling; a pause
 *     names its endpoint there too, so no node sends what it claimed ahead
 *     for it;
 *   - counters are changed by atomic UPDATEs (breaker, rollup upserts), never
 *     read-modify-written in C; idempotency keys are settled by the unique
 *     index with INSERT ... ON CONFLICT DO NOTHING;
 *   - migrations and the first-start bootstrap take an advisory lock, so
 *     nodes that start together do them once.
 *
 * Round trips: a batch (a publish, a record of attempts) sends its
 * statements in libpq pipelines (pg_pipeline) and reads their results after
 * one sync, so it costs a few round trips whatever its size, not one per
 * statement. Statements that depend on an earlier one's outcome say so in
 * SQL (a delivery is inserted only if its event was; an attempt row only if
 * its lease held), so they need not wait for it.
 *
 * Durability: a publish is acknowledged after COMMIT, which PostgreSQL makes
 * durable (synchronous_commit is left at its default, on). The schema is that
 * of the SQLite backend with PostgreSQL's types; see store_sqlite.c.
 */
#include "store_pg_int.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "seal.h"
#include "timeutil.h"

#define DELIVERY_COLS \
	"d.id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempt_count, " \
	"d.last_http_status, d.created_at, d.next_attempt_at, d.is_test"
#define ENDPOINT_COLS \
	"id, org_id, url, description, event_types, secret, secret_version, is_active, " \
	"is_primary, consecutive_failures, created_at"
/* A listing filter: $1 endpoint, $2 org, $3/$4 created window, $5 tests only. */
#define DELIVERY_FILTER \
	" FROM deliveries d WHERE d.endpoint_id = $1" \
	" AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = $1 AND e.org_id = $2)" \
	" AND d.created_at >= $3 AND d.created_at < $4 AND ($5::int = 0 OR d.is_test = 1)"

/* The endpoints with claimable deliveries, each with when its oldest became
 * due and that delivery's id: one seek in deliveries_due (by endpoint, then
 * due time) per endpoint, as PostgreSQL has no skip scan of its own. The id
 * is there to make each seek a plain index scan, not an index-only one: a
 * plain scan marks the entries of deliveries claimed or finished since the
 * last vacuum dead as it passes them, so the next seek skips them; an
 * index-only scan stepped over them on every call, and on a long drain
 * became the database's hottest query. */
#define HEADS \
	"WITH RECURSIVE heads(endpoint_id, at, first) AS (" \
	" (SELECT endpoint_id, next_attempt_at, id FROM deliveries WHERE status = 0" \
	"  ORDER BY endpoint_id, next_attempt_at LIMIT 1)" \
	" UNION ALL SELECT f.endpoint_id, f.next_attempt_at, f.id FROM heads h CROSS JOIN LATERAL" \
	" (SELECT endpoint_id, next_attempt_at, id FROM deliveries WHERE status = 0" \
	"  AND endpoint_id > h.endpoint_id ORDER BY endpoint_id, next_attempt_at LIMIT 1) f)"

static const char *const stmt_sql[PS_COUNT] = {
	[PS_ORG_INSERT] = "INSERT INTO orgs(slug, name, created_at) VALUES($1, $2, $3) RETURNING id",
	[PS_ORG_GET] = "SELECT id, slug, name, created_at FROM orgs WHERE slug = $1",
	[PS_ORG_COUNT] = "SELECT count(*) FROM orgs",
	[PS_KEY_INSERT] = "INSERT INTO api_keys(hash, org_id, role, created_at) VALUES($1, $2, $3, $4)",
	[PS_KEY_LOOKUP] = "SELECT k.org_id, o.slug, k.role FROM api_keys k JOIN orgs o ON o.id = k.org_id"
	                  " WHERE k.hash = $1",
	[PS_EP_INSERT] = "INSERT INTO endpoints(" ENDPOINT_COLS ")"
	                 " VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,0,$10)",
	[PS_EP_GET] = "SELECT " ENDPOINT_COLS " FROM endpoints WHERE id = $1 AND org_id = $2",
	[PS_EP_PRIMARY] = "SELECT " ENDPOINT_COLS " FROM endpoints WHERE org_id = $1 AND is_primary = 1",
	[PS_EP_LIST] = "SELECT " ENDPOINT_COLS " FROM endpoints WHERE org_id = $1"
	               " ORDER BY created_at DESC, id DESC",
	[PS_EP_UPDATE] = "UPDATE endpoints SET url = coalesce($3, url),"
	                 " description = coalesce($4, description),"
	                 " event_types = coalesce($5, event_types),"
	                 " is_active = CASE WHEN $6::int < 0 THEN is_active ELSE $6::int END,"
	                 " consecutive_failures = CASE WHEN $6::int = 1 THEN 0 ELSE consecutive_failures END"
	                 " WHERE id = $1 AND org_id = $2",
	[PS_EP_DELETE] = "DELETE FROM endpoints WHERE id = $1 AND org_id = $2",
	[PS_EP_SET_SECRET] = "UPDATE endpoints SET secret = $3, secret_version = secret_version + 1"
	                     " WHERE id = $1 AND org_id = $2 RETURNING secret_version",
	/* Tell every node, at commit, that endpoint $1 was paused. */
	[PS_EP_PAUSED] = "SELECT pg_notify('" PG_CHANNEL "', '" PG_PAUSED "' || $1)",
	/* Tell every node, at commit, that endpoint $1 has deliveries due. */
	[PS_EP_DUE] = "SELECT pg_notify('" PG_CHANNEL "', '" PG_DUE "' || $1)",
	[PS_EP_FANOUT] = "SELECT id, is_active, event_types FROM endpoints WHERE org_id = $1",
	[PS_ROLLUP_DELETE] = "DELETE FROM attempt_rollup WHERE endpoint_id = $1",
	[PS_EV_IDEM] = "SELECT id, encode(req_hash, 'hex'), fanout, created_at FROM events"
	               " WHERE org_id = $1 AND idem_key = $2",
	[PS_EV_IDEM_CLEAR] = "UPDATE events SET idem_key = NULL WHERE id = $1",
	[PS_EV_INSERT] = "INSERT INTO events(id, org_id, event_type, body, created_at, idem_key, req_hash,"
	                 " fanout) VALUES($1,$2,$3,$4,$5,$6,$7,$8)"
	                 " ON CONFLICT (org_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING",
	/* Conditional: pipelined behind its event's insert, which inserts nothing
	 * when another node took the idempotency key first. */
	[PS_DL_INSERT] = "INSERT INTO deliveries(id, endpoint_id, event_id, event_type, created_at,"
	                 " next_attempt_at, is_test, no_retry)"
	                 " SELECT $1, $2, $3, $4, $5::bigint, $6::bigint, $7::int, $8::int"
	                 " WHERE EXISTS (SELECT 1 FROM events WHERE id = $3)",
	[PS_DL_LIST] = "SELECT " DELIVERY_COLS DELIVERY_FILTER
	               " ORDER BY d.created_at DESC, d.id DESC LIMIT $6 OFFSET $7",
	[PS_DL_COUNT] = "SELECT count(*)" DELIVERY_FILTER,
	[PS_DL_GET] = "SELECT " DELIVERY_COLS ", ev.body FROM deliveries d"
	              " JOIN endpoints e ON e.id = d.endpoint_id JOIN events ev ON ev.id = d.event_id"
	              " WHERE d.id = $1 AND e.org_id = $2",
	[PS_AT_LIST] = "SELECT number, started_at, duration_ms, http_status, error, response_body"
	               " FROM attempts WHERE delivery_id = $1 ORDER BY number",
	[PS_DL_RETRY] = "UPDATE deliveries SET"
	                " no_retry = CASE WHEN status = 0 THEN no_retry ELSE 1 END, status = 0,"
	                " next_attempt_at = $3"
	                " WHERE id = $1 AND endpoint_id IN (SELECT id FROM endpoints WHERE org_id = $2)"
	                " RETURNING endpoint_id",
	/* The endpoints taken from the duemap ($2, the longest waiting first),
	 * each with its room ($3): as many of its due deliveries as that. */
	[PS_CLAIM_SELECT] = "SELECT d.id, d.event_id, d.endpoint_id, d.attempt_count,"
	                    " d.no_retry, e.is_primary, e.url, e.secret, ev.body"
	                    " FROM unnest($2::text[], $3::int[]) AS q(endpoint_id, room)"
	                    " JOIN endpoints e ON e.id = q.endpoint_id AND e.is_active = 1"
	                    " CROSS JOIN LATERAL (SELECT x.id, x.event_id, x.endpoint_id,"
	                    "  x.attempt_count, x.no_retry FROM deliveries x"
	                    "  WHERE x.endpoint_id = q.endpoint_id AND x.status = 0"
	                    "  AND x.next_attempt_at <= $1 ORDER BY x.next_attempt_at"
	                    "  LIMIT q.room FOR UPDATE SKIP LOCKED) d"
	                    " JOIN events ev ON ev.id = d.event_id LIMIT $4",
	[PS_CLAIM_UPDATE] = "UPDATE deliveries SET lease = $2, next_attempt_at = $3, lease_owner = $4"
	                    " WHERE id = ANY($1::text[])",
	/* When each active endpoint next has something to claim: one pass over
	 * the endpoints with anything pending, an index seek each. */
	[PS_DUE_WALK] = HEADS " SELECT h.endpoint_id, h.at FROM heads h"
	                " JOIN endpoints e ON e.id = h.endpoint_id AND e.is_active = 1",
	/* The same for the endpoints $1, by their place in it; a paused one, or
	 * one with nothing pending, is left out or NULL. */
	[PS_DUE_OF] = "SELECT q.ord, (SELECT min(x.next_attempt_at) FROM deliveries x"
	              " WHERE x.endpoint_id = q.id AND x.status = 0)"
	              " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord)"
	              " JOIN endpoints e ON e.id = q.id AND e.is_active = 1",
	[PS_REC_LOCK] = "SELECT id FROM endpoints WHERE id = ANY($1::text[]) ORDER BY id"
	                " FOR NO KEY UPDATE",
	/* One statement per result, so a batch can be pipelined: the attempt row
	 * is written only where the lease still holds (0 rows: fenced). */
	[PS_REC_RESULT] = "WITH d AS (UPDATE deliveries SET status = $3, attempt_count = $4,"
	                  " last_http_status = $5, next_attempt_at = $6, lease = NULL"
	                  " WHERE id = $1 AND lease = $2 RETURNING id)"
	                  " INSERT INTO attempts(delivery_id, number, started_at, duration_ms,"
	                  " http_status, error, response_body)"
	                  " SELECT d.id, $4::int, $7::bigint, $8::int, $5::int, $9::text, $10::bytea"
	                  " FROM d"
	                  " ON CONFLICT (delivery_id, number) DO UPDATE SET"
	                  " started_at = excluded.started_at, duration_ms = excluded.duration_ms,"
	                  " http_status = excluded.http_status, error = excluded.error,"
	                  " response_body = excluded.response_body",
	[PS_REC_ENDPOINT] = "UPDATE endpoints SET consecutive_failures ="
	                    " CASE WHEN $2::int = 1 THEN $3::int ELSE consecutive_failures + $3::int END"
	                    " WHERE id = $1 RETURNING consecutive_failures, is_active",
	[PS_REC_PAUSE] = "UPDATE endpoints SET is_active = 0 WHERE id = $1 AND is_active = 1",
	[PS_REC_ROLLUP] = "INSERT INTO attempt_rollup(endpoint_id, minute, succeeded, failed)"
	                  " VALUES($1, $2, $3, $4) ON CONFLICT (endpoint_id, minute) DO UPDATE SET"
	                  " succeeded = attempt_rollup.succeeded + excluded.succeeded,"
	                  " failed = attempt_rollup.failed + excluded.failed",
	/* Leases whose owner no longer holds its liveness lock: that node is gone. */
	[PS_RELEASE] = "UPDATE deliveries SET next_attempt_at = $1, lease = NULL, lease_owner = NULL"
	               " WHERE status = 0 AND lease IS NOT NULL AND next_attempt_at > $1"
	               " AND lease_owner NOT IN (SELECT (l.classid::bigint << 32) | l.objid::bigint"
	               "  FROM pg_locks l JOIN pg_database db ON db.oid = l.database"
	               "  WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
	               "  AND db.datname = current_database())",
	[PS_UNCLAIM] = "UPDATE deliveries SET next_attempt_at = $3, lease = NULL, lease_owner = NULL"
	               " WHERE id = $1 AND lease = $2 AND status = 0 RETURNING endpoint_id",
	[PS_STATS] = "SELECT (minute * 60000 / $4) * $4 AS bucket, sum(succeeded), sum(failed)"
	             " FROM attempt_rollup WHERE endpoint_id = $1 AND minute >= $2 AND minute < $3"
	             " GROUP BY bucket ORDER BY bucket",
	/* A statement too, so a pipeline can open its transaction. */
	[PS_BEGIN] = "BEGIN",
};

/* Each migration brings the schema from version i to i + 1. Never edit one
 * that has shipped: add the next. */
static const char *const migrations[] = {
	"CREATE TABLE orgs("
	"  id BIGSERIAL PRIMARY KEY,"
	"  slug TEXT NOT NULL UNIQUE,"
	"  name TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL);"
	"CREATE TABLE api_keys("
	"  hash BYTEA PRIMARY KEY,"
	"  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
	"  role INTEGER NOT NULL,"
	"  created_at BIGINT NOT NULL);"
	"CREATE INDEX api_keys_org ON api_keys(org_id);"
	"CREATE TABLE endpoints("
	"  id TEXT PRIMARY KEY,"
	"  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
	"  url TEXT NOT NULL,"
	"  description TEXT NOT NULL,"
	"  event_types TEXT NOT NULL,"
	"  secret TEXT NOT NULL,"
	"  secret_version INTEGER NOT NULL,"
	"  is_active INTEGER NOT NULL,"
	"  is_primary INTEGER NOT NULL,"
	"  consecutive_failures INTEGER NOT NULL,"
	"  created_at BIGINT NOT NULL);"
	"CREATE INDEX endpoints_org ON endpoints(org_id, created_at);"
	"CREATE UNIQUE INDEX endpoints_one_primary ON endpoints(org_id) WHERE is_primary = 1;"
	"CREATE TABLE events("
	"  id TEXT PRIMARY KEY,"
	"  org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
	"  event_type TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  idem_key TEXT,"
	"  req_hash BYTEA,"
	"  fanout INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX events_idem ON events(org_id, idem_key) WHERE idem_key IS NOT NULL;"
	"CREATE TABLE deliveries("
	"  id TEXT PRIMARY KEY,"
	"  endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,"
	"  event_id TEXT NOT NULL REFERENCES events(id),"
	"  event_type TEXT NOT NULL,"
	"  status INTEGER NOT NULL DEFAULT 0,"
	"  attempt_count INTEGER NOT NULL DEFAULT 0,"
	"  last_http_status INTEGER,"
	"  created_at BIGINT NOT NULL,"
	"  next_attempt_at BIGINT,"
	"  held INTEGER NOT NULL DEFAULT 0,"
	"  is_test INTEGER NOT NULL DEFAULT 0,"
	"  no_retry INTEGER NOT NULL DEFAULT 0,"
	"  lease BIGINT,"
	"  lease_owner BIGINT);"
	"CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, created_at, id);"
	"CREATE INDEX deliveries_event ON deliveries(event_id);"
	"CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 0 AND held = 0;"
	"CREATE TABLE attempts("
	"  delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,"
	"  number INTEGER NOT NULL,"
	"  started_at BIGINT NOT NULL,"
	"  duration_ms INTEGER NOT NULL,"
	"  http_status INTEGER,"
	"  error TEXT,"
	"  response_body BYTEA,"
	"  PRIMARY KEY(delivery_id, number));"
	"CREATE TABLE attempt_rollup("
	"  endpoint_id TEXT NOT NULL,"
	"  minute BIGINT NOT NULL,"
	"  succeeded BIGINT NOT NULL,"
	"  failed BIGINT NOT NULL,"
	"  PRIMARY KEY(endpoint_id, minute));",
	/* Claimable rows by endpoint, then due time (see HEADS). */
	"DROP INDEX deliveries_due;"
	"CREATE INDEX deliveries_due ON deliveries(endpoint_id, next_attempt_at)"
	" WHERE status = 0 AND held = 0;",
	/* A pause no longer marks its endpoint's pending deliveries held, and a
	 * re-enable no longer rewrites them: claims and due times skip a paused
	 * endpoint by itself. Rewriting 300,000 rows kept a PATCH waiting 3 s,
	 * and a breaker's pause held up every record for 2 s. Rows held by an
	 * older version are claimable again once their endpoint is active. */
	"DROP INDEX deliveries_due;"
	"ALTER TABLE deliveries DROP COLUMN held;"
	"CREATE INDEX deliveries_due ON deliveries(endpoint_id, next_attempt_at) WHERE status = 0;",
	/* No query looks deliveries up by event; only a deletion of events,
	 * which hookd never makes, would check the foreign key through it (the
	 * SQLite backend never had it). Every claim and record writes each of
	 * the table's indexes anew (neither can be a HOT update): four
	 * alternating pairs of 150,000-delivery drains went from 17,188 to
	 * 18,241/s without it. */
	"DROP INDEX deliveries_event;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Advisory lock keys: migrations, and the bootstrap of an empty store. */
#define LOCK_MIGRATE "7306480417240001"
#define LOCK_BOOTSTRAP "7306480417240002"

/* ---- parameters ---------------------------------------------------------- */

static void pp_set(struct pg_params *p, const char *v, int len, int fmt)
{
	if (p->n >= PG_MAX_PARAMS)
		return;
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	p->n++;
}

void pp_text(struct pg_params *p, const char *s) { pp_set(p, s, 0, 0); }
void pp_null(struct pg_params *p) { pp_set(p, NULL, 0, 0); }
void pp_bin(struct pg_params *p, const void *data, size_t len) { pp_set(p, data, (int)len, 1); }

void pp_int(struct pg_params *p, int64_t v)
{
	if (p->n >= PG_MAX_PARAMS)
		return;
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
	pp_set(p, p->num[p->n], 0, 0);
}

/* ---- connections ----------------------------------------------------------- */

/* PostgreSQL's notices ("relation exists, skipping") are not ours to print. */
static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

PGconn *pg_connect(const char *url)
{
	/* Our connect_timeout first, so one in the URL wins over it. */
	const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *const vals[] = { "5", "hookd", url, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (conn)
		PQsetNoticeProcessor(conn, quiet_notice, NULL);
	return conn;
}

static hk_status unreachable(struct hk_err *err, PGconn *conn)
{
	const char *why = conn ? PQerrorMessage(conn) : "out of memory";
	char first[160];
	snprintf(first, sizeof(first), "%s", why);
	first[strcspn(first, "\n")] = '\0';
	log_warn("database unreachable", "why=\"%s\"", first);
	return hk_fail(err, HK_ESTORE, "store_unavailable",
	               "the database is unreachable, try again shortly");
}

/* Reset a broken connection, no sooner than its back-off allows. */
static hk_status conn_revive(struct pg_conn *c, struct hk_err *err)
{
	int64_t now = tu_mono_ms();
	if (now < c->retry_at)
		return hk_fail(err, HK_ESTORE, "store_unavailable",
		               "the database is unreachable, try again shortly");
	PQreset(c->conn);
	if (PQstatus(c->conn) == CONNECTION_OK) {
		memset(c->prepared, 0, sizeof(c->prepared));
		c->backoff_ms = 0;
		log_info("database reconnected", NULL);
		return HK_OK;
	}
	c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 2000 ? 2000 : c->backoff_ms * 2) : 50;
	c->retry_at = now + c->backoff_ms;
	return unreachable(err, c->conn);
}

struct pg_conn *pg_conn(struct pg_store *ps, struct hk_err *err)
{
	struct pg_conn *c = pthread_getspecific(ps->key);
	if (!c) {
		if (!(c = calloc(1, sizeof(*c)))) {
			hk_fail(err, HK_ENOMEM, NULL, "out of memory");
			return NULL;
		}
		c->conn = pg_connect(ps->url);
		pthread_mutex_lock(&ps->lock);
		c->next = ps->conns;
		ps->conns = c;
		pthread_mutex_unlock(&ps->lock);
		pthread_setspecific(ps->key, c);
		if (!c->conn) {
			hk_fail(err, HK_ENOMEM, NULL, "out of memory");
			return NULL;
		}
		if (PQstatus(c->conn) == CONNECTION_OK)
			return c;
	}
	if (PQstatus(c->conn) != CONNECTION_OK && conn_revive(c, err) != HK_OK)
		return NULL;
	return c;
}

/* Turn a failed result into err. */
static hk_status pg_fail(struct pg_conn *c, const PGresult *res, const char *what,
                         struct hk_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state && strcmp(state, "23505") == 0)
		return hk_fail(err, HK_ECONFLICT, "conflict", "a unique value is already taken");
	/* Class 08 (connection exception) and 57P0x (the server shutting down or
	 * starting up) mean the database is away, even while this connection
	 * still looks open. */
	bool away = state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0);
	if (away || PQstatus(c->conn) != CONNECTION_OK)
		return unreachable(err, c->conn);
	if (state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
		return hk_fail(err, HK_ESTORE, "store_busy", "the store is busy, try again");
	char first[200];
	snprintf(first, sizeof(first), "%s", PQerrorMessage(c->conn));
	first[strcspn(first, "\n")] = '\0';
	log_error("store error", "op=\"%.60s\" sqlstate=%s why=\"%s\"", what, state ? state : "-",
	          first);
	return hk_fail(err, HK_ESTORE, "store_error", "the store failed");
}

static void stmt_name(enum pg_stmt id, char name[16])
{
	snprintf(name, 16, "s%d", (int)id);
}

static bool prepare(struct pg_conn *c, enum pg_stmt id, struct hk_err *err)
{
	if (c->prepared[id])
		return true;
	char name[16];
	stmt_name(id, name);
	PGresult *res = PQprepare(c->conn, name, stmt_sql[id], 0, NULL);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		pg_fail(c, res, stmt_sql[id], err);
	PQclear(res);
	c->prepared[id] = ok;
	return ok;
}

/* res when it succeeded, else NULL with err filled (res cleared). */
static PGresult *result_ok(struct pg_conn *c, PGresult *res, enum pg_stmt id, struct hk_err *err)
{
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	pg_fail(c, res, stmt_sql[id], err);
	PQclear(res);
	return NULL;
}

/* What pg_do and pg_pipe_do return for a result of pg_run or pg_pipe_next. */
static hk_status result_done(PGresult *res, long *changed, struct hk_err *err)
{
	if (!res)
		return err ? err->status : HK_ESTORE;
	if (changed)
		*changed = atol(PQcmdTuples(res));
	PQclear(res);
	return HK_OK;
}

/* Statements planned for their parameters on every run, never from the
 * plan cache. PostgreSQL caches a generic plan after five runs, planned for
 * the table as it was then: a claim's, made while deliveries was nearly
 * empty, was a sequential scan, and stayed one as the table grew (50-130 ms
 * a claim at 60,000 rows) until an autoanalyze. They run once per claim,
 * not per delivery, so planning them costs little. */
static bool plan_each_time(enum pg_stmt id)
{
	return id == PS_CLAIM_SELECT || id == PS_CLAIM_UPDATE || id == PS_DUE_WALK ||
	       id == PS_DUE_OF;
}

PGresult *pg_run(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p,
                 struct hk_err *err)
{
	if (plan_each_time(id)) {
		PGresult *res = PQexecParams(c->conn, stmt_sql[id], p->n, NULL, p->v, p->len, p->fmt, 0);
		return result_ok(c, res, id, err);
	}
	if (!prepare(c, id, err))
		return NULL;
	char name[16];
	stmt_name(id, name);
	return result_ok(c, PQexecPrepared(c->conn, name, p->n, p->v, p->len, p->fmt, 0), id, err);
}

hk_status pg_do(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p, long *changed,
                struct hk_err *err)
{
	return result_done(pg_run(c, id, p, err), changed, err);
}

/* ---- pipelines (see store_pg_int.h) --------------------------------------- */

hk_status pg_pipe_send(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p,
                       struct hk_err *err)
{
	if (!c->prepared[id])
		return hk_fail(err, HK_EINTERNAL, NULL, "statement %d not prepared for its pipeline",
		               (int)id);
	char name[16];
	stmt_name(id, name);
	if (PQsendQueryPrepared(c->conn, name, p->n, p->v, p->len, p->fmt, 0))
		return HK_OK;
	return pg_fail(c, NULL, stmt_sql[id], err);
}

PGresult *pg_pipe_next(struct pg_conn *c, enum pg_stmt id, struct hk_err *err)
{
	PGresult *res = PQgetResult(c->conn);
	if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
		c->synced = false; /* read past the end: a bug, but never a hang */
	else if (res)
		PQclear(PQgetResult(c->conn)); /* the NULL that ends each statement's results */
	return result_ok(c, res, id, err);
}

hk_status pg_pipe_do(struct pg_conn *c, enum pg_stmt id, long *changed, struct hk_err *err)
{
	return result_done(pg_pipe_next(c, id, err), changed, err);
}

/* Read whatever is left up to the sync (results of statements skipped after
 * a failure), then leave pipeline mode. A connection that broke is left to
 * pg_conn's reset (which leaves pipeline mode too); one that is up but cannot
 * leave it is reset here, so it is never handed out in pipeline mode. */
static void pipe_end(struct pg_conn *c)
{
	if (!c->synced && PQstatus(c->conn) == CONNECTION_OK)
		c->synced = PQpipelineSync(c->conn) == 1;
	int idle = 0; /* two NULLs in a row: nothing more is coming */
	while (c->synced && idle < 2 && PQstatus(c->conn) == CONNECTION_OK) {
		PGresult *res = PQgetResult(c->conn);
		idle = res ? 0 : idle + 1;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
			c->synced = false;
		PQclear(res);
	}
	c->synced = false;
	if (PQexitPipelineMode(c->conn) || PQstatus(c->conn) != CONNECTION_OK)
		return;
	log_error("cannot leave pipeline mode; resetting the connection", NULL);
	PQreset(c->conn);
	memset(c->prepared, 0, sizeof(c->prepared));
}

hk_status pg_pipeline(struct pg_conn *c, const enum pg_stmt *ids, size_t nids, pg_pipe_fn send,
                      pg_pipe_fn read, void *ctx, struct hk_err *err)
{
	for (size_t i = 0; i < nids; i++)
		if (!prepare(c, ids[i], err))
			return err->status;
	if (!PQenterPipelineMode(c->conn))
		return pg_fail(c, NULL, "pipeline", err);
	c->synced = false;
	hk_status r = send(c, ctx, err);
	if (r == HK_OK && !(c->synced = PQpipelineSync(c->conn) == 1))
		r = pg_fail(c, NULL, "pipeline sync", err);
	if (r == HK_OK)
		r = read(c, ctx, err);
	pipe_end(c);
	return r;
}

hk_status pg_exec(struct pg_conn *c, const char *sql, struct hk_err *err)
{
	PGresult *res = PQexec(c->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	hk_status r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? HK_OK
	                                                               : pg_fail(c, res, sql, err);
	PQclear(res);
	return r;
}

hk_status pg_tx_begin(struct pg_conn *c, struct hk_err *err) { return pg_exec(c, "BEGIN", err); }
hk_status pg_tx_commit(struct pg_conn *c, struct hk_err *err) { return pg_exec(c, "COMMIT", err); }

void pg_tx_rollback(struct pg_conn *c)
{
	if (PQstatus(c->conn) == CONNECTION_OK && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		PQclear(PQexec(c->conn, "ROLLBACK"));
}

bool pg_array_open(struct pg_array *a, size_t n, size_t each)
{
	a->s = malloc(3 + n * (each + 1));
	a->len = 0;
	if (a->s)
		a->s[a->len++] = '{';
	return a->s != NULL;
}

void pg_array_add(struct pg_array *a, const char *v)
{
	if (a->len > 1)
		a->s[a->len++] = ',';
	size_t n = strlen(v);
	memcpy(a->s + a->len, v, n);
	a->len += n;
}

void pg_array_add_uint(struct pg_array *a, unsigned v)
{
	char num[12];
	snprintf(num, sizeof(num), "%u", v);
	pg_array_add(a, num);
}

char *pg_array_close(struct pg_array *a)
{
	a->s[a->len++] = '}';
	a->s[a->len] = '\0';
	return a->s;
}

void pg_copy(const PGresult *res, int row, int col, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

int64_t pg_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static char *pg_dup(const PGresult *res, int row, int col)
{
	return strdup(PQgetvalue(res, row, col));
}

static char *rest_secret(const struct pg_store *ps, const char *id, const char *secret)
{
	return ps->seal ? seal_close(ps->seal, id, secret) : strdup(secret);
}

char *pg_open_secret(const struct pg_store *ps, const char *id, const char *value)
{
	char *plain = ps->seal ? seal_open(ps->seal, id, value) : strdup(value);
	if (!plain && ps->seal) {
		log_error("an endpoint secret does not open: wrong --master-key-file?", "endpoint=%s", id);
		plain = strdup("");
	}
	return plain;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int pg_accepts(const char *db)
{
	return strncmp(db, "postgres://", 11) == 0 || strncmp(db, "postgresql://", 13) == 0;
}

static hk_status read_version(struct pg_conn *c, int *version, struct hk_err *err)
{
	PGresult *res = PQexec(c->conn, "SELECT coalesce(max(version), 0) FROM hookd_schema");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hk_status r = pg_fail(c, res, "schema version", err);
		PQclear(res);
		return r;
	}
	*version = (int)pg_int(res, 0, 0);
	PQclear(res);
	return HK_OK;
}

/* Bring the schema up to date under an advisory lock, so nodes that start
 * together migrate once: the others wait, then find nothing to do. */
static hk_status migrate(struct pg_conn *c, struct hk_err *err)
{
	int version = 0;
	hk_status r = pg_tx_begin(c, err);
	if (r == HK_OK)
		r = pg_exec(c, "SELECT pg_advisory_xact_lock(" LOCK_MIGRATE ")", err);
	if (r == HK_OK)
		r = pg_exec(c, "CREATE TABLE IF NOT EXISTS hookd_schema(version INTEGER NOT NULL)", err);
	if (r == HK_OK)
		r = read_version(c, &version, err);
	if (r == HK_OK && version > SCHEMA_VERSION)
		r = hk_fail(err, HK_ESTORE, "schema_too_new",
		            "database schema version %d is newer than this hookd (%d)", version,
		            SCHEMA_VERSION);
	for (; r == HK_OK && version < SCHEMA_VERSION; version++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "INSERT INTO hookd_schema VALUES(%d)", version + 1);
		if ((r = pg_exec(c, migrations[version], err)) == HK_OK &&
		    (r = pg_exec(c, sql, err)) == HK_OK)
			log_info("migrated", "backend=postgres version=%d", version + 1);
	}
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK)
		pg_tx_rollback(c);
	return r;
}

bool pg_alive_ensure(struct pg_store *ps)
{
	if (ps->alive && PQstatus(ps->alive) == CONNECTION_OK && PQconsumeInput(ps->alive) &&
	    PQstatus(ps->alive) == CONNECTION_OK)
		return true;
	if (!ps->alive)
		ps->alive = pg_connect(ps->url);
	else
		PQreset(ps->alive);
	if (!ps->alive || PQstatus(ps->alive) != CONNECTION_OK)
		return false;
	char sql[64];
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", (long long)ps->node_id);
	PGresult *res = PQexec(ps->alive, sql);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	return ok;
}

static void pg_close(struct store *s)
{
	struct pg_store *ps = (struct pg_store *)s;
	if (!ps)
		return;
	pg_listener_stop(ps);
	PQfinish(ps->alive);
	struct pg_conn *c = ps->conns;
	while (c) {
		struct pg_conn *next = c->next;
		PQfinish(c->conn);
		free(c);
		c = next;
	}
	pthread_key_delete(ps->key);
	pthread_mutex_destroy(&ps->lock);
	duemap_free(ps->due);
	free(ps->url);
	free(ps);
}

static hk_status pg_open(const char *db, const struct store_options *opt, struct store **out,
                         struct hk_err *err)
{
	struct pg_store *ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->url = strdup(db)) || !(ps->due = duemap_new())) {
		if (ps)
			free(ps->url);
		free(ps);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	duemap_stale(ps->due); /* the first claim walks */
	ps->base.ops = &store_pg_ops;
	ps->seal = opt ? opt->seal : NULL;
	pthread_mutex_init(&ps->lock, NULL);
	pthread_key_create(&ps->key, NULL);
	/* A random 62-bit id: positive, and unique among live nodes in practice. */
	RAND_bytes((unsigned char *)&ps->node_id, sizeof(ps->node_id));
	ps->node_id = (ps->node_id & ((INT64_C(1) << 62) - 1)) | 1;
	struct pg_conn *c = pg_conn(ps, err);
	hk_status st = c ? migrate(c, err) : HK_ESTORE;
	if (st == HK_ESTORE && c && PQstatus(c->conn) != CONNECTION_OK)
		st = unreachable(err, c->conn);
	if (st == HK_OK && !pg_alive_ensure(ps))
		st = unreachable(err, ps->alive);
	if (st != HK_OK) {
		pg_close(&ps->base);
		return st;
	}
	*out = &ps->base;
	return HK_OK;
}

static hk_status pg_schema_version(struct store *s, int *version, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	return read_version(c, version, err);
}

/* ---- orgs and keys ------------------------------------------------------- */

static hk_status org_insert(struct pg_conn *c, const char *slug, const char *name, int64_t now,
                            int64_t *org_id, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, slug);
	pp_text(&p, name);
	pp_int(&p, now);
	PGresult *res = pg_run(c, PS_ORG_INSERT, &p, err);
	if (!res)
		return err->status == HK_ECONFLICT
		           ? hk_fail(err, HK_ECONFLICT, "org_exists", "an org with slug %s exists", slug)
		           : err->status;
	if (org_id)
		*org_id = pg_int(res, 0, 0);
	PQclear(res);
	return HK_OK;
}

static hk_status key_insert(struct pg_conn *c, int64_t org_id, const unsigned char hash[32],
                            enum store_role role, int64_t now, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_bin(&p, hash, 32);
	pp_int(&p, org_id);
	pp_int(&p, role);
	pp_int(&p, now);
	return pg_do(c, PS_KEY_INSERT, &p, NULL, err);
}

static hk_status pg_org_create(struct store *s, const char *slug, const char *name, int64_t now,
                               int64_t *org_id, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	return org_insert(c, slug, name, now, org_id, err);
}

static hk_status pg_org_get(struct store *s, const char *slug, struct store_org *out,
                            struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_params p = { 0 };
	pp_text(&p, slug);
	PGresult *res = pg_run(c, PS_ORG_GET, &p, err);
	if (!res)
		return err->status;
	hk_status r = HK_OK;
	if (PQntuples(res) == 0) {
		r = hk_fail(err, HK_ENOTFOUND, "org_not_found", "no org %s", slug);
	} else {
		out->id = pg_int(res, 0, 0);
		pg_copy(res, 0, 1, out->slug, sizeof(out->slug));
		pg_copy(res, 0, 2, out->name, sizeof(out->name));
		out->created_at = pg_int(res, 0, 3);
	}
	PQclear(res);
	return r;
}

static hk_status pg_key_create(struct store *s, int64_t org_id, const unsigned char hash[32],
                               enum store_role role, int64_t now, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	return key_insert(c, org_id, hash, role, now, err);
}

static hk_status pg_key_lookup(struct store *s, const unsigned char hash[32],
                               struct store_auth *out, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_params p = { 0 };
	pp_bin(&p, hash, 32);
	PGresult *res = pg_run(c, PS_KEY_LOOKUP, &p, err);
	if (!res)
		return err->status;
	hk_status r = HK_OK;
	if (PQntuples(res) == 0) {
		r = hk_fail(err, HK_EUNAUTH, "invalid_api_key", "the API key is not valid");
	} else {
		out->org_id = pg_int(res, 0, 0);
		pg_copy(res, 0, 1, out->org_slug, sizeof(out->org_slug));
		out->role = pg_int(res, 0, 2) == STORE_ROLE_ADMIN ? STORE_ROLE_ADMIN : STORE_ROLE_MEMBER;
	}
	PQclear(res);
	return r;
}

static hk_status bootstrap_tx(struct pg_conn *c, const unsigned char admin_hash[32], int64_t now,
                              bool *created, struct hk_err *err)
{
	hk_status r = pg_exec(c, "SELECT pg_advisory_xact_lock(" LOCK_BOOTSTRAP ")", err);
	struct pg_params none = { 0 };
	PGresult *res = r == HK_OK ? pg_run(c, PS_ORG_COUNT, &none, err) : NULL;
	if (!res)
		return err->status;
	int64_t orgs = pg_int(res, 0, 0);
	PQclear(res);
	if (orgs > 0)
		return HK_OK;
	int64_t org_id = 0;
	r = org_insert(c, "default", "Default", now, &org_id, err);
	if (r == HK_OK)
		r = key_insert(c, org_id, admin_hash, STORE_ROLE_ADMIN, now, err);
	*created = r == HK_OK;
	return r;
}

static hk_status pg_bootstrap(struct store *s, const unsigned char admin_hash[32], int64_t now,
                              bool *created, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	*created = false;
	hk_status r = pg_tx_begin(c, err);
	if (r == HK_OK)
		r = bootstrap_tx(c, admin_hash, now, created, err);
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK) {
		pg_tx_rollback(c);
		*created = false;
	}
	return r;
}

/* ---- endpoints ----------------------------------------------------------- */

static bool endpoint_from_row(const struct pg_store *ps, const PGresult *res, int row,
                              struct store_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	pg_copy(res, row, 0, ep->id, sizeof(ep->id));
	ep->org_id = pg_int(res, row, 1);
	ep->url = pg_dup(res, row, 2);
	ep->description = pg_dup(res, row, 3);
	ep->event_types = pg_dup(res, row, 4);
	ep->secret = pg_open_secret(ps, ep->id, PQgetvalue(res, row, 5));
	ep->secret_version = (int)pg_int(res, row, 6);
	ep->is_active = pg_int(res, row, 7) != 0;
	ep->is_primary = pg_int(res, row, 8) != 0;
	ep->consecutive_failures = (int)pg_int(res, row, 9);
	ep->created_at = pg_int(res, row, 10);
	if (ep->url && ep->description && ep->event_types && ep->secret)
		return true;
	store_endpoint_clear(ep);
	return false;
}

static hk_status pg_endpoint_create(struct store *s, const struct store_endpoint *ep,
                                    struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	char *resting = rest_secret((struct pg_store *)s, ep->id, ep->secret);
	if (!resting)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	struct pg_params p = { 0 };
	pp_text(&p, ep->id);
	pp_int(&p, ep->org_id);
	pp_text(&p, ep->url);
	pp_text(&p, ep->description ? ep->description : "");
	pp_text(&p, ep->event_types);
	pp_text(&p, resting);
	pp_int(&p, ep->secret_version > 0 ? ep->secret_version : 1);
	pp_int(&p, ep->is_active);
	pp_int(&p, ep->is_primary);
	pp_int(&p, ep->created_at);
	hk_status r = pg_do(c, PS_EP_INSERT, &p, NULL, err);
	free(resting);
	if (r == HK_ECONFLICT)
		return hk_fail(err, HK_ECONFLICT, "endpoint_exists", "the endpoint already exists");
	return r;
}

/* Run a one-row endpoint query. */
static hk_status endpoint_one(const struct pg_store *ps, struct pg_conn *c, enum pg_stmt id,
                              const struct pg_params *p, struct store_endpoint *out,
                              struct hk_err *err)
{
	memset(out, 0, sizeof(*out));
	PGresult *res = pg_run(c, id, p, err);
	if (!res)
		return err->status;
	hk_status r = HK_OK;
	if (PQntuples(res) == 0)
		r = hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	else if (!endpoint_from_row(ps, res, 0, out))
		r = hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	PQclear(res);
	return r;
}

static hk_status endpoint_get(const struct pg_store *ps, struct pg_conn *c, int64_t org_id,
                              const char *id, struct store_endpoint *out, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, id);
	pp_int(&p, org_id);
	return endpoint_one(ps, c, PS_EP_GET, &p, out, err);
}

static hk_status pg_endpoint_get(struct store *s, int64_t org_id, const char *id,
                                 struct store_endpoint *out, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	return endpoint_get((struct pg_store *)s, c, org_id, id, out, err);
}

static hk_status pg_endpoint_primary(struct store *s, int64_t org_id, struct store_endpoint *out,
                                     struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_params p = { 0 };
	pp_int(&p, org_id);
	hk_status r = endpoint_one((struct pg_store *)s, c, PS_EP_PRIMARY, &p, out, err);
	if (r == HK_ENOTFOUND)
		return hk_fail(err, HK_ENOTFOUND, "webhook_not_configured", "no webhook is configured");
	return r;
}

static hk_status pg_endpoint_list(struct store *s, int64_t org_id, struct store_endpoint **out,
                                  size_t *n, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	*out = NULL;
	*n = 0;
	struct pg_params p = { 0 };
	pp_int(&p, org_id);
	PGresult *res = pg_run(c, PS_EP_LIST, &p, err);
	if (!res)
		return err->status;
	size_t rows = (size_t)PQntuples(res);
	struct store_endpoint *eps = rows ? calloc(rows, sizeof(*eps)) : NULL;
	hk_status r = rows && !eps ? hk_fail(err, HK_ENOMEM, NULL, "out of memory") : HK_OK;
	size_t len = 0;
	for (; r == HK_OK && len < rows; len++)
		if (!endpoint_from_row((struct pg_store *)s, res, (int)len, &eps[len]))
			r = hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	PQclear(res);
	if (r != HK_OK) {
		store_endpoint_free_array(eps, len);
		return r;
	}
	*out = eps;
	*n = rows;
	return HK_OK;
}

hk_status pg_endpoint_paused(struct pg_conn *c, const char *id, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, id);
	return pg_do(c, PS_EP_PAUSED, &p, NULL, err);
}

static hk_status endpoint_patch(struct pg_conn *c, int64_t org_id, const char *id,
                                const struct store_endpoint_patch *pt, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, id);
	pp_int(&p, org_id);
	pp_text(&p, pt->url);
	pp_text(&p, pt->description);
	pp_text(&p, pt->event_types);
	pp_int(&p, pt->is_active);
	long changed = 0;
	hk_status r = pg_do(c, PS_EP_UPDATE, &p, &changed, err);
	if (r == HK_OK && changed == 0)
		return hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	if (r == HK_OK && pt->is_active == 0)
		r = pg_endpoint_paused(c, id, err);
	struct pg_params q = { 0 };
	pp_text(&q, id);
	/* Its pending deliveries are claimable again: wake every node. */
	if (r == HK_OK && pt->is_active == 1)
		r = pg_do(c, PS_EP_DUE, &q, NULL, err);
	return r;
}

static hk_status pg_endpoint_update(struct store *s, int64_t org_id, const char *id,
                                    const struct store_endpoint_patch *pt, int64_t now,
                                    struct store_endpoint *out, struct hk_err *err)
{
	(void)now;
	PG_CONN_OR_FAIL(s, err);
	memset(out, 0, sizeof(*out));
	hk_status r = pg_tx_begin(c, err);
	if (r == HK_OK)
		r = endpoint_patch(c, org_id, id, pt, err);
	if (r == HK_OK)
		r = endpoint_get((struct pg_store *)s, c, org_id, id, out, err);
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK) {
		pg_tx_rollback(c);
		store_endpoint_clear(out);
	} else if (pt->is_active == 1) {
		/* its deliveries kept their old due times: any time is early */
		duemap_lower(((struct pg_store *)s)->due, out->id, INT64_MIN);
	}
	return r;
}

static hk_status pg_endpoint_delete(struct store *s, int64_t org_id, const char *id,
                                    struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_params p = { 0 };
	pp_text(&p, id);
	pp_int(&p, org_id);
	struct pg_params q = { 0 };
	pp_text(&q, id);
	long changed = 0;
	hk_status r = pg_tx_begin(c, err);
	if (r == HK_OK)
		r = pg_do(c, PS_EP_DELETE, &p, &changed, err);
	if (r == HK_OK && changed == 0)
		r = hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	if (r == HK_OK)
		r = pg_do(c, PS_ROLLUP_DELETE, &q, NULL, err);
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK)
		pg_tx_rollback(c);
	return r;
}

static hk_status pg_endpoint_set_secret(struct store *s, int64_t org_id, const char *id,
                                        const char *secret, int *version, struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	char *resting = rest_secret((struct pg_store *)s, id, secret);
	if (!resting)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	struct pg_params p = { 0 };
	pp_text(&p, id);
	pp_int(&p, org_id);
	pp_text(&p, resting);
	PGresult *res = pg_run(c, PS_EP_SET_SECRET, &p, err);
	free(resting);
	if (!res)
		return err->status;
	hk_status r = HK_OK;
	if (PQntuples(res) == 0)
		r = hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	else if (version)
		*version = (int)pg_int(res, 0, 0);
	PQclear(res);
	return r;
}

/* ---- deliveries ---------------------------------------------------------- */

static void delivery_from_row(const PGresult *res, int row, struct store_delivery *d)
{
	pg_copy(res, row, 0, d->id, sizeof(d->id));
	pg_copy(res, row, 1, d->event_id, sizeof(d->event_id));
	pg_copy(res, row, 2, d->endpoint_id, sizeof(d->endpoint_id));
	pg_copy(res, row, 3, d->event_type, sizeof(d->event_type));
	d->status = (enum delivery_status)pg_int(res, row, 4);
	d->attempt_count = (int)pg_int(res, row, 5);
	d->last_http_status = (int)pg_int(res, row, 6);
	d->created_at = pg_int(res, row, 7);
	d->next_attempt_at = d->status == DELIVERY_PENDING ? pg_int(res, row, 8) : 0;
	d->is_test = pg_int(res, row, 9) != 0;
}

static void filter_params(struct pg_params *p, const struct store_delivery_filter *f)
{
	pp_text(p, f->endpoint_id);
	pp_int(p, f->org_id);
	pp_int(p, f->created_from);
	pp_int(p, f->created_to > 0 ? f->created_to : INT64_MAX);
	pp_int(p, f->only_tests);
}

static hk_status delivery_count(struct pg_conn *c, const struct store_delivery_filter *f,
                                int64_t *total, struct hk_err *err)
{
	struct pg_params p = { 0 };
	filter_params(&p, f);
	PGresult *res = pg_run(c, PS_DL_COUNT, &p, err);
	if (!res)
		return err->status;
	*total = pg_int(res, 0, 0);
	PQclear(res);
	return HK_OK;
}

static hk_status pg_delivery_list(struct store *s, const struct store_delivery_filter *f,
                                  struct store_delivery **out, size_t *n, int64_t *total,
                                  struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	*out = NULL;
	*n = 0;
	struct pg_params p = { 0 };
	filter_params(&p, f);
	pp_int(&p, f->limit);
	pp_int(&p, f->offset);
	PGresult *res = pg_run(c, PS_DL_LIST, &p, err);
	if (!res)
		return err->status;
	size_t rows = (size_t)PQntuples(res);
	struct store_delivery *ds = rows ? calloc(rows, sizeof(*ds)) : NULL;
	if (rows && !ds) {
		PQclear(res);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	for (size_t i = 0; i < rows; i++)
		delivery_from_row(res, (int)i, &ds[i]);
	PQclear(res);
	hk_status r = total ? delivery_count(c, f, total, err) : HK_OK;
	if (r != HK_OK) {
		free(ds);
		return r;
	}
	*out = ds;
	*n = rows;
	return HK_OK;
}

/* One attempt row; false when out of memory. */
static bool attempt_from_row(const PGresult *res, int row, struct store_attempt *t)
{
	t->number = (int)pg_int(res, row, 0);
	t->started_at = pg_int(res, row, 1);
	t->duration_ms = (int)pg_int(res, row, 2);
	t->http_status = (int)pg_int(res, row, 3);
	t->error = PQgetisnull(res, row, 4) ? NULL : pg_dup(res, row, 4);
	size_t len = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 5), &len);
	t->response_body = malloc(len + 1);
	if (t->response_body) {
		if (len)
			memcpy(t->response_body, raw, len);
		t->response_body[len] = '\0';
	}
	t->response_len = len;
	PQfreemem(raw);
	return t->response_body && (t->error || PQgetisnull(res, row, 4));
}

static hk_status attempts_load(struct pg_conn *c, const char *id, struct store_attempt **out,
                               size_t *n, struct hk_err *err)
{
	struct pg_params p = { 0 };
	pp_text(&p, id);
	PGresult *res = pg_run(c, PS_AT_LIST, &p, err);
	if (!res)
		return err->status;
	size_t rows = (size_t)PQntuples(res), len = 0;
	struct store_attempt *a = rows ? calloc(rows, sizeof(*a)) : NULL;
	bool ok = !rows || a;
	for (; ok && len < rows; len++)
		ok = attempt_from_row(res, (int)len, &a[len]);
	PQclear(res);
	if (!ok) {
		store_attempt_free_array(a, len);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	*out = a;
	*n = rows;
	return HK_OK;
}

static hk_status pg_delivery_get(struct store *s, int64_t org_id, const char *id,
                                 struct store_delivery *out, char **body,
                                 struct store_attempt **attempts, size_t *nattempts,
                                 struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	*body = NULL;
	*attempts = NULL;
	*nattempts = 0;
	struct pg_params p = { 0 };
	pp_text(&p, id);
	pp_int(&p, org_id);
	PGresult *res = pg_run(c, PS_DL_GET, &p, err);
	if (!res)
		return err->status;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return hk_fail(err, HK_ENOTFOUND, "delivery_not_found", "no such delivery");
	}
	delivery_from_row(res, 0, out);
	*body = pg_dup(res, 0, 10);
	PQclear(res);
	hk_status r = *body ? attempts_load(c, id, attempts, nattempts, err)
	                    : hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	if (r != HK_OK) {
		free(*body);
		*body = NULL;
	}
	return r;
}

static hk_status pg_delivery_retry(struct store *s, int64_t org_id, const char *id, int64_t now,
                                   struct hk_err *err)
{
	PG_CONN_OR_FAIL(s, err);
	struct pg_params p = { 0 };
	pp_text(&p, id);
	pp_int(&p, org_id);
	pp_int(&p, now);
	char endpoint[UUID_STR_LEN] = "";
	hk_status r = pg_tx_begin(c, err);
	if (r == HK_OK) {
		PGresult *res = pg_run(c, PS_DL_RETRY, &p, err);
		if (!res)
			r = err->status;
		else if (PQntuples(res) == 0)
			r = hk_fail(err, HK_ENOTFOUND, "delivery_not_found", "no such delivery");
		else
			pg_copy(res, 0, 0, endpoint, sizeof(endpoint));
		PQclear(res);
	}
	struct pg_params q = { 0 };
	pp_text(&q, endpoint);
	if (r == HK_OK)
		r = pg_do(c, PS_EP_DUE, &q, NULL, err);
	if (r == HK_OK)
		r = pg_tx_commit(c, err);
	if (r != HK_OK)
		pg_tx_rollback(c);
	else
		duemap_lower(((struct pg_store *)s)->due, endpoint, now);
	return r;
}

const struct store_ops store_pg_ops = {
	.name = "postgres",
	.accepts = pg_accepts,
	.open = pg_open,
	.close = pg_close,
	.schema_version = pg_schema_version,
	.org_create = pg_org_create,
	.org_get = pg_org_get,
	.key_create = pg_key_create,
	.key_lookup = pg_key_lookup,
	.bootstrap = pg_bootstrap,
	.endpoint_create = pg_endpoint_create,
	.endpoint_get = pg_endpoint_get,
	.endpoint_primary = pg_endpoint_primary,
	.endpoint_list = pg_endpoint_list,
	.endpoint_update = pg_endpoint_update,
	.endpoint_delete = pg_endpoint_delete,
	.endpoint_set_secret = pg_endpoint_set_secret,
	.publish_batch = pg_publish_batch,
	.delivery_list = pg_delivery_list,
	.delivery_get = pg_delivery_get,
	.delivery_retry = pg_delivery_retry,
	.claim = pg_claim,
	.next_due = pg_next_due,
	.record = pg_record,
	.release_leases = pg_release_leases,
	.unclaim = pg_unclaim,
	.stats = pg_stats,
	.listen = pg_listen,
};
