/*
 * router: maps a method and a path to a handler.
 *
 * Patterns are literal segments and {name} captures, e.g.
 *     "/org/{slug}/webhooks/endpoints/{id}"
 * A capture matches one non-empty segment. Matching is exact (no trailing
 * slash tolerance, no prefix match). When some pattern matches the path but
 * none with that method does, the result is ROUTER_NO_METHOD (405) and the
 * allowed methods are reported; when no pattern matches, ROUTER_NO_PATH (404).
 * A router is built once at start-up and only read afterwards, so matching
 * from many server threads at once needs no lock.
 */
#ifndef HK_ROUTER_H
#define HK_ROUTER_H

#include <stddef.h>

struct http_req;
typedef void (*http_handler_fn)(struct http_req *req, void *app);

#define ROUTER_MAX_PARAMS 4
#define ROUTER_PARAM_MAX 256 /* longest captured segment, including NUL */

enum router_result { ROUTER_FOUND, ROUTER_NO_PATH, ROUTER_NO_METHOD };

struct router_match {
	http_handler_fn fn;
	unsigned nparams;
	char params[ROUTER_MAX_PARAMS][ROUTER_PARAM_MAX]; /* captures, in pattern order */
	char allow[64];                                 /* "GET, POST" for ROUTER_NO_METHOD */
};

/* A new empty router, or NULL when out of memory. Free with router_free. */
struct router *router_new(void);
void router_free(struct router *r);

/* Add a route. Returns 0, or -1 for a malformed pattern or out of memory. */
int router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn);

/* Match method + path (no query string). Fills *m (OUT) on ROUTER_FOUND and
 * m->allow on ROUTER_NO_METHOD. A segment longer than ROUTER_PARAM_MAX-1 does
 * not match a capture. */
enum router_result router_match(const struct router *r, const char *method, const char *path,
                                struct router_match *m);

#endif
