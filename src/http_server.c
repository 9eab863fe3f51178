/*
 * http_server: libmicrohttpd front end. See http_server.h.
 *
 * Life of a request (struct http_req: one allocation, plus its body buffer):
 *   1st call of the access handler (headers in): allocate the request, route
 *     it, and, when the announced Content-Length is over the limit, answer
 *     at once (413, or 404/405) without reading the body.
 *   upload calls: append to the body, which grows geometrically up to
 *     max_body (exactly Content-Length when that is known). A body that
 *     goes over, or that no route will take, is read and dropped so the
 *     client still gets its 413/404/405 (libmicrohttpd cannot queue an
 *     answer in the middle of an upload); past DRAIN_MAX more bytes the
 *     connection is closed instead.
 *   last call (body complete): answer 404/405/413/415 ourselves, or call the
 *     handler (see the state machine below).
 *   completion (MHD_OPTION_NOTIFY_COMPLETED, also on aborts): log one line,
 *     free everything.
 *
 * Answer state machine (req->state, req->resp, under req->lock):
 *
 *   OPEN ──handler returns, answer stored──────────────────────▶ QUEUED
 *     │  (http_reply_* in the handler, or http_resume_* from another
 *     │   thread that won the race with the handler's return)
 *     │
 *     └─handler returns, no answer, http_suspend was called─▶ SUSPENDED
 *          (MHD_suspend_connection is called with the lock held)
 *   SUSPENDED ──http_resume_* (any thread)──▶ RESUMED ──access handler──▶ QUEUED
 *          (the answer is stored and the state changed under the lock; the
 *           lock is released, then MHD_resume_connection is called; the
 *           request cannot be freed before that call, since libmicrohttpd
 *           keeps a suspended connection until it is resumed)
 *
 * Every answer is built (JSON serialised) by the thread that gives it, and
 * queued to libmicrohttpd by a server thread from the access handler, whatever
 * the order of events. A second answer is a caller bug: it is logged and
 * dropped. After calling MHD_resume_connection the resuming thread never
 * touches the request again (the server thread may already have freed it).
 */
#include "http_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"

#define DEFAULT_MAX_BODY ((size_t)1 << 20)
#define DEFAULT_CONN_LIMIT 1024u
#define DEFAULT_MEMORY_LIMIT ((size_t)64 << 10)
#define DRAIN_MAX ((size_t)8 << 20) /* body bytes read past max_body before closing */
#define BODY_MIN_CAP 4096
#define BODY_EXACT_MAX ((size_t)64 << 10) /* a Content-Length up to this is allocated at once */

struct http_server {
	struct MHD_Daemon *daemon;
	const struct router *router;
	void *app;
	size_t max_body;
	uint16_t port;
	atomic_bool refusing; /* set by http_server_quiesce, read by every accept */
};

enum answer_state { AS_OPEN, AS_SUSPENDED, AS_RESUMED, AS_QUEUED };

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method; /* libmicrohttpd's, valid until completion */
	const char *path;
	struct timespec started;
	enum router_result route;
	bool dispatched;     /* the body was complete and the request decided */
	bool too_big;        /* announced or received body over max_body */
	size_t content_len;  /* announced Content-Length, or SIZE_MAX when unknown */
	size_t received;     /* body bytes seen, kept or dropped */
	char *body;          /* NUL-terminated when body_len > 0 */
	size_t body_len, body_cap;
	void *data;          /* the handler's slot */
	pthread_mutex_t lock; /* guards the five fields below */
	enum answer_state state;
	bool answered;
	bool want_suspend;
	struct MHD_Response *resp;
	unsigned status;
	struct router_match match; /* last: large, and mostly unused */
};

/* ---- answers -------------------------------------------------------------- */

/* Copy s into buf with every byte outside printable ASCII turned into '?':
 * always valid UTF-8, and safe to echo. */
static const char *ascii_copy(char *buf, size_t cap, const char *s)
{
	size_t n = 0;
	for (; s && *s && n + 1 < cap; s++)
		buf[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	buf[n] = '\0';
	return buf;
}

json_t *http_error_body(const char *code, const char *message)
{
	json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : "internal_error",
	                      "message", message ? message : "");
	if (j)
		return j;
	/* Not UTF-8 (e.g. a message cut inside a character): send it as ASCII. */
	char c[64], m[512];
	return json_pack("{s:{s:s, s:s}}", "error", "code", ascii_copy(c, sizeof(c), code), "message",
	                 ascii_copy(m, sizeof(m), message));
}

static const char SERIALIZE_FAILED[] =
	"{\"error\":{\"code\":\"internal_error\",\"message\":\"the answer could not be serialised\"}}";

