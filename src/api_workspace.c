/*
 * api_workspace: the workspace API of seed 000, /v1/webhooks...
 *
 * One webhook per workspace: the org's primary endpoint, subscribed to "*",
 * with a whsec_ secret and a version. Ids go out prefixed (delivery_<uuid>,
 * event_<uuid>) and come back in either form.
 *
 * A test delivery is answered only once its one attempt is recorded. Its
 * request state is shared by two callbacks: the group commit (which may fail)
 * and the dispatcher's watch on the delivery (registered BEFORE the commit,
 * so no attempt can slip past it). Whichever comes first with a final word
 * answers; the state is freed when both have run (a reference count).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "dispatch.h"
#include "publish.h"
#include "secret.h"
#include "target.h"
#include "timeutil.h"

#define EVENTS_PAGE 50
#define TESTS_SHOWN 20
#define DAY_MS (24 * 3600 * 1000LL)

static const char *const put_fields[] = { "url", "enabled", NULL };

/* ---- the webhook object ----------------------------------------------- */

static json_t *webhook_json(const struct store_endpoint *ep)
{
	if (!ep)
		return json_pack("{s:{s:b, s:n, s:b, s:n}}", "webhook", "configured", 0, "url",
		                 "enabled", 0, "signing_secret");
	size_t sl = strlen(ep->secret);
	char preview[16];
	snprintf(preview, sizeof(preview), "whsec_...%s", ep->secret + (sl > 4 ? sl - 4 : 0));
	return json_pack("{s:{s:b, s:s, s:b, s:{s:i, s:s}}}", "webhook", "configured", 1,
	                 "url", ep->url, "enabled", ep->is_active, "signing_secret",
	                 "version", ep->secret_version, "preview", preview);
}

/* Answer the GET shape, plus new_signing_secret when given. */
static void reply_webhook(struct http_req *req, const struct store_endpoint *ep,
                          const char *new_secret)
{
	json_t *o = webhook_json(ep);
	if (new_secret)
		json_object_set_new(o, "new_signing_secret", json_string(new_secret));
	http_reply_json(req, 200, o);
}

static void handle_get(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth(req, app, &auth))
		return;
	struct hk_err err;
	struct store_endpoint ep;
	hk_status st = store_endpoint_primary(app->store, auth.org_id, &ep, &err);
	if (st == HK_OK || st == HK_ENOTFOUND)
		reply_webhook(req, st == HK_OK ? &ep : NULL, NULL);
	else
		http_reply_error(req, &err);
	if (st == HK_OK)
		store_endpoint_clear(&ep);
}

/* ---- PUT: create or update ---------------------------------------------- */

static hk_status create_primary(struct app *app, int64_t org, const char *url, int enabled,
                                char secret[SECRET_WHSEC_LEN], struct store_endpoint *out,
                                struct hk_err *err)
{
	if (!url)
		return hk_fail(err, HK_EINVALID, "invalid_url", "url is required to create the webhook");
	if (secret_new_whsec(secret) != 0)
		return hk_fail(err, HK_EINTERNAL, NULL, "no randomness available");
	struct store_endpoint ep = {
		.org_id = org, .url = (char *)url, .description = "Workspace webhook",
		.event_types = "[\"*\"]", .secret = secret, .secret_version = 1,
		.is_active = enabled != 0, .is_primary = true, .created_at = tu_now_ms(),
	};
	uuid_v7(ep.id);
	hk_status st = store_endpoint_create(app->store, &ep, err);
	return st == HK_OK ? store_endpoint_get(app->store, org, ep.id, out, err) : st;
}

