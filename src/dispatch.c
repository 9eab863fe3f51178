/*
 * dispatch: the delivery engine. See dispatch.h for the design.
 *
 * Hand-offs, precisely:
 *   - wake flag: any thread sets d->wake under d->lock and signals
 *     d->claim_cond; the claimer thread reads and clears it under d->lock.
 *   - ready jobs: the claimer appends the jobs of a claim to d->ready under
 *     d->lock and calls curlpoll_wakeup; the loop swaps the whole array
 *     out under d->lock and starts the jobs.
 *   - watchers: registered under d->lock by API threads; run and removed by
 *     the recorder thread, under d->lock taken only to unlink them.
 *   - released slots: a failed attempt's in-flight slot is given back only
 *     once it is recorded (so the breaker's pause is in the store before
 *     the endpoint can be claimed again); a successful one's is given back
 *     by the loop as it finishes (a success cannot pause anything, and its
 *     delivery stays leased until recorded). Either appends the endpoint
 *     ids to d->released (the recorder also the earliest retry time to
 *     d->retry_due) under d->lock and signals d->claim_cond; the claimer
 *     applies them to its counts, and hands a job it claimed ahead for the
 *     same endpoint (if any) straight to the loop.
 *   - paused endpoints: the recorder appends the endpoints its batch paused
 *     to d->paused under d->lock, in the same critical section as (and so
 *     before) their slots, and an API thread those it paused
 *     (dispatch_paused) and signals d->claim_cond; the claimer gives the
 *     jobs it claimed ahead for them back to the store instead of handing
 *     them over.
 *   - outcomes: the loop thread collects a round's finished attempts
 *     (struct outcome, owning its job, response bytes and error text), then
 *     appends them all to d->queue under d->lock and signals d->cond; the
 *     recorder swaps the whole queue out.
 *   - claim first: giving slots back, the loop sets d->claim_first under
 *     d->lock; the recorder waits on d->cond (at most CLAIM_FIRST_MAX_MS)
 *     until the claimer, done with the store, clears it and signals.
 * The multi handles and the transfers belong to the loop thread alone; the
 * per-endpoint and global claimed counts, to the claimer alone.
 *
 * With a store that writes one transaction at a time (store_one_writer:
 * SQLite), one thread plays both the claimer and the recorder (store_main,
 * "hookd-store"). The hand-offs above stay as they are, except that
 * outcomes and the loop's end signal claim_cond, where that thread waits,
 * and claim_first has no one to hold back.
 *
 * A transfer (struct xfer) is allocated once and reused: its easy handle,
 * its header list (curl_slist nodes embedded in the xfer, pointing into an
 * embedded buffer) and its response buffer, so an attempt costs no
 * allocation beyond the one outcome handed to the recorder.
 */
#include "dispatch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curlpoll.h"
#include "heap.h"
#include "log.h"
#include "sign.h"
#include "timeutil.h"

#define CLAIM_MAX 256
#define CLAIM_REFILL 16 /* freed slots worth a claim of their own */
#define CLAIM_FIRST_MAX_MS 5 /* the longest the recorder lets a claim go first */
#define BODY_HARD_CAP (64 * 1024) /* read at most this much of a response, keep response_keep */
#define POLL_MAX_MS 1000
#define NHDR 8
/* Most receivers answer with an empty or tiny body, and a slow one holds its
 * transfer for seconds: the buffer that keeps a response is allocated only
 * when a body arrives, so 10,000 attempts waiting on answers do not each
 * hold (and zero) 4 KiB. */
#define RESP_CAP 4096
/* Idle transfers kept for reuse. A burst to a slow endpoint can put
 * thousands in flight; as it ends, their handles (about 8 KiB each) are
 * freed rather than kept for good. A steady load reuses what it frees within
 * the same round, so the cap costs it nothing. */
#define XFER_KEEP 256
#define IDLE_CONNS_KEPT 1024 /* idle connections kept for reuse (curlpoll_new) */
#define HEAP_RELEASE_EVERY_MS 1000 /* at most this often, while a burst subsides */

struct xfer {
	struct dispatch *d;
	CURL *easy;
	struct store_job job;
	struct curl_slist hdr[NHDR];
	char hbuf[512];
	char errbuf[CURL_ERROR_SIZE];
	char blocked[160];
	char *resp;       /* RESP_CAP bytes, allocated at the first body byte */
	size_t resp_len;  /* bytes kept */
	size_t resp_seen; /* bytes read */
	bool capped;      /* stopped reading at BODY_HARD_CAP */
	int64_t retry_after;
	int64_t started_wall, started_mono;
	unsigned multi;   /* curlpoll's multi handle for the job's URL */
	struct xfer *next_free;          /* on the free list */
	struct xfer *prev_on, *next_on;  /* on the active list */
};

/* A finished attempt on its way to the recorder. */
struct outcome {
	struct store_result r;
	struct store_job job;
	bool slot_held; /* the endpoint slot waits for the record (a failure) */
	struct outcome *next;
	char mem[]; /* response bytes, then the error text */
};

struct watcher {
	char delivery_id[UUID_STR_LEN];
	dispatch_watch_fn fn;
	void *arg;
	struct watcher *next;
};

/* A growable array of endpoint ids. */
struct ids {
	char (*v)[UUID_STR_LEN];
	size_t n, cap;
};

/* A job claimed ahead, waiting for a slot of its endpoint (claimer only). */
struct parked {
	struct store_job job;
	int64_t lease_until;
};

/* One endpoint's attempts (claimer thread only): those handed to the loop
 * and not yet given back, and up to a cap's worth more claimed ahead. */
struct ep_count {
	char id[UUID_STR_LEN];
	unsigned n;           /* handed to the loop: held against the cap */
	struct parked *ring;  /* claimed ahead, oldest at head; allocated on need */
	unsigned head, nparked;
	struct ep_count *next;
};

#define EP_BUCKETS 1024

