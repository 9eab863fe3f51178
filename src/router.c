/*
 * router: method + path pattern matching. See router.h.
 *
 * Patterns are split into segments once, at router_add; matching walks the
 * request path segment by segment against each route without allocating.
 */
#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS 12

struct route {
	char method[8];
	http_handler_fn fn;
	unsigned nseg;
	char *seg[MAX_SEGS]; /* literal text, or NULL for a {capture} */
	char *mem;
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

/* Split pattern into rt's segments (in rt->mem). */
static int split_pattern(struct route *rt, const char *pattern)
{
	if (pattern[0] != '/' || !(rt->mem = strdup(pattern + 1)))
		return -1;
	char *save = NULL;
	for (char *s = strtok_r(rt->mem, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (rt->nseg == MAX_SEGS)
			return -1;
		size_t len = strlen(s);
		bool capture = len >= 2 && s[0] == '{' && s[len - 1] == '}';
		rt->seg[rt->nseg++] = capture ? NULL : s;
	}
	return 0;
}

int router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn)
{
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
	if (strlen(method) >= sizeof(rt->method) || split_pattern(rt, pattern) != 0) {
		free(rt->mem);
		return -1;
	}
	strcpy(rt->method, method);
	rt->fn = fn;
	r->n++;
	return 0;
}

/* Does path match rt? Captures go to m when m is not NULL. */
static bool path_matches(const struct route *rt, const char *path, struct router_match *m)
{
	if (*path != '/')
		return false;
	const char *p = path + 1;
	unsigned ncap = 0;
	for (unsigned i = 0; i < rt->nseg; i++) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0)
			return false;
		if (rt->seg[i]) {
			if (strlen(rt->seg[i]) != len || memcmp(rt->seg[i], p, len) != 0)
				return false;
		} else {
			if (len >= ROUTER_PARAM_MAX || ncap == ROUTER_MAX_PARAMS)
				return false;
			if (m) {
				memcpy(m->params[ncap], p, len);
				m->params[ncap][len] = '\0';
			}
			ncap++;
		}
		if (!end)
			return i + 1 == rt->nseg;
		p = end + 1;
	}
	/* Pattern used up: the path must be too ("/" alone matches no segments). */
	if (m)
		m->nparams = ncap;
	return rt->nseg == 0 ? strcmp(path, "/") == 0 : false;
}

static void add_allow(struct router_match *m, const char *method)
{
	if (strstr(m->allow, method))
		return;
	size_t n = strlen(m->allow);
	snprintf(m->allow + n, sizeof(m->allow) - n, "%s%s", n ? ", " : "", method);
}

enum router_result router_match(const struct router *r, const char *method, const char *path,
                                struct router_match *m)
{
	m->fn = NULL;
	m->nparams = 0;
	m->allow[0] = '\0';
	bool path_found = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct route *rt = &r->routes[i];
		bool same_method = strcmp(rt->method, method) == 0;
		if (!path_matches(rt, path, same_method ? m : NULL))
			continue;
		if (same_method) {
			m->fn = rt->fn;
			unsigned n = 0;
			for (unsigned s = 0; s < rt->nseg; s++)
				n += rt->seg[s] == NULL;
			m->nparams = n;
			return ROUTER_FOUND;
		}
		path_found = true;
		add_allow(m, rt->method);
	}
	return path_found ? ROUTER_NO_METHOD : ROUTER_NO_PATH;
}
