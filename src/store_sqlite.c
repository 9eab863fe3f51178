/*
 * store_sqlite: the embedded SQLite backend of store.h.
 *
 * Connections: one per thread (found through a pthread key), each with its
 * own cache of prepared statements, so threads never share a sqlite3 handle.
 * All connections are listed so store_close can close them.
 *
 * Durability: WAL mode with synchronous=FULL, so a commit is on disk (the WAL
 * fsync'd) before it returns and an acknowledged event survives power loss.
 * Claims are the exception: store_claim commits with synchronous=NORMAL,
 * because a lost claim only makes a delivery due again, and the next FULL
 * commit (the attempt's record) fsyncs the WAL up to and past it anyway.
 * Writers take the lock up front (BEGIN IMMEDIATE) and wait busy_timeout_ms.
 *
 * Schema (migrations 1 to 4) is laid out for millions of deliveries:
 *   - deliveries_due is a partial index holding only pending rows, by
 *     endpoint and then due time (4), so claiming never walks finished
 *     history, and takes each endpoint's due deliveries directly: a paused
 *     endpoint's backlog, or that of one at its cap, is never walked. So a
 *     pause or re-enable changes the endpoint's row alone;
 *   - deliveries_endpoint serves every per-endpoint listing, newest first;
 *   - attempt_rollup keeps per-endpoint, per-minute counts, updated in the
 *     same transaction as the attempts, so statistics cost O(minutes).
 * A claimed delivery's next_attempt_at moves to its lease expiry: if hookd
 * dies mid-attempt, the row becomes due again by itself.
 *
 * Claims: the store remembers when each endpoint next has something
 * claimable (ss->due, duemap.h), so a claim reads only the endpoints with
 * something due. Asking the index instead cost a claim a few seeks for
 * every endpoint with anything pending, due or not: beside 2,000 endpoints
 * with an attempt in flight, that halved a drain. Every statement that
 * makes a delivery claimable sooner lowers its endpoint's time: a publish
 * (delivery_insert), a re-enable (sq_endpoint_update), a manual retry, a
 * scheduled retry (record_delivery) and a claim given back (sq_unclaim). A
 * walk of the index (due_walk) fills it at start, once the leases of a dead
 * run are released, and catches up every 30 s as a safety net, or every
 * second when another process writes the file too.
 */
#include "store_sqlite_int.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "duemap.h"
#include "log.h"
#include "seal.h"



#define DELIVERY_COLS \
	"d.id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempt_count, " \
	"d.last_http_status, d.created_at, d.next_attempt_at, d.is_test"
#define ENDPOINT_COLS \
	"id, org_id, url, description, event_types, secret, secret_version, is_active, " \
	"is_primary, consecutive_failures, created_at"
/* A listing filter: ?1 endpoint, ?2 org, ?3/?4 created window, ?5 tests only. */
#define DELIVERY_FILTER \
	" FROM deliveries d WHERE d.endpoint_id = ?1" \
	" AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = ?1 AND e.org_id = ?2)" \
	" AND d.created_at >= ?3 AND d.created_at < ?4 AND (?5 = 0 OR d.is_test = 1)"

/* The endpoints with claimable deliveries, one index seek each: the
 * deliveries_due index is ordered by endpoint first, and SQLite skips
 * through an index's first column only with statistics. HEAD_DUE: when the
 * oldest claimable delivery of endpoint h.id falls due. */
#define HEADS \
	"WITH RECURSIVE heads(id) AS (SELECT (SELECT min(endpoint_id) FROM deliveries" \
	" INDEXED BY deliveries_due WHERE status = 0)" \
	" UNION ALL SELECT (SELECT min(endpoint_id) FROM deliveries INDEXED BY deliveries_due" \
	" WHERE status = 0 AND endpoint_id > heads.id)" \
	" FROM heads WHERE heads.id IS NOT NULL)"
