/*
 * api_org: the organization API of seed 002, /org/{org_slug}/webhooks/...
 *
 * Many endpoints per org, each with event-type filters and a raw 64-hex
 * secret; delivery history and manual retries. The org's primary endpoint
 * (the workspace webhook) is listed and managed here like any other, except
 * that it always subscribes to "*" and keeps its whsec_ secret format.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "dispatch.h"
#include "secret.h"
#include "target.h"
#include "timeutil.h"

#define P_SLUG 0
#define P_ID 1

static const char *const create_fields[] = { "url", "description", "event_types", NULL };
static const char *const patch_fields[] = { "url", "description", "event_types", "is_active", NULL };

/* A new secret in the endpoint's format: whsec_ for the primary, raw hex else. */
static hk_status new_secret(bool primary, char *buf, struct hk_err *err)
{
	int rc = primary ? secret_new_whsec(buf) : secret_new_hex(buf);
	return rc == 0 ? HK_OK : hk_fail(err, HK_EINTERNAL, NULL, "no randomness available");
}

/* Validate the fields of a create or patch body into *p (strings borrowed
 * from body, event_types malloc'd into *types). */
static hk_status read_fields(struct app *app, json_t *body, bool create,
                             struct store_endpoint_patch *p, char **types, struct hk_err *err)
{
	hk_status st;
	json_t *v;
	*types = NULL;
	*p = (struct store_endpoint_patch){ .is_active = -1 };
	if ((v = json_object_get(body, "url")) || create) {
		if (!json_is_string(v))
			return hk_fail(err, HK_EINVALID, "invalid_url", "url is required and must be a string");
		if ((st = target_validate(json_string_value(v), app->allow, err)) != HK_OK)
			return st;
		p->url = json_string_value(v);
	}
	if ((v = json_object_get(body, "description")) &&
	    (st = api_string_field(v, "description", 256, &p->description, err)) != HK_OK)
		return st;
	if ((v = json_object_get(body, "event_types")) || create) {
		if (!v)
			return hk_fail(err, HK_EINVALID, "invalid_event_types", "event_types is required");
		if ((st = api_event_types(v, types, err)) != HK_OK)
			return st;
		p->event_types = *types;
	}
	if ((v = json_object_get(body, "is_active"))) {
		if (!json_is_boolean(v))
			return hk_fail(err, HK_EINVALID, "invalid_field", "is_active must be a boolean");
		p->is_active = json_is_true(v);
	}
	return HK_OK;
}

/* Create the endpoint described by a checked body and answer. */
static void create_endpoint(struct http_req *req, struct app *app, const struct store_auth *auth,
                            json_t *body)
{
	struct hk_err err;
	struct store_endpoint_patch p;
	char *types = NULL;
	char secret[SECRET_HEX_LEN];
	hk_status st = read_fields(app, body, true, &p, &types, &err);
	if (st == HK_OK)
		st = new_secret(false, secret, &err);
	struct store_endpoint ep = {
		.org_id = auth->org_id, .url = (char *)p.url,
		.description = (char *)(p.description ? p.description : ""),
		.event_types = types, .secret = secret, .secret_version = 1,
		.is_active = true, .created_at = tu_now_ms(),
	};
	if (st == HK_OK) {
		uuid_v7(ep.id);
		st = store_endpoint_create(app->store, &ep, &err);
	}
	if (st == HK_OK)
		http_reply_json(req, 201, api_endpoint_json(&ep, true));
	else
		http_reply_error(req, &err);
	free(types);
}

static void handle_create(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	json_t *body;
	if (!api_auth_org(req, app, P_SLUG, &auth) || !api_require_admin(req, &auth) ||
	    !api_body_object(req, false, &body))
		return;
	if (api_only_fields(req, body, create_fields))
		create_endpoint(req, app, &auth, body);
	json_decref(body);
}

static void handle_list(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth_org(req, app, P_SLUG, &auth))
		return;
	struct hk_err err;
	struct store_endpoint *eps;
	size_t n;
	if (store_endpoint_list(app->store, auth.org_id, &eps, &n, &err) != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_endpoint_json(&eps[i], false));
	store_endpoint_free_array(eps, n);
	http_reply_json(req, 200, arr);
}