/* Apply a checked PUT body; *created (OUT) says whether the secret is new. */
static hk_status put_webhook(struct app *app, int64_t org, const char *url, int enabled,
                             char secret[SECRET_WHSEC_LEN], struct store_endpoint *out,
                             bool *created, struct hk_err *err)
{
	struct store_endpoint cur;
	*created = false;
	hk_status st = store_endpoint_primary(app->store, org, &cur, err);
	if (st == HK_ENOTFOUND) {
		st = create_primary(app, org, url, enabled < 0 ? 1 : enabled, secret, out, err);
		*created = st == HK_OK;
		if (st != HK_ECONFLICT)
			return st;
		/* Another PUT created it first: update what it made. */
		st = store_endpoint_primary(app->store, org, &cur, err);
	}
	if (st != HK_OK)
		return st;
	struct store_endpoint_patch p = { .url = url, .is_active = enabled };
	st = store_endpoint_update(app->store, org, cur.id, &p, tu_now_ms(), out, err);
	store_endpoint_clear(&cur);
	return st;
}

static void handle_put(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	json_t *body;
	if (!api_auth(req, app, &auth) || !api_require_admin(req, &auth) ||
	    !api_body_object(req, true, &body))
		return;
	struct hk_err err;
	hk_status st = HK_OK;
	json_t *u = json_object_get(body, "url"), *e = json_object_get(body, "enabled");
	if (!api_only_fields(req, body, put_fields)) {
		json_decref(body);
		return;
	}
	if (u && !json_is_string(u))
		st = hk_fail(&err, HK_EINVALID, "invalid_url", "url must be a string");
	else if (u)
		st = target_validate(json_string_value(u), app->allow, &err);
	if (st == HK_OK && e && !json_is_boolean(e))
		st = hk_fail(&err, HK_EINVALID, "invalid_field", "enabled must be a boolean");
	char secret[SECRET_WHSEC_LEN];
	struct store_endpoint ep = { 0 };
	bool created = false;
	if (st == HK_OK)
		st = put_webhook(app, auth.org_id, u ? json_string_value(u) : NULL,
		                 e ? json_is_true(e) : -1, secret, &ep, &created, &err);
	if (st == HK_OK && !ep.is_active)
		dispatch_paused(app->dispatch, ep.id);
	else if (st == HK_OK && e)
		dispatch_wake(app->dispatch); /* its backlog is claimable again */
	if (st == HK_OK) {
		reply_webhook(req, &ep, created ? secret : NULL);
	} else {
		http_reply_error(req, &err);
	}
	store_endpoint_clear(&ep);
	json_decref(body);
}

static void handle_rotate(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth(req, app, &auth) || !api_require_admin(req, &auth))
		return;
	struct hk_err err;
	struct store_endpoint ep = { 0 }, now = { 0 };
	char secret[SECRET_WHSEC_LEN];
	hk_status st = store_endpoint_primary(app->store, auth.org_id, &ep, &err);
	if (st == HK_OK && secret_new_whsec(secret) != 0)
		st = hk_fail(&err, HK_EINTERNAL, NULL, "no randomness available");
	if (st == HK_OK)
		st = store_endpoint_set_secret(app->store, auth.org_id, ep.id, secret, NULL, &err);
	if (st == HK_OK)
		st = store_endpoint_get(app->store, auth.org_id, ep.id, &now, &err);
	if (st == HK_OK)
		reply_webhook(req, &now, secret);
	else
		http_reply_error(req, &err);
	store_endpoint_clear(&ep);
	store_endpoint_clear(&now);
}

/* ---- deliveries as the workspace API shows them ------------------------- */

static json_t *delivery_json(const char *id, const char *event_id, const char *type,
                             enum delivery_status st, int attempts, int last_status)
{
	char did[UUID_STR_LEN + 16], eid[UUID_STR_LEN + 16];
	snprintf(did, sizeof(did), "delivery_%s", id);
	snprintf(eid, sizeof(eid), "event_%s", event_id);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "id", did, "event_id", eid,
	                 "event_type", type, "delivery_status", api_status_name(st),
	                 "attempt_count", attempts, "last_http_status", api_int_or_null(last_status));
}