struct dispatch {
	struct store *store;
	const struct dispatch_config *cfg;
	/* With one writer (store_one_writer), rec_thread runs store_main, which
	 * both claims and records, and there is no claim_thread. */
	bool one_writer;
	pthread_t loop_thread, rec_thread, claim_thread;
	struct curlpoll *poll; /* its multi handles; curlpoll_wakeup from any thread */
	/* loop thread only */
	unsigned in_flight;  /* transfers started, not finished */
	struct xfer *free_xfers;
	unsigned nfree;      /* on free_xfers */
	unsigned destroyed;  /* transfers freed since the last heap_release */
	int64_t released_at; /* tu_mono_ms of the last heap_release */
	int64_t dns_pruned_at[CURLPOLL_MULTIS]; /* tu_mono_ms of each multi's last DNS cache walk */
	struct xfer *active; /* started, not yet finished */
	struct outcome *round, *round_tail; /* finished this round, for the recorder */
	struct store_job *spare; /* swapped with d->ready */
	size_t spare_cap;
	struct ids succeeded; /* endpoints of successes to give back */
	/* claimer thread only */
	unsigned claimed;    /* claimed (handed over or parked), not yet given back */
	struct ep_count *eps[EP_BUCKETS];
	int64_t next_due;    /* 0: unknown, ask the store */
	int64_t last_claim;
	unsigned freed;      /* slots given back since the last claim */
	struct store_lease *dropped; /* claimed, not to be attempted: give back */
	size_t ndropped, dropped_cap;
	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* the recorder waits on it */
	pthread_cond_t claim_cond; /* the claimer waits on it */
	pthread_cond_t *outcome_cond; /* signalled with outcomes and when the loop
	                               * ends: cond, or claim_cond with one writer */
	bool wake;
	struct store_job *ready;   /* claimed, for the loop to start */
	size_t nready, ready_cap;
	bool claim_first; /* slots were given back: the recorder lets the claimer
	                   * take the store's write lock first */
	bool stopping;    /* dispatch_stop called */
	bool loop_done;   /* the loop thread has exited */
	struct outcome *queue, *queue_tail;
	struct watcher *watchers;
	/* loop and recorder → claimer: endpoint slots given back, and the
	 * earliest retry the recorded attempts scheduled */
	struct ids released;
	int64_t retry_due;
	/* recorder → claimer: endpoints the breaker just paused */
	struct ids paused;
};

/* The CLOCK_MONOTONIC time ms from now, for the condition variables' timed
 * waits (both use that clock). */
static struct timespec mono_after(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = ts.tv_nsec + ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	return ts;
}

/* Append k ids; false (nothing appended) when out of memory, which costs
 * only the caps' precision: the slots stay counted as taken. */
static bool ids_append(struct ids *a, const char (*src)[UUID_STR_LEN], size_t k)
{
	if (a->n + k > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		while (cap < a->n + k)
			cap *= 2;
		char(*grown)[UUID_STR_LEN] = realloc(a->v, cap * UUID_STR_LEN);
		if (!grown)
			return false;
		a->v = grown;
		a->cap = cap;
	}
	if (k)
		memcpy(a->v[a->n], src, k * UUID_STR_LEN);
	a->n += k;
	return true;
}

/* ---- per-endpoint counts and jobs claimed ahead (claimer thread) ---------- */

static unsigned ep_hash(const char *id)
{
	unsigned h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % EP_BUCKETS;
}

/* The endpoint's entry; created when asked to (NULL when out of memory:
 * then only the cap's precision suffers). */
static struct ep_count *ep_get(struct dispatch *d, const char *id, bool create)
{
	unsigned b = ep_hash(id);
	for (struct ep_count *e = d->eps[b]; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	if (!create)
		return NULL;
	struct ep_count *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->id, id, UUID_STR_LEN);
	e->next = d->eps[b];
	d->eps[b] = e;
	return e;
}

/* Free the entry of an endpoint with nothing handed over or parked. */
static void ep_forget_if_idle(struct dispatch *d, struct ep_count *e)
{
	if (e->n || e->nparked)
		return;
	for (struct ep_count **pp = &d->eps[ep_hash(e->id)]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e->ring);
			free(e);
			return;
		}
}

/* Does the endpoint have a free slot for one more attempt in flight? */
static bool ep_has_room(const struct dispatch *d, const struct ep_count *e)
{
	unsigned cap = (unsigned)d->cfg->max_in_flight_per_endpoint;
	return cap == 0 || e->n < cap;
}

/* Keep a claimed job until its endpoint has a slot. false (the job left
 * untouched) when there is no room to keep it. */
static bool ep_park(struct dispatch *d, struct ep_count *e, struct store_job *job,
                    int64_t lease_until)
{
	unsigned cap = (unsigned)d->cfg->max_in_flight_per_endpoint;
	if (!e->ring && !(e->ring = malloc(cap * sizeof(*e->ring))))
		return false;
	if (e->nparked == cap)
		return false;
	struct parked *p = &e->ring[(e->head + e->nparked) % cap];
	p->job = *job;
	p->lease_until = lease_until;
	e->nparked++;
	return true;
}

/* Take the oldest parked job of the endpoint. */
static struct parked ep_unpark(struct dispatch *d, struct ep_count *e)
{
	unsigned cap = (unsigned)d->cfg->max_in_flight_per_endpoint;
	struct parked p = e->ring[e->head];
	e->head = (e->head + 1) % cap;
	e->nparked--;
	return p;
}

/* store_claim_room's lookup: what the endpoint has handed over or parked
 * (claimer thread, which owns d->eps). */
static unsigned ep_in_flight(const void *arg, const char *id)
{
	struct ep_count *e = ep_get((struct dispatch *)arg, id, false);
	return e ? e->n + e->nparked : 0;
}

/* ---- curl callbacks ---------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	size_t keep = x->d->cfg->response_keep < RESP_CAP ? x->d->cfg->response_keep : RESP_CAP;
	if (x->resp_len < keep && !x->resp)
		x->resp = malloc(RESP_CAP); /* kept with the transfer; none: keep nothing */
	if (x->resp_len < keep && x->resp) {
		size_t take = n < keep - x->resp_len ? n : keep - x->resp_len;
		memcpy(x->resp + x->resp_len, data, take);
		x->resp_len += take;
	}
	x->resp_seen += n;
	if (x->resp_seen > BODY_HARD_CAP) {
		x->capped = true;
		return 0; /* stop: a huge or endless body must not hold us */
	}
	return n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (n > 12 && strncasecmp(line, "retry-after:", 12) == 0) {
		char v[64];
		size_t vl = n - 12 < sizeof(v) - 1 ? n - 12 : sizeof(v) - 1;
		memcpy(v, line + 12, vl);
		v[vl] = '\0';
		x->retry_after = retry_after_ms(v, tu_now_ms());
	}
	return n;
}

