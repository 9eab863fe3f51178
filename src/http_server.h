/*
 * http_server: the API's HTTP front end, on libmicrohttpd.
 *
 * Threads: libmicrohttpd runs an epoll thread pool (cfg->threads). Each
 * request's body is read whole (at most cfg->max_body bytes, else 413) and the
 * request is routed to one handler, called on a pool thread. Before the
 * handler is called the server has already answered, with the spec's JSON
 * error, a path that matches no route (404), a wrong method (405), an
 * oversized body (413), and a non-empty body whose Content-Type is not
 * application/json (415).
 *
 * A handler must, before it returns, either answer (http_reply_*) or suspend
 * the request (http_suspend). A suspended request holds no server thread; any
 * thread later answers it exactly once with http_resume_*, which hands the
 * answer back to libmicrohttpd (MHD_resume_connection is thread-safe). This is
 * how publishing waits for its group commit.
 *
 * Every request ends with one logfmt line: method, path, status, duration.
 */
#ifndef HK_HTTP_SERVER_H
#define HK_HTTP_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "router.h"

struct http_config {
	const char *host;          /* e.g. "127.0.0.1" */
	uint16_t port;             /* 0: let the kernel choose */
	unsigned threads;          /* pool size */
	size_t max_body;           /* bytes; larger bodies get 413 */
	unsigned conn_limit;       /* concurrent connections */
	unsigned conn_timeout_s;   /* idle connection timeout (slow clients) */
	size_t conn_memory_limit;  /* per-connection buffer; bounds header size */
};

struct http_server;
struct http_req;

/* Start serving. router and app must outlive the server; app is passed to
 * every handler. NULL on failure with err filled. */
struct http_server *http_server_start(const struct http_config *cfg, const struct router *r,
                                      void *app, struct hk_err *err);

/* The bound port (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);

/* Stop taking new connections: each is closed as soon as it is accepted.
 * Open connections go on, and may still send requests, until stop. Any
 * thread. */
void http_server_quiesce(struct http_server *s);

/* Stop, closing all connections, and free. Every suspended request must have
 * been resumed first. */
void http_server_stop(struct http_server *s);

/* Request accessors: the strings live until the request is answered. */
const char *http_method(const struct http_req *req);
const char *http_path(const struct http_req *req);
const char *http_param(const struct http_req *req, unsigned i); /* i-th {capture}, NULL if none */
const char *http_query(const struct http_req *req, const char *key); /* NULL when absent */
const char *http_header(const struct http_req *req, const char *name); /* case-insensitive */
const char *http_body(const struct http_req *req, size_t *len); /* NUL-terminated, "" when empty */

/* Per-request slot for a handler's own state across a suspension. */
void http_set_data(struct http_req *req, void *data);
void *http_get_data(const struct http_req *req);

/* Answer now, from the handler. Each takes ownership of body (may be NULL for
 * an empty body). Exactly one answer per request. */
void http_reply_json(struct http_req *req, unsigned status, json_t *body);
void http_reply_error(struct http_req *req, const struct hk_err *err);

/* Suspend: the handler returns without answering; call one http_resume_* later. */
void http_suspend(struct http_req *req);

/* Answer a suspended request, from any thread. Takes ownership of body. */
void http_resume_json(struct http_req *req, unsigned status, json_t *body);
void http_resume_error(struct http_req *req, const struct hk_err *err);

/* The spec's error object {"error":{"code","message"}}; new reference. */
json_t *http_error_body(const char *code, const char *message);

#endif
