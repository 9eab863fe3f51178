/*
 * client: the benchmark's own HTTP load client on the libcurl multi interface.
 *
 *   client [--threads T] [--rate R] [--log FILE] [--cafile PEM] [-H 'Name: value']...
 *          URL N CONCURRENCY BODY
 *
 * POSTs BODY to URL N times, CONCURRENCY at once (split over T threads, each
 * with its own multi handle), with keep-alive and the same curl options the
 * hookd dispatcher uses. Against nginx it measures the "client ceiling":
 * what libcurl alone does here before hookd adds storage, signing and
 * scheduling. Against hookd it publishes events. With --rate it sends R
 * requests a second from one thread and, with --log, writes one line per
 * answer: "<send_ms> <recv_ms> <http status> <response body>".
 * Prints: requests=N ok=K secs=S rps=X peak_rss_kib=M
 * (M: the client's own peak RSS, libcurl's floor for CONCURRENCY in flight)
 * A thread gives up after GIVE_UP transport failures with no success, and
 * the first failure's error goes to stderr. Exits 1 unless all N got a 2xx.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

enum { GIVE_UP = 256 }; /* transport failures before any success */

struct opts {
	const char *url, *body, *cafile, *log;
	struct curl_slist *headers;
	long n, conc, threads, rate;
};

struct worker {
	const struct opts *o;
	long n, conc, ok, failed;
	FILE *log;
	pthread_t t;
};

struct xfer {
	CURL *e;
	long long sent;
	char resp[256];
	size_t resp_len;
};

static long long now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* VmHWM: the most this process has held in memory. */
static long peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

static size_t on_body(char *d, size_t s, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = s * n, take = len < sizeof(x->resp) - 1 - x->resp_len ? len : sizeof(x->resp) - 1 - x->resp_len;
	memcpy(x->resp + x->resp_len, d, take);
	x->resp_len += take;
	x->resp[x->resp_len] = '\0';
	return len;
}

static void start(struct worker *w, CURLM *m, struct xfer *x)
{
	const struct opts *o = w->o;
	if (!x->e) {
		x->e = curl_easy_init();
		curl_easy_setopt(x->e, CURLOPT_URL, o->url);
		curl_easy_setopt(x->e, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(x->e, CURLOPT_POSTFIELDSIZE, (long)strlen(o->body));
		curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, o->headers);
		curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(x->e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
		curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x);
		curl_easy_setopt(x->e, CURLOPT_PRIVATE, x);
		curl_easy_setopt(x->e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
		curl_easy_setopt(x->e, CURLOPT_BUFFERSIZE, 1024L);
		if (o->cafile)
			curl_easy_setopt(x->e, CURLOPT_CAINFO, o->cafile);
	}
	x->resp_len = 0;
	x->sent = now_ms();
	curl_multi_add_handle(m, x->e);
}

static void done(struct worker *w, CURLMsg *msg)
{
	struct xfer *x;
	long code = 0;
	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
	CURLcode rc = msg->data.result;
	if ((rc == CURLE_OK || rc == CURLE_HTTP2_STREAM) && code >= 200 && code < 300)
		w->ok++;
	else if (rc != CURLE_OK && ++w->failed == 1)
		fprintf(stderr, "client: %s\n", curl_easy_strerror(rc));
	if (w->log)
		fprintf(w->log, "%lld %lld %ld %s\n", x->sent, now_ms(), code, x->resp);
}

static void *run(void *arg)
{
	struct worker *w = arg;
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 256L);
	struct xfer *xs = calloc(w->conc > 0 ? (size_t)w->conc : 1, sizeof(*xs));
	long started = 0, finished = 0;
	long long t0 = now_ms();
	for (long i = 0; i < w->conc && started < w->n && !w->o->rate; i++, started++)
		start(w, m, &xs[i]);
	long idle = 0; /* rate mode: the free xfer slots, used as a stack */
	long *free_slots = calloc(w->conc > 0 ? (size_t)w->conc : 1, sizeof(long));
	if (w->o->rate)
		for (idle = 0; idle < w->conc; idle++)
			free_slots[idle] = idle;
	/* A receiver that fails every transfer (a certificate the client does
	 * not trust, say) would otherwise take an hour to fail them all: each
	 * failed handshake reloads the CA bundle. Give up early instead. */
	while (finished < w->n && !(w->ok == 0 && w->failed >= GIVE_UP)) {
		if (w->o->rate) {
			long due = (now_ms() - t0) * w->o->rate / 1000 + 1;
			while (started < due && started < w->n && idle > 0) {
				start(w, m, &xs[free_slots[--idle]]);
				started++;
			}
		}
		int running;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct xfer *x;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			done(w, msg);
			curl_multi_remove_handle(m, msg->easy_handle);
			finished++;
			if (w->o->rate)
				free_slots[idle++] = x - xs;
			else if (started < w->n) {
				start(w, m, x);
				started++;
			}
		}
		curl_multi_poll(m, NULL, 0, w->o->rate ? 1 : 100, NULL);
	}
	for (long i = 0; i < w->conc; i++)
		if (xs[i].e)
			curl_easy_cleanup(xs[i].e);
	free(xs);
	free(free_slots);
	curl_multi_cleanup(m);
	return NULL;
}

int main(int argc, char **argv)
{
	struct opts o = { .threads = 1 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(argv[i], "--threads")) o.threads = atol(v);
		else if (!strcmp(argv[i], "--rate")) o.rate = atol(v);
		else if (!strcmp(argv[i], "--log")) o.log = v;
		else if (!strcmp(argv[i], "--cafile")) o.cafile = v;
		else if (!strcmp(argv[i], "-H")) o.headers = curl_slist_append(o.headers, v);
	}
	if (argc - i != 4) {
		fprintf(stderr, "usage: client [--threads T] [--rate R] [--log F] [--cafile PEM] [-H h]... URL N CONC BODY\n");
		return 2;
	}
	o.url = argv[i];
	o.n = atol(argv[i + 1]);
	o.conc = atol(argv[i + 2]);
	o.body = argv[i + 3];
	o.headers = curl_slist_append(o.headers, "Content-Type: application/json");
	o.headers = curl_slist_append(o.headers, "Expect:");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (o.rate)
		o.threads = 1;
	struct worker *ws = calloc((size_t)o.threads, sizeof(*ws));
	FILE *log = o.log ? fopen(o.log, "w") : NULL;
	long long t0 = now_ms();
	for (long t = 0; t < o.threads; t++) {
		ws[t] = (struct worker){ .o = &o, .n = o.n / o.threads + (t < o.n % o.threads),
		                         .conc = o.conc / o.threads > 0 ? o.conc / o.threads : 1, .log = log };
		pthread_create(&ws[t].t, NULL, run, &ws[t]);
	}
	long ok = 0;
	for (long t = 0; t < o.threads; t++) {
		pthread_join(ws[t].t, NULL);
		ok += ws[t].ok;
	}
	double secs = (double)(now_ms() - t0) / 1000.0;
	printf("requests=%ld ok=%ld secs=%.3f rps=%.0f peak_rss_kib=%ld\n", o.n, ok, secs,
	       (double)ok / secs, peak_rss_kib());
	if (log)
		fclose(log);
	curl_slist_free_all(o.headers);
	free(ws);
	curl_global_cleanup();
	return ok == o.n ? 0 : 1;
}