/* Every socket a delivery opens is checked here, on the address connected to. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = arg;
	(void)purpose;
	const char *why = ssrf_check(&a->addr, x->d->cfg->allow);
	if (why) {
		char ip[INET6_ADDRSTRLEN] = "?";
		const void *src = a->family == AF_INET6
			? (const void *)&((struct sockaddr_in6 *)&a->addr)->sin6_addr
			: (const void *)&((struct sockaddr_in *)&a->addr)->sin_addr;
		inet_ntop(a->family, src, ip, sizeof(ip));
		snprintf(x->blocked, sizeof(x->blocked), "blocked: %s is a %s address", ip, why);
		return CURL_SOCKET_BAD;
	}
	curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
	if (fd != CURL_SOCKET_BAD)
		curlpoll_opened(x->d->poll, x->multi, fd);
	return fd;
}

/* ---- starting a transfer (loop thread) -------------------------------------- */

/* Build the header list in x->hdr / x->hbuf. 0, or -1 when signing fails. */
static int build_headers(struct xfer *x, int64_t ts)
{
	const struct store_job *j = &x->job;
	unsigned char key[SIGN_KEY_MAX];
	char std[SIGN_STD_LEN], av[SIGN_AV_LEN];
	int kl = sign_key_from_secret(j->secret, key);
	if (kl < 0 || sign_standard(key, (size_t)kl, j->event_id, ts, j->body, j->body_len, std) != 0)
		return -1;
	if (!j->is_primary && sign_agentvista(key, (size_t)kl, ts, j->body, j->body_len, av) != 0)
		return -1;
	const char *lines[NHDR];
	char ua[96], id[64], tsl[48], sig[96], avl[128];
	snprintf(ua, sizeof(ua), "User-Agent: %s", x->d->cfg->user_agent);
	snprintf(id, sizeof(id), "webhook-id: %s", j->event_id);
	snprintf(tsl, sizeof(tsl), "webhook-timestamp: %lld", (long long)ts);
	snprintf(sig, sizeof(sig), "webhook-signature: %s", std);
	int n = 0;
	lines[n++] = "Content-Type: application/json";
	lines[n++] = ua;
	lines[n++] = id;
	lines[n++] = tsl;
	lines[n++] = sig;
	if (!j->is_primary) {
		snprintf(avl, sizeof(avl), "X-AgentVista-Signature: %s", av);
		lines[n++] = avl;
	}
	lines[n++] = "Expect:";
	size_t used = 0;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(lines[i]) + 1;
		if (used + len > sizeof(x->hbuf))
			return -1;
		memcpy(x->hbuf + used, lines[i], len);
		x->hdr[i].data = x->hbuf + used;
		x->hdr[i].next = i + 1 < n ? &x->hdr[i + 1] : NULL;
		used += len;
	}
	return 0;
}

/* CURLOPT_DNS_CACHE_TIMEOUT for the next transfer on multi handle i, each
 * of which has a DNS cache of its own.
 *
 * libcurl 7.88 walks its whole DNS cache (an entry per host it has resolved,
 * IP literals included) as each transfer starts, to drop the entries older
 * than the timeout. Beside 2,000 endpoints that walk was a seventh of the
 * delivery loop's time. So transfers keep entries for good (-1 skips the
 * walk) except one per cfg->dns_ttl_ms on each multi handle, which walks
 * with that timeout: a host's address is looked up again within twice it.
 * libcurl counts the timeout in whole seconds; under one, that transfer
 * resolves afresh and drops every entry. */
static long dns_cache_timeout(struct dispatch *d, unsigned i)
{
	int64_t now = tu_mono_ms(), ttl = d->cfg->dns_ttl_ms;
	if (d->dns_pruned_at[i] && now - d->dns_pruned_at[i] < ttl)
		return -1;
	d->dns_pruned_at[i] = now;
	return (long)(ttl / 1000);
}

/* What changes from one attempt to the next. */
static void set_job_options(struct xfer *x)
{
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, dns_cache_timeout(x->d, x->multi));
	curl_easy_setopt(e, CURLOPT_URL, x->job.url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->job.body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->job.body_len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdr);
}

/* What every attempt of this transfer shares (the callbacks' data is the
 * transfer itself, which is reused with its handle). */
