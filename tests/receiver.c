/*
 * receiver: the real HTTPS webhook receiver the end-to-end tests deliver to.
 *
 *   receiver --cert server.pem --key server.key --log requests.jsonl
 *            --port-file port.txt [--port 0] [--http]
 *
 * libmicrohttpd with TLS, one thread per connection (so a slow path never
 * delays another request), on 127.0.0.1. The request path chooses the
 * answer, so each hookd endpoint's URL picks its receiver's behaviour:
 *   /status/<code>                 that status
 *   /seq/<c1>,<c2>,...[/x]         n-th request to this path gets c_n (last repeats)
 *   /sleep/<ms>[/x]                200 after ms
 *   /redirect[/x]                  302 to /status/200
 *   /retry-after/<s>/<code>[/x]    first request: <code> + Retry-After: s; then 200
 *   /body/<bytes>                  200 with that many bytes
 *   /hang                          never answers (until the receiver stops)
 *   /trickle                       200, then a body at one byte a second
 *   /huge                          200 and a 1 GiB body
 *   /gzip                          200, Content-Encoding: gzip, the --bomb file
 *   /drop                          closes the connection without answering
 *   anything else                  200 "ok"
 * Every request is appended to --log as one JSON line once its body is read:
 * {"t_ms","done_ms","method","path","headers":{lowercase: value},"body","status",
 *  "peer_port"}; peer_port tells connections apart (reused, or new).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define BODY_CAP (8 << 20)

static FILE *logf;
static volatile int stopping;
static const char *bomb_path; /* --bomb: a gzip file served at /gzip */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* logf and counters */
static unsigned port;

struct counter {
	char *path;
	unsigned n;
	struct counter *next;
};
static struct counter *counters;

struct req {
	long long t_ms;
	char *body;
	size_t len;
	bool too_big;
};

static long long now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* How many requests this exact path has had before, counting this one. */
static unsigned hit(const char *path)
{
	pthread_mutex_lock(&lock);
	struct counter *c = counters;
	while (c && strcmp(c->path, path) != 0)
		c = c->next;
	if (!c && (c = calloc(1, sizeof(*c)))) {
		c->path = strdup(path);
		c->next = counters;
		counters = c;
	}
	unsigned n = c ? ++c->n : 1;
	pthread_mutex_unlock(&lock);
	return n;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	char name[128];
	size_t i = 0;
	for (; k[i] && i < sizeof(name) - 1; i++)
		name[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
	name[i] = '\0';
	json_object_set_new(cls, name, json_string(v ? v : ""));
	return MHD_YES;
}

/* The client's port: one per connection on loopback. */
static int peer_port(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return 0;
	if (ci->client_addr->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ci->client_addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
}

static void record(struct MHD_Connection *c, const char *method, const char *path,
                   const struct req *r, unsigned status)
{
	json_t *h = json_object();
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, h);
	json_t *line = json_pack("{s:I, s:I, s:s, s:s, s:o, s:s%, s:i, s:i}", "t_ms", r->t_ms,
	                         "done_ms", now_ms(), "method", method, "path", path, "headers", h,
	                         "body", r->body ? r->body : "", r->len, "status", (int)status,
	                         "peer_port", peer_port(c));
	char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	pthread_mutex_lock(&lock);
	if (text) {
		fprintf(logf, "%s\n", text);
		fflush(logf);
	}
	pthread_mutex_unlock(&lock);
	free(text);
	json_decref(line);
}

/* The answer the path asks for. */
static unsigned behaviour(const char *path, char *extra_name, char *extra_value, size_t *body_n)
{
	unsigned code = 200, a;
	char list[256];
	extra_name[0] = extra_value[0] = '\0';
	*body_n = 0;
	if (sscanf(path, "/status/%u", &code) == 1)
		return code;
	if (sscanf(path, "/sleep/%u", &a) == 1) {
		usleep(a * 1000u);
		return 200;
	}
	if (strncmp(path, "/redirect", 9) == 0) {
		strcpy(extra_name, "Location");
		snprintf(extra_value, 128, "https://127.0.0.1:%u/status/200", port);
		return 302;
	}
	if (sscanf(path, "/retry-after/%u/%u", &a, &code) == 2) {
		if (hit(path) > 1)
			return 200;
		strcpy(extra_name, "Retry-After");
		snprintf(extra_value, 128, "%u", a);
		return code;
	}
	if (sscanf(path, "/body/%u", &a) == 1) {
		*body_n = a;
		return 200;
	}
	if (sscanf(path, "/seq/%255[0-9,]", list) == 1) {
		unsigned n = hit(path), i = 1;
		char *save = NULL;
		for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save), i++) {
			code = (unsigned)atoi(t);
			if (i == n)
				break;
		}
		return code;
	}
	return 200;
}

