/*
 * store_sqlite_backlog: the SQLite backend holds a paused endpoint's pending
 * deliveries, and releases them when it is enabled again, on a thread of
 * its own.
 *
 * Both go in chunks, each its own transaction (see chunk()). Run by the
 * caller, a pause or re-enable through the API kept one of the HTTP
 * threads, and the requests on its connections waiting, for up to 0.85 s
 * per 300,000 deliveries; a pause by the breaker kept the store thread, so
 * neither claims nor records went on meanwhile. Now the caller queues the
 * endpoint once its pause or re-enable is committed (sq_backlog_hold,
 * sq_backlog_release) and returns; this thread does the chunks. Each chunk
 * first checks the endpoint still wants it (a hold stops once it is active
 * again, a release once it is paused), so the queue's order never matters.
 * After each release chunk the listener's wake (store_listen) tells the
 * dispatcher more is due. A chunk that fails is tried again a second later.
 * What is still queued at close, or was cut short by a crash, the next start
 * finishes (sq_release_leases).
 *
 * Hand-offs: the queue and the stop flag under b->lock, where the thread
 * waits; the listener under b->wake_lock, held while it is called, so that
 * once store_unlisten returns no call is under way.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "duemap.h"
#include "log.h"
#include "store_sqlite_int.h"

/* About 10 ms of work a chunk. One UPDATE of a backlog of 300,000 held the
 * write lock for 0.6 s, and every publish and delivery waited behind it. */
enum { CHUNK = 4096, CHUNK_PAUSE_US = 1000, RETRY_MS = 1000 };

struct job {
	char id[UUID_STR_LEN];
	enum stmt_id which; /* ST_EP_HOLD or ST_EP_RELEASE */
};

struct sq_backlog {
	struct sq_store *ss;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *q; /* oldest first */
	size_t n, cap;
	bool stop;
	pthread_mutex_t wake_lock;
	struct store_listener on;
};

static bool stopping(struct sq_backlog *b)
{
	pthread_mutex_lock(&b->lock);
	bool stop = b->stop;
	pthread_mutex_unlock(&b->lock);
	return stop;
}

static void wake(struct sq_backlog *b)
{
	pthread_mutex_lock(&b->wake_lock);
	if (b->on.wake)
		b->on.wake(b->on.arg);
	pthread_mutex_unlock(&b->wake_lock);
}

/* One chunk of ST_EP_HOLD or ST_EP_RELEASE from *from (IN/OUT: where the
 * next one starts, in the order of the index it walks) in a transaction of
 * its own; *n (OUT) how many rows. */
static hk_status chunk(struct sq_conn *c, enum stmt_id which, const char *id, int64_t *from,
                       int *n, struct hk_err *err)
{
	*n = 0;
	hk_status r = sq_tx_begin(c, err);
	if (r != HK_OK)
		return r;
	sqlite3_stmt *st = sq_stmt(c, which, err);
	r = st ? HK_OK : HK_ESTORE;
	if (st) {
		sq_bind_text(st, 1, id);
		sqlite3_bind_int64(st, 2, *from);
		sqlite3_bind_int(st, 3, CHUNK);
		int rc;
		int64_t last = *from;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t at = sqlite3_column_int64(st, 0);
			last = at > last ? at : last;
			(*n)++;
		}
		sqlite3_reset(st);
		r = rc == SQLITE_DONE ? sq_tx_commit(c, err) : sq_error(err, c->db, "chunk");
		*from = last;
		/* Released deliveries are claimable at their old due times. Also
		 * after an empty chunk: a pause cut short leaves some never held. */
		if (r == HK_OK && which == ST_EP_RELEASE)
			duemap_lower(c->ss->due, id, INT64_MIN);
	}
	if (r != HK_OK) {
		sq_tx_rollback(c);
		*n = 0;
	}
	return r;
}