static void set_fixed_options(struct xfer *x)
{
	const struct dispatch_config *cfg = x->d->cfg;
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->attempt_timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	if (cfg->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, curlpoll_close_socket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, x->d->poll);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	/* libcurl sends a POST body from an upload buffer of each transfer's
	 * own, 64 KiB unless told otherwise. A payload is far smaller, and with
	 * 10,000 attempts in flight that default was 35 MiB of peak RSS; 16 KiB
	 * is libcurl's minimum (a larger body simply goes in several writes). */
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	/* Its receive buffer, 16 KiB by default, holds one read of the answer;
	 * receivers answer a webhook in a few hundred bytes. A read touches a
	 * page of the default buffer for each attempt in flight: 27 MiB of peak
	 * RSS at 10,000. Larger answers simply take more reads. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
}

/* A transfer from the free list, or a new one. Its easy handle keeps the
 * options every attempt shares (set once, above); an attempt sets only its
 * own, rather than resetting and re-setting some twenty options, six of
 * them copied strings, per attempt. */
static struct xfer *xfer_get(struct dispatch *d)
{
	struct xfer *x = d->free_xfers;
	if (x) {
		d->free_xfers = x->next_free;
		d->nfree--;
		return x;
	}
	x = calloc(1, sizeof(*x));
	if (x && !(x->easy = curl_easy_init())) {
		free(x);
		x = NULL;
	}
	if (x) {
		x->d = d;
		set_fixed_options(x);
	}
	return x;
}

static void finish(struct dispatch *d, struct xfer *x, CURLcode rc);

/* Start one claimed job; on failure its attempt is recorded as failed. */
static void start(struct dispatch *d, struct store_job *job)
{
	struct xfer *x = xfer_get(d);
	if (!x) {
		log_error("out of memory starting a delivery", "delivery=%s", job->delivery_id);
		store_job_clear(job); /* the lease expires; it is attempted again */
		return;
	}
	x->job = *job;
	memset(job, 0, sizeof(*job));
	x->resp_len = x->resp_seen = 0;
	x->capped = false;
	x->retry_after = -1;
	x->errbuf[0] = x->blocked[0] = '\0';
	x->started_wall = tu_now_ms();
	x->started_mono = tu_mono_ms();
	x->multi = curlpoll_multi_for(x->job.url);
	d->in_flight++;
	x->prev_on = NULL;
	x->next_on = d->active;
	if (d->active)
		d->active->prev_on = x;
	d->active = x;
	if (build_headers(x, x->started_wall / 1000) != 0) {
		snprintf(x->blocked, sizeof(x->blocked), "cannot sign: the endpoint secret is malformed");
		finish(d, x, CURLE_ABORTED_BY_CALLBACK);
		return;
	}
	set_job_options(x);
	if (curl_multi_add_handle(curlpoll_multi(d->poll, x->multi), x->easy) != CURLM_OK) {
		snprintf(x->blocked, sizeof(x->blocked), "cannot start the transfer");
		finish(d, x, CURLE_FAILED_INIT);
	}
}

/* ---- the outcome of a transfer (loop thread) ---------------------------- */

static uint32_t random32(void)
{
	uint32_t r = 0;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return r;
}

/* Success, a retry time, or a final failure, by the spec's delivery rules. */
static void decide(const struct dispatch_config *cfg, const struct xfer *x,
                   struct store_result *r)
{
	if (r->success) {
		r->status = DELIVERY_SUCCEEDED;
		return;
	}
	int64_t delay = retry_delay_ms(&cfg->schedule, r->attempt_number, random32());
	if (r->http_status == 410 || x->job.no_retry || delay < 0) {
		r->status = DELIVERY_FAILED;
		return;
	}
	if ((r->http_status == 429 || r->http_status == 503) && x->retry_after >= 0) {
		int64_t ra = x->retry_after < cfg->retry_after_cap_ms ? x->retry_after : cfg->retry_after_cap_ms;
		if (ra > delay)
			delay = ra;
	}
	r->status = DELIVERY_PENDING;
	r->next_attempt_at = tu_now_ms() + delay;
}

/* Did the receiver give its answer? A status line counts when the transfer
 * completed, when we stopped reading an over-long body ourselves, or when an
 * HTTP/2 server reset the stream after answering: servers that answer
 * without reading the request body (nginx `return 200`) reset the upload with
 * RST_STREAM(NO_ERROR), which libcurl before 8.x reports as a stream error. */
static bool answered(const struct xfer *x, CURLcode rc, long code)
{
	return code > 0 && (rc == CURLE_OK || x->capped || rc == CURLE_HTTP2_STREAM);
}



/* The error text of an attempt, or NULL for a success. */
static const char *error_text(const struct xfer *x, CURLcode rc, long code, char *buf, size_t cap)
{
	if (x->blocked[0])
		return x->blocked;
	if (answered(x, rc, code)) {
		/* A receiver that sends an endless or huge body is misbehaving:
		 * we stop reading (memory stays bounded) and count a failure. */
		if (x->capped) {
			snprintf(buf, cap, "HTTP %ld with a response body over %d bytes: stopped reading",
			         code, BODY_HARD_CAP);
			return buf;
		}
		if (code >= 200 && code < 300)
			return NULL;
		snprintf(buf, cap, "HTTP %ld", code);
		return buf;
	}
	snprintf(buf, cap, "%s%s%s", curl_easy_strerror(rc), x->errbuf[0] ? ": " : "", x->errbuf);
	return buf;
}

static struct outcome *make_outcome(struct xfer *x, CURLcode rc)
{
	long code = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	char ebuf[CURL_ERROR_SIZE + 64];
	const char *err = error_text(x, rc, code, ebuf, sizeof(ebuf));
	size_t el = err ? strlen(err) + 1 : 0;
	struct outcome *o = malloc(sizeof(*o) + x->resp_len + el);
	if (!o)
		return NULL;
	if (x->resp_len)
		memcpy(o->mem, x->resp, x->resp_len);
	if (err)
		memcpy(o->mem + x->resp_len, err, el);
	o->job = x->job;
	o->next = NULL;
	struct store_result *r = &o->r;
	*r = (struct store_result){
		.delivery_id = o->job.delivery_id, .endpoint_id = o->job.endpoint_id,
		.lease = o->job.lease, .row = o->job.row, .attempt_number = o->job.attempt_count + 1,
		.started_at = x->started_wall, .duration_ms = (int)(tu_mono_ms() - x->started_mono),
		.http_status = x->blocked[0] ? 0 : (int)code,
		.error = err ? o->mem + x->resp_len : NULL,
		.response_body = o->mem, .response_len = x->resp_len,
		.success = err == NULL,
	};
	decide(x->d->cfg, x, r);
	return o;
}

static void enqueue(struct dispatch *d, struct outcome *o)
{
	if (d->round_tail)
		d->round_tail->next = o;
	else
		d->round = o;
	d->round_tail = o;
}

/* Hand this round's outcomes to the recorder in one go: one lock and one
 * wake-up per round rather than per attempt, and one batch (one commit, one
 * fsync) for a burst of answers rather than a commit for the first of them. */
static void hand_outcomes(struct dispatch *d)
{
	if (!d->round)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->queue_tail)
		d->queue_tail->next = d->round;
	else
		d->queue = d->round;
	d->queue_tail = d->round_tail;
	pthread_cond_signal(d->outcome_cond);
	pthread_mutex_unlock(&d->lock);
	d->round = d->round_tail = NULL;
}

/* A transfer ended (or could not start): off the active list. */
static void unlink_active(struct dispatch *d, struct xfer *x)
{
	if (x->prev_on)
		x->prev_on->next_on = x->next_on;
	else
		d->active = x->next_on;
	if (x->next_on)
		x->next_on->prev_on = x->prev_on;
	x->prev_on = x->next_on = NULL;
	d->in_flight--;
}

static void xfer_destroy(struct xfer *x)
{
	curl_easy_cleanup(x->easy);
	free(x->resp);
	free(x);
}

/* A finished transfer back to the free list, or freed if that is full. */
static void xfer_put(struct dispatch *d, struct xfer *x)
{
	if (d->nfree >= XFER_KEEP) {
		xfer_destroy(x);
		d->destroyed++;
		return;
	}
	x->next_free = d->free_xfers;
	d->free_xfers = x;
	d->nfree++;
}

/* Note an endpoint slot to give back to the claimer (after collect). */
static void give_back_later(struct dispatch *d, const char *endpoint_id)
{
	ids_append(&d->succeeded, (const char(*)[UUID_STR_LEN])endpoint_id, 1);
}

static void finish(struct dispatch *d, struct xfer *x, CURLcode rc)
{
	struct outcome *o = make_outcome(x, rc);
	unlink_active(d, x);
	if (!o || o->r.success)
		give_back_later(d, x->job.endpoint_id);
	if (o) {
		o->slot_held = !o->r.success;
		enqueue(d, o); /* the outcome owns the job now */
	} else {
		store_job_clear(&x->job); /* out of memory: the lease expires, it goes again */
	}
	memset(&x->job, 0, sizeof(x->job));
	xfer_put(d, x);
}