/* A response for body (consumed; NULL: empty). NULL only when out of memory;
 * *status becomes 500 when the body cannot be serialised. */
static struct MHD_Response *make_response(json_t *body, unsigned *status)
{
	if (!body)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	struct MHD_Response *r = NULL;
	char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(body);
	if (text) {
		r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(text);
	} else {
		log_error("cannot serialise an answer", NULL);
		*status = 500;
		r = MHD_create_response_from_buffer(sizeof(SERIALIZE_FAILED) - 1, (void *)SERIALIZE_FAILED,
		                                    MHD_RESPMEM_PERSISTENT);
	}
	if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return r;
}

/* Give the answer: store it, and resume the connection if it is suspended.
 * Any thread; see the state machine at the top. */
static void set_answer(struct http_req *req, unsigned status, json_t *body, const char *allow)
{
	struct MHD_Response *r = make_response(body, &status);
	if (r && allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	pthread_mutex_lock(&req->lock);
	if (req->answered) {
		pthread_mutex_unlock(&req->lock);
		if (r)
			MHD_destroy_response(r);
		log_error("request answered twice", "status=%u", status);
		return;
	}
	req->answered = true;
	req->resp = r;
	req->status = r ? status : 500;
	bool resume = req->state == AS_SUSPENDED;
	if (resume)
		req->state = AS_RESUMED;
	struct MHD_Connection *conn = req->conn;
	pthread_mutex_unlock(&req->lock);
	if (resume)
		MHD_resume_connection(conn); /* req may be gone once this returns */
}

static void error_answer(struct http_req *req, const struct hk_err *err)
{
	if (!err) {
		set_answer(req, 500, http_error_body("internal_error", "internal error"), NULL);
		return;
	}
	int status = hk_http_status(err->status);
	if (status < 400)
		status = 500; /* an "error" that is not one is still our fault */
	const char *code = err->code[0] ? err->code : hk_status_code(err->status);
	const char *msg = err->msg[0] ? err->msg : code;
	set_answer(req, (unsigned)status, http_error_body(code, msg), NULL);
}

void http_reply_json(struct http_req *req, unsigned status, json_t *body)
{
	set_answer(req, status, body, NULL);
}

void http_reply_error(struct http_req *req, const struct hk_err *err)
{
	error_answer(req, err);
}

void http_resume_json(struct http_req *req, unsigned status, json_t *body)
{
	set_answer(req, status, body, NULL);
}

void http_resume_error(struct http_req *req, const struct hk_err *err)
{
	error_answer(req, err);
}

void http_suspend(struct http_req *req)
{
	pthread_mutex_lock(&req->lock);
	req->want_suspend = true;
	pthread_mutex_unlock(&req->lock);
}

/* Hand the stored answer to libmicrohttpd. Server thread, lock held. */
static enum MHD_Result queue_answer_locked(struct http_req *req)
{
	struct MHD_Response *r = req->resp;
	req->resp = NULL;
	req->state = AS_QUEUED;
	if (!r)
		return MHD_NO; /* out of memory: close the connection */
	enum MHD_Result ok = MHD_queue_response(req->conn, req->status, r);
	MHD_destroy_response(r);
	return ok;
}

/* The handler returned: queue its answer, or suspend. */
static enum MHD_Result after_handler(struct http_req *req)
{
	enum MHD_Result ok = MHD_YES;
	pthread_mutex_lock(&req->lock);
	if (!req->answered && !req->want_suspend) {
		pthread_mutex_unlock(&req->lock);
		log_error("handler returned without an answer", NULL);
		set_answer(req, 500, http_error_body("internal_error", "internal error"), NULL);
		pthread_mutex_lock(&req->lock);
	}
	if (req->answered) {
		ok = queue_answer_locked(req);
	} else {
		/* Suspended with the lock held: a resume waits until this is done. */
		MHD_suspend_connection(req->conn);
		req->state = AS_SUSPENDED;
	}
	pthread_mutex_unlock(&req->lock);
	return ok;
}

/* Called again after the body was complete: a resumed request. */
static enum MHD_Result after_resume(struct http_req *req)
{
	enum MHD_Result ok = MHD_YES;
	pthread_mutex_lock(&req->lock);
	if (req->state == AS_RESUMED)
		ok = queue_answer_locked(req);
	pthread_mutex_unlock(&req->lock);
	return ok;
}

/* ---- accessors ------------------------------------------------------------ */

const char *http_method(const struct http_req *req) { return req->method; }
const char *http_path(const struct http_req *req) { return req->path; }
void http_set_data(struct http_req *req, void *data) { req->data = data; }
void *http_get_data(const struct http_req *req) { return req->data; }

const char *http_param(const struct http_req *req, unsigned i)
{
	return i < req->match.nparams ? req->match.params[i] : NULL;
}

const char *http_query(const struct http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const struct http_req *req, size_t *len)
{
	if (len)
		*len = req->body_len;
	return req->body_len ? req->body : "";
}

/* ---- the request body ----------------------------------------------------- */

/* Content-Length as a number; SIZE_MAX when absent, malformed or huge. */
static size_t parse_content_length(const char *v)
{
	if (!v)
		return SIZE_MAX;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v < '0' || *v > '9')
		return SIZE_MAX;
	size_t n = 0;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (n > (SIZE_MAX - 10) / 10)
			return SIZE_MAX;
		n = n * 10 + (size_t)(*v - '0');
	}
	return n;
}