static json_t *stored_delivery_json(const struct store_delivery *d, bool with_created)
{
	json_t *o = delivery_json(d->id, d->event_id, d->event_type, d->status, d->attempt_count,
	                          d->last_http_status);
	if (with_created)
		json_object_set_new(o, "created_at", api_time(d->created_at));
	return o;
}

/* ---- POST /v1/webhooks/test ---------------------------------------------- */

struct test_req {
	struct publish_job job;
	struct http_req *req;
	char *body;
	char endpoint_id[UUID_STR_LEN];
	atomic_int refs;       /* the commit's callback and the watch's */
	atomic_bool answered;
};

static void test_release(struct test_req *t)
{
	if (atomic_fetch_sub(&t->refs, 1) == 1) {
		free(t->body);
		free(t);
	}
}

/* Answer once: the first caller wins. */
static bool test_claim_answer(struct test_req *t)
{
	bool expected = false;
	return atomic_compare_exchange_strong(&t->answered, &expected, true);
}

/* On the recorder thread, once the test delivery's attempt is recorded. */
static void test_attempted(void *arg, const struct store_result *r)
{
	struct test_req *t = arg;
	if (test_claim_answer(t)) {
		const struct store_publish *it = &t->job.item;
		json_t *d = r->fenced ? delivery_json(it->delivery_id, it->event_id, "webhook.test",
		                                      DELIVERY_PENDING, 0, 0)
		                      : delivery_json(it->delivery_id, it->event_id, "webhook.test",
		                                      r->status, r->attempt_number, r->http_status);
		http_resume_json(t->req, 200, json_pack("{s:o}", "delivery", d));
	}
	test_release(t);
}

/* On the committer thread: only a failed commit answers here. */
static void test_committed(struct publish_job *job)
{
	struct test_req *t = (struct test_req *)job;
	if (job->status != HK_OK && test_claim_answer(t))
		http_resume_error(t->req, &job->err);
	test_release(t);
}

static hk_status test_prepare(struct app *app, const struct store_auth *auth,
                              const struct store_endpoint *ep, struct test_req *t,
                              struct hk_err *err)
{
	struct store_publish *it = &t->job.item;
	char ts[TU_ISO_LEN];
	it->org_id = auth->org_id;
	it->event_type = "webhook.test";
	it->created_at = tu_now_ms();
	memcpy(t->endpoint_id, ep->id, UUID_STR_LEN);
	it->only_endpoint = t->endpoint_id;
	it->idem_window_ms = app->cfg->idempotency_window_ms;
	uuid_v7(it->event_id);
	uuid_v7(it->delivery_id);
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:b}}", "id", it->event_id, "type",
	                      "webhook.test", "created_at", tu_format_iso(it->created_at, ts), "data",
	                      "message", "This is a test event sent by hookd.", "test", 1);
	t->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!t->body)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	it->body = t->body;
	it->body_len = strlen(t->body);
	t->job.done = test_committed;
	return HK_OK;
}

/* Watch, then publish; both callbacks hold a reference. */
static void test_send(struct http_req *req, struct app *app, struct test_req *t)
{
	struct hk_err err;
	t->req = req;
	atomic_init(&t->refs, 2);
	atomic_init(&t->answered, false);
	http_suspend(req);
	if (dispatch_watch(app->dispatch, t->job.item.delivery_id, test_attempted, t) != 0) {
		api_publish_refused(PUBLISH_STOPPED, &err); /* the dispatcher is stopping */
		http_resume_error(req, &err);
		free(t->body);
		free(t);
		return;
	}
	enum publish_refusal why = publisher_submit(app->publisher, &t->job);
	if (why != PUBLISH_QUEUED) {
		if (test_claim_answer(t)) {
			api_publish_refused(why, &err);
			http_resume_error(req, &err);
		}
		/* The watch still holds t; it runs (fenced) at the latest at shutdown. */
		test_release(t);
	}
}