/* Hand the slots of this round's successes to the claimer at once. */
static void give_back(struct dispatch *d)
{
	if (!d->succeeded.n)
		return;
	pthread_mutex_lock(&d->lock);
	d->claim_first = ids_append(&d->released, (const char(*)[UUID_STR_LEN])d->succeeded.v,
	                            d->succeeded.n);
	pthread_cond_signal(&d->claim_cond);
	pthread_mutex_unlock(&d->lock);
	d->succeeded.n = 0;
}

static void collect(struct dispatch *d)
{
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++) {
		CURLM *multi = curlpoll_multi(d->poll, i);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct xfer *x = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			CURLcode rc = m->data.result;
			curl_multi_remove_handle(multi, m->easy_handle);
			finish(d, x, rc);
		}
	}
}

/* ---- claiming (claimer thread) --------------------------------------------
 *
 * Claims run on a thread of their own so the loop never waits on the store:
 * a claim takes the store's write lock, which the recorder holds through its
 * commit's fsync, and a loop stalled there would stall every transfer.
 */

/* Append jobs to the loop's ready array (under d->lock); false when out of
 * memory (the jobs left untouched). */
static bool ready_append(struct dispatch *d, const struct store_job *jobs, size_t n)
{
	if (d->nready + n > d->ready_cap) {
		size_t cap = d->ready_cap ? d->ready_cap : 256;
		while (cap < d->nready + n)
			cap *= 2;
		struct store_job *grown = realloc(d->ready, cap * sizeof(*grown));
		if (!grown)
			return false;
		d->ready = grown;
		d->ready_cap = cap;
	}
	memcpy(d->ready + d->nready, jobs, n * sizeof(*jobs));
	d->nready += n;
	return true;
}

/* A claimed job that will not be attempted now: noted to be given back to
 * the store (by unclaim_dropped, outside d->lock), so it is due again at
 * once rather than when its lease ends. */
static void drop_claimed(struct dispatch *d, struct store_job *job)
{
	if (d->ndropped == d->dropped_cap) {
		size_t cap = d->dropped_cap ? d->dropped_cap * 2 : 64;
		struct store_lease *grown = realloc(d->dropped, cap * sizeof(*grown));
		if (grown) {
			d->dropped = grown;
			d->dropped_cap = cap;
		}
	}
	if (d->ndropped < d->dropped_cap) { /* else its lease simply ends */
		struct store_lease *l = &d->dropped[d->ndropped++];
		memcpy(l->delivery_id, job->delivery_id, UUID_STR_LEN);
		l->lease = job->lease;
	}
	store_job_clear(job);
	if (d->claimed)
		d->claimed--;
}

static void unclaim_dropped(struct dispatch *d)
{
	struct hk_err err;
	if (store_unclaim(d->store, d->dropped, d->ndropped, tu_now_ms(), &err) != HK_OK)
		log_warn("giving back claimed deliveries failed: they go when their leases end",
		         "deliveries=%zu code=%s", d->ndropped, err.code);
	d->ndropped = 0;
}

/* Hand the endpoint's parked jobs to the loop while it has free slots
 * (under d->lock). A job parked so long that its lease could run out
 * during the attempt is given back rather than attempted: another claim
 * then takes it with a fresh lease. Returns how many went. */
static size_t unpark_ready(struct dispatch *d, struct ep_count *e, int64_t now)
{
	size_t handed = 0;
	int64_t attempt_ms = d->cfg->connect_timeout_ms + d->cfg->attempt_timeout_ms;
	while (e->nparked && ep_has_room(d, e)) {
		struct parked p = ep_unpark(d, e);
		if (p.lease_until - now < attempt_ms || !ready_append(d, &p.job, 1)) {
			drop_claimed(d, &p.job);
			continue;
		}
		e->n++;
		handed++;
	}
	return handed;
}

/* The endpoint was paused (by the breaker or the API): what was claimed
 * ahead for it must not go out. The pause holds those deliveries; given
 * back, they go out as soon as the endpoint is enabled again. */
static void drop_parked(struct dispatch *d, struct ep_count *e)
{
	while (e->nparked) {
		struct parked p = ep_unpark(d, e);
		drop_claimed(d, &p.job);
	}
}

/* Apply what was given back and paused (under d->lock): a slot given back
 * goes first to a job claimed ahead for the same endpoint, at once and
 * without the store. */
static void take_released(struct dispatch *d)
{
	for (size_t i = 0; i < d->paused.n; i++) {
		struct ep_count *e = ep_get(d, d->paused.v[i], false);
		if (e) {
			drop_parked(d, e);
			ep_forget_if_idle(d, e);
		}
	}
	d->paused.n = 0;
	int64_t now = tu_now_ms();
	size_t handed = 0;
	for (size_t i = 0; i < d->released.n; i++) {
		if (d->claimed)
			d->claimed--;
		struct ep_count *e = ep_get(d, d->released.v[i], false);
		if (!e)
			continue;
		if (e->n)
			e->n--;
		handed += unpark_ready(d, e, now);
		ep_forget_if_idle(d, e);
	}
	if (handed)
		curlpoll_wakeup(d->poll);
	d->freed += (unsigned)d->released.n;
	d->released.n = 0;
	if (d->retry_due && (!d->next_due || d->retry_due < d->next_due))
		d->next_due = d->retry_due;
	d->retry_due = 0;
}

/* Hand claimed jobs to the loop and wake it. */
static void hand_over(struct dispatch *d, struct store_job *jobs, size_t n)
{
	pthread_mutex_lock(&d->lock);
	bool ok = ready_append(d, jobs, n);
	if (ok)
		curlpoll_wakeup(d->poll);
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		for (size_t i = 0; i < n; i++)
			store_job_clear(&jobs[i]); /* out of memory: the leases expire */
}

/* Count the claimed jobs against their endpoints: those with a free slot
 * stay in jobs[] (compacted; returns how many) to be handed over, the rest
 * are parked until a slot comes back. */
static size_t place_claimed(struct dispatch *d, struct store_job *jobs, size_t n,
                            int64_t lease_until)
{
	size_t go = 0;
	for (size_t i = 0; i < n; i++) {
		struct ep_count *e = ep_get(d, jobs[i].endpoint_id, true);
		if (e && !ep_has_room(d, e)) {
			if (!ep_park(d, e, &jobs[i], lease_until))
				drop_claimed(d, &jobs[i]); /* no memory to park it */
			continue;
		}
		if (e)
			e->n++;
		jobs[go++] = jobs[i];
	}
	return go;
}