#define HEAD_DUE \
	"(SELECT min(next_attempt_at) FROM deliveries INDEXED BY deliveries_due" \
	" WHERE endpoint_id = h.id AND status = 0)"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_ORG_INSERT] = "INSERT INTO orgs(slug, name, created_at) VALUES(?, ?, ?)",
	[ST_ORG_GET] = "SELECT id, slug, name, created_at FROM orgs WHERE slug = ?",
	[ST_ORG_COUNT] = "SELECT count(*) FROM orgs",
	[ST_KEY_INSERT] = "INSERT INTO api_keys(hash, org_id, role, created_at) VALUES(?, ?, ?, ?)",
	[ST_KEY_LOOKUP] = "SELECT k.org_id, o.slug, k.role FROM api_keys k JOIN orgs o ON o.id = k.org_id"
	                  " WHERE k.hash = ?",
	[ST_EP_INSERT] = "INSERT INTO endpoints(" ENDPOINT_COLS ") VALUES(?,?,?,?,?,?,?,?,?,0,?)",
	[ST_EP_GET] = "SELECT " ENDPOINT_COLS " FROM endpoints WHERE id = ? AND org_id = ?",
	[ST_EP_PRIMARY] = "SELECT " ENDPOINT_COLS " FROM endpoints WHERE org_id = ? AND is_primary = 1",
	[ST_EP_LIST] = "SELECT " ENDPOINT_COLS " FROM endpoints WHERE org_id = ?"
	               " ORDER BY created_at DESC, id DESC",
	[ST_EP_UPDATE] = "UPDATE endpoints SET url = coalesce(?3, url),"
	                 " description = coalesce(?4, description),"
	                 " event_types = coalesce(?5, event_types),"
	                 " is_active = CASE WHEN ?6 < 0 THEN is_active ELSE ?6 END,"
	                 " consecutive_failures = CASE WHEN ?6 = 1 THEN 0 ELSE consecutive_failures END"
	                 " WHERE id = ?1 AND org_id = ?2",
	[ST_EP_DELETE] = "DELETE FROM endpoints WHERE id = ? AND org_id = ?",
	[ST_EP_SET_SECRET] = "UPDATE endpoints SET secret = ?3, secret_version = secret_version + 1"
	                     " WHERE id = ?1 AND org_id = ?2 RETURNING secret_version",
	[ST_EP_FANOUT] = "SELECT id, is_active, event_types FROM endpoints WHERE org_id = ?",
	[ST_ROLLUP_DELETE] = "DELETE FROM attempt_rollup WHERE endpoint_id = ?",
	[ST_EV_IDEM] = "SELECT id, req_hash, fanout, created_at FROM events WHERE org_id = ? AND idem_key = ?",
	[ST_EV_IDEM_CLEAR] = "UPDATE events SET idem_key = NULL WHERE id = ?",
	[ST_EV_INSERT] = "INSERT INTO events(id, org_id, event_type, body, created_at, idem_key, req_hash,"
	                 " fanout) VALUES(?,?,?,?,?,?,?,?)",
	[ST_DL_INSERT] = "INSERT INTO deliveries(id, endpoint_id, event_id, event_type, created_at,"
	                 " next_attempt_at, is_test, no_retry) VALUES(?,?,?,?,?,?,?,?)",
	[ST_DL_LIST] = "SELECT " DELIVERY_COLS DELIVERY_FILTER
	               " ORDER BY d.created_at DESC, d.id DESC LIMIT ?6 OFFSET ?7",
	[ST_DL_COUNT] = "SELECT count(*)" DELIVERY_FILTER,
	[ST_DL_GET] = "SELECT " DELIVERY_COLS ", ev.body FROM deliveries d"
	              " JOIN endpoints e ON e.id = d.endpoint_id JOIN events ev ON ev.id = d.event_id"
	              " WHERE d.id = ? AND e.org_id = ?",
	[ST_AT_LIST] = "SELECT number, started_at, duration_ms, http_status, error, response_body"
	               " FROM attempts WHERE delivery_id = ? ORDER BY number",
	[ST_DL_RETRY] = "UPDATE deliveries SET"
	                " no_retry = CASE WHEN status = 0 THEN no_retry ELSE 1 END, status = 0,"
	                " next_attempt_at = ?3"
	                " WHERE id = ?1 AND endpoint_id IN (SELECT id FROM endpoints WHERE org_id = ?2)"
	                " RETURNING endpoint_id, next_attempt_at",
	/* Every active endpoint with something claimable, and when (a walk of
	 * the duemap, due_walk). */
	[ST_DUE_WALK] = HEADS " SELECT h.id, " HEAD_DUE " FROM heads h"
	                " JOIN endpoints e ON e.id = h.id WHERE h.id IS NOT NULL AND e.is_active = 1",
	/* When endpoint ?1 next has something to claim; NULL: nothing, or paused. */
	[ST_DUE_OF] = "SELECT min(next_attempt_at) FROM deliveries INDEXED BY deliveries_due"
	              " WHERE endpoint_id = ?1 AND status = 0"
	              " AND EXISTS (SELECT 1 FROM endpoints WHERE id = ?1 AND is_active = 1)",
	/* One active endpoint's due deliveries, oldest first. */
	[ST_CLAIM_SELECT] = "SELECT d.id, d.event_id, d.endpoint_id, d.attempt_count, d.no_retry,"
	                    " e.is_primary, e.url, e.secret, ev.body, d.rowid"
	                    " FROM deliveries d INDEXED BY deliveries_due"
	                    " JOIN endpoints e ON e.id = d.endpoint_id"
	                    " JOIN events ev ON ev.id = d.event_id"
	                    " WHERE d.endpoint_id = ?1 AND d.status = 0"
	                    " AND d.next_attempt_at <= ?2 AND e.is_active = 1"
	                    " ORDER BY d.next_attempt_at LIMIT ?3",
	[ST_CLAIM_UPDATE] = "UPDATE deliveries SET lease = ?2, next_attempt_at = ?3"
	                    " WHERE rowid IN (SELECT value FROM json_each(?1))",
	[ST_REC_DELIVERY] = "UPDATE deliveries SET status = ?3, attempt_count = ?4, last_http_status = ?5,"
	                    " next_attempt_at = ?6, lease = NULL WHERE rowid = ?7 AND id = ?1 AND lease = ?2",
	[ST_REC_ATTEMPT] = "INSERT OR REPLACE INTO attempts(delivery_id, number, started_at, duration_ms,"
	                   " http_status, error, response_body) VALUES(?,?,?,?,?,?,?)",
	[ST_REC_ENDPOINT] = "UPDATE endpoints SET consecutive_failures ="
	                    " CASE WHEN ?2 THEN ?3 ELSE consecutive_failures + ?3 END"
	                    " WHERE id = ?1 RETURNING consecutive_failures, is_active",
	[ST_REC_PAUSE] = "UPDATE endpoints SET is_active = 0 WHERE id = ? AND is_active = 1",
	[ST_REC_ROLLUP] = "INSERT INTO attempt_rollup(endpoint_id, minute, succeeded, failed)"
	                  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(endpoint_id, minute) DO UPDATE SET"
	                  " succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed",
	/* Through the index of pending rows, not the whole history: 2 ms
	 * instead of 76 beside 2,000,000 finished deliveries, cached. */
	[ST_RELEASE] = "UPDATE deliveries SET next_attempt_at = ?1, lease = NULL WHERE rowid IN"
	               " (SELECT rowid FROM deliveries INDEXED BY deliveries_due"
	               " WHERE status = 0 AND lease IS NOT NULL)",
	[ST_UNCLAIM] = "UPDATE deliveries SET next_attempt_at = ?3, lease = NULL"
	               " WHERE id = ?1 AND lease = ?2 AND status = 0 RETURNING endpoint_id",
	[ST_STATS] = "SELECT (minute * 60000 / ?4) * ?4 AS bucket, sum(succeeded), sum(failed)"
	             " FROM attempt_rollup WHERE endpoint_id = ?1 AND minute >= ?2 AND minute < ?3"
	             " GROUP BY bucket ORDER BY bucket",
};

/* Each migration brings the schema from version i to i + 1. Never edit one
 * that has shipped: add the next. */
