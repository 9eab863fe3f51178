/*
 * api: what every route handler shares. The application context, the routes
 * table, authentication and roles, request-body parsing, validation of the
 * fields both API surfaces take, and the JSON shapes both surfaces answer.
 *
 * Handlers (api_org.c, api_workspace.c, api_events.c) follow one order of
 * checks, so equal mistakes answer equally everywhere: key (401), org in the
 * path (404), role (403), body (400), fields (422), then the store (404/409).
 * Each api_* check that fails has already answered the request: the handler
 * just returns.
 */
#ifndef HK_API_H
#define HK_API_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "http_server.h"
#include "publish.h"
#include "router.h"
#include "ssrf.h"
#include "store.h"

struct publisher;
struct dispatch;

struct app {
	struct store *store;
	struct publisher *publisher;
	struct dispatch *dispatch;
	const struct config *cfg;
	const struct ssrf_allow *allow;
};

/* Add every route of hookd to r. Returns 0, or -1 when out of memory. */
int api_routes(struct router *r);

/* One route of a module's table. */
struct api_route {
	const char *method;
	const char *pattern;
	http_handler_fn fn;
};

/* Add a module's table of n routes. 0, or -1 when out of memory. */
int api_add_routes(struct router *r, const struct api_route *routes, size_t n);

/* The routes of each module, called by api_routes. */
int api_org_routes(struct router *r);
int api_events_routes(struct router *r);
int api_workspace_routes(struct router *r);

/* ---- checks: each answers the request itself when it fails ---------------- */

/* Authenticate the bearer key into *auth (OUT). */
bool api_auth(struct http_req *req, struct app *app, struct store_auth *auth);
/* Authenticate and check that the {slug} path parameter (index i) is the
 * key's org: another org's slug answers 404 as if it did not exist. */
bool api_auth_org(struct http_req *req, struct app *app, unsigned i, struct store_auth *auth);
/* The key must be an admin's. */
bool api_require_admin(struct http_req *req, const struct store_auth *auth);
/* Parse the body as a JSON object (400 when malformed, nested deeper than
 * 64, or not an object). *out (OUT) is a new reference. When the body is
 * empty and optional, *out is an empty object. */
bool api_body_object(struct http_req *req, bool optional, json_t **out);
/* Answer 422 for the first member of obj not named in allowed (NULL-ended). */
bool api_only_fields(struct http_req *req, json_t *obj, const char *const *allowed);
/* Answer err through http_reply_error and return false (for `return api_fail(...)`). */
bool api_fail(struct http_req *req, const struct hk_err *err);
/* Fill err for a publisher_submit refusal (why: its return value): 503
 * shutting_down or overloaded. Returns err->status. */
hk_status api_publish_refused(enum publish_refusal why, struct hk_err *err);

/* ---- validation --------------------------------------------------------- */

/* Is the JSON text nested at most max deep? One pass over the raw bytes,
 * before the parser recurses into a hostile body. */
bool api_json_depth_ok(const char *s, size_t len, int max);
/* A decimal integer in [lo, hi] with no sign, space or junk; 0 or -1. */
int api_parse_int(const char *v, long lo, long hi, long *out);

/* 1-128 characters of [A-Za-z0-9_.-]. */
bool api_valid_event_type(const char *s);
/* A non-empty array (at most 100) of event types or "*". On success *text
 * (OUT, malloc'd) is its compact JSON. */
hk_status api_event_types(json_t *v, char **text, struct hk_err *err);
/* A string of at most max characters (UTF-8 code points). */
hk_status api_string_field(json_t *v, const char *field, size_t max, const char **out,
                           struct hk_err *err);
/* A page/per_page style query integer in [lo, hi], def when absent. */
hk_status api_query_int(struct http_req *req, const char *name, long lo, long hi, long def,
                        long *out, struct hk_err *err);
/* A canonical UUID from a path or query value, optionally with a prefix
 * ("delivery_"); HK_ENOTFOUND with code not_found_code when malformed. */
hk_status api_uuid(const char *in, const char *prefix, char out[UUID_STR_LEN],
                   const char *what, struct hk_err *err);

/* ---- JSON shapes -------------------------------------------------------- */

/* ISO 8601 UTC string, or JSON null for 0. */
json_t *api_time(int64_t ms);
/* Integer, or JSON null for 0. */
json_t *api_int_or_null(int v);
/* "pending" / "succeeded" / "failed". */
const char *api_status_name(enum delivery_status st);
/* Any bytes as a JSON string: invalid UTF-8 becomes U+FFFD. */
json_t *api_text(const char *s, size_t len);
/* The organization API's endpoint object (secret included when with_secret). */
json_t *api_endpoint_json(const struct store_endpoint *ep, bool with_secret);

#endif
