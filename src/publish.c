/*
 * publish: one committer thread, group commits. See publish.h.
 */
#include "publish.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct publisher {
	struct store *store;
	unsigned max_batch;
	unsigned max_queued;
	void (*after_commit)(void *);
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	struct publish_job *head, *tail;
	unsigned queued;
	bool stopping;
	/* committer thread only */
	struct store_publish *items;
	struct publish_job **jobs;
};

enum publish_refusal publisher_submit(struct publisher *p, struct publish_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->queued >= p->max_queued) {
		enum publish_refusal why = p->stopping ? PUBLISH_STOPPED : PUBLISH_FULL;
		pthread_mutex_unlock(&p->lock);
		return why;
	}
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return PUBLISH_QUEUED;
}

/* Take up to max_batch jobs off the queue; waits while it is empty. Returns 0
 * when stopping and nothing is left. */
static size_t take_batch(struct publisher *p)
{
	pthread_mutex_lock(&p->lock);
	while (!p->head && !p->stopping)
		pthread_cond_wait(&p->cond, &p->lock);
	size_t n = 0;
	while (p->head && n < p->max_batch) {
		p->jobs[n++] = p->head;
		p->head = p->head->next;
		p->queued--;
	}
	if (!p->head)
		p->tail = NULL;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static void commit_batch(struct publisher *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p->items[i] = p->jobs[i]->item;
	struct hk_err err;
	hk_err_clear(&err);
	hk_status st = store_publish_batch(p->store, p->items, n, &err);
	if (st != HK_OK)
		log_error("group commit failed", "events=%zu code=%s", n, err.code);
	else if (p->after_commit)
		p->after_commit(p->arg);
	for (size_t i = 0; i < n; i++) {
		struct publish_job *job = p->jobs[i];
		job->item = p->items[i];
		job->status = st;
		job->err = err;
		job->done(job);
	}
}

static void *committer(void *arg)
{
	struct publisher *p = arg;
	size_t n;
	while ((n = take_batch(p)) > 0)
		commit_batch(p, n);
	return NULL;
}

struct publisher *publisher_start(struct store *s, unsigned max_batch, void (*after_commit)(void *),
                                  void *arg, struct hk_err *err)
{
	struct publisher *p = calloc(1, sizeof(*p));
	if (max_batch == 0)
		max_batch = 1;
	if (p) {
		p->items = calloc(max_batch, sizeof(*p->items));
		p->jobs = calloc(max_batch, sizeof(*p->jobs));
	}
	if (!p || !p->items || !p->jobs) {
		if (p) {
			free(p->items);
			free(p->jobs);
		}
		free(p);
		hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		return NULL;
	}
	p->store = s;
	p->max_batch = max_batch;
	p->max_queued = max_batch * 16;
	p->after_commit = after_commit;
	p->arg = arg;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->thread, NULL, committer, p) != 0) {
		free(p->items);
		free(p->jobs);
		free(p);
		hk_fail(err, HK_EINTERNAL, NULL, "cannot start the committer thread");
		return NULL;
	}
	pthread_setname_np(p->thread, "hookd-commit");
	return p;
}

void publisher_stop(struct publisher *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
}

void publisher_free(struct publisher *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->items);
	free(p->jobs);
	free(p);
}