static const char *const migrations[] = {
	"CREATE TABLE orgs("
	"  id INTEGER PRIMARY KEY,"
	"  slug TEXT NOT NULL UNIQUE,"
	"  name TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE api_keys("
	"  hash BLOB PRIMARY KEY,"
	"  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
	"  role INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX api_keys_org ON api_keys(org_id);"
	"CREATE TABLE endpoints("
	"  id TEXT PRIMARY KEY,"
	"  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
	"  url TEXT NOT NULL,"
	"  description TEXT NOT NULL,"
	"  event_types TEXT NOT NULL,"
	"  secret TEXT NOT NULL,"
	"  secret_version INTEGER NOT NULL,"
	"  is_active INTEGER NOT NULL,"
	"  is_primary INTEGER NOT NULL,"
	"  consecutive_failures INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX endpoints_org ON endpoints(org_id, created_at);"
	"CREATE UNIQUE INDEX endpoints_one_primary ON endpoints(org_id) WHERE is_primary = 1;"
	"CREATE TABLE events("
	"  id TEXT PRIMARY KEY,"
	"  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,"
	"  event_type TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  idem_key TEXT,"
	"  req_hash BLOB,"
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
	"  created_at INTEGER NOT NULL,"
	"  next_attempt_at INTEGER,"
	"  held INTEGER NOT NULL DEFAULT 0,"
	"  is_test INTEGER NOT NULL DEFAULT 0,"
	"  no_retry INTEGER NOT NULL DEFAULT 0,"
	"  lease INTEGER);"
	"CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, created_at, id);"
	"CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 0 AND held = 0;"
	"CREATE TABLE attempts("
	"  delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,"
	"  number INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  duration_ms INTEGER NOT NULL,"
	"  http_status INTEGER,"
	"  error TEXT,"
	"  response_body BLOB,"
	"  PRIMARY KEY(delivery_id, number));"
	"CREATE TABLE attempt_rollup("
	"  endpoint_id TEXT NOT NULL,"
	"  minute INTEGER NOT NULL,"
	"  succeeded INTEGER NOT NULL,"
	"  failed INTEGER NOT NULL,"
	"  PRIMARY KEY(endpoint_id, minute)) WITHOUT ROWID;",
	/* Held deliveries by endpoint, so a release found them without walking
	 * the endpoint's history (until 4). */
	"CREATE INDEX deliveries_held ON deliveries(endpoint_id, created_at) WHERE status = 0 AND held = 1;",
	/* Claimable rows by endpoint, so a claim takes each endpoint's due
	 * deliveries directly (sq_claim). Ordered by time alone, a claim walked
	 * past every due delivery of the endpoints already at their cap: one
	 * slow endpoint with a backlog of 100,000 slowed publishing and
	 * delivering to all the others eightfold. */
	"DROP INDEX deliveries_due;"
	"CREATE INDEX deliveries_due ON deliveries(endpoint_id, next_attempt_at)"
	" WHERE status = 0 AND held = 0;",
	/* A pause no longer marks its endpoint's pending deliveries held, nor
	 * a re-enable unmarks them: claims go endpoint by endpoint and pass
	 * over a paused one by themselves. Marking took a thread of its own,
	 * in chunks, with repairs after a crash. Rows an older version held
	 * are claimable again once their endpoint is active. SQLite rewrites
	 * the table to drop a column: once, here. */
	"DROP INDEX deliveries_held;"
	"DROP INDEX deliveries_due;"
	"ALTER TABLE deliveries DROP COLUMN held;"
	"CREATE INDEX deliveries_due ON deliveries(endpoint_id, next_attempt_at) WHERE status = 0;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- connections and statements ------------------------------------------ */

hk_status sq_error(struct hk_err *err, sqlite3 *db, const char *what)
{
	int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
	log_error("store error", "op=%s sqlite=%d", what, code);
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return hk_fail(err, HK_ESTORE, "store_busy", "the store is busy, try again");
	return hk_fail(err, HK_ESTORE, "store_error", "the store failed (%s)",
	               db ? sqlite3_errmsg(db) : what);
}

int sq_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Our write transactions last well under a millisecond, but SQLite's own
 * busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries: one
 * collision between the committer, the claimer and the recorder cost tens of
 * ms of delivery latency. Retry every 100 us instead, up to the timeout. */
static int busy_wait(void *arg, int count)
{
	const struct sq_store *ss = arg;
	if ((int64_t)count * 100 >= (int64_t)ss->busy_timeout_ms * 1000)
		return 0;
	usleep(100);
	return 1;
}

static hk_status conn_open(struct sq_store *ss, struct sq_conn **out, struct hk_err *err)
{
	struct sq_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	c->ss = ss;
	int rc = sqlite3_open_v2(ss->path, &c->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		hk_fail(err, HK_ESTORE, "store_open_failed", "cannot open database %s: %s", ss->path,
		        c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c);
		return HK_ESTORE;
	}
	sqlite3_busy_handler(c->db, busy_wait, ss);
	/* temp_store stays at its default on purpose: a statement's undo journal
	 * then moves to a temporary file once it outgrows a few pages. With
	 * temp_store=MEMORY, one UPDATE of 100,000 deliveries (re-enabling an
	 * endpoint, before schema version 4) kept about 16 MiB of journal in
	 * memory; deleting an endpoint with its history is still that large. */
	/* wal_autocheckpoint: the committing thread copies the WAL into the
	 * database and fsyncs it every so many pages. At SQLite's default of
	 * 1,000 (4 MiB) that was every 10-40 ms under load, each a second fsync
	 * on the path of a 202 or a claim. At 8,000 (a WAL of up to 32 MiB),
	 * pages written again and again go to the database once per
	 * checkpoint: alternating runs gave drains 5% and ingest 6% faster, with
	 * the same latency (bench/JOURNAL.md). */
	if (sq_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	                   " PRAGMA wal_autocheckpoint=8000;"
	                   " PRAGMA foreign_keys=ON; PRAGMA cache_size=-2000;") != SQLITE_OK) {
		sq_error(err, c->db, "pragma");
		sqlite3_close(c->db);
		free(c);
		return HK_ESTORE;
	}
	pthread_mutex_lock(&ss->lock);
	c->next = ss->conns;
	ss->conns = c;
	pthread_mutex_unlock(&ss->lock);
	*out = c;
	return HK_OK;
}

