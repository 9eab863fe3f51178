/*
 * router: method + path pattern matching. See router.h.
 *
 * Design: patterns are split into segments once, at router_add, and kept as
 * (pointer, length) pairs; a capture is a segment with no text. router_match
 * splits the request path once into at most ROUTER_MAX_SEGS segments on the
 * stack and scans the routes linearly (a few dozen routes: a scan over
 * pre-split patterns beats anything cleverer), comparing the segment count
 * first. It never allocates; the captures are copied out only for the route
 * that wins.
 *
 * When several routes of the request's method match, the most specific wins
 * (the one with the most literal segments; on a tie, the first added), so
 * "/v1/webhooks/test" beats "/v1/webhooks/{id}" whatever the order of adding.
 */
#include "router.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ROUTER_MAX_SEGS 16 /* segments in a pattern or a matchable path */
#define METHOD_MAX 16      /* longest method name, including NUL */

struct seg {
	const char *text; /* literal text (in route.mem), or NULL for a {capture} */
	size_t len;
};

struct route {
	char method[METHOD_MAX];
	http_handler_fn fn;
	unsigned nseg, nlit;
	struct seg seg[ROUTER_MAX_SEGS];
	char *mem; /* the pattern's copy that seg[].text points into */
};

struct router {
	size_t n, cap;
	struct route *routes;
};

struct router *router_new(void)
{
	return calloc(1, sizeof(struct router));
}

void router_free(struct router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->routes[i].mem);
	free(r->routes);
	free(r);
}

/* A method is an upper-case token: "GET", "POST", ... */
static bool valid_method(const char *m)
{
	size_t n = strlen(m);
	if (n == 0 || n >= METHOD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((m[i] < 'A' || m[i] > 'Z') && m[i] != '_' && m[i] != '-')
			return false;
	return true;
}

/* Is s[0..len) a well-formed "{name}"? Braces elsewhere are refused. */
static int classify_segment(const char *s, size_t len)
{
	const char *open = memchr(s, '{', len), *close = memchr(s, '}', len);
	if (!open && !close)
		return 0; /* literal */
	if (len < 3 || s[0] != '{' || s[len - 1] != '}' || memchr(s + 1, '{', len - 2) ||
	    memchr(s + 1, '}', len - 2))
		return -1;
	return 1; /* capture */
}

/* Split pattern into rt's segments. "/" is the root (no segments); empty
 * segments ("//", a trailing "/") and bad braces are refused. */
static int split_pattern(struct route *rt, const char *pattern)
{
	if (pattern[0] != '/')
		return -1;
	if (pattern[1] == '\0')
		return 0;
	if (!(rt->mem = strdup(pattern + 1)))
		return -1;
	unsigned ncap = 0;
	for (char *p = rt->mem;;) {
		char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int kind = classify_segment(p, len);
		if (len == 0 || kind < 0 || rt->nseg == ROUTER_MAX_SEGS)
			return -1;
		if (kind == 1 && ++ncap > ROUTER_MAX_PARAMS)
			return -1;
		rt->seg[rt->nseg++] = (struct seg){ .text = kind == 1 ? NULL : p, .len = len };
		rt->nlit += kind == 0;
		if (!end)
			return 0;
		p = end + 1;
	}
}

int router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn)
{
	if (!r || !method || !pattern || !fn || !valid_method(method))
		return -1;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct route *grown = realloc(r->routes, cap * sizeof(*grown));
		if (!grown)
			return -1;
		r->routes = grown;
		r->cap = cap;
	}
	struct route *rt = &r->routes[r->n];
	memset(rt, 0, sizeof(*rt));
	if (split_pattern(rt, pattern) != 0) {
		free(rt->mem);
		return -1;
	}
	memcpy(rt->method, method, strlen(method) + 1);
	rt->fn = fn;
	r->n++;
	return 0;
}

/* Split path into segs. Returns the count, or -1 when no pattern can match
 * (no leading '/', an empty segment, too many segments). "/" has none. */
static int split_path(const char *path, struct seg segs[ROUTER_MAX_SEGS])
{
	if (path[0] != '/')
		return -1;
	if (path[1] == '\0')
		return 0;
	int n = 0;
	for (const char *p = path + 1;;) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || n == ROUTER_MAX_SEGS)
			return -1;
		segs[n++] = (struct seg){ .text = p, .len = len };
		if (!end)
			return n;
		p = end + 1;
	}
}

static bool route_matches(const struct route *rt, const struct seg *segs, unsigned n)
{
	if (rt->nseg != n)
		return false;
	for (unsigned i = 0; i < n; i++) {
		const struct seg *ps = &rt->seg[i];
		if (ps->text ? ps->len != segs[i].len || memcmp(ps->text, segs[i].text, ps->len) != 0
		             : segs[i].len >= ROUTER_PARAM_MAX)
			return false;
	}
	return true;
}

/* Append method to the ", "-separated allow list, once, and only whole. */
static void add_allow(char *allow, size_t cap, const char *method)
{
	size_t mlen = strlen(method), n = strlen(allow);
	for (const char *p = allow; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == mlen && memcmp(p, method, mlen) == 0)
			return;
		p = end ? end + 2 : p + len;
	}
	if (n + (n ? 2 : 0) + mlen + 1 > cap)
		return;
	if (n) {
		memcpy(allow + n, ", ", 2);
		n += 2;
	}
	memcpy(allow + n, method, mlen + 1);
}

enum router_result router_match(const struct router *r, const char *method, const char *path,
                                struct router_match *m)
{
	m->fn = NULL;
	m->nparams = 0;
	m->allow[0] = '\0';
	struct seg segs[ROUTER_MAX_SEGS];
	int n = path && method ? split_path(path, segs) : -1;
	if (n < 0)
		return ROUTER_NO_PATH;
	const struct route *best = NULL;
	bool other_method = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct route *rt = &r->routes[i];
		if (!route_matches(rt, segs, (unsigned)n))
			continue;
		if (strcmp(rt->method, method) != 0) {
			other_method = true;
			add_allow(m->allow, sizeof(m->allow), rt->method);
		} else if (!best || rt->nlit > best->nlit) {
			best = rt;
		}
	}
	if (!best) {
		if (!other_method)
			return ROUTER_NO_PATH;
		return ROUTER_NO_METHOD;
	}
	m->allow[0] = '\0';
	for (unsigned i = 0; i < best->nseg; i++) {
		if (best->seg[i].text)
			continue;
		memcpy(m->params[m->nparams], segs[i].text, segs[i].len);
		m->params[m->nparams++][segs[i].len] = '\0';
	}
	m->fn = best->fn;
	return ROUTER_FOUND;
}
