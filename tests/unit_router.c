/*
 * unit_router: method + path matching, captures, 404 versus 405.
 */
#include <string.h>

#include "router.h"
#include "unit.h"

static void h1(struct http_req *r, void *a) { (void)r, (void)a; }
static void h2(struct http_req *r, void *a) { (void)r, (void)a; }
static void h3(struct http_req *r, void *a) { (void)r, (void)a; }

int main(void)
{
	struct router *r = router_new();
	CHECK(router_add(r, "GET", "/healthz", h1) == 0, "add literal");
	CHECK(router_add(r, "GET", "/org/{slug}/webhooks/endpoints", h2) == 0, "add capture");
	CHECK(router_add(r, "POST", "/org/{slug}/webhooks/endpoints", h3) == 0, "add second method");
	CHECK(router_add(r, "PATCH", "/org/{slug}/webhooks/endpoints/{id}", h3) == 0, "add two captures");
	CHECK(router_add(r, "GET", "no-slash", h1) != 0, "a pattern must start with /");
	struct router_match m;
	CHECK(router_match(r, "GET", "/healthz", &m) == ROUTER_FOUND && m.fn == h1 && m.nparams == 0,
	      "literal match");
	CHECK(router_match(r, "GET", "/org/acme/webhooks/endpoints", &m) == ROUTER_FOUND &&
	      m.fn == h2 && m.nparams == 1 && strcmp(m.params[0], "acme") == 0, "capture");
	CHECK(router_match(r, "POST", "/org/acme/webhooks/endpoints", &m) == ROUTER_FOUND && m.fn == h3,
	      "method picks the route");
	CHECK(router_match(r, "PATCH", "/org/a/webhooks/endpoints/b-1", &m) == ROUTER_FOUND &&
	      m.nparams == 2 && strcmp(m.params[1], "b-1") == 0, "two captures");
	CHECK(router_match(r, "DELETE", "/org/acme/webhooks/endpoints", &m) == ROUTER_NO_METHOD &&
	      strcmp(m.allow, "GET, POST") == 0, "405 with the allowed methods");
	CHECK(router_match(r, "GET", "/org/acme/webhooks/endpoints/", &m) == ROUTER_NO_PATH, "trailing slash");
	CHECK(router_match(r, "GET", "/org//webhooks/endpoints", &m) == ROUTER_NO_PATH, "empty capture");
	CHECK(router_match(r, "GET", "/healthz/x", &m) == ROUTER_NO_PATH, "longer path");
	CHECK(router_match(r, "GET", "/", &m) == ROUTER_NO_PATH, "root");
	CHECK(router_match(r, "GET", "", &m) == ROUTER_NO_PATH, "empty path");
	char long_path[600] = "/org/";
	memset(long_path + 5, 'a', 300);
	strcpy(long_path + 305, "/webhooks/endpoints");
	CHECK(router_match(r, "GET", long_path, &m) == ROUTER_NO_PATH, "overlong capture refused");
	router_free(r);
	return unit_done();
}