/* This thread's connection, opened on first use. */
struct sq_conn *sq_conn(struct sq_store *ss, struct hk_err *err)
{
	struct sq_conn *c = pthread_getspecific(ss->key);
	if (c)
		return c;
	if (conn_open(ss, &c, err) != HK_OK)
		return NULL;
	pthread_setspecific(ss->key, c);
	return c;
}

/* The cached statement, reset and unbound, or NULL with err filled. */
sqlite3_stmt *sq_stmt(struct sq_conn *c, enum stmt_id id, struct hk_err *err)
{
	sqlite3_stmt *st = c->stmt[id];
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK) {
		sq_error(err, c->db, stmt_sql[id]);
		return NULL;
	}
	c->stmt[id] = st;
	return st;
}

static hk_status run_simple(struct sq_conn *c, enum stmt_id id, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, id, err);
	if (!st)
		return HK_ESTORE;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? HK_OK : sq_error(err, c->db, stmt_sql[id]);
}

hk_status sq_tx_begin(struct sq_conn *c, struct hk_err *err) { return run_simple(c, ST_BEGIN, err); }
hk_status sq_tx_commit(struct sq_conn *c, struct hk_err *err) { return run_simple(c, ST_COMMIT, err); }

void sq_tx_rollback(struct sq_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		run_simple(c, ST_ROLLBACK, NULL);
}

/* Step a write statement that returns no row. */
hk_status sq_step_done(struct sq_conn *c, sqlite3_stmt *st, struct hk_err *err)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return HK_OK;
	if (rc == SQLITE_CONSTRAINT)
		return hk_fail(err, HK_ECONFLICT, "conflict", "%s", sqlite3_errmsg(c->db));
	return sq_error(err, c->db, sqlite3_sql(st));
}

char *sq_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

void sq_col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* A secret as it rests: sealed for the endpoint id when the store has a seal.
 * Caller frees. */
static char *rest_secret(const struct sq_store *ss, const char *id, const char *secret)
{
	return ss->seal ? seal_close(ss->seal, id, secret) : strdup(secret);
}

/* A resting secret back to plaintext. One that does not open (the wrong
 * master key) comes back empty, so nothing is ever signed with it. */
char *sq_open_secret(const struct sq_store *ss, const char *id, const char *value)
{
	char *plain = ss->seal ? seal_open(ss->seal, id, value) : strdup(value);
	if (!plain && ss->seal) {
		log_error("an endpoint secret does not open: wrong --master-key-file?", "endpoint=%s", id);
		plain = strdup("");
	}
	return plain;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int sq_accepts(const char *db)
{
	return strncmp(db, "postgres://", 11) != 0 && strncmp(db, "postgresql://", 13) != 0;
}

static hk_status migrate(struct sq_conn *c, struct hk_err *err)
{
	if (sq_exec(c->db, "BEGIN IMMEDIATE") != SQLITE_OK)
		return sq_error(err, c->db, "migrate begin");
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (version > SCHEMA_VERSION) {
		sq_tx_rollback(c);
		return hk_fail(err, HK_ESTORE, "schema_too_new",
		               "database schema version %d is newer than this hookd (%d)", version,
		               SCHEMA_VERSION);
	}
	for (; version < SCHEMA_VERSION; version++) {
		char pragma[48];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
		if (sq_exec(c->db, migrations[version]) != SQLITE_OK ||
		    sq_exec(c->db, pragma) != SQLITE_OK) {
			hk_status st2 = sq_error(err, c->db, "migrate");
			sq_exec(c->db, "ROLLBACK");
			return st2;
		}
		log_info("migrated", "backend=sqlite version=%d", version + 1);
	}
	if (sq_exec(c->db, "COMMIT") != SQLITE_OK)
		return sq_error(err, c->db, "migrate commit");
	return HK_OK;
}

/* Is this the only process on the database file? It holds an advisory lock
 * on "<db>.lock" for as long as the store is open (the kernel drops it when
 * the process dies). Only then are the leases of a previous run dead for
 * sure and released at once (sq_release_leases); otherwise they are left to
 * expire, so a live process is never raced. */
static bool take_file_lock(struct sq_store *ss)
{
	char lock[4096];
	snprintf(lock, sizeof(lock), "%s.lock", ss->path);
	ss->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ss->lock_fd >= 0 && flock(ss->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return true;
	return false;
}

static void sq_close(struct store *s)
{
	struct sq_store *ss = (struct sq_store *)s;
	if (!ss)
		return;
	if (ss->lock_fd >= 0)
		close(ss->lock_fd);
	struct sq_conn *c = ss->conns;
	while (c) {
		struct sq_conn *next = c->next;
		for (int i = 0; i < ST_COUNT; i++)
			sqlite3_finalize(c->stmt[i]);
		sqlite3_close(c->db);
		free(c);
		c = next;
	}
	pthread_key_delete(ss->key);
	pthread_mutex_destroy(&ss->lock);
	duemap_free(ss->due);
	free(ss->path);
	free(ss);
}

static hk_status sq_open(const char *db, const struct store_options *opt, struct store **out,
                         struct hk_err *err)
{
	struct sq_store *ss = calloc(1, sizeof(*ss));
	if (!ss || !(ss->path = strdup(db)) || !(ss->due = duemap_new())) {
		if (ss)
			free(ss->path);
		free(ss);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	ss->base.ops = &store_sqlite_ops;
	ss->lock_fd = -1;
	ss->busy_timeout_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 10000;
	ss->seal = opt ? opt->seal : NULL;
	pthread_mutex_init(&ss->lock, NULL);
	pthread_key_create(&ss->key, NULL);
	ss->sole = take_file_lock(ss);
	struct sq_conn *c = sq_conn(ss, err);
	hk_status st = c ? migrate(c, err) : HK_ESTORE;
	if (st != HK_OK) {
		sq_close(&ss->base);
		return st;
	}
	*out = &ss->base;
	return HK_OK;
}

static hk_status sq_schema_version(struct store *s, int *version, struct hk_err *err)
{
	struct sq_conn *c = sq_conn((struct sq_store *)s, err);
	if (!c)
		return HK_ESTORE;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return sq_error(err, c->db, "user_version");
	*version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return HK_OK;
}

/* ---- orgs and keys ------------------------------------------------------- */

static hk_status org_insert(struct sq_conn *c, const char *slug, const char *name, int64_t now,
                            int64_t *org_id, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_ORG_INSERT, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, slug);
	sq_bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, now);
	hk_status r = sq_step_done(c, st, err);
	if (r == HK_ECONFLICT)
		return hk_fail(err, HK_ECONFLICT, "org_exists", "an org with slug %s exists", slug);
	if (r == HK_OK && org_id)
		*org_id = sqlite3_last_insert_rowid(c->db);
	return r;
}

static hk_status key_insert(struct sq_conn *c, int64_t org_id, const unsigned char hash[32],
                            enum store_role role, int64_t now, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_KEY_INSERT, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, org_id);
	sqlite3_bind_int(st, 3, (int)role);
	sqlite3_bind_int64(st, 4, now);
	return sq_step_done(c, st, err);
}

