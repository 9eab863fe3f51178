/*
 * publish: group commit of published events.
 *
 * Durability costs one fsync per transaction, so publishers must not each
 * pay one. API threads hand a publish_job to the publisher and suspend their
 * HTTP request; one committer thread takes everything queued (up to
 * max_batch), writes it in ONE transaction (store_publish_batch), then calls
 * each job's done callback, which answers the suspended request. Under load
 * batches grow by themselves, so throughput grows with concurrency while a
 * lone publisher still gets its answer after a single commit.
 *
 * Hand-offs: publisher_submit (any thread) → queue under p->lock →
 * committer thread → done callback (on the committer thread; it must not
 * block). The queue is bounded: when it is full, submit refuses and the API
 * answers 503, rather than letting memory grow without bound.
 */
#ifndef HK_PUBLISH_H
#define HK_PUBLISH_H

#include "err.h"
#include "store.h"

struct publish_job;
typedef void (*publish_done_fn)(struct publish_job *job);

struct publish_job {
	struct store_publish item; /* IN/OUT: see store.h */
	publish_done_fn done;      /* called once, after the commit (or its failure) */
	void *arg;                 /* the caller's */
	hk_status status;          /* the transaction's outcome; item.status is the item's */
	struct hk_err err;         /* filled when status != HK_OK */
	struct publish_job *next;  /* the publisher's */
};

struct publisher;

/* Start the committer thread. after_commit (may be NULL) is called with arg
 * after each successful commit, e.g. to wake the dispatcher. */
struct publisher *publisher_start(struct store *s, unsigned max_batch, void (*after_commit)(void *),
                                  void *arg, struct hk_err *err);

enum publish_refusal { PUBLISH_QUEUED = 0, PUBLISH_FULL = -1, PUBLISH_STOPPED = -2 };

/* Queue a job; the caller keeps ownership and must keep it alive until its
 * done callback has run. Returns PUBLISH_QUEUED, or PUBLISH_FULL /
 * PUBLISH_STOPPED, and then done is never called. */
enum publish_refusal publisher_submit(struct publisher *p, struct publish_job *job);

/* Commit everything queued and call its callbacks; every later submit is
 * refused with PUBLISH_STOPPED. The API may still call submit until the
 * HTTP server has stopped, so freeing is a separate step. */
void publisher_stop(struct publisher *p);

/* Free a stopped publisher (NULL is fine). */
void publisher_free(struct publisher *p);

#endif