static void handle_test(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth(req, app, &auth))
		return;
	struct hk_err err;
	struct store_endpoint ep = { 0 };
	struct test_req *t = NULL;
	hk_status st = store_endpoint_primary(app->store, auth.org_id, &ep, &err);
	if (st == HK_OK && !ep.is_active)
		st = hk_fail(&err, HK_ECONFLICT, "webhook_disabled",
		             "the webhook is disabled; enable it to send a test delivery");
	if (st == HK_OK && !(t = calloc(1, sizeof(*t))))
		st = hk_fail(&err, HK_ENOMEM, NULL, "out of memory");
	if (st == HK_OK)
		st = test_prepare(app, &auth, &ep, t, &err);
	store_endpoint_clear(&ep);
	if (st == HK_OK) {
		test_send(req, app, t);
		return;
	}
	if (t)
		free(t->body);
	free(t);
	http_reply_error(req, &err);
}

/* ---- listings ------------------------------------------------------------ */

/* The primary endpoint's id, or "" when the workspace has none. */
static hk_status primary_id(struct app *app, int64_t org, char id[UUID_STR_LEN],
                            struct hk_err *err)
{
	struct store_endpoint ep;
	id[0] = '\0';
	hk_status st = store_endpoint_primary(app->store, org, &ep, err);
	if (st == HK_OK)
		memcpy(id, ep.id, UUID_STR_LEN);
	store_endpoint_clear(&ep);
	return st == HK_ENOTFOUND ? HK_OK : st;
}

static void reply_deliveries(struct http_req *req, struct app *app,
                             struct store_delivery_filter *f, long page)
{
	struct hk_err err;
	struct store_delivery *ds = NULL;
	size_t n = 0;
	int64_t total = 0;
	if (f->endpoint_id[0] &&
	    store_delivery_list(app->store, f, &ds, &n, page ? &total : NULL, &err) != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, stored_delivery_json(&ds[i], page != 0));
	free(ds);
	if (page)
		http_reply_json(req, 200, json_pack("{s:o, s:i, s:i, s:I}", "deliveries", arr, "page",
		                                    (int)page, "page_size", EVENTS_PAGE,
		                                    "total", (json_int_t)total));
	else
		http_reply_json(req, 200, json_pack("{s:o}", "deliveries", arr));
}

/* GET /v1/webhooks/test?id=: one test delivery. */
static void reply_test_delivery(struct http_req *req, struct app *app, int64_t org,
                                const char *ep_id, const char *raw_id)
{
	struct hk_err err;
	char id[UUID_STR_LEN];
	struct store_delivery d;
	char *body = NULL;
	struct store_attempt *a = NULL;
	size_t n = 0;
	hk_status st = api_uuid(raw_id, "delivery_", id, "test delivery", &err);
	if (st == HK_OK)
		st = store_delivery_get(app->store, org, id, &d, &body, &a, &n, &err);
	free(body);
	store_attempt_free_array(a, n);
	if (st == HK_OK && (!d.is_test || strcmp(d.endpoint_id, ep_id) != 0))
		st = hk_fail(&err, HK_ENOTFOUND, "delivery_not_found", "no such test delivery");
	if (st != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "delivery", stored_delivery_json(&d, false)));
}

static void handle_test_get(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth(req, app, &auth))
		return;
	struct hk_err err;
	char ep[UUID_STR_LEN];
	if (primary_id(app, auth.org_id, ep, &err) != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	const char *id = http_query(req, "id");
	if (id) {
		reply_test_delivery(req, app, auth.org_id, ep, id);
		return;
	}
	struct store_delivery_filter f = { .org_id = auth.org_id, .endpoint_id = ep,
	                                   .only_tests = true, .limit = TESTS_SHOWN };
	reply_deliveries(req, app, &f, 0);
}

/* An ISO 8601 query parameter; *out keeps def when absent. */
static hk_status query_time(struct http_req *req, const char *name, int64_t def, int64_t *out,
                            struct hk_err *err)
{
	const char *v = http_query(req, name);
	*out = def;
	if (v && tu_parse_iso(v, out) != 0)
		return hk_fail(err, HK_EBADREQ, "invalid_query",
		               "%s must be an ISO 8601 date-time, e.g. 2026-05-07T14:00:00Z", name);
	return HK_OK;
}