static hk_status sq_org_create(struct store *s, const char *slug, const char *name, int64_t now,
                               int64_t *org_id, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	return org_insert(c, slug, name, now, org_id, err);
}

static hk_status sq_org_get(struct store *s, const char *slug, struct store_org *out,
                            struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_ORG_GET, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, slug);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return hk_fail(err, HK_ENOTFOUND, "org_not_found", "no org %s", slug);
	if (rc != SQLITE_ROW)
		return sq_error(err, c->db, "org_get");
	out->id = sqlite3_column_int64(st, 0);
	sq_col_copy(st, 1, out->slug, sizeof(out->slug));
	sq_col_copy(st, 2, out->name, sizeof(out->name));
	out->created_at = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	return HK_OK;
}

static hk_status sq_key_create(struct store *s, int64_t org_id, const unsigned char hash[32],
                               enum store_role role, int64_t now, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	return key_insert(c, org_id, hash, role, now, err);
}

static hk_status sq_key_lookup(struct store *s, const unsigned char hash[32],
                               struct store_auth *out, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_KEY_LOOKUP, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return hk_fail(err, HK_EUNAUTH, "invalid_api_key", "the API key is not valid");
	if (rc != SQLITE_ROW)
		return sq_error(err, c->db, "key_lookup");
	out->org_id = sqlite3_column_int64(st, 0);
	sq_col_copy(st, 1, out->org_slug, sizeof(out->org_slug));
	out->role = sqlite3_column_int(st, 2) == STORE_ROLE_ADMIN ? STORE_ROLE_ADMIN : STORE_ROLE_MEMBER;
	sqlite3_reset(st);
	return HK_OK;
}

static hk_status sq_bootstrap(struct store *s, const unsigned char admin_hash[32], int64_t now,
                              bool *created, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*created = false;
	hk_status r = sq_tx_begin(c, err);
	if (r != HK_OK)
		return r;
	sqlite3_stmt *st = sq_stmt(c, ST_ORG_COUNT, err);
	if (!st) {
		sq_tx_rollback(c);
		return HK_ESTORE;
	}
	int64_t orgs = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	int64_t org_id = 0;
	if (orgs == 0) {
		r = org_insert(c, "default", "Default", now, &org_id, err);
		if (r == HK_OK)
			r = key_insert(c, org_id, admin_hash, STORE_ROLE_ADMIN, now, err);
		*created = r == HK_OK;
	} else if (orgs < 0) {
		r = sq_error(err, c->db, "bootstrap");
	}
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK) {
		sq_tx_rollback(c);
		*created = false;
	}
	return r;
}

/* ---- endpoints ----------------------------------------------------------- */

static void endpoint_from_row(const struct sq_store *ss, sqlite3_stmt *st, struct store_endpoint *ep)
{
	sq_col_copy(st, 0, ep->id, sizeof(ep->id));
	ep->org_id = sqlite3_column_int64(st, 1);
	ep->url = sq_col_dup(st, 2);
	ep->description = sq_col_dup(st, 3);
	ep->event_types = sq_col_dup(st, 4);
	const unsigned char *sec = sqlite3_column_text(st, 5);
	ep->secret = sq_open_secret(ss, ep->id, sec ? (const char *)sec : "");
	ep->secret_version = sqlite3_column_int(st, 6);
	ep->is_active = sqlite3_column_int(st, 7) != 0;
	ep->is_primary = sqlite3_column_int(st, 8) != 0;
	ep->consecutive_failures = sqlite3_column_int(st, 9);
	ep->created_at = sqlite3_column_int64(st, 10);
}

static bool endpoint_complete(const struct store_endpoint *ep)
{
	return ep->url && ep->description && ep->event_types && ep->secret;
}

static hk_status sq_endpoint_create(struct store *s, const struct store_endpoint *ep,
                                    struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_EP_INSERT, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, ep->id);
	sqlite3_bind_int64(st, 2, ep->org_id);
	sq_bind_text(st, 3, ep->url);
	sq_bind_text(st, 4, ep->description ? ep->description : "");
	sq_bind_text(st, 5, ep->event_types);
	char *resting = rest_secret((struct sq_store *)s, ep->id, ep->secret);
	if (!resting)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	sqlite3_bind_text(st, 6, resting, -1, free);
	sqlite3_bind_int(st, 7, ep->secret_version > 0 ? ep->secret_version : 1);
	sqlite3_bind_int(st, 8, ep->is_active);
	sqlite3_bind_int(st, 9, ep->is_primary);
	sqlite3_bind_int64(st, 10, ep->created_at);
	hk_status r = sq_step_done(c, st, err);
	if (r == HK_ECONFLICT)
		return hk_fail(err, HK_ECONFLICT, "endpoint_exists", "the endpoint already exists");
	return r;
}

/* Run a one-row endpoint query whose parameters are already bound. */
static hk_status endpoint_one(const struct sq_store *ss, struct sq_conn *c, sqlite3_stmt *st,
                              struct store_endpoint *out, struct hk_err *err)
{
	memset(out, 0, sizeof(*out));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	if (rc != SQLITE_ROW)
		return sq_error(err, c->db, "endpoint");
	endpoint_from_row(ss, st, out);
	sqlite3_reset(st);
	if (!endpoint_complete(out)) {
		store_endpoint_clear(out);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	return HK_OK;
}

static hk_status endpoint_get(const struct sq_store *ss, struct sq_conn *c, int64_t org_id,
                              const char *id, struct store_endpoint *out, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_EP_GET, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, org_id);
	return endpoint_one(ss, c, st, out, err);
}

