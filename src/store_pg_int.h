/*
 * store_pg_int: what the files of the PostgreSQL backend share, and nothing
 * else includes (as store_sqlite_int.h is for the SQLite backend).
 *
 * store_pg.c          connections and reconnection, schema, orgs, keys,
 *                     endpoints, delivery history
 * store_pg_publish.c  the group commit (store_publish_batch), pipelined
 * store_pg_dispatch.c the dispatcher's side: claims with SKIP LOCKED,
 *                     recording attempts, the LISTEN/NOTIFY listener, stats
 */
#ifndef HK_STORE_PG_INT_H
#define HK_STORE_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "store_int.h"

/* The NOTIFY channel that tells every node new deliveries are due: with a
 * payload of PG_DUE and endpoint ids (space-separated), for those
 * endpoints; with none, for any. With PG_PAUSED and an endpoint id, it
 * tells them that endpoint was paused. */
#define PG_CHANNEL "hookd_due"
#define PG_DUE "due "
#define PG_PAUSED "paused "
/* Payloads stay under PostgreSQL's 8,000 bytes: past this, a plain NOTIFY. */
#define PG_DUE_MAX_IDS 150

enum pg_stmt {
	PS_ORG_INSERT, PS_ORG_GET, PS_ORG_COUNT,
	PS_KEY_INSERT, PS_KEY_LOOKUP,
	PS_EP_INSERT, PS_EP_GET, PS_EP_PRIMARY, PS_EP_LIST, PS_EP_UPDATE, PS_EP_DELETE,
	PS_EP_SET_SECRET, PS_EP_PAUSED, PS_EP_DUE, PS_EP_FANOUT,
	PS_ROLLUP_DELETE,
	PS_EV_IDEM, PS_EV_IDEM_CLEAR, PS_EV_INSERT, PS_DL_INSERT,
	PS_DL_LIST, PS_DL_COUNT, PS_DL_GET, PS_AT_LIST, PS_DL_RETRY,
	PS_CLAIM_SELECT, PS_CLAIM_UPDATE, PS_DUE_WALK, PS_DUE_OF,
	PS_REC_LOCK, PS_REC_RESULT, PS_REC_ENDPOINT, PS_REC_PAUSE, PS_REC_ROLLUP,
	PS_RELEASE, PS_UNCLAIM, PS_STATS, PS_BEGIN,
	PS_COUNT
};

/* One thread's connection. A connection that broke is reset on a later use,
 * no sooner than retry_at, with the wait doubling up to 2 s: a database that
 * restarts is found again by itself, and one that is down costs a request
 * nothing but a quick 503. */
struct pg_conn {
	PGconn *conn;
	bool prepared[PS_COUNT]; /* prepared on this session (lost on reset) */
	int64_t retry_at;        /* monotonic ms */
	int backoff_ms;
	bool synced;             /* in a pipeline: its sync is sent and not yet read */
	struct pg_conn *next;
};

struct pg_listener;

struct pg_store {
	struct store base;
	const struct seal *seal; /* NULL: secrets rest as given */
	char *url;
	pthread_key_t key;
	pthread_mutex_t lock; /* guards conns */
	struct pg_conn *conns;
	struct pg_listener *listener; /* NULL until store_listen */
	/* This node's liveness: a session advisory lock on node_id, held by the
	 * `alive` connection for as long as the process lives. Claims record
	 * node_id as the lease's owner, so a restarting node can tell the leases
	 * of dead nodes (no lock) from those of live ones. Opened by pg_open,
	 * then touched only by the listener thread (which re-takes the lock after
	 * a break), then closed by pg_close after that thread has stopped. */
	int64_t node_id;
	PGconn *alive;
	/* When each endpoint next has something to claim, as this node knows
	 * (duemap.h). Its own writes lower it after they commit; other nodes'
	 * reach it through NOTIFY payloads (PG_DUE), and a walk of the
	 * database every second finds what neither told it (a retry another
	 * node scheduled, a dead node's leases running out). */
	struct duemap *due;
};

/* (Re)take this node's liveness lock on ps->alive; false when unreachable. */
bool pg_alive_ensure(struct pg_store *ps);

/* Up to 12 parameters of one statement, formatted on the stack: numbers as
 * text, blobs as binary, so a statement costs no allocation to bind. */
#define PG_MAX_PARAMS 12
struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][24];
};

void pp_text(struct pg_params *p, const char *s); /* NULL binds SQL NULL */
void pp_int(struct pg_params *p, int64_t v);
void pp_null(struct pg_params *p);
void pp_bin(struct pg_params *p, const void *data, size_t len);

/* Open a connection to url (libpq URI or key=value string); NULL on failure. */
PGconn *pg_connect(const char *url);
/* This thread's connection, opened (or reset) on demand; NULL with err filled. */
struct pg_conn *pg_conn(struct pg_store *ps, struct hk_err *err);
/* Run a prepared statement. Returns the result (PQclear it) when it
 * succeeded, else NULL with err filled: HK_ECONFLICT on a unique violation,
 * HK_ESTORE otherwise (store_unavailable when the connection is gone). */
