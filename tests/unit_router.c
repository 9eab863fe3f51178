/*
 * unit_router: method + path matching, captures, 404 versus 405, and the
 * edges of a path (root, trailing slash, empty and overlong segments).
 */
#include <string.h>

#include "router.h"
#include "unit.h"

static void h1(struct http_req *r, void *a) { (void)r, (void)a; }
static void h2(struct http_req *r, void *a) { (void)r, (void)a; }
static void h3(struct http_req *r, void *a) { (void)r, (void)a; }
static void h4(struct http_req *r, void *a) { (void)r, (void)a; }

static void test_add(void)
{
	struct router *r = router_new();
	CHECK(r != NULL, "router_new");
	CHECK(router_add(r, "GET", "/", h1) == 0, "add root");
	CHECK(router_add(r, "GET", "no-slash", h1) != 0, "a pattern must start with /");
	CHECK(router_add(r, "GET", "", h1) != 0, "empty pattern refused");
	CHECK(router_add(r, "GET", "/a//b", h1) != 0, "empty segment in a pattern refused");
	CHECK(router_add(r, "GET", "/a/", h1) != 0, "trailing slash in a pattern refused");
	CHECK(router_add(r, "GET", "/a/{}", h1) != 0, "unnamed capture refused");
	CHECK(router_add(r, "GET", "/a/{x", h1) != 0, "unclosed capture refused");
	CHECK(router_add(r, "GET", "/a/x{y}", h1) != 0, "capture inside a literal refused");
	CHECK(router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}", h1) != 0, "more captures than ROUTER_MAX_PARAMS refused");
	CHECK(router_add(r, "GET", "/{a}/{b}/{c}/{d}", h1) == 0, "ROUTER_MAX_PARAMS captures accepted");
	CHECK(router_add(r, "", "/x", h1) != 0, "empty method refused");
	CHECK(router_add(r, "get", "/x", h1) != 0, "lower-case method refused");
	CHECK(router_add(r, "GET", "/x", NULL) != 0, "NULL handler refused");
	router_free(r);
	router_free(NULL);
}

static void test_match(void)
{
	struct router *r = router_new();
	CHECK(router_add(r, "GET", "/healthz", h1) == 0, "add literal");
	CHECK(router_add(r, "GET", "/org/{slug}/webhooks/endpoints", h2) == 0, "add capture");
	CHECK(router_add(r, "POST", "/org/{slug}/webhooks/endpoints", h3) == 0, "add second method");
	CHECK(router_add(r, "PATCH", "/org/{slug}/webhooks/endpoints/{id}", h3) == 0, "add two captures");
	CHECK(router_add(r, "DELETE", "/org/{slug}/webhooks/endpoints/{id}", h4) == 0, "add DELETE");
	struct router_match m;

	CHECK(router_match(r, "GET", "/healthz", &m) == ROUTER_FOUND && m.fn == h1 && m.nparams == 0,
	      "literal match");
	CHECK(router_match(r, "GET", "/org/acme/webhooks/endpoints", &m) == ROUTER_FOUND &&
	      m.fn == h2 && m.nparams == 1, "capture");
	CHECK_STR(m.params[0], "acme", "capture value");
	CHECK(router_match(r, "POST", "/org/acme/webhooks/endpoints", &m) == ROUTER_FOUND && m.fn == h3,
	      "method picks the route");
	CHECK(router_match(r, "PATCH", "/org/a/webhooks/endpoints/b-1", &m) == ROUTER_FOUND &&
	      m.fn == h3 && m.nparams == 2, "two captures");
	CHECK_STR(m.params[0], "a", "first of two captures");
	CHECK_STR(m.params[1], "b-1", "second of two captures");
	CHECK(router_match(r, "DELETE", "/org/a/webhooks/endpoints/b", &m) == ROUTER_FOUND && m.fn == h4,
	      "DELETE on the same pattern");

	CHECK_INT(router_match(r, "DELETE", "/org/acme/webhooks/endpoints", &m), ROUTER_NO_METHOD,
	          "405 for a known path");
	CHECK_STR(m.allow, "GET, POST", "405 lists the allowed methods in order");
	CHECK(m.fn == NULL, "no handler on 405");
	CHECK_INT(router_match(r, "GET", "/org/a/webhooks/endpoints/b", &m), ROUTER_NO_METHOD,
	          "405 with captures");
	CHECK_STR(m.allow, "PATCH, DELETE", "allow list with captures");
	CHECK_INT(router_match(r, "POST", "/healthz", &m), ROUTER_NO_METHOD, "405 on a literal");
	CHECK_STR(m.allow, "GET", "allow list of one");
	CHECK_INT(router_match(r, "get", "/healthz", &m), ROUTER_NO_METHOD, "methods are case-sensitive");

	CHECK_INT(router_match(r, "GET", "/nope", &m), ROUTER_NO_PATH, "404 for an unknown path");
	CHECK_STR(m.allow, "", "no allow list on 404");
	CHECK_INT(router_match(r, "GET", "/healthz/", &m), ROUTER_NO_PATH, "trailing slash on a literal");
	CHECK_INT(router_match(r, "GET", "/org/acme/webhooks/endpoints/", &m), ROUTER_NO_PATH,
	          "trailing slash after a literal");
	CHECK_INT(router_match(r, "PATCH", "/org/acme/webhooks/endpoints/", &m), ROUTER_NO_PATH,
	          "trailing slash in place of a capture");
	CHECK_INT(router_match(r, "GET", "/org//webhooks/endpoints", &m), ROUTER_NO_PATH, "empty capture");
	CHECK_INT(router_match(r, "GET", "//healthz", &m), ROUTER_NO_PATH, "leading empty segment");
	CHECK_INT(router_match(r, "GET", "/healthz/x", &m), ROUTER_NO_PATH, "longer path");
	CHECK_INT(router_match(r, "GET", "/org/acme", &m), ROUTER_NO_PATH, "prefix of a pattern");
	CHECK_INT(router_match(r, "GET", "/healthzz", &m), ROUTER_NO_PATH, "literal prefix is not a match");
	CHECK_INT(router_match(r, "GET", "/health", &m), ROUTER_NO_PATH, "shorter literal");
	CHECK_INT(router_match(r, "GET", "/HEALTHZ", &m), ROUTER_NO_PATH, "literals are case-sensitive");
	CHECK_INT(router_match(r, "GET", "/", &m), ROUTER_NO_PATH, "root without a root route");
	CHECK_INT(router_match(r, "GET", "", &m), ROUTER_NO_PATH, "empty path");
	CHECK_INT(router_match(r, "GET", "healthz", &m), ROUTER_NO_PATH, "no leading slash");

	char path[1024];
	memcpy(path, "/org/", 5);
	memset(path + 5, 'a', ROUTER_PARAM_MAX);
	strcpy(path + 5 + ROUTER_PARAM_MAX, "/webhooks/endpoints");
	CHECK_INT(router_match(r, "GET", path, &m), ROUTER_NO_PATH, "capture of ROUTER_PARAM_MAX refused");
	memset(path + 5, 'a', ROUTER_PARAM_MAX - 1);
	strcpy(path + 5 + ROUTER_PARAM_MAX - 1, "/webhooks/endpoints");
	CHECK_INT(router_match(r, "GET", path, &m), ROUTER_FOUND, "capture of ROUTER_PARAM_MAX-1 accepted");
	CHECK_INT(strlen(m.params[0]), ROUTER_PARAM_MAX - 1, "longest capture copied whole");
	memset(path + 5, 'a', 600);
	strcpy(path + 605, "/webhooks/endpoints");
	CHECK_INT(router_match(r, "GET", path, &m), ROUTER_NO_PATH, "very long capture refused");

	char deep[256] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "/x");
	CHECK_INT(router_match(r, "GET", deep, &m), ROUTER_NO_PATH, "very deep path");
	router_free(r);
}