static hk_status sq_endpoint_get(struct store *s, int64_t org_id, const char *id,
                                 struct store_endpoint *out, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	return endpoint_get((struct sq_store *)s, c, org_id, id, out, err);
}

static hk_status sq_endpoint_primary(struct store *s, int64_t org_id, struct store_endpoint *out,
                                     struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_EP_PRIMARY, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_int64(st, 1, org_id);
	hk_status r = endpoint_one((struct sq_store *)s, c, st, out, err);
	if (r == HK_ENOTFOUND)
		return hk_fail(err, HK_ENOTFOUND, "webhook_not_configured", "no webhook is configured");
	return r;
}

static hk_status sq_endpoint_list(struct store *s, int64_t org_id, struct store_endpoint **out,
                                  size_t *n, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st = sq_stmt(c, ST_EP_LIST, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_int64(st, 1, org_id);
	size_t cap = 0, len = 0;
	struct store_endpoint *eps = NULL;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8;
			struct store_endpoint *grown = realloc(eps, cap * sizeof(*eps));
			if (!grown)
				break;
			eps = grown;
		}
		memset(&eps[len], 0, sizeof(eps[len]));
		endpoint_from_row((struct sq_store *)s, st, &eps[len]);
		if (!endpoint_complete(&eps[len++]))
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_endpoint_free_array(eps, len);
		return rc == SQLITE_ROW ? hk_fail(err, HK_ENOMEM, NULL, "out of memory")
		                        : sq_error(err, c->db, "endpoint_list");
	}
	*out = eps;
	*n = len;
	return HK_OK;
}

static hk_status endpoint_patch(struct sq_conn *c, int64_t org_id, const char *id,
                                const struct store_endpoint_patch *p, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_EP_UPDATE, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, org_id);
	sq_bind_text(st, 3, p->url);
	sq_bind_text(st, 4, p->description);
	sq_bind_text(st, 5, p->event_types);
	sqlite3_bind_int(st, 6, p->is_active);
	hk_status r = sq_step_done(c, st, err);
	if (r == HK_OK && sqlite3_changes(c->db) == 0)
		return hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	return r;
}

static hk_status sq_endpoint_update(struct store *s, int64_t org_id, const char *id,
                                    const struct store_endpoint_patch *p, int64_t now,
                                    struct store_endpoint *out, struct hk_err *err)
{
	(void)now;
	CONN_OR_FAIL(s, err);
	memset(out, 0, sizeof(*out));
	hk_status r = sq_tx_begin(c, err);
	if (r != HK_OK)
		return r;
	r = endpoint_patch(c, org_id, id, p, err);
	if (r == HK_OK)
		r = endpoint_get((struct sq_store *)s, c, org_id, id, out, err);
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK) {
		sq_tx_rollback(c);
		store_endpoint_clear(out);
	} else if (p->is_active == 1) {
		/* its deliveries kept their old due times: any time is early */
		duemap_lower(c->ss->due, id, INT64_MIN);
	}
	return r;
}

static hk_status sq_endpoint_delete(struct store *s, int64_t org_id, const char *id,
                                    struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	hk_status r = sq_tx_begin(c, err);
	if (r != HK_OK)
		return r;
	sqlite3_stmt *st = sq_stmt(c, ST_EP_DELETE, err);
	if (!st) {
		sq_tx_rollback(c);
		return HK_ESTORE;
	}
	sq_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, org_id);
	r = sq_step_done(c, st, err);
	if (r == HK_OK && sqlite3_changes(c->db) == 0)
		r = hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	if (r == HK_OK && (st = sq_stmt(c, ST_ROLLUP_DELETE, err)) != NULL) {
		sq_bind_text(st, 1, id);
		r = sq_step_done(c, st, err);
	} else if (r == HK_OK) {
		r = HK_ESTORE;
	}
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK)
		sq_tx_rollback(c);
	return r;
}

static hk_status sq_endpoint_set_secret(struct store *s, int64_t org_id, const char *id,
                                        const char *secret, int *version, struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_EP_SET_SECRET, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, org_id);
	char *resting = rest_secret((struct sq_store *)s, id, secret);
	if (!resting)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	sqlite3_bind_text(st, 3, resting, -1, free);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (version)
			*version = sqlite3_column_int(st, 0);
		rc = sqlite3_step(st);
	} else if (rc == SQLITE_DONE) {
		return hk_fail(err, HK_ENOTFOUND, "endpoint_not_found", "no such endpoint");
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? HK_OK : sq_error(err, c->db, "set_secret");
}

/* ---- publishing ---------------------------------------------------------- */

/* The endpoints of one org as fan-out needs them, loaded once per batch. */
struct fan_ep {
	char id[UUID_STR_LEN];
	bool active;
	json_t *types;
};

struct fan_cache {
	int64_t org_id;
	bool loaded;
	struct fan_ep *eps;
	size_t n;
};

static void fan_clear(struct fan_cache *fc)
{
	for (size_t i = 0; i < fc->n; i++)
		json_decref(fc->eps[i].types);
	free(fc->eps);
	memset(fc, 0, sizeof(*fc));
}

static hk_status fan_load(struct sq_conn *c, int64_t org_id, struct fan_cache *fc,
                          struct hk_err *err)
{
	if (fc->loaded && fc->org_id == org_id)
		return HK_OK;
	fan_clear(fc);
	sqlite3_stmt *st = sq_stmt(c, ST_EP_FANOUT, err);
	if (!st)
		return HK_ESTORE;
	sqlite3_bind_int64(st, 1, org_id);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fc->n == cap) {
			cap = cap ? cap * 2 : 8;
			struct fan_ep *grown = realloc(fc->eps, cap * sizeof(*grown));
			if (!grown)
				break;
			fc->eps = grown;
		}
		struct fan_ep *e = &fc->eps[fc->n++];
		sq_col_copy(st, 0, e->id, sizeof(e->id));
		e->active = sqlite3_column_int(st, 1) != 0;
		e->types = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		fan_clear(fc);
		return sq_error(err, c->db, "fanout");
	}
	fc->org_id = org_id;
	fc->loaded = true;
	return HK_OK;
}