/* Claim what is due and fits, and hand it to the loop. Returns true when
 * more may be due right now (a full batch came back). */
static bool claim(struct dispatch *d, int64_t now, bool surely_due)
{
	const struct dispatch_config *cfg = d->cfg;
	unsigned room = cfg->max_in_flight > d->claimed ? cfg->max_in_flight - d->claimed : 0;
	d->last_claim = now;
	d->freed = 0;
	if (room == 0)
		return false;
	/* Nothing due: say so from a read, without taking the write lock a
	 * claim takes (every publish wakes us, even with nothing to send).
	 * Not after a full claim, which says more is due. */
	int64_t due = 0;
	struct hk_err err;
	if (!surely_due && store_next_due(d->store, &due, &err) == HK_OK && (due == 0 || due > now)) {
		d->next_due = due;
		return false;
	}
	unsigned cap = room < CLAIM_MAX ? room : CLAIM_MAX;
	struct store_job jobs[CLAIM_MAX];
	/* Claim up to a cap's worth ahead per endpoint: what does not fit
	 * under the cap now is parked here, and goes out the moment a slot
	 * comes back instead of one claim (and one write lock) later. Parked
	 * jobs count against the global cap like those in flight. */
	struct store_claim_room r = { .per_endpoint = 2 * (unsigned)cfg->max_in_flight_per_endpoint,
	                              .in_flight = ep_in_flight, .arg = d };
	size_t n = 0;
	int64_t lease_until = now + cfg->connect_timeout_ms + cfg->attempt_timeout_ms + cfg->lease_margin_ms;
	hk_status st = store_claim(d->store, now, lease_until, cap, &r, jobs, &n, &err);
	if (st != HK_OK) {
		log_warn("claim failed", "code=%s", err.code);
		return false;
	}
	d->claimed += (unsigned)n;
	size_t go = place_claimed(d, jobs, n, lease_until);
	if (go)
		hand_over(d, jobs, go);
	if (n == cap)
		return true;
	if (store_next_due(d->store, &due, &err) == HK_OK)
		d->next_due = due;
	/* Due work left unclaimed: its endpoints are at their cap. Wait for a
	 * slot to be given back (that wakes us) rather than claim again at once:
	 * a loop of empty claims would hold the write lock against the recorder. */
	if (d->next_due && d->next_due <= now)
		d->next_due = 0;
	return false;
}

/* Should the claimer claim now (under d->lock)? */
static bool claim_wanted(struct dispatch *d, bool more, int64_t now)
{
	bool woke = d->wake;
	d->wake = false;
	bool due = d->next_due > 0 && now >= d->next_due;
	/* Slots given back: claim once a batch' worth is free, or when little
	 * is left claimed, not on every finished attempt. */
	bool refill = d->freed >= CLAIM_REFILL || (d->freed && d->claimed < CLAIM_REFILL);
	return more || woke || due || refill || now - d->last_claim >= POLL_MAX_MS;
}

/* Sleep (under d->lock) until woken, or until the next due time or poll. */
static void claimer_wait(struct dispatch *d, int64_t now)
{
	int64_t until = d->last_claim + POLL_MAX_MS;
	if (d->next_due > 0 && d->next_due < until)
		until = d->next_due;
	if (until <= now)
		return;
	struct timespec ts = mono_after(until - now);
	pthread_cond_timedwait(&d->claim_cond, &d->lock, &ts);
}

/* The claimer is done with the store for now (under d->lock). */
static void let_recorder_go(struct dispatch *d)
{
	if (!d->claim_first)
		return;
	d->claim_first = false;
	pthread_cond_signal(&d->cond);
}

/* Give what was given back and paused its effect, and the store the jobs
 * that will not be attempted (enters and leaves with d->lock held). */
static void settle_released(struct dispatch *d)
{
	take_released(d);
	if (d->ndropped) {
		pthread_mutex_unlock(&d->lock);
		unclaim_dropped(d);
		pthread_mutex_lock(&d->lock);
	}
}

/* Stopping: what was claimed ahead goes back to the store, due at once for
 * another node or the next start rather than when its lease ends (enters
 * and leaves with d->lock held). */
static void unclaim_parked(struct dispatch *d)
{
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_count *e = d->eps[b]; e; e = e->next)
			drop_parked(d, e);
	pthread_mutex_unlock(&d->lock);
	unclaim_dropped(d);
	pthread_mutex_lock(&d->lock);
}