static hk_status query_window(struct http_req *req, int64_t def_start, int64_t def_end,
                              int64_t *start, int64_t *end, struct hk_err *err)
{
	hk_status st = query_time(req, "start", def_start, start, err);
	if (st == HK_OK)
		st = query_time(req, "end", def_end, end, err);
	if (st == HK_OK && *end <= *start)
		st = hk_fail(err, HK_EBADREQ, "invalid_query", "start must be before end");
	return st;
}

static void handle_events(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth(req, app, &auth))
		return;
	struct hk_err err;
	char ep[UUID_STR_LEN];
	long page;
	int64_t start, end;
	hk_status st = api_query_int(req, "page", 1, 1000000, 1, &page, &err);
	if (st == HK_OK)
		st = query_window(req, 0, INT64_MAX, &start, &end, &err);
	if (st == HK_OK)
		st = primary_id(app, auth.org_id, ep, &err);
	if (st != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	struct store_delivery_filter f = {
		.org_id = auth.org_id, .endpoint_id = ep, .created_from = start,
		.created_to = end, .offset = (unsigned)((page - 1) * EVENTS_PAGE), .limit = EVENTS_PAGE,
	};
	reply_deliveries(req, app, &f, page);
}

/* ---- stats --------------------------------------------------------------- */

static void append_stat(json_t *arr, int64_t bucket, const char *status, int64_t count)
{
	if (count > 0)
		json_array_append_new(arr, json_pack("{s:o, s:s, s:I}", "bucket_start", api_time(bucket),
		                                     "delivery_status", status, "attempt_count",
		                                     (json_int_t)count));
}

static void handle_stats(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (!api_auth(req, app, &auth))
		return;
	struct hk_err err;
	char ep[UUID_STR_LEN];
	long bucket;
	int64_t start = 0, end = 0, now = tu_now_ms();
	/* The rollup counts whole minutes: the window is widened to them. */
	int64_t def_end = (now / 60000 + 1) * 60000;
	hk_status st = api_query_int(req, "bucket_minutes", 1, 1440, 60, &bucket, &err);
	if (st == HK_OK)
		st = query_window(req, def_end - DAY_MS, def_end, &start, &end, &err);
	if (st == HK_OK)
		st = primary_id(app, auth.org_id, ep, &err);
	start = start / 60000 * 60000;
	end = (end + 59999) / 60000 * 60000;
	struct store_stat *s = NULL;
	size_t n = 0;
	if (st == HK_OK && ep[0])
		st = store_stats(app->store, ep, start, end, bucket * 60000, &s, &n, &err);
	if (st != HK_OK) {
		http_reply_error(req, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		/* Sorted by bucket, then status name: "failed" before "succeeded". */
		append_stat(arr, s[i].bucket_start, "failed", s[i].failed);
		append_stat(arr, s[i].bucket_start, "succeeded", s[i].succeeded);
	}
	free(s);
	http_reply_json(req, 200, json_pack("{s:i, s:o, s:o, s:o}", "bucket_minutes", (int)bucket,
	                                    "start_at", api_time(start), "end_at", api_time(end),
	                                    "stats", arr));
}

int api_workspace_routes(struct router *r)
{
	static const struct api_route routes[] = {
		{ "GET", "/v1/webhooks", handle_get },
		{ "PUT", "/v1/webhooks", handle_put },
		{ "POST", "/v1/webhooks/rotate-signing-secret", handle_rotate },
		{ "POST", "/v1/webhooks/test", handle_test },
		{ "GET", "/v1/webhooks/test", handle_test_get },
		{ "GET", "/v1/webhooks/events", handle_events },
		{ "GET", "/v1/webhooks/stats", handle_stats },
	};
	return api_add_routes(r, routes, sizeof(routes) / sizeof(routes[0]));
}
