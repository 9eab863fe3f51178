/*
 * store_sqlite_int: what the files of the SQLite backend share, and nothing
 * else includes (as SQLite's btreeInt.h is for the btree family).
 *
 * store_sqlite.c          connections, schema, orgs, keys, endpoints,
 *                         publishing, delivery history
 * store_sqlite_dispatch.c the dispatcher's side: claims, recording attempts,
 *                         leases, the stats rollup
 */
#ifndef HK_STORE_SQLITE_INT_H
#define HK_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "store_int.h"

struct duemap;
struct seal;

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_ORG_INSERT, ST_ORG_GET, ST_ORG_COUNT,
	ST_KEY_INSERT, ST_KEY_LOOKUP,
	ST_EP_INSERT, ST_EP_GET, ST_EP_PRIMARY, ST_EP_LIST, ST_EP_UPDATE, ST_EP_DELETE,
	ST_EP_SET_SECRET, ST_EP_FANOUT, ST_ROLLUP_DELETE,
	ST_EV_IDEM, ST_EV_IDEM_CLEAR, ST_EV_INSERT, ST_DL_INSERT,
	ST_DL_LIST, ST_DL_COUNT, ST_DL_GET, ST_AT_LIST, ST_DL_RETRY,
	ST_DUE_WALK, ST_DUE_OF, ST_CLAIM_SELECT, ST_CLAIM_UPDATE,
	ST_REC_DELIVERY, ST_REC_ATTEMPT, ST_REC_ENDPOINT, ST_REC_PAUSE, ST_REC_ROLLUP,
	ST_RELEASE, ST_UNCLAIM, ST_STATS,
	ST_COUNT
};

struct sq_conn {
	struct sq_store *ss; /* the store it belongs to */
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	struct sq_conn *next;
};

struct sq_store {
	struct store base;
	const struct seal *seal; /* NULL: secrets rest as given */
	char *path;
	int busy_timeout_ms;
	pthread_key_t key;
	pthread_mutex_t lock; /* guards conns */
	struct sq_conn *conns;
	int lock_fd; /* "<db>.lock", flock'd while open when sole */
	bool sole;   /* no other process has the file open through hookd */
	struct duemap *due; /* when each endpoint has something due (duemap.h) */
};

/* This thread's connection, opened on first use; NULL with err filled. */
struct sq_conn *sq_conn(struct sq_store *ss, struct hk_err *err);
/* The cached statement, reset and unbound; NULL with err filled. */
sqlite3_stmt *sq_stmt(struct sq_conn *c, enum stmt_id id, struct hk_err *err);
/* Log a SQLite failure and turn it into HK_ESTORE in err. */
hk_status sq_error(struct hk_err *err, sqlite3 *db, const char *what);
/* Step a write statement that returns no row (or one it ignores). */
hk_status sq_step_done(struct sq_conn *c, sqlite3_stmt *st, struct hk_err *err);
hk_status sq_tx_begin(struct sq_conn *c, struct hk_err *err);
hk_status sq_tx_commit(struct sq_conn *c, struct hk_err *err);
void sq_tx_rollback(struct sq_conn *c);
/* Bind a string, or NULL. */
void sq_bind_text(sqlite3_stmt *st, int i, const char *s);
void sq_col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap);
char *sq_col_dup(sqlite3_stmt *st, int i);
/* A resting secret back to plaintext (empty when it does not open). */
char *sq_open_secret(const struct sq_store *ss, const char *id, const char *value);
/* Run SQL with no result (pragmas, DDL). */
int sq_exec(sqlite3 *db, const char *sql);

/* The dispatcher's side (store_sqlite_dispatch.c), in store_ops order. */
hk_status sq_claim(struct store *s, int64_t now, int64_t lease_until, unsigned cap,
                   const struct store_claim_room *room, struct store_job *jobs, size_t *n,
                   struct hk_err *err);
hk_status sq_next_due(struct store *s, int64_t *when, struct hk_err *err);
hk_status sq_record(struct store *s, struct store_result *r, size_t n, int breaker_threshold,
                    char (*paused)[UUID_STR_LEN], size_t *npaused, struct hk_err *err);
hk_status sq_release_leases(struct store *s, int64_t now, struct hk_err *err);
hk_status sq_unclaim(struct store *s, const struct store_lease *l, size_t n, int64_t now,
                     struct hk_err *err);
hk_status sq_stats(struct store *s, const char *endpoint_id, int64_t start, int64_t end,
                   int64_t bucket_ms, struct store_stat **out, size_t *n, struct hk_err *err);

/* Every operation starts the same way: this thread's connection. */
#define CONN_OR_FAIL(s, err)                                   \
	struct sq_conn *c = sq_conn((struct sq_store *)(s), (err)); \
	if (!c)                                                  \
		return HK_ESTORE

#endif