/* Authenticate an admin for an endpoint path and read the endpoint id. */
static bool admin_endpoint(struct http_req *req, struct app *app, struct store_auth *auth,
                           char id[UUID_STR_LEN])
{
	struct hk_err err;
	if (!api_auth_org(req, app, P_SLUG, auth) || !api_require_admin(req, auth))
		return false;
	if (api_uuid(http_param(req, P_ID), NULL, id, "endpoint", &err) != HK_OK)
		return api_fail(req, &err);
	return true;
}

/* The primary endpoint always subscribes to every event type. */
static hk_status check_primary_patch(struct app *app, int64_t org, const char *id,
                                     const struct store_endpoint_patch *p, struct hk_err *err)
{
	if (!p->event_types)
		return HK_OK;
	struct store_endpoint ep;
	hk_status st = store_endpoint_get(app->store, org, id, &ep, err);
	if (st == HK_OK && ep.is_primary && strcmp(p->event_types, "[\"*\"]") != 0)
		st = hk_fail(err, HK_EINVALID, "invalid_event_types",
		             "event_types of the workspace webhook is always [\"*\"]");
	store_endpoint_clear(&ep);
	return st;
}

static void handle_patch(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	char id[UUID_STR_LEN];
	json_t *body;
	if (!admin_endpoint(req, app, &auth, id) || !api_body_object(req, false, &body))
		return;
	struct hk_err err;
	struct store_endpoint_patch p;
	char *types = NULL;
	if (api_only_fields(req, body, patch_fields)) {
		struct store_endpoint ep = { 0 };
		hk_status st = read_fields(app, body, false, &p, &types, &err);
		if (st == HK_OK)
			st = check_primary_patch(app, auth.org_id, id, &p, &err);
		if (st == HK_OK)
			st = store_endpoint_update(app->store, auth.org_id, id, &p, tu_now_ms(), &ep, &err);
		if (st == HK_OK && p.is_active == 0)
			dispatch_paused(app->dispatch, ep.id);
		else if (st == HK_OK && p.is_active == 1)
			dispatch_wake(app->dispatch); /* its backlog is claimable again */
		if (st == HK_OK) {
			http_reply_json(req, 200, api_endpoint_json(&ep, false));
		} else {
			http_reply_error(req, &err);
		}
		store_endpoint_clear(&ep);
	}
	free(types);
	json_decref(body);
}

static void handle_delete(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	char id[UUID_STR_LEN];
	if (!admin_endpoint(req, app, &auth, id))
		return;
	struct hk_err err;
	if (store_endpoint_delete(app->store, auth.org_id, id, &err) != HK_OK)
		http_reply_error(req, &err);
	else
		http_reply_json(req, 204, NULL);
}

static void handle_rotate(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	char id[UUID_STR_LEN];
	if (!admin_endpoint(req, app, &auth, id))
		return;
	struct hk_err err;
	struct store_endpoint ep;
	char secret[SECRET_WHSEC_LEN > SECRET_HEX_LEN ? SECRET_WHSEC_LEN : SECRET_HEX_LEN];
	hk_status st = store_endpoint_get(app->store, auth.org_id, id, &ep, &err);
	if (st == HK_OK)
		st = new_secret(ep.is_primary, secret, &err);
	if (st == HK_OK)
		st = store_endpoint_set_secret(app->store, auth.org_id, id, secret, NULL, &err);
	store_endpoint_clear(&ep);
	if (st == HK_OK)
		http_reply_json(req, 200, json_pack("{s:s, s:s}", "id", id, "secret", secret));
	else
		http_reply_error(req, &err);
}

/* The delivery summary of the organization API. */
static json_t *delivery_json(const struct store_delivery *d)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:o}",
	                 "id", d->id, "event_id", d->event_id, "event_type", d->event_type,
	                 "status", api_status_name(d->status), "attempt_count", d->attempt_count,
	                 "last_http_status", api_int_or_null(d->last_http_status),
	                 "created_at", api_time(d->created_at),
	                 "next_attempt_at", api_time(d->next_attempt_at));
}