/* Look the idempotency key up. Returns 1 when the item is answered (replay
 * or conflict), 0 when it must be published, -1 on a store failure. */
static int idem_check(struct sq_conn *c, struct store_publish *it, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_EV_IDEM, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, it->org_id);
	sq_bind_text(st, 2, it->idem_key);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW) {
		sq_error(err, c->db, "idem");
		return -1;
	}
	char old_id[UUID_STR_LEN];
	sq_col_copy(st, 0, old_id, sizeof(old_id));
	const void *hash = sqlite3_column_blob(st, 1);
	bool same = hash && sqlite3_column_bytes(st, 1) == 32 && memcmp(hash, it->req_hash, 32) == 0;
	int fanout = sqlite3_column_int(st, 2);
	int64_t at = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	if (at + it->idem_window_ms <= it->created_at) {
		/* Expired: forget the key on the old event so the new one may take it. */
		st = sq_stmt(c, ST_EV_IDEM_CLEAR, err);
		if (!st)
			return -1;
		sq_bind_text(st, 1, old_id);
		return sq_step_done(c, st, err) == HK_OK ? 0 : -1;
	}
	if (!same) {
		it->status = HK_ECONFLICT;
		return 1;
	}
	it->replayed = true;
	memcpy(it->out_event_id, old_id, sizeof(old_id));
	it->deliveries = fanout;
	return 1;
}

static hk_status delivery_insert(struct sq_conn *c, const struct store_publish *it,
                                 const char *endpoint_id, bool active, char *id_out,
                                 struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_DL_INSERT, err);
	if (!st)
		return HK_ESTORE;
	bool test = it->only_endpoint != NULL;
	if (test && it->delivery_id[0])
		memcpy(id_out, it->delivery_id, UUID_STR_LEN);
	else
		uuid_v7(id_out);
	sq_bind_text(st, 1, id_out);
	sq_bind_text(st, 2, endpoint_id);
	sq_bind_text(st, 3, it->event_id);
	sq_bind_text(st, 4, it->event_type);
	sqlite3_bind_int64(st, 5, it->created_at);
	sqlite3_bind_int64(st, 6, it->created_at);
	sqlite3_bind_int(st, 7, test);
	sqlite3_bind_int(st, 8, test);
	hk_status r = sq_step_done(c, st, err);
	if (r == HK_OK && active)
		duemap_lower(c->ss->due, endpoint_id, it->created_at);
	return r;
}

static hk_status event_insert(struct sq_conn *c, const struct store_publish *it, int fanout,
                              struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_EV_INSERT, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, it->event_id);
	sqlite3_bind_int64(st, 2, it->org_id);
	sq_bind_text(st, 3, it->event_type);
	sqlite3_bind_text(st, 4, it->body, (int)it->body_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, it->created_at);
	sq_bind_text(st, 6, it->idem_key);
	if (it->idem_key)
		sqlite3_bind_blob(st, 7, it->req_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, fanout);
	return sq_step_done(c, st, err);
}

static hk_status publish_one(struct sq_conn *c, struct store_publish *it, struct fan_cache *fc,
                             struct hk_err *err)
{
	it->status = HK_OK;
	it->replayed = false;
	it->deliveries = 0;
	if (!it->only_endpoint)
		it->delivery_id[0] = '\0';
	memcpy(it->out_event_id, it->event_id, UUID_STR_LEN);
	if (it->idem_key) {
		int r = idem_check(c, it, err);
		if (r != 0)
			return r < 0 ? HK_ESTORE : HK_OK;
	}
	hk_status r = fan_load(c, it->org_id, fc, err);
	if (r != HK_OK)
		return r;
	int fanout = 0;
	for (size_t i = 0; i < fc->n; i++) {
		if (it->only_endpoint ? strcmp(it->only_endpoint, fc->eps[i].id) == 0
		                      : store_subscribes(fc->eps[i].types, it->event_type))
			fanout++;
	}
	/* The event row first: deliveries reference it. */
	if ((r = event_insert(c, it, fanout, err)) != HK_OK)
		return r;
	for (size_t i = 0; i < fc->n && r == HK_OK; i++) {
		const struct fan_ep *e = &fc->eps[i];
		if (it->only_endpoint ? strcmp(it->only_endpoint, e->id) != 0
		                      : !store_subscribes(e->types, it->event_type))
			continue;
		char id[UUID_STR_LEN];
		r = delivery_insert(c, it, e->id, e->active, id, err);
		memcpy(it->delivery_id, id, sizeof(id));
	}
	it->deliveries = fanout;
	return r;
}

static hk_status sq_publish_batch(struct store *s, struct store_publish *items, size_t n,
                                  struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	hk_status r = sq_tx_begin(c, err);
	if (r != HK_OK)
		return r;
	struct fan_cache fc = { 0 };
	for (size_t i = 0; i < n && r == HK_OK; i++)
		r = publish_one(c, &items[i], &fc, err);
	fan_clear(&fc);
	if (r == HK_OK)
		r = sq_tx_commit(c, err);
	if (r != HK_OK)
		sq_tx_rollback(c);
	return r;
}

/* ---- deliveries ---------------------------------------------------------- */

static void delivery_from_row(sqlite3_stmt *st, struct store_delivery *d)
{
	sq_col_copy(st, 0, d->id, sizeof(d->id));
	sq_col_copy(st, 1, d->event_id, sizeof(d->event_id));
	sq_col_copy(st, 2, d->endpoint_id, sizeof(d->endpoint_id));
	sq_col_copy(st, 3, d->event_type, sizeof(d->event_type));
	d->status = (enum delivery_status)sqlite3_column_int(st, 4);
	d->attempt_count = sqlite3_column_int(st, 5);
	d->last_http_status = sqlite3_column_int(st, 6);
	d->created_at = sqlite3_column_int64(st, 7);
	d->next_attempt_at = d->status == DELIVERY_PENDING ? sqlite3_column_int64(st, 8) : 0;
	d->is_test = sqlite3_column_int(st, 9) != 0;
}