/* Chunk after chunk until one comes back short, or the store closes. */
static hk_status in_chunks(struct sq_backlog *b, struct sq_conn *c, const struct job *j,
                           struct hk_err *err)
{
	int64_t from = INT64_MIN;
	int n;
	do {
		hk_status r = chunk(c, j->which, j->id, &from, &n, err);
		if (r != HK_OK)
			return r;
		if (j->which == ST_EP_RELEASE)
			wake(b);
		/* Let the writers that waited meanwhile have the lock: they poll
		 * for it (busy_wait), and a BEGIN at once would win every time. */
		if (n == CHUNK)
			usleep(CHUNK_PAUSE_US);
	} while (n == CHUNK && !stopping(b));
	return HK_OK;
}

static bool run(struct sq_backlog *b, const struct job *j)
{
	struct hk_err err;
	struct sq_conn *c = sq_conn(b->ss, &err);
	if (c && in_chunks(b, c, j, &err) == HK_OK)
		return true;
	log_warn(j->which == ST_EP_HOLD ? "holding a paused endpoint's deliveries failed; trying again"
	                                : "releasing an endpoint's deliveries failed; trying again",
	         "endpoint=%s code=%s", j->id, err.code);
	return false;
}

/* Append a job unless the same one is queued (under b->lock). Out of memory
 * it is dropped with a warning: the next start finishes it. */
static void enqueue(struct sq_backlog *b, const struct job *j)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->q[i].which == j->which && strcmp(b->q[i].id, j->id) == 0)
			return;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct job *grown = realloc(b->q, cap * sizeof(*grown));
		if (!grown) {
			log_warn("out of memory: an endpoint's backlog is left for the next start",
			         "endpoint=%s", j->id);
			return;
		}
		b->q = grown;
		b->cap = cap;
	}
	b->q[b->n++] = *j;
	pthread_cond_signal(&b->cond);
}

static void *worker(void *arg)
{
	struct sq_backlog *b = arg;
	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		if (b->n == 0) {
			pthread_cond_wait(&b->cond, &b->lock);
			continue;
		}
		struct job j = b->q[0];
		memmove(b->q, b->q + 1, --b->n * sizeof(*b->q));
		pthread_mutex_unlock(&b->lock);
		bool done = run(b, &j);
		pthread_mutex_lock(&b->lock);
		if (!done && !b->stop) {
			enqueue(b, &j);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += RETRY_MS / 1000;
			pthread_cond_timedwait(&b->cond, &b->lock, &ts);
		}
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

struct sq_backlog *sq_backlog_start(struct sq_store *ss)
{
	struct sq_backlog *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->ss = ss;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	pthread_mutex_init(&b->wake_lock, NULL);
	if (pthread_create(&b->thread, NULL, worker, b) != 0) {
		pthread_mutex_destroy(&b->lock);
		pthread_cond_destroy(&b->cond);
		pthread_mutex_destroy(&b->wake_lock);
		free(b);
		return NULL;
	}
	pthread_setname_np(b->thread, "hookd-backlog");
	return b;
}

void sq_backlog_stop(struct sq_backlog *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stop = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->wake_lock);
	free(b->q);
	free(b);
}

static void queue(struct sq_backlog *b, const char *id, enum stmt_id which)
{
	struct job j = { .which = which };
	snprintf(j.id, sizeof(j.id), "%s", id);
	pthread_mutex_lock(&b->lock);
	enqueue(b, &j);
	pthread_mutex_unlock(&b->lock);
}

void sq_backlog_hold(struct sq_backlog *b, const char *id)
{
	queue(b, id, ST_EP_HOLD);
}

void sq_backlog_release(struct sq_backlog *b, const char *id)
{
	queue(b, id, ST_EP_RELEASE);
}

hk_status sq_listen(struct store *s, const struct store_listener *on, struct hk_err *err)
{
	(void)err;
	struct sq_backlog *b = ((struct sq_store *)s)->backlog;
	pthread_mutex_lock(&b->wake_lock);
	b->on = on ? *on : (struct store_listener){ 0 };
	pthread_mutex_unlock(&b->wake_lock);
	return HK_OK;
}
