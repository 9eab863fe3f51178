/*
 * http_server: libmicrohttpd front end. See http_server.h.
 *
 * Life of a request (struct http_req, one allocation, plus its body):
 *   1st call of the access handler: route the path, refuse an announced
 *     Content-Length over the limit, allocate the request.
 *   upload calls: append to the body buffer (never past max_body: the excess
 *     is read and dropped, and the request answered 413).
 *   last call: answer 404/405/413/415 ourselves, or call the handler.
 *   completion (MHD_OPTION_NOTIFY_COMPLETED): log the line, free.
 *
 * Suspend/resume state machine, under req->lock:
 *   - the handler calls http_suspend: want_suspend = true;
 *   - anyone may store the answer (reply or resume_*): resp is set;
 *   - when the handler returns, the server thread takes the lock: if resp is
 *     set (answered in the handler, or resumed from another thread before
 *     the handler even returned) it is queued at once; else the connection
 *     is suspended (suspended = true) while the lock is held;
 *   - a later http_resume_* takes the lock, stores resp and, seeing
 *     suspended, calls MHD_resume_connection; libmicrohttpd then calls the
 *     access handler again, which queues resp.
 * So an answer is queued exactly once, by a server thread, whichever order
 * things happen in; a suspended request stays allocated until it is resumed.
 */
#include "http_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

struct http_server {
	struct MHD_Daemon *daemon;
	const struct router *router;
	void *app;
	size_t max_body;
	uint16_t port;
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	enum router_result route;
	struct router_match match;
	char *body;
	size_t body_len, body_cap;
	bool too_big;
	bool handled;
	void *data;
	int64_t started;
	/* answer hand-off, under lock */
	pthread_mutex_t lock;
	struct MHD_Response *resp;
	unsigned status;
	bool want_suspend;
	bool suspended;
	bool queued;
};

/* ---- answers -------------------------------------------------------------- */

