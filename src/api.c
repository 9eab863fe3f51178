/*
 * api: shared checks, validation and JSON shapes of the API. See api.h.
 */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "publish.h"
#include "secret.h"
#include "timeutil.h"

#define MAX_JSON_DEPTH 64
#define MAX_EVENT_TYPES 100

static void handle_healthz(struct http_req *req, void *app)
{
	(void)app;
	http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

int api_add_routes(struct router *r, const struct api_route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (router_add(r, routes[i].method, routes[i].pattern, routes[i].fn) != 0)
			return -1;
	return 0;
}

int api_routes(struct router *r)
{
	if (router_add(r, "GET", "/healthz", handle_healthz) != 0)
		return -1;
	if (api_org_routes(r) != 0 || api_events_routes(r) != 0 || api_workspace_routes(r) != 0)
		return -1;
	return 0;
}

bool api_fail(struct http_req *req, const struct hk_err *err)
{
	http_reply_error(req, err);
	return false;
}

hk_status api_publish_refused(enum publish_refusal why, struct hk_err *err)
{
	if (why == PUBLISH_STOPPED)
		return hk_fail(err, HK_ESTORE, "shutting_down", "hookd is shutting down");
	return hk_fail(err, HK_ESTORE, "overloaded", "too many events waiting to be stored, try again");
}

/* ---- checks -------------------------------------------------------------- */

bool api_auth(struct http_req *req, struct app *app, struct store_auth *auth)
{
	struct hk_err err;
	const char *h = http_header(req, "Authorization");
	if (!h) {
		hk_fail(&err, HK_EUNAUTH, "missing_api_key", "an Authorization: Bearer <api key> header is required");
		return api_fail(req, &err);
	}
	if (strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
		hk_fail(&err, HK_EUNAUTH, "invalid_api_key", "the Authorization header must be Bearer <api key>");
		return api_fail(req, &err);
	}
	const char *key = h + 7;
	while (*key == ' ')
		key++;
	unsigned char hash[32];
	secret_sha256(key, strlen(key), hash);
	if (store_key_lookup(app->store, hash, auth, &err) != HK_OK)
		return api_fail(req, &err);
	return true;
}

bool api_auth_org(struct http_req *req, struct app *app, unsigned i, struct store_auth *auth)
{
	if (!api_auth(req, app, auth))
		return false;
	const char *slug = http_param(req, i);
	if (!slug || strcmp(slug, auth->org_slug) != 0) {
		struct hk_err err;
		hk_fail(&err, HK_ENOTFOUND, "org_not_found", "no such organization");
		return api_fail(req, &err);
	}
	return true;
}

bool api_require_admin(struct http_req *req, const struct store_auth *auth)
{
	if (auth->role == STORE_ROLE_ADMIN)
		return true;
	struct hk_err err;
	hk_fail(&err, HK_EFORBIDDEN, "forbidden", "this action needs an admin key");
	return api_fail(req, &err);
}

bool api_json_depth_ok(const char *s, size_t len, int max)
{
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > max)
				return false;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	return true;
}

bool api_body_object(struct http_req *req, bool optional, json_t **out)
{
	struct hk_err err;
	size_t len;
	const char *body = http_body(req, &len);
	*out = NULL;
	if (len == 0) {
		if (optional) {
			*out = json_object();
			return true;
		}
		hk_fail(&err, HK_EBADREQ, "invalid_json", "a JSON object body is required");
		return api_fail(req, &err);
	}
	if (!api_json_depth_ok(body, len, MAX_JSON_DEPTH)) {
		hk_fail(&err, HK_EBADREQ, "invalid_json", "JSON nested deeper than %d levels", MAX_JSON_DEPTH);
		return api_fail(req, &err);
	}
	json_error_t jerr;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		hk_fail(&err, HK_EBADREQ, "invalid_json", "malformed JSON at line %d column %d: %s",
		        jerr.line, jerr.column, jerr.text);
		return api_fail(req, &err);
	}
	if (!json_is_object(v)) {
		json_decref(v);
		hk_fail(&err, HK_EBADREQ, "invalid_json", "the body must be a JSON object");
		return api_fail(req, &err);
	}
	*out = v;
	return true;
}

bool api_only_fields(struct http_req *req, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		size_t i = 0;
		while (allowed[i] && strcmp(allowed[i], key) != 0)
			i++;
		if (!allowed[i]) {
			struct hk_err err;
			char shown[64];
			snprintf(shown, sizeof(shown), "%s", key);
			hk_fail(&err, HK_EINVALID, "unknown_field", "unknown field: %s", shown);
			return api_fail(req, &err);
		}
	}
	return true;
}

/* ---- validation ---------------------------------------------------------- */

bool api_valid_event_type(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!(isalnum(c) || c == '_' || c == '.' || c == '-') || n >= 128)
			return false;
	}
	return n >= 1;
}

