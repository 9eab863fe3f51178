/*
 * api_events: publishing, POST /org/{org_slug}/events and POST /v1/events.
 *
 * The handler validates the event, builds the exact body every delivery will
 * send (so it is serialized once, not once per attempt), hands it to the
 * publisher's group commit and suspends the HTTP request. The committer
 * thread answers 202 only after the event and its deliveries are durable;
 * the request holds no server thread while it waits.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "publish.h"
#include "secret.h"
#include "timeutil.h"

#define IDEM_KEY_MAX 255

static const char *const event_fields[] = { "event_type", "payload", "idempotency_key", NULL };

/* Per-request state across the suspension: the job and what it points to. */
struct pending_publish {
	struct publish_job job;
	struct http_req *req;
	char *body;
	char event_type[STORE_EVENT_TYPE_MAX];
	char idem_key[IDEM_KEY_MAX + 1];
};

/* The idempotency key from the body or, failing that, the header. */
static hk_status read_idem_key(struct http_req *req, json_t *body, const char **key,
                               struct hk_err *err)
{
	json_t *v = json_object_get(body, "idempotency_key");
	*key = v ? json_string_value(v) : http_header(req, "Idempotency-Key");
	if (v && !json_is_string(v))
		return hk_fail(err, HK_EINVALID, "invalid_idempotency_key", "idempotency_key must be a string");
	if (*key && (**key == '\0' || strlen(*key) > IDEM_KEY_MAX))
		return hk_fail(err, HK_EINVALID, "invalid_idempotency_key",
		               "idempotency_key must be 1-%d characters", IDEM_KEY_MAX);
	return HK_OK;
}

/* What the producer asked, hashed to tell a replay from a reused key:
 * the event type and the payload with sorted keys. */
static hk_status request_hash(const char *type, json_t *payload, unsigned char out[32],
                              struct hk_err *err)
{
	char *canon = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!canon)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	size_t tl = strlen(type), cl = strlen(canon);
	char *buf = malloc(tl + cl + 2);
	if (!buf) {
		free(canon);
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	}
	memcpy(buf, type, tl + 1);
	memcpy(buf + tl + 1, canon, cl + 1);
	secret_sha256(buf, tl + cl + 1, out);
	free(buf);
	free(canon);
	return HK_OK;
}

/* The delivery body: {"id","type","created_at","data"}, serialized once. */
static char *delivery_body(const char *id, const char *type, int64_t created_at, json_t *payload)
{
	char ts[TU_ISO_LEN];
	json_t *o = json_pack("{s:s, s:s, s:s, s:O}", "id", id, "type", type, "created_at",
	                      tu_format_iso(created_at, ts), "data", payload);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* On the committer thread, after the commit: answer the suspended request. */
static void publish_done(struct publish_job *job)
{
	struct pending_publish *pp = (struct pending_publish *)job;
	struct store_publish *it = &job->item;
	if (job->status != HK_OK) {
		http_resume_error(pp->req, &job->err);
	} else if (it->status == HK_ECONFLICT) {
		struct hk_err err;
		hk_fail(&err, HK_ECONFLICT, "idempotency_key_reused",
		        "this idempotency key was used with a different request");
		http_resume_error(pp->req, &err);
	} else {
		http_resume_json(pp->req, 202, json_pack("{s:s, s:i}", "event_id", it->out_event_id,
		                                         "deliveries", it->deliveries));
	}
	free(pp->body);
	free(pp);
}

/* Validate body into a ready job. */
static hk_status prepare(struct app *app, struct http_req *req, const struct store_auth *auth,
                         json_t *body, struct pending_publish *pp, struct hk_err *err)
{
	json_t *type = json_object_get(body, "event_type");
	json_t *payload = json_object_get(body, "payload");
	const char *key;
	if (!json_is_string(type) || !api_valid_event_type(json_string_value(type)))
		return hk_fail(err, HK_EINVALID, "invalid_event_type",
		               "event_type must be 1-128 characters of A-Z a-z 0-9 _ . -");
	if (!payload)
		return hk_fail(err, HK_EINVALID, "invalid_payload", "payload is required");
	hk_status st = read_idem_key(req, body, &key, err);
	if (st != HK_OK)
		return st;
	struct store_publish *it = &pp->job.item;
	snprintf(pp->event_type, sizeof(pp->event_type), "%s", json_string_value(type));
	if (key) {
		snprintf(pp->idem_key, sizeof(pp->idem_key), "%s", key);
		it->idem_key = pp->idem_key;
		if ((st = request_hash(pp->event_type, payload, it->req_hash, err)) != HK_OK)
			return st;
	}
	it->org_id = auth->org_id;
	it->event_type = pp->event_type;
	it->created_at = tu_now_ms();
	it->idem_window_ms = app->cfg->idempotency_window_ms;
	uuid_v7(it->event_id);
	pp->body = delivery_body(it->event_id, pp->event_type, it->created_at, payload);
	if (!pp->body)
		return hk_fail(err, HK_ENOMEM, NULL, "out of memory");
	it->body = pp->body;
	it->body_len = strlen(pp->body);
	return HK_OK;
}

static void publish(struct http_req *req, struct app *app, const struct store_auth *auth)
{
	json_t *body;
	if (!api_body_object(req, false, &body))
		return;
	if (!api_only_fields(req, body, event_fields)) {
		json_decref(body);
		return;
	}
	struct hk_err err;
	struct pending_publish *pp = calloc(1, sizeof(*pp));
	hk_status st = pp ? prepare(app, req, auth, body, pp, &err)
	                  : hk_fail(&err, HK_ENOMEM, NULL, "out of memory");
	json_decref(body);
	if (st == HK_OK) {
		pp->req = req;
		pp->job.done = publish_done;
		/* Suspend first: the committer may answer before submit returns. */
		http_suspend(req);
		enum publish_refusal why = publisher_submit(app->publisher, &pp->job);
		if (why == PUBLISH_QUEUED)
			return;
		api_publish_refused(why, &err);
		http_resume_error(req, &err);
	} else {
		http_reply_error(req, &err);
	}
	if (pp)
		free(pp->body);
	free(pp);
}

static void handle_org_publish(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (api_auth_org(req, app, 0, &auth))
		publish(req, app, &auth);
}

static void handle_workspace_publish(struct http_req *req, void *ctx)
{
	struct app *app = ctx;
	struct store_auth auth;
	if (api_auth(req, app, &auth))
		publish(req, app, &auth);
}

int api_events_routes(struct router *r)
{
	static const struct api_route routes[] = {
		{ "POST", "/org/{slug}/events", handle_org_publish },
		{ "POST", "/v1/events", handle_workspace_publish },
	};
	return api_add_routes(r, routes, sizeof(routes) / sizeof(routes[0]));
}