/* Body callbacks of the hostile answers. */
static ssize_t trickle(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls, (void)max;
	if (pos >= 60 || stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	sleep(1);
	buf[0] = 'x';
	return 1;
}

static ssize_t huge(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	if (pos >= (1ULL << 30) || stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	memset(buf, 'x', max);
	return (ssize_t)max;
}

/* The hostile answers; NULL when the path asks for none of them. */
static struct MHD_Response *hostile(const char *path, bool *drop)
{
	*drop = false;
	if (strcmp(path, "/hang") == 0) {
		while (!stopping)
			usleep(100000);
		return NULL;
	}
	if (strcmp(path, "/drop") == 0) {
		*drop = true;
		return NULL;
	}
	if (strcmp(path, "/trickle") == 0)
		return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1, trickle, NULL, NULL);
	if (strcmp(path, "/huge") == 0)
		return MHD_create_response_from_callback(1ULL << 30, 64 * 1024, huge, NULL, NULL);
	if (strcmp(path, "/gzip") == 0 && bomb_path) {
		FILE *f = fopen(bomb_path, "rb");
		if (!f)
			return NULL;
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fclose(f);
		int fd = open(bomb_path, O_RDONLY);
		struct MHD_Response *r = MHD_create_response_from_fd((size_t)n, fd);
		MHD_add_response_header(r, "Content-Encoding", "gzip");
		return r;
	}
	return NULL;
}

static enum MHD_Result answer(struct MHD_Connection *c, const char *method, const char *path,
                              struct req *r)
{
	bool drop;
	struct MHD_Response *h = hostile(path, &drop);
	if (drop || h || strcmp(path, "/hang") == 0) {
		record(c, method, path, r, h ? 200 : 0);
		if (!h)
			return MHD_NO; /* close the connection without an answer */
		enum MHD_Result ok = MHD_queue_response(c, 200, h);
		MHD_destroy_response(h);
		return ok;
	}
	char name[32], value[128], text[64];
	size_t big = 0;
	unsigned code = r->too_big ? 413 : behaviour(path, name, value, &big);
	struct MHD_Response *resp;
	if (big) {
		char *b = malloc(big);
		memset(b, 'x', big);
		resp = MHD_create_response_from_buffer(big, b, MHD_RESPMEM_MUST_FREE);
	} else {
		snprintf(text, sizeof(text), code == 200 && strncmp(path, "/status/", 8) != 0
		         ? "ok" : "status %u", code);
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
	}
	if (name[0])
		MHD_add_response_header(resp, name, value);
	record(c, method, path, r, code);
	enum MHD_Result ok = MHD_queue_response(c, code, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result list_requests(struct MHD_Connection *c, const char *log_path)
{
	FILE *f = fopen(log_path, "r");
	json_t *arr = json_array();
	char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0)
		json_array_append_new(arr, json_loads(line, 0, NULL));
	free(line);
	if (f)
		fclose(f);
	char *text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ok = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	(void)version;
	struct req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof(*r));
		r->t_ms = now_ms();
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->len + *upload_size > BODY_CAP) {
			r->too_big = true;
		} else {
			r->body = realloc(r->body, r->len + *upload_size + 1);
			memcpy(r->body + r->len, upload, *upload_size);
			r->len += *upload_size;
			r->body[r->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") == 0 && strcmp(url, "/_requests") == 0)
		return list_requests(c, cls);
	return answer(c, method, url, r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	struct req *r = *con_cls;
	if (r) {
		free(r->body);
		free(r);
	}
	*con_cls = NULL;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	s[n] = '\0';
	fclose(f);
	return s;
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL, *log_path = NULL, *port_file = NULL;
	bool plain = false;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--cert") == 0 && v) cert = argv[++i];
		else if (strcmp(argv[i], "--key") == 0 && v) key = argv[++i];
		else if (strcmp(argv[i], "--log") == 0 && v) log_path = argv[++i];
		else if (strcmp(argv[i], "--port-file") == 0 && v) port_file = argv[++i];
		else if (strcmp(argv[i], "--port") == 0 && v) port = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--http") == 0) plain = true;
		else if (strcmp(argv[i], "--bomb") == 0 && v) bomb_path = argv[++i];
		else {
			fprintf(stderr, "usage: receiver --cert PEM --key PEM --log FILE --port-file FILE [--port N] [--http]\n");
			return 2;
		}
	}
	if (!log_path || !port_file || (!plain && (!cert || !key)) || !(logf = fopen(log_path, "a"))) {
		fprintf(stderr, "receiver: missing or unusable arguments\n");
		return 2;
	}
	/* Block the stop signals before any thread starts; take them in main. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	char *cert_pem = plain ? NULL : slurp(cert), *key_pem = plain ? NULL : slurp(key);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	if (!plain)
		flags |= MHD_USE_TLS;
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, (uint16_t)port, NULL, NULL, on_request, (void *)log_path,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
		MHD_OPTION_CONNECTION_LIMIT, 16384u,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 16384u,
		MHD_OPTION_CONNECTION_TIMEOUT, 120u,
		plain ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_KEY, key_pem,
		MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "receiver: cannot start\n");
		return 1;
	}
	port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
	FILE *pf = fopen(tmp, "w");
	fprintf(pf, "%u\n", port);
	fclose(pf);
	rename(tmp, port_file);
	int sig;
	sigwait(&set, &sig);
	stopping = 1;
	MHD_stop_daemon(d);
	fclose(logf);
	free(cert_pem);
	free(key_pem);
	for (struct counter *c = counters, *n; c; c = n) {
		n = c->next;
		free(c->path);
		free(c);
	}
	return 0;
}