static void test_root_and_specificity(void)
{
	struct router *r = router_new();
	CHECK(router_add(r, "GET", "/", h1) == 0, "add root");
	CHECK(router_add(r, "GET", "/v1/webhooks/{id}", h2) == 0, "add capture route");
	CHECK(router_add(r, "GET", "/v1/webhooks/test", h3) == 0, "add literal route after it");
	CHECK(router_add(r, "PUT", "/v1/webhooks/{id}", h4) == 0, "add PUT");
	CHECK(router_add(r, "POST", "/v1/webhooks/test", h4) == 0, "add POST");
	CHECK(router_add(r, "POST", "/v1/webhooks/test", h1) == 0, "add a duplicate");
	struct router_match m;
	CHECK(router_match(r, "GET", "/", &m) == ROUTER_FOUND && m.fn == h1 && m.nparams == 0, "root");
	CHECK_INT(router_match(r, "GET", "//", &m), ROUTER_NO_PATH, "double slash is not root");
	CHECK_INT(router_match(r, "POST", "/", &m), ROUTER_NO_METHOD, "405 on root");
	CHECK_STR(m.allow, "GET", "allow on root");
	CHECK(router_match(r, "GET", "/v1/webhooks/test", &m) == ROUTER_FOUND && m.fn == h3 &&
	      m.nparams == 0, "a literal beats a capture added before it");
	CHECK(router_match(r, "GET", "/v1/webhooks/other", &m) == ROUTER_FOUND && m.fn == h2 &&
	      m.nparams == 1, "the capture still matches other values");
	CHECK_STR(m.params[0], "other", "capture value");
	CHECK(router_match(r, "POST", "/v1/webhooks/test", &m) == ROUTER_FOUND && m.fn == h4,
	      "first of two equal routes wins");
	CHECK_INT(router_match(r, "DELETE", "/v1/webhooks/test", &m), ROUTER_NO_METHOD, "405 across patterns");
	CHECK_STR(m.allow, "GET, PUT, POST", "allow list merged across patterns, once each");
	router_free(r);
}

static void test_many_params(void)
{
	struct router *r = router_new();
	CHECK(router_add(r, "GET", "/{a}/x/{b}/{c}/y/{d}", h1) == 0, "add four captures");
	struct router_match m;
	CHECK(router_match(r, "GET", "/1/x/22/333/y/4444", &m) == ROUTER_FOUND && m.nparams == 4,
	      "four captures");
	CHECK_STR(m.params[0], "1", "capture 0");
	CHECK_STR(m.params[1], "22", "capture 1");
	CHECK_STR(m.params[2], "333", "capture 2");
	CHECK_STR(m.params[3], "4444", "capture 3");
	CHECK_INT(router_match(r, "GET", "/1/z/22/333/y/4444", &m), ROUTER_NO_PATH, "literal between captures");
	CHECK(router_match(r, "GET", "/%20/x/a.b/%2F/y/~", &m) == ROUTER_FOUND, "captures take any bytes but /");
	router_free(r);
}

int main(void)
{
	test_add();
	test_match();
	test_root_and_specificity();
	test_many_params();
	return unit_done();
}