hk_status api_event_types(json_t *v, char **text, struct hk_err *err)
{
	*text = NULL;
	if (!json_is_array(v) || json_array_size(v) == 0)
		return hk_fail(err, HK_EINVALID, "invalid_event_types",
		               "event_types must be a non-empty array of event types");
	if (json_array_size(v) > MAX_EVENT_TYPES)
		return hk_fail(err, HK_EINVALID, "invalid_event_types",
		               "event_types may hold at most %d entries", MAX_EVENT_TYPES);
	size_t i;
	json_t *t;
	json_array_foreach(v, i, t) {
		const char *s = json_string_value(t);
		if (!s || (strcmp(s, "*") != 0 && !api_valid_event_type(s)))
			return hk_fail(err, HK_EINVALID, "invalid_event_types",
			               "event_types[%zu] must be \"*\" or 1-128 characters of A-Z a-z 0-9 _ . -", i);
	}
	*text = json_dumps(v, JSON_COMPACT);
	return *text ? HK_OK : hk_fail(err, HK_ENOMEM, NULL, "out of memory");
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

hk_status api_string_field(json_t *v, const char *field, size_t max, const char **out,
                           struct hk_err *err)
{
	if (!json_is_string(v))
		return hk_fail(err, HK_EINVALID, "invalid_field", "%s must be a string", field);
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return hk_fail(err, HK_EINVALID, "invalid_field", "%s must not contain NUL", field);
	if (utf8_chars(s) > max)
		return hk_fail(err, HK_EINVALID, "invalid_field", "%s must be at most %zu characters",
		               field, max);
	*out = s;
	return HK_OK;
}

hk_status api_query_int(struct http_req *req, const char *name, long lo, long hi, long def,
                        long *out, struct hk_err *err)
{
	const char *v = http_query(req, name);
	*out = def;
	if (v && api_parse_int(v, lo, hi, out) != 0)
		return hk_fail(err, HK_EBADREQ, "invalid_query", "%s must be an integer from %ld to %ld",
		               name, lo, hi);
	return HK_OK;
}

int api_parse_int(const char *v, long lo, long hi, long *out)
{
	char *end;
	if (!isdigit((unsigned char)*v) || strlen(v) > 9)
		return -1;
	long n = strtol(v, &end, 10);
	if (*end != '\0' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

hk_status api_uuid(const char *in, const char *prefix, char out[UUID_STR_LEN], const char *what,
                   struct hk_err *err)
{
	size_t pl = prefix ? strlen(prefix) : 0;
	if (in && pl && strncmp(in, prefix, pl) == 0)
		in += pl;
	if (!in || uuid_parse(in, out) != 0)
		return hk_fail(err, HK_ENOTFOUND, NULL, "no such %s", what);
	return HK_OK;
}

/* ---- JSON shapes ------------------------------------------------------- */

json_t *api_time(int64_t ms)
{
	if (ms == 0)
		return json_null();
	char buf[TU_ISO_LEN];
	return json_string(tu_format_iso(ms, buf));
}

json_t *api_int_or_null(int v)
{
	return v ? json_integer(v) : json_null();
}

const char *api_status_name(enum delivery_status st)
{
	switch (st) {
	case DELIVERY_PENDING: return "pending";
	case DELIVERY_SUCCEEDED: return "succeeded";
	case DELIVERY_FAILED: return "failed";
	}
	return "pending";
}

json_t *api_text(const char *s, size_t len)
{
	json_t *v = json_stringn(s, len);
	if (v)
		return v;
	/* Not valid UTF-8 (or holds NUL): replace each bad byte with U+FFFD. */
	char *buf = malloc(len * 3 + 1);
	if (!buf)
		return json_string("");
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t w = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		json_t *probe = (w && c && i + w <= len) ? json_stringn(s + i, w) : NULL;
		if (probe) {
			memcpy(buf + n, s + i, w);
			n += w;
			i += w;
			json_decref(probe);
		} else {
			memcpy(buf + n, "\xEF\xBF\xBD", 3);
			n += 3;
			i++;
		}
	}
	v = json_stringn(buf, n);
	free(buf);
	return v ? v : json_string("");
}

json_t *api_endpoint_json(const struct store_endpoint *ep, bool with_secret)
{
	json_t *types = json_loads(ep->event_types, 0, NULL);
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:b, s:i, s:o}",
	                      "id", ep->id, "url", ep->url, "description", ep->description,
	                      "event_types", types ? types : json_array(),
	                      "is_active", ep->is_active,
	                      "consecutive_failures", ep->consecutive_failures,
	                      "created_at", api_time(ep->created_at));
	if (o && with_secret)
		json_object_set_new(o, "secret", json_string(ep->secret));
	return o;
}