/* Make room for need bytes plus the NUL: the exact Content-Length when it is
 * known and small, else doubling from BODY_MIN_CAP, never past the limit. */
static bool body_reserve(struct http_req *req, size_t need)
{
	if (need + 1 <= req->body_cap)
		return true;
	size_t limit = req->srv->max_body;
	if (req->content_len < limit)
		limit = req->content_len;
	if (limit < need)
		limit = need; /* more than announced: MHD would not pass it, but be safe */
	size_t cap;
	if (req->body_cap == 0 && req->content_len <= BODY_EXACT_MAX)
		cap = limit + 1;
	else
		for (cap = req->body_cap ? req->body_cap : BODY_MIN_CAP; cap < need + 1; cap *= 2)
			;
	if (cap > limit + 1)
		cap = limit + 1;
	char *grown = realloc(req->body, cap);
	if (!grown)
		return false;
	req->body = grown;
	req->body_cap = cap;
	return true;
}

/* Take one chunk of upload data. MHD_NO closes the connection. */
static enum MHD_Result take_body(struct http_req *req, const char *data, size_t n)
{
	size_t max = req->srv->max_body;
	req->received = n > SIZE_MAX - req->received ? SIZE_MAX : req->received + n;
	if (req->received > max && !req->too_big) {
		req->too_big = true;
		free(req->body); /* the body will never be used: give the memory back now */
		req->body = NULL;
		req->body_len = req->body_cap = 0;
	}
	if (req->too_big || req->route != ROUTER_FOUND)
		/* Dropped; the client gets its answer once the body is read, unless
		 * it keeps sending far past the limit. */
		return req->received - (req->too_big ? max : 0) > DRAIN_MAX ? MHD_NO : MHD_YES;
	if (!body_reserve(req, req->body_len + n))
		return MHD_NO;
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return MHD_YES;
}

/* Is ct "application/json", in any case, maybe with parameters? */
static bool json_content_type(const char *ct)
{
	static const char type[] = "application/json";
	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, sizeof(type) - 1) != 0)
		return false;
	ct += sizeof(type) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* ---- routing and dispatch ------------------------------------------------- */

static void server_error(struct http_req *req, unsigned status, const char *code, const char *msg,
                         const char *allow)
{
	set_answer(req, status, http_error_body(code, msg), allow);
}

/* Answer what the server answers itself. True when it did. */
static bool server_answers(struct http_req *req)
{
	char msg[512], m[24], p[200]; /* big enough for every message below, whole */
	if (req->route == ROUTER_NO_PATH) {
		snprintf(msg, sizeof(msg), "no route for %s %s", ascii_copy(m, sizeof(m), req->method),
		         ascii_copy(p, sizeof(p), req->path));
		server_error(req, 404, "not_found", msg, NULL);
	} else if (req->route == ROUTER_NO_METHOD) {
		snprintf(msg, sizeof(msg), "method %s is not allowed on %s; allowed: %s",
		         ascii_copy(m, sizeof(m), req->method), ascii_copy(p, sizeof(p), req->path),
		         req->match.allow);
		server_error(req, 405, "method_not_allowed", msg, req->match.allow);
	} else if (req->too_big) {
		snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes", req->srv->max_body);
		server_error(req, 413, "payload_too_large", msg, NULL);
	} else if (req->body_len > 0 && !json_content_type(http_header(req, "Content-Type"))) {
		server_error(req, 415, "unsupported_media_type", "the request body must be application/json",
		             NULL);
	} else {
		return false;
	}
	return true;
}

/* The request is decided (body complete, or refused before reading it). */
static enum MHD_Result dispatch(struct http_req *req)
{
	req->dispatched = true;
	if (!server_answers(req))
		req->match.fn(req, req->srv->app);
	return after_handler(req);
}