json_t *http_error_body(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

static struct MHD_Response *json_response(json_t *body)
{
	struct MHD_Response *r;
	if (body) {
		char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(body);
		if (!text)
			return NULL;
		r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (!r) {
			free(text);
			return NULL;
		}
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	} else {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	return r;
}

/* Store the answer; resume the connection if it is suspended. Any thread. */
static void set_answer(struct http_req *req, unsigned status, json_t *body)
{
	struct MHD_Response *r = json_response(body);
	pthread_mutex_lock(&req->lock);
	if (req->resp || req->queued) {
		/* A second answer is a bug in a handler: keep the first. */
		pthread_mutex_unlock(&req->lock);
		if (r)
			MHD_destroy_response(r);
		log_error("request answered twice", "path=%s", req->path);
		return;
	}
	req->resp = r;
	req->status = r ? status : 500;
	if (req->suspended) {
		req->suspended = false;
		MHD_resume_connection(req->conn);
	}
	pthread_mutex_unlock(&req->lock);
}

static void error_answer(struct http_req *req, const struct hk_err *err)
{
	const char *code = err->code[0] ? err->code : hk_status_code(err->status);
	const char *msg = err->msg[0] ? err->msg : code;
	set_answer(req, (unsigned)hk_http_status(err->status), http_error_body(code, msg));
}

void http_reply_json(struct http_req *req, unsigned status, json_t *body) { set_answer(req, status, body); }
void http_reply_error(struct http_req *req, const struct hk_err *err) { error_answer(req, err); }
void http_resume_json(struct http_req *req, unsigned status, json_t *body) { set_answer(req, status, body); }
void http_resume_error(struct http_req *req, const struct hk_err *err) { error_answer(req, err); }

void http_suspend(struct http_req *req)
{
	pthread_mutex_lock(&req->lock);
	req->want_suspend = true;
	pthread_mutex_unlock(&req->lock);
}

/* Queue the stored answer (server thread). */
static enum MHD_Result queue_answer(struct http_req *req)
{
	struct MHD_Response *r = req->resp;
	req->resp = NULL;
	req->queued = true;
	if (!r)
		return MHD_NO;
	enum MHD_Result ok = MHD_queue_response(req->conn, req->status, r);
	MHD_destroy_response(r);
	return ok;
}

/* After the handler returned: queue its answer, or suspend. */
static enum MHD_Result after_handler(struct http_req *req)
{
	enum MHD_Result ok = MHD_YES;
	pthread_mutex_lock(&req->lock);
	if (req->resp) {
		ok = queue_answer(req);
	} else if (req->want_suspend) {
		req->suspended = true;
		MHD_suspend_connection(req->conn);
	} else {
		pthread_mutex_unlock(&req->lock);
		log_error("handler returned without an answer", "path=%s", req->path);
		struct hk_err err;
		hk_fail(&err, HK_EINTERNAL, NULL, "internal error");
		error_answer(req, &err);
		pthread_mutex_lock(&req->lock);
		ok = queue_answer(req);
	}
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
	return req->body ? req->body : "";
}

/* ---- the access handler --------------------------------------------------- */

static bool append_body(struct http_req *req, const char *data, size_t n)
{
	if (req->too_big || n > req->srv->max_body - req->body_len) {
		req->too_big = true;
		return true;
	}
	if (req->body_len + n + 1 > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : 1024;
		while (cap < req->body_len + n + 1)
			cap *= 2;
		char *grown = realloc(req->body, cap);
		if (!grown)
			return false;
		req->body = grown;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return true;
}

static bool json_content_type(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static void fail(struct http_req *req, unsigned status, const char *code, const char *msg)
{
	set_answer(req, status, http_error_body(code, msg));
}

/* The body is complete: answer what the server answers itself, or dispatch. */
static enum MHD_Result dispatch(struct http_req *req)
{
	req->handled = true;
	char msg[160];
	if (req->route == ROUTER_NO_PATH) {
		snprintf(msg, sizeof(msg), "no route for %.8s %.100s", req->method, req->path);
		fail(req, 404, "not_found", msg);
	} else if (req->route == ROUTER_NO_METHOD) {
		snprintf(msg, sizeof(msg), "%.8s is not allowed here; allowed: %s", req->method,
		         req->match.allow);
		fail(req, 405, "method_not_allowed", msg);
		if (req->resp)
			MHD_add_response_header(req->resp, MHD_HTTP_HEADER_ALLOW, req->match.allow);
	} else if (req->too_big) {
		snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes", req->srv->max_body);
		fail(req, 413, "payload_too_large", msg);
	} else if (req->body_len > 0 && !json_content_type(http_header(req, "Content-Type"))) {
		fail(req, 415, "unsupported_media_type", "the body must be application/json");
	} else {
		req->match.fn(req, req->srv->app);
		return after_handler(req);
	}
	pthread_mutex_lock(&req->lock);
	enum MHD_Result ok = queue_answer(req);
	pthread_mutex_unlock(&req->lock);
	return ok;
}

static struct http_req *new_request(struct http_server *srv, struct MHD_Connection *conn,
                                    const char *url, const char *method)
{
	struct http_req *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->srv = srv;
	req->conn = conn;
	req->method = method;
	req->path = url;
	req->started = tu_mono_ms();
	pthread_mutex_init(&req->lock, NULL);
	req->route = router_match(srv->router, method, url, &req->match);
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > srv->max_body)
		req->too_big = true;
	return req;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
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
	if (req->handled) {
		/* Answered early (body still coming: drop it), or resumed after a
		 * suspension: queue the answer stored meanwhile. */
		*upload_size = 0;
		pthread_mutex_lock(&req->lock);
		enum MHD_Result ok = req->resp ? queue_answer(req) : MHD_YES;
		pthread_mutex_unlock(&req->lock);
		return ok;
	}
	if (*upload_size) {
		bool ok = append_body(req, upload, *upload_size);
		*upload_size = 0;
		return ok ? MHD_YES : MHD_NO;
	}
	return dispatch(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	struct http_req *req = *con_cls;
	if (!req)
		return;
	if (log_enabled(LOG_INFO))
		log_info("request", "method=%s path=%s status=%u dur_ms=%lld%s", req->method, req->path,
		         req->queued ? req->status : 0, (long long)(tu_mono_ms() - req->started),
		         toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
	if (req->resp)
		MHD_destroy_response(req->resp);
	pthread_mutex_destroy(&req->lock);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn(msg, "component=libmicrohttpd");
}

/* ---- lifecycle ------------------------------------------------------------ */

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &res) != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

struct http_server *http_server_start(const struct http_config *cfg, const struct router *r,
                                      void *app, struct hk_err *err)
{
	struct sockaddr_storage ss;
	if (resolve(cfg->host, cfg->port, &ss) != 0) {
		hk_fail(err, HK_EINVALID, "bad_listen", "cannot resolve listen address %s", cfg->host);
		return NULL;
	}
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s) {
		hk_fail(err, HK_ENOMEM, NULL, "out of memory");
		return NULL;
	}
	s->router = r;
	s->app = app;
	s->max_body = cfg->max_body;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(
		flags, cfg->port, NULL, NULL, on_request, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 1 ? cfg->threads : 0),
		MHD_OPTION_CONNECTION_LIMIT, cfg->conn_limit,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->conn_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory_limit,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
		MHD_OPTION_END);
	if (!s->daemon) {
		hk_fail(err, HK_EINTERNAL, "listen_failed", "cannot listen on %s:%u", cfg->host, cfg->port);
		free(s);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : cfg->port;
	return s;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_quiesce(struct http_server *s)
{
	MHD_socket fd = MHD_quiesce_daemon(s->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