static void *claimer_main(void *arg)
{
	struct dispatch *d = arg;
	bool more = true;
	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		settle_released(d);
		int64_t now = tu_now_ms();
		if (!claim_wanted(d, more, now)) {
			let_recorder_go(d);
			claimer_wait(d, now);
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		more = claim(d, now, more);
		pthread_mutex_lock(&d->lock);
		let_recorder_go(d);
	}
	unclaim_parked(d);
	let_recorder_go(d);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- the loop thread ------------------------------------------------------ */

/* Take the jobs the claimer handed over (they are started by the caller)
 * and whether we are stopping. */
static size_t take_ready(struct dispatch *d, bool *stopping)
{
	pthread_mutex_lock(&d->lock);
	*stopping = d->stopping;
	struct store_job *jobs = d->ready;
	size_t n = d->nready, cap = d->ready_cap;
	d->ready = d->spare;
	d->ready_cap = d->spare_cap;
	d->nready = 0;
	pthread_mutex_unlock(&d->lock);
	d->spare = jobs;
	d->spare_cap = cap;
	return n;
}

/* Start the jobs handed over; when stopping, drop them instead (their
 * leases expire, or are released at the next start). */
static void start_ready(struct dispatch *d, size_t n, bool stopping)
{
	for (size_t i = 0; i < n; i++) {
		if (stopping)
			store_job_clear(&d->spare[i]);
		else
			start(d, &d->spare[i]);
	}
}

/* Once a burst has freed many transfers, give the memory they and their
 * buffers held back to the OS, rather than keep the burst's peak RSS. */
static void release_heap(struct dispatch *d)
{
	if (d->destroyed < XFER_KEEP)
		return;
	int64_t now = tu_mono_ms();
	if (now - d->released_at < HEAP_RELEASE_EVERY_MS)
		return;
	heap_release();
	d->destroyed = 0;
	d->released_at = now;
}

static void *loop_main(void *arg)
{
	struct dispatch *d = arg;
	bool stopping = false;
	int64_t deadline = 0;
	for (;;) {
		size_t n = take_ready(d, &stopping);
		start_ready(d, n, stopping);
		if (stopping && !deadline)
			deadline = tu_mono_ms() + d->cfg->grace_ms;
		if (stopping && (d->in_flight == 0 || tu_mono_ms() >= deadline))
			break;
		curlpoll_run(d->poll, POLL_MAX_MS);
		collect(d);
		give_back(d); /* first: the claimer refills while the recorder writes */
		hand_outcomes(d);
		release_heap(d);
	}
	/* Grace is over: abandon what is still in flight (its lease expires). */
	while (d->active) {
		struct xfer *x = d->active;
		curl_multi_remove_handle(curlpoll_multi(d->poll, x->multi), x->easy);
		log_info("abandoned an attempt at shutdown", "delivery=%s", x->job.delivery_id);
		unlink_active(d, x);
		store_job_clear(&x->job);
		xfer_put(d, x);
	}
	hand_outcomes(d); /* of jobs that could not start in the last round */
	pthread_mutex_lock(&d->lock);
	d->loop_done = true;
	pthread_cond_signal(d->outcome_cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- the recorder thread ------------------------------------------------- */

/* Call and unlink the watchers of delivery id (recorder thread). */
static void notify(struct dispatch *d, const struct store_result *r)
{
	pthread_mutex_lock(&d->lock);
	struct watcher **pp = &d->watchers, *hit = NULL;
	while (*pp) {
		if (strcmp((*pp)->delivery_id, r->delivery_id) == 0) {
			struct watcher *w = *pp;
			*pp = w->next;
			w->next = hit;
			hit = w;
		} else {
			pp = &(*pp)->next;
		}
	}
	pthread_mutex_unlock(&d->lock);
	while (hit) {
		struct watcher *next = hit->next;
		hit->fn(hit->arg, r);
		free(hit);
		hit = next;
	}
}

/* Give the recorded attempts' endpoint slots back to the loop. */
static void release_slots(struct dispatch *d, const struct outcome *list,
                          const char (*paused)[UUID_STR_LEN], size_t np)
{
	int64_t due = 0;
	pthread_mutex_lock(&d->lock);
	/* Before the slots: the claimer must drop what it claimed ahead for a
	 * paused endpoint before a slot of it comes back. */
	ids_append(&d->paused, paused, np);
	for (const struct outcome *o = list; o; o = o->next) {
		if (!o->slot_held)
			continue; /* the loop gave it back when the attempt succeeded */
		if (!ids_append(&d->released, (const char(*)[UUID_STR_LEN])o->job.endpoint_id, 1))
			break;
		if (o->r.status == DELIVERY_PENDING && !o->r.fenced && (!due || o->r.next_attempt_at < due))
			due = o->r.next_attempt_at;
	}
	if (due && (!d->retry_due || due < d->retry_due))
		d->retry_due = due;
	/* No wake flag: the claimer claims for freed slots by its refill rule,
	 * and an unconditional claim would scan the backlog of a full endpoint. */
	if (d->released.n || d->retry_due)
		pthread_cond_signal(&d->claim_cond);
	pthread_mutex_unlock(&d->lock);
}

/* Write a batch, retrying while the store is busy: dropping it would let
 * the leases expire and the attempts be made twice. */
static void record_batch(struct dispatch *d, struct outcome *list)
{
	size_t n = 0;
	for (struct outcome *o = list; o; o = o->next)
		n++;
	struct store_result *r = malloc(n * sizeof(*r));
	char(*paused)[UUID_STR_LEN] = malloc(n * UUID_STR_LEN);
	size_t i = 0, np = 0;
	for (struct outcome *o = list; r && o; o = o->next)
		r[i++] = o->r;
	struct hk_err err;
	for (int tries = 0; r && paused; tries++) {
		if (store_record(d->store, r, n, d->cfg->breaker_threshold, paused, &np, &err) == HK_OK)
			break;
		log_warn("recording attempts failed, retrying", "attempts=%zu code=%s", n, err.code);
		usleep(tries < 10 ? 10000 : 200000);
	}
	i = 0;
	for (struct outcome *o = list; r && o; o = o->next)
		o->r.fenced = r[i++].fenced;
	release_slots(d, list, (const char(*)[UUID_STR_LEN])paused, paused ? np : 0);
	for (size_t k = 0; k < np; k++)
		log_info("endpoint paused by the circuit breaker", "endpoint=%s threshold=%d",
		         paused[k], d->cfg->breaker_threshold);
	for (struct outcome *o = list; o; o = list) {
		list = o->next;
		log_debug("attempt", "delivery=%s endpoint=%s attempt=%d http_status=%d dur_ms=%d fenced=%d",
		          o->r.delivery_id, o->r.endpoint_id, o->r.attempt_number, o->r.http_status,
		          o->r.duration_ms, o->r.fenced);
		notify(d, &o->r);
		store_job_clear(&o->job);
		free(o);
	}
	free(r);
	free(paused);
}

/* Slots were just given back: let the claim that refills them take the
 * store's write lock before this batch does (under d->lock). A claim is on
 * the deliveries' critical path, a record is not: waiting behind a record's
 * commit and fsync left the loop idle. Bounded, so a claimer that never
 * answers cannot stall recording. */
static void wait_for_claim(struct dispatch *d)
{
	if (!d->claim_first)
		return;
	struct timespec ts = mono_after(CLAIM_FIRST_MAX_MS);
	while (d->claim_first && !d->loop_done)
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) != 0)
			break;
}

static void *recorder_main(void *arg)
{
	struct dispatch *d = arg;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->queue && !d->loop_done)
			pthread_cond_wait(&d->cond, &d->lock);
		wait_for_claim(d);
		struct outcome *list = d->queue;
		d->queue = d->queue_tail = NULL;
		bool done = d->loop_done;
		pthread_mutex_unlock(&d->lock);
		if (list)
			record_batch(d, list);
		pthread_mutex_lock(&d->lock);
		if (done && !d->queue)
			break;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- one thread for both (a store with one writer) ----------------------- */

/* Claims and records in turn, claims first: a claim refills the loop, a
 * record can wait one claim. On SQLite this beats a claimer and a recorder
 * side by side (bench/JOURNAL.md): they could only take turns at the write
 * lock anyway, and each one's commit emptied the other's page cache. */
static void *store_main(void *arg)
{
	struct dispatch *d = arg;
	bool more = true, stopped = false;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		settle_released(d);
		if (d->stopping && !stopped) {
			unclaim_parked(d);
			stopped = true;
		}
		int64_t now = tu_now_ms();
		bool claiming = !d->stopping && claim_wanted(d, more, now);
		struct outcome *list = d->queue;
		d->queue = d->queue_tail = NULL;
		if (claiming || list) {
			pthread_mutex_unlock(&d->lock);
			if (claiming)
				more = claim(d, now, more);
			if (list)
				record_batch(d, list);
			pthread_mutex_lock(&d->lock);
		} else if (d->loop_done) {
			break;
		} else if (d->stopping) {
			pthread_cond_wait(&d->claim_cond, &d->lock); /* for the last outcomes */
		} else {
			claimer_wait(d, now);
		}
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- public ------------------------------------------------------------------ */

/* Start the threads, named for `top -H` and perf; on failure stop those
 * already started. */
static int start_threads(struct dispatch *d)
{
	if (pthread_create(&d->rec_thread, NULL, d->one_writer ? store_main : recorder_main, d) != 0)
		return -1;
	pthread_setname_np(d->rec_thread, d->one_writer ? "hookd-store" : "hookd-recorder");
	if (pthread_create(&d->loop_thread, NULL, loop_main, d) != 0) {
		pthread_mutex_lock(&d->lock);
		d->stopping = d->loop_done = true;
		pthread_cond_signal(d->outcome_cond);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->rec_thread, NULL);
		return -1;
	}
	pthread_setname_np(d->loop_thread, "hookd-loop");
	if (d->one_writer)
		return 0;
	if (pthread_create(&d->claim_thread, NULL, claimer_main, d) != 0) {
		pthread_mutex_lock(&d->lock);
		d->stopping = true;
		curlpoll_wakeup(d->poll);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->loop_thread, NULL);
		pthread_join(d->rec_thread, NULL);
		return -1;
	}
	pthread_setname_np(d->claim_thread, "hookd-claimer");
	return 0;
}

