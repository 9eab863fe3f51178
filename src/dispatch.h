/*
 * dispatch: the delivery engine. Gets every due delivery to its endpoint,
 * signed, on the libcurl multi interface, and records every attempt.
 *
 * Threads and hand-offs (the design in one paragraph):
 *   - the claimer thread claims due deliveries from the store with a lease
 *     (store_claim) and hands the jobs to the loop through a mutex-protected
 *     array, waking it with curlpoll_wakeup. It keeps the per-endpoint and
 *     global in-flight counts, and claims when woken (a publish, another
 *     node's NOTIFY), when slots come back, when a retry is due, and at
 *     least once a second. Claims have their own thread because a claim
 *     waits for the store's write lock, which a commit holds through its
 *     fsync: the loop must never wait there.
 *   - the loop thread owns the curl multi handles (one per share of the
 *     hosts), which it drives with curl_multi_socket_action on only the
 *     sockets that are ready (curlpoll.h), so attempts that hang cost little
 *     while they wait. It starts one
 *     transfer per job, and when a transfer ends it decides the outcome
 *     (success, retry at a time from the schedule or Retry-After, or final
 *     failure) and hands a result to the recorder through a mutex-protected
 *     queue. A success's endpoint slot goes back to the claimer at once.
 *   - the recorder thread takes every result queued so far and writes them in
 *     one transaction (store_record: one fsync for many attempts), gives the
 *     slots of failed attempts back (only now, so a breaker pause is in the
 *     store before the endpoint is claimed again), frees their jobs and tells
 *     watchers (test deliveries) the outcome.
 * With a store that writes one transaction at a time (SQLite), one thread
 * claims and records in turn, claims first: two threads would only take
 * turns at the write lock, and each one's commit would empty the other's
 * page cache.
 * Other threads only call dispatch_wake / dispatch_watch, which take the
 * dispatcher's lock briefly and signal the claimer.
 *
 * Fairness: at most cfg->max_in_flight transfers in all and
 * cfg->max_in_flight_per_endpoint per endpoint; an endpoint at its cap is
 * skipped when claiming, so a slow endpoint cannot hold up the others.
 * Safety: every connection is checked against the SSRF policy on the address
 * the socket actually connects to (CURLOPT_OPENSOCKETFUNCTION); redirects are
 * never followed; proxies from the environment are ignored.
 */
#ifndef HK_DISPATCH_H
#define HK_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "retry.h"
#include "ssrf.h"
#include "store.h"

struct dispatch_config {
	struct retry_schedule schedule;
	int breaker_threshold;
	int64_t connect_timeout_ms;
	int64_t attempt_timeout_ms;
	int64_t retry_after_cap_ms;       /* Retry-After is honoured up to this (1 h) */
	int64_t grace_ms;                 /* shutdown: how long in-flight attempts may finish */
	int64_t lease_margin_ms;          /* a lease lasts connect + attempt timeout + this */
	int64_t dns_ttl_ms;               /* a host is resolved again within twice this */
	unsigned max_in_flight;
	unsigned max_in_flight_per_endpoint;
	int max_connections_per_host;     /* 0: no cap; over it, transfers queue in libcurl */
	size_t response_keep;             /* bytes of response body kept (4096) */
	const char *ca_file;              /* NULL: system bundle */
	const struct ssrf_allow *allow;   /* CIDRs allowed despite the SSRF policy */
	const char *user_agent;           /* "hookd/<version>" */
};

struct dispatch;

/* Start the claimer, loop and recorder threads. cfg and everything it points to must
 * outlive the dispatcher. NULL on failure with err filled. */
struct dispatch *dispatch_start(struct store *s, const struct dispatch_config *cfg,
                                struct hk_err *err);

/* Something may be due now (a publish, a retry, a re-enabled endpoint): claim
 * without waiting for the next poll. Cheap; safe from any thread. */
void dispatch_wake(struct dispatch *d);
/* dispatch_wake as a void (*)(void *) callback, for modules that wake it
 * without knowing it (the publisher, the store). */
void dispatch_wake_cb(void *d);
/* The endpoint was paused through the API, or by another node (the pause
 * committed): what this dispatcher claimed ahead for it goes back to the
 * store unattempted, as after a pause by its own breaker. Attempts under
 * way finish. Any thread. */
void dispatch_paused(struct dispatch *d, const char endpoint_id[UUID_STR_LEN]);
/* dispatch_paused as a callback, for the store's listener. */
void dispatch_paused_cb(void *d, const char *endpoint_id);

/* Called once, on the recorder thread, when the attempt of delivery_id that
 * follows this call has been recorded: r holds the outcome (r->fenced when it
 * was not written). Must not block. */
typedef void (*dispatch_watch_fn)(void *arg, const struct store_result *r);

/* Watch the next recorded attempt of one delivery (test deliveries answer
 * their caller this way). Returns 0, or -1 when the dispatcher is stopping
 * (then fn is never called). */
int dispatch_watch(struct dispatch *d, const char *delivery_id, dispatch_watch_fn fn, void *arg);

/* Graceful stop: claim nothing more, let in-flight attempts finish within
 * cfg->grace_ms, abandon the rest (they stay pending and become due again),
 * record everything finished, tell remaining watchers (r->fenced), and join
 * the threads. Does not free: API threads may still call dispatch_wake
 * (a no-op now) and dispatch_watch (returns -1) until the HTTP server is
 * stopped, after which the owner calls dispatch_free. */
void dispatch_stop(struct dispatch *d);

/* Free a stopped dispatcher. NULL is fine. */
void dispatch_free(struct dispatch *d);

#endif