static void handle_deliveries(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth_org(req, app, P_SLUG, &auth))
		return;
	struct hk_err err;
	char id[UUID_STR_LEN];
	long page = 1, per_page = 20;
	struct store_endpoint ep = { 0 };
	hk_status st = api_uuid(http_param(req, P_ID), NULL, id, "endpoint", &err);
	if (st == HK_OK)
		st = api_query_int(req, "page", 1, 1000000, 1, &page, &err);
	if (st == HK_OK)
		st = api_query_int(req, "per_page", 1, 100, 20, &per_page, &err);
	if (st == HK_OK)
		st = store_endpoint_get(app->store, auth.org_id, id, &ep, &err);
	store_endpoint_clear(&ep);
	struct store_delivery_filter f = {
		.org_id = auth.org_id, .endpoint_id = id,
		.offset = (unsigned)((page - 1) * per_page), .limit = (unsigned)per_page,
	};
	struct store_delivery *ds = NULL;
	size_t n = 0;
	int64_t total = 0;
	if (st == HK_OK)
		st = store_delivery_list(app->store, &f, &ds, &n, &total, &err);
	if (st != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, delivery_json(&ds[i]));
	free(ds);
	http_reply_json(req, 200, json_pack("{s:o, s:I}", "deliveries", arr, "total", (json_int_t)total));
}

static json_t *attempts_json(const struct store_attempt *a, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack(
			"{s:i, s:o, s:i, s:o, s:o, s:o}", "attempt_number", a[i].number,
			"started_at", api_time(a[i].started_at), "duration_ms", a[i].duration_ms,
			"http_status", api_int_or_null(a[i].http_status),
			"error", a[i].error ? json_string(a[i].error) : json_null(),
			"response_body", api_text(a[i].response_body ? a[i].response_body : "", a[i].response_len)));
	return arr;
}

static void handle_delivery(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth_org(req, app, P_SLUG, &auth))
		return;
	struct hk_err err;
	char id[UUID_STR_LEN];
	struct store_delivery d;
	char *body = NULL;
	struct store_attempt *a = NULL;
	size_t n = 0;
	hk_status st = api_uuid(http_param(req, P_ID), NULL, id, "delivery", &err);
	if (st == HK_OK)
		st = store_delivery_get(app->store, auth.org_id, id, &d, &body, &a, &n, &err);
	if (st != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	json_t *o = delivery_json(&d);
	json_t *payload = json_loads(body, 0, NULL);
	json_object_set_new(o, "endpoint_id", json_string(d.endpoint_id));
	json_object_set_new(o, "payload", payload ? payload : json_string(body));
	json_object_set_new(o, "attempts", attempts_json(a, n));
	free(body);
	store_attempt_free_array(a, n);
	http_reply_json(req, 200, o);
}

static void handle_retry(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth_org(req, app, P_SLUG, &auth))
		return;
	struct hk_err err;
	char id[UUID_STR_LEN];
	hk_status st = api_uuid(http_param(req, P_ID), NULL, id, "delivery", &err);
	if (st == HK_OK)
		st = store_delivery_retry(app->store, auth.org_id, id, tu_now_ms(), &err);
	if (st != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	dispatch_wake(app->dispatch);
	http_reply_json(req, 202, json_pack("{s:b, s:s}", "queued", 1, "delivery_id", id));
}

int api_org_routes(struct router *r)
{
	static const struct api_route routes[] = {
		{ "POST", "/org/{slug}/webhooks/endpoints", handle_create },
		{ "GET", "/org/{slug}/webhooks/endpoints", handle_list },
		{ "PATCH", "/org/{slug}/webhooks/endpoints/{id}", handle_patch },
		{ "DELETE", "/org/{slug}/webhooks/endpoints/{id}", handle_delete },
		{ "POST", "/org/{slug}/webhooks/endpoints/{id}/rotate-secret", handle_rotate },
		{ "GET", "/org/{slug}/webhooks/endpoints/{id}/deliveries", handle_deliveries },
		{ "GET", "/org/{slug}/webhooks/deliveries/{id}", handle_delivery },
		{ "POST", "/org/{slug}/webhooks/deliveries/{id}/retry", handle_retry },
	};
	return api_add_routes(r, routes, sizeof(routes) / sizeof(routes[0]));
}