PGresult *pg_run(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p,
                 struct hk_err *err);
/* Run a statement that returns no rows; *changed (OUT, may be NULL) counts rows. */
hk_status pg_do(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p, long *changed,
                struct hk_err *err);
/* Pipelines: a batch's statements go out together and their results come
 * back after one sync, so a batch costs one round trip, not one per
 * statement. pg_pipeline prepares ids (every statement send will queue: a
 * prepare inside the pipeline would add a result to skip), enters pipeline
 * mode, calls send(ctx) to queue statements with pg_pipe_send, syncs, and
 * calls read(ctx) to take their results in the same order with
 * pg_pipe_next or pg_pipe_do; read stops at the first failure. On every
 * path it then reads what is left and leaves pipeline mode, so the
 * connection is as synchronous callers expect it. A failed statement makes
 * PostgreSQL skip the rest up to the sync; in a transaction (PS_BEGIN) the
 * transaction is then aborted and the caller rolls it back. Errors map as
 * pg_run's do. */
typedef hk_status (*pg_pipe_fn)(struct pg_conn *c, void *ctx, struct hk_err *err);
hk_status pg_pipeline(struct pg_conn *c, const enum pg_stmt *ids, size_t nids, pg_pipe_fn send,
                      pg_pipe_fn read, void *ctx, struct hk_err *err);
hk_status pg_pipe_send(struct pg_conn *c, enum pg_stmt id, const struct pg_params *p,
                       struct hk_err *err);
/* The next statement's result (PQclear it), which was id; NULL with err filled. */
PGresult *pg_pipe_next(struct pg_conn *c, enum pg_stmt id, struct hk_err *err);
/* pg_pipe_next for a statement that returns no rows; *changed (OUT, may be NULL). */
hk_status pg_pipe_do(struct pg_conn *c, enum pg_stmt id, long *changed, struct hk_err *err);
/* Run plain SQL (BEGIN, COMMIT, NOTIFY, DDL). */
hk_status pg_exec(struct pg_conn *c, const char *sql, struct hk_err *err);
hk_status pg_tx_begin(struct pg_conn *c, struct hk_err *err);
hk_status pg_tx_commit(struct pg_conn *c, struct hk_err *err);
/* Roll back whatever transaction is open; harmless when none is. */
void pg_tx_rollback(struct pg_conn *c);
/* An array literal for a text[] or int[] parameter: "{a,b,c}", in one
 * allocation sized at open for n elements of up to `each` characters.
 * Elements are ids and numbers, which need no quoting. */
struct pg_array {
	char *s;
	size_t len;
};
/* false when out of memory. */
bool pg_array_open(struct pg_array *a, size_t n, size_t each);
void pg_array_add(struct pg_array *a, const char *v);
void pg_array_add_uint(struct pg_array *a, unsigned v);
/* The finished literal, a->s: free() it. */
char *pg_array_close(struct pg_array *a);
/* Copy a text column into a fixed buffer; "" for NULL. */
void pg_copy(const PGresult *res, int row, int col, char *dst, size_t cap);
int64_t pg_int(const PGresult *res, int row, int col);
/* Tell every node, at commit, that endpoint id was paused: what they claimed
 * ahead for it, they give back. Its pending deliveries stay as they are;
 * claims and due times pass over a paused endpoint. */
hk_status pg_endpoint_paused(struct pg_conn *c, const char *id, struct hk_err *err);
/* A resting secret back to plaintext (empty when it does not open). */
char *pg_open_secret(const struct pg_store *ps, const char *id, const char *value);

/* Publishing (store_pg_publish.c). */
hk_status pg_publish_batch(struct store *s, struct store_publish *items, size_t n,
                           struct hk_err *err);

/* The dispatcher's side (store_pg_dispatch.c), in store_ops order. */
hk_status pg_claim(struct store *s, int64_t now, int64_t lease_until, unsigned cap,
                   const struct store_claim_room *room, struct store_job *jobs, size_t *n,
                   struct hk_err *err);
hk_status pg_next_due(struct store *s, int64_t *when, struct hk_err *err);
hk_status pg_record(struct store *s, struct store_result *r, size_t n, int breaker_threshold,
                    char (*paused)[UUID_STR_LEN], size_t *npaused, struct hk_err *err);
hk_status pg_release_leases(struct store *s, int64_t now, struct hk_err *err);
hk_status pg_unclaim(struct store *s, const struct store_lease *l, size_t n, int64_t now,
                     struct hk_err *err);
hk_status pg_stats(struct store *s, const char *endpoint_id, int64_t start, int64_t end,
                   int64_t bucket_ms, struct store_stat **out, size_t *n, struct hk_err *err);
hk_status pg_listen(struct store *s, const struct store_listener *l, struct hk_err *err);
/* Stop the listener thread, if any (store_close calls it). */
void pg_listener_stop(struct pg_store *ps);

#define PG_CONN_OR_FAIL(s, err)                                   \
	struct pg_conn *c = pg_conn((struct pg_store *)(s), (err)); \
	if (!c)                                                     \
		return HK_ESTORE

#endif