static void bind_filter(sqlite3_stmt *st, const struct store_delivery_filter *f)
{
	sq_bind_text(st, 1, f->endpoint_id);
	sqlite3_bind_int64(st, 2, f->org_id);
	sqlite3_bind_int64(st, 3, f->created_from);
	sqlite3_bind_int64(st, 4, f->created_to > 0 ? f->created_to : INT64_MAX);
	sqlite3_bind_int(st, 5, f->only_tests);
}

static hk_status delivery_count(struct sq_conn *c, const struct store_delivery_filter *f,
                                int64_t *total, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_DL_COUNT, err);
	if (!st)
		return HK_ESTORE;
	bind_filter(st, f);
	if (sqlite3_step(st) != SQLITE_ROW)
		return sq_error(err, c->db, "delivery_count");
	*total = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return HK_OK;
}

static hk_status sq_delivery_list(struct store *s, const struct store_delivery_filter *f,
                                  struct store_delivery **out, size_t *n, int64_t *total,
                                  struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*out = NULL;
	*n = 0;
	struct store_delivery *ds = f->limit ? calloc(f->limit, sizeof(*ds)) : NULL;
	if (f->limit && !ds)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	sqlite3_stmt *st = sq_stmt(c, ST_DL_LIST, err);
	if (!st) {
		free(ds);
		return HK_ESTORE;
	}
	bind_filter(st, f);
	sqlite3_bind_int(st, 6, (int)f->limit);
	sqlite3_bind_int64(st, 7, f->offset);
	size_t len = 0;
	int rc;
	while (len < f->limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		delivery_from_row(st, &ds[len++]);
	sqlite3_reset(st);
	hk_status r = total ? delivery_count(c, f, total, err) : HK_OK;
	if (r != HK_OK) {
		free(ds);
		return r;
	}
	*out = ds;
	*n = len;
	return HK_OK;
}

static hk_status attempts_load(struct sq_conn *c, const char *id, struct store_attempt **out,
                               size_t *n, struct hk_err *err)
{
	sqlite3_stmt *st = sq_stmt(c, ST_AT_LIST, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, id);
	size_t cap = 0, len = 0;
	struct store_attempt *a = NULL;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8;
			struct store_attempt *grown = realloc(a, cap * sizeof(*a));
			if (!grown)
				break;
			a = grown;
		}
		struct store_attempt *t = &a[len++];
		t->number = sqlite3_column_int(st, 0);
		t->started_at = sqlite3_column_int64(st, 1);
		t->duration_ms = sqlite3_column_int(st, 2);
		t->http_status = sqlite3_column_int(st, 3);
		t->error = sqlite3_column_type(st, 4) == SQLITE_NULL ? NULL : sq_col_dup(st, 4);
		t->response_len = (size_t)sqlite3_column_bytes(st, 5);
		t->response_body = malloc(t->response_len + 1);
		if (t->response_body) {
			if (t->response_len)
				memcpy(t->response_body, sqlite3_column_blob(st, 5), t->response_len);
			t->response_body[t->response_len] = '\0';
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_attempt_free_array(a, len);
		return sq_error(err, c->db, "attempts");
	}
	*out = a;
	*n = len;
	return HK_OK;
}

static hk_status sq_delivery_get(struct store *s, int64_t org_id, const char *id,
                                 struct store_delivery *out, char **body,
                                 struct store_attempt **attempts, size_t *nattempts,
                                 struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	*body = NULL;
	*attempts = NULL;
	*nattempts = 0;
	sqlite3_stmt *st = sq_stmt(c, ST_DL_GET, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, org_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return hk_fail(err, HK_ENOTFOUND, "delivery_not_found", "no such delivery");
	if (rc != SQLITE_ROW)
		return sq_error(err, c->db, "delivery_get");
	delivery_from_row(st, out);
	*body = sq_col_dup(st, 10);
	sqlite3_reset(st);
	hk_status r = *body ? attempts_load(c, id, attempts, nattempts, err)
	                    : hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	if (r != HK_OK) {
		free(*body);
		*body = NULL;
	}
	return r;
}

static hk_status sq_delivery_retry(struct store *s, int64_t org_id, const char *id, int64_t now,
                                   struct hk_err *err)
{
	CONN_OR_FAIL(s, err);
	sqlite3_stmt *st = sq_stmt(c, ST_DL_RETRY, err);
	if (!st)
		return HK_ESTORE;
	sq_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, org_id);
	sqlite3_bind_int64(st, 3, now);
	int rc = sqlite3_step(st);
	/* On a paused endpoint too: a claim finds nothing there, and drops it. */
	if (rc == SQLITE_ROW)
		duemap_lower(c->ss->due, (const char *)sqlite3_column_text(st, 0),
		             sqlite3_column_int64(st, 1));
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_error(err, c->db, "delivery_retry");
	if (sqlite3_changes(c->db) == 0)
		return hk_fail(err, HK_ENOTFOUND, "delivery_not_found", "no such delivery");
	return HK_OK;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.one_writer = true,
	.accepts = sq_accepts,
	.open = sq_open,
	.close = sq_close,
	.schema_version = sq_schema_version,
	.org_create = sq_org_create,
	.org_get = sq_org_get,
	.key_create = sq_key_create,
	.key_lookup = sq_key_lookup,
	.bootstrap = sq_bootstrap,
	.endpoint_create = sq_endpoint_create,
	.endpoint_get = sq_endpoint_get,
	.endpoint_primary = sq_endpoint_primary,
	.endpoint_list = sq_endpoint_list,
	.endpoint_update = sq_endpoint_update,
	.endpoint_delete = sq_endpoint_delete,
	.endpoint_set_secret = sq_endpoint_set_secret,
	.publish_batch = sq_publish_batch,
	.delivery_list = sq_delivery_list,
	.delivery_get = sq_delivery_get,
	.delivery_retry = sq_delivery_retry,
	.claim = sq_claim,
	.next_due = sq_next_due,
	.record = sq_record,
	.release_leases = sq_release_leases,
	.unclaim = sq_unclaim,
	.stats = sq_stats,
};