static struct http_req *new_request(struct http_server *srv, struct MHD_Connection *conn,
                                    const char *url, const char *method)
{
	struct http_req *req = malloc(sizeof(*req));
	if (!req)
		return NULL;
	/* match (1 KiB of captures) is left to router_match, which sets every
	 * field that is read: fn, nparams, params[< nparams], allow. */
	memset(req, 0, offsetof(struct http_req, match));
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	req->srv = srv;
	req->conn = conn;
	req->method = method;
	req->path = url;
	pthread_mutex_init(&req->lock, NULL);
	req->route = router_match(srv->router, method, url, &req->match);
	req->content_len = parse_content_length(
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH));
	req->too_big = req->content_len != SIZE_MAX && req->content_len > srv->max_body;
	return req;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	(void)version;
	struct http_req *req = *con_cls;
	if (!req) {
		if (!(req = new_request(cls, conn, url, method)))
			return MHD_NO;
		*con_cls = req;
		/* Refuse an announced oversized body before reading it. */
		return req->too_big ? dispatch(req) : MHD_YES;
	}
	if (req->dispatched) {
		*upload_size = 0; /* after an early answer: nothing more to read */
		return after_resume(req);
	}
	if (*upload_size) {
		enum MHD_Result ok = take_body(req, upload, *upload_size);
		*upload_size = 0;
		return ok;
	}
	return dispatch(req);
}

/* ---- completion and logging ----------------------------------------------- */

/* logfmt-safe: s itself, or quoted by log_q when it holds anything odd. */
static const char *log_value(char *buf, unsigned cap, const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return log_q(buf, cap, s);
	return s;
}

static void log_request(const struct http_req *req)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double ms = (double)(now.tv_sec - req->started.tv_sec) * 1e3 +
	            (double)(now.tv_nsec - req->started.tv_nsec) / 1e6;
	char qm[40], qp[300];
	/* Capped: both come from the client; the rest of the line must survive. */
	log_info("request", "method=%.32s path=%.1024s status=%u dur_ms=%.1f",
	         log_value(qm, sizeof(qm), req->method), log_value(qp, sizeof(qp), req->path),
	         req->state == AS_QUEUED ? req->status : 0, ms);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct http_req *req = *con_cls;
	if (!req)
		return;
	*con_cls = NULL;
	if (log_enabled(LOG_INFO))
		log_request(req);
	if (req->resp) /* answered, but the connection ended before it was queued */
		MHD_destroy_response(req->resp);
	pthread_mutex_destroy(&req->lock);
	free(req->body);
	free(req);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_warn(msg, "component=libmicrohttpd");
}

/* libmicrohttpd's accept policy: after quiesce every new connection is
 * closed as soon as it is accepted (any server thread). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http_server *s = cls;
	(void)addr;
	(void)len;
	return atomic_load(&s->refusing) ? MHD_NO : MHD_YES;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if (getaddrinfo(host && *host ? host : NULL, ps, &hints, &res) != 0 || !res)
		return -1;
	int rc = -1;
	if (res->ai_addrlen <= sizeof(*ss) &&
	    (res->ai_family == AF_INET || res->ai_family == AF_INET6)) {
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		rc = 0;
	}
	freeaddrinfo(res);
	return rc;
}

struct http_server *http_server_start(const struct http_config *cfg, const struct router *r,
                                      void *app, struct hk_err *err)
{
	struct sockaddr_storage ss;
	if (resolve(cfg->host, cfg->port, &ss) != 0) {
		hk_fail(err, HK_EINVALID, "bad_listen", "cannot resolve listen address %s",
		        cfg->host ? cfg->host : "(any)");
		return NULL;
	}
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s) {
		hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		return NULL;
	}
	s->router = r;
	s->app = app;
	s->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
	atomic_init(&s->refusing, false);
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* A pool only for threads > 1 (libmicrohttpd warns about a size of 0). */
	struct MHD_OptionItem pool[] = {
		{ cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)cfg->threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	s->daemon = MHD_start_daemon(
		flags, cfg->port, on_accept, s, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_ARRAY, pool,
		MHD_OPTION_CONNECTION_LIMIT, cfg->conn_limit ? cfg->conn_limit : DEFAULT_CONN_LIMIT,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->conn_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		cfg->conn_memory_limit ? cfg->conn_memory_limit : DEFAULT_MEMORY_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_END);
	if (!s->daemon) {
		hk_fail(err, HK_EINTERNAL, "listen_failed", "cannot listen on %s:%u",
		        cfg->host ? cfg->host : "(any)", (unsigned)cfg->port);
		free(s);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info && info->port ? info->port : cfg->port;
	return s;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

/* Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75 it races a worker of an
 * epoll thread pool for taking the listening socket out of that worker's
 * epoll set, and whichever loses calls MHD_PANIC, which aborts. Refusing
 * each new connection at accept has no such race. */
void http_server_quiesce(struct http_server *s)
{
	if (s)
		atomic_store(&s->refusing, true);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