struct dispatch *dispatch_start(struct store *s, const struct dispatch_config *cfg,
                                struct hk_err *err)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct dispatch *d = calloc(1, sizeof(*d));
	if (!d || !(d->poll = curlpoll_new(IDLE_CONNS_KEPT))) {
		free(d);
		hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		return NULL;
	}
	d->store = s;
	d->cfg = cfg;
	d->wake = true;
	d->one_writer = store_one_writer(s);
	d->outcome_cond = d->one_writer ? &d->claim_cond : &d->cond;
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++) {
		CURLM *multi = curlpoll_multi(d->poll, i);
		curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
		/* A burst of transfers to one host opens a connection each before
		 * the first says it multiplexes (HTTP/2): 10,000 at once opened
		 * 9,000 connections at ~80 KiB each. Capped, the rest wait for a
		 * stream or a connection; their attempt timeout runs meanwhile. A
		 * host's transfers all go to one multi handle, so the cap holds. */
		curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_connections_per_host);
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* timed waits immune to clock steps */
	pthread_cond_init(&d->cond, &ca);
	pthread_cond_init(&d->claim_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (start_threads(d) != 0) {
		curlpoll_free(d->poll);
		pthread_cond_destroy(&d->claim_cond);
		pthread_cond_destroy(&d->cond);
		pthread_mutex_destroy(&d->lock);
		free(d);
		hk_fail(err, HK_EINTERNAL, NULL, "cannot start the dispatcher's threads");
		return NULL;
	}
	return d;
}

void dispatch_wake(struct dispatch *d)
{
	pthread_mutex_lock(&d->lock);
	d->wake = true;
	pthread_cond_signal(&d->claim_cond);
	pthread_mutex_unlock(&d->lock);
}

void dispatch_paused(struct dispatch *d, const char endpoint_id[UUID_STR_LEN])
{
	pthread_mutex_lock(&d->lock);
	if (ids_append(&d->paused, (const char(*)[UUID_STR_LEN])endpoint_id, 1))
		pthread_cond_signal(&d->claim_cond);
	pthread_mutex_unlock(&d->lock);
}

void dispatch_wake_cb(void *d)
{
	dispatch_wake(d);
}

void dispatch_paused_cb(void *d, const char *endpoint_id)
{
	dispatch_paused(d, endpoint_id);
}

int dispatch_watch(struct dispatch *d, const char *delivery_id, dispatch_watch_fn fn, void *arg)
{
	struct watcher *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	snprintf(w->delivery_id, sizeof(w->delivery_id), "%s", delivery_id);
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->lock);
		free(w);
		return -1;
	}
	w->next = d->watchers;
	d->watchers = w;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void dispatch_stop(struct dispatch *d)
{
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_signal(&d->claim_cond);
	curlpoll_wakeup(d->poll);
	pthread_mutex_unlock(&d->lock);
	if (!d->one_writer)
		pthread_join(d->claim_thread, NULL);
	pthread_join(d->loop_thread, NULL);
	pthread_join(d->rec_thread, NULL);
	pthread_mutex_lock(&d->lock);
	struct watcher *w = d->watchers;
	d->watchers = NULL;
	pthread_mutex_unlock(&d->lock);
	/* Watched deliveries that were not attempted: tell their waiters. */
	while (w) {
		struct watcher *next = w->next;
		struct store_result r = { .delivery_id = w->delivery_id, .fenced = true };
		w->fn(w->arg, &r);
		free(w);
		w = next;
	}
}

void dispatch_free(struct dispatch *d)
{
	if (!d)
		return;
	while (d->free_xfers) {
		struct xfer *x = d->free_xfers;
		d->free_xfers = x->next_free;
		xfer_destroy(x);
	}
	for (int b = 0; b < EP_BUCKETS; b++)
		while (d->eps[b]) {
			struct ep_count *e = d->eps[b];
			d->eps[b] = e->next;
			while (e->nparked) {
				struct parked p = ep_unpark(d, e);
				store_job_clear(&p.job); /* its lease expires, or is released at start */
			}
			free(e->ring);
			free(e);
		}
	curlpoll_free(d->poll); /* closes the connections */
	for (size_t i = 0; i < d->nready; i++)
		store_job_clear(&d->ready[i]);
	free(d->ready);
	free(d->spare);
	free(d->succeeded.v);
	free(d->released.v);
	free(d->paused.v);
	free(d->dropped);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	pthread_cond_destroy(&d->claim_cond);
	free(d);
}
