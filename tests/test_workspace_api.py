"""End-to-end tests of the workspace API (seed 000), /v1/webhooks...,
against the real hookd binary and a real HTTPS receiver on loopback."""
import base64
import datetime
import hashlib
import hmac
import re

from harness import verify_standard_signature, wait_until

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DELIVERY_RE = re.compile(r"^delivery_[0-9a-f-]{36}$")
EVENT_RE = re.compile(r"^event_[0-9a-f-]{36}$")


def start(ctx, *extra):
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file",
                              ctx.certs["ca"], *extra])
    return h, r


def assert_error(st, body, status):
    assert st == status, (st, body)
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body


def put(h, body):
    st, got, _ = h.request("PUT", "/v1/webhooks", body)
    assert st == 200, (st, got)
    return got


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_unconfigured(ctx):
    h = ctx.hookd()
    st, got, _ = h.request("GET", "/v1/webhooks")
    assert (st, got) == (200, {"webhook": {"configured": False, "url": None, "enabled": False,
                                           "signing_secret": None}})
    st, got, _ = h.request("POST", "/v1/webhooks/rotate-signing-secret")
    assert_error(st, got, 404)
    st, got, _ = h.request("POST", "/v1/webhooks/test")
    assert_error(st, got, 404)
    st, got, _ = h.request("GET", "/v1/webhooks/test")
    assert (st, got) == (200, {"deliveries": []})
    st, got, _ = h.request("GET", "/v1/webhooks/events")
    assert st == 200 and got["deliveries"] == [] and got["total"] == 0 and got["page_size"] == 50
    st, got, _ = h.request("GET", "/v1/webhooks/stats")
    assert st == 200 and got["stats"] == [] and got["bucket_minutes"] == 60


def test_put_creates_then_updates(ctx):
    h = ctx.hookd()
    # No target yet: url is required.
    st, got, _ = h.request("PUT", "/v1/webhooks", {"enabled": True})
    assert_error(st, got, 422)
    got = put(h, {"url": "https://example.com/omnist/webhooks"})
    secret = got.pop("new_signing_secret")
    assert re.match(r"^whsec_[A-Za-z0-9+/]{43}=$", secret), secret
    assert len(base64.b64decode(secret[6:])) == 32
    assert got == {"webhook": {"configured": True, "url": "https://example.com/omnist/webhooks",
                               "enabled": True, "signing_secret": {
                                   "version": 1, "preview": "whsec_..." + secret[-4:]}}}
    # enabled keeps the existing value; url keeps when absent; no new secret.
    got = put(h, {"enabled": False})
    assert "new_signing_secret" not in got
    assert got["webhook"]["enabled"] is False
    assert got["webhook"]["url"] == "https://example.com/omnist/webhooks"
    got = put(h, {"url": "https://example.com/v2"})
    assert got["webhook"]["enabled"] is False and got["webhook"]["url"] == "https://example.com/v2"
    assert got["webhook"]["signing_secret"]["version"] == 1
    st, again, _ = h.request("GET", "/v1/webhooks")
    assert again == got
    # It is the org's primary endpoint: listed by the organization API, subscribed to "*".
    st, eps, _ = h.request("GET", "/org/default/webhooks/endpoints")
    assert len(eps) == 1 and eps[0]["event_types"] == ["*"] and eps[0]["url"] == "https://example.com/v2"
    st, got, _ = h.request("PATCH", "/org/default/webhooks/endpoints/" + eps[0]["id"],
                           {"event_types": ["a"]})
    assert_error(st, got, 422)


def test_put_validation_changes_nothing(ctx):
    h = ctx.hookd()
    for body in [{"url": "http://example.com/"}, {"url": 1}, {"url": "https://127.0.0.1/"},
                 {"url": "https://example.com/", "enabled": "yes"},
                 {"url": "https://example.com/", "other": 1}]:
        st, got, _ = h.request("PUT", "/v1/webhooks", body)
        assert_error(st, got, 422)
    st, got, _ = h.request("PUT", "/v1/webhooks", raw=b"{")
    assert_error(st, got, 400)
    st, got, _ = h.request("GET", "/v1/webhooks")
    assert got["webhook"]["configured"] is False
    rc, out, err = h.cli("key", "create", "--org", "default", "--role", "member")
    member = out.strip()
    for method, path in [("PUT", "/v1/webhooks"), ("POST", "/v1/webhooks/rotate-signing-secret")]:
        st, got, _ = h.request(method, path, {"url": "https://example.com/"}, key=member)
        assert_error(st, got, 403)
    st, got, _ = h.request("GET", "/v1/webhooks", key=member)
    assert st == 200 and got["webhook"]["configured"] is False
    st, got, _ = h.request("GET", "/v1/webhooks", key=None)
    assert_error(st, got, 401)


def test_rotation_old_secret_stops_signing(ctx):
    h, r = start(ctx)
    first = put(h, {"url": r.url("/status/200")})["new_signing_secret"]
    st, rot, _ = h.request("POST", "/v1/webhooks/rotate-signing-secret")
    assert st == 200, rot
    second = rot.pop("new_signing_secret")
    assert second != first and second.startswith("whsec_")
    assert rot["webhook"]["signing_secret"] == {"version": 2, "preview": "whsec_..." + second[-4:]}
    st, got, _ = h.request("POST", "/v1/webhooks/test")
    assert st == 200, got
    req = r.wait_for(1, "/status/200")[0]
    assert verify_standard_signature(second, req["headers"], req["body"])
    assert not verify_standard_signature(first, req["headers"], req["body"])
    # The primary endpoint gets no X-AgentVista-Signature.
    assert "x-agentvista-signature" not in req["headers"]


def test_test_delivery_succeeded(ctx):
    h, r = start(ctx)
    secret = put(h, {"url": r.url("/status/200")})["new_signing_secret"]
    st, got, _ = h.request("POST", "/v1/webhooks/test")
    assert st == 200, got
    d = got["delivery"]
    assert set(d) == {"id", "event_id", "event_type", "delivery_status", "attempt_count",
                      "last_http_status"}
    assert DELIVERY_RE.match(d["id"]) and EVENT_RE.match(d["event_id"])
    assert d["event_type"] == "webhook.test" and d["delivery_status"] == "succeeded"
    assert d["attempt_count"] == 1 and d["last_http_status"] == 200
    # It arrived before the call returned, signed, with the event id as webhook-id.
    reqs = r.requests("/status/200")
    assert len(reqs) == 1
    assert reqs[0]["headers"]["webhook-id"] == d["event_id"][len("event_"):]
    assert verify_standard_signature(secret, reqs[0]["headers"], reqs[0]["body"])
    # Fetched by prefixed id, by bare id, and in the list.
    for q in (d["id"], d["id"][len("delivery_"):]):
        st, one, _ = h.request("GET", "/v1/webhooks/test?id=" + q)
        assert (st, one) == (200, {"delivery": d})
    st, lst, _ = h.request("GET", "/v1/webhooks/test")
    assert lst == {"deliveries": [d]}
    st, got, _ = h.request("GET", "/v1/webhooks/test?id=delivery_00000000-0000-7000-8000-000000000000")
    assert_error(st, got, 404)
    st, got, _ = h.request("GET", "/v1/webhooks/test?id=garbage")
    assert_error(st, got, 404)


def test_test_delivery_failed_is_not_retried(ctx):
    h, r = start(ctx, "--retry-schedule", "1s")
    put(h, {"url": r.url("/status/500")})
    st, got, _ = h.request("POST", "/v1/webhooks/test")
    assert st == 200, got
    d = got["delivery"]
    assert d["delivery_status"] == "failed" and d["last_http_status"] == 500
    assert d["attempt_count"] == 1
    import time
    time.sleep(2.5)
    assert len(r.requests("/status/500")) == 1
    st, got, _ = h.request("POST", "/v1/webhooks/test")
    assert got["delivery"]["delivery_status"] == "failed"
    st, lst, _ = h.request("GET", "/v1/webhooks/test")
    assert len(lst["deliveries"]) == 2
    assert lst["deliveries"][0]["id"] == got["delivery"]["id"]  # newest first


def test_disabled_webhook_gets_no_test(ctx):
    h, r = start(ctx)
    put(h, {"url": r.url("/status/200"), "enabled": False})
    st, got, _ = h.request("POST", "/v1/webhooks/test")
    assert_error(st, got, 409)
    assert r.requests() == []


def test_events_paging_and_window(ctx):
    h, r = start(ctx)
    put(h, {"url": r.url("/status/200"), "enabled": False})  # held: nothing is sent
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
    ids = []
    for i in range(120):
        st, got, _ = h.request("POST", "/v1/events", {"event_type": "monitor.down", "payload": {"i": i}})
        assert st == 202 and got["deliveries"] == 1
        ids.append(got["event_id"])
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    seen = []
    for page in (1, 2, 3):
        st, got, _ = h.request("GET", "/v1/webhooks/events?page=%d" % page)
        assert st == 200 and got["page"] == page and got["page_size"] == 50 and got["total"] == 120
        assert len(got["deliveries"]) == (50 if page < 3 else 20)
        for d in got["deliveries"]:
            assert set(d) == {"id", "event_id", "event_type", "delivery_status", "attempt_count",
                              "last_http_status", "created_at"}
            assert d["delivery_status"] == "pending" and d["last_http_status"] is None
            assert TIME_RE.match(d["created_at"])
        seen += [d["event_id"][len("event_"):] for d in got["deliveries"]]
    assert seen == ids[::-1], "newest first, every delivery once"
    st, got, _ = h.request("GET", "/v1/webhooks/events?page=4")
    assert got["deliveries"] == [] and got["total"] == 120
    # Windows: all of it, none of it, offsets in any ISO 8601 form.
    st, got, _ = h.request("GET", "/v1/webhooks/events?start=%s&end=%s" % (iso(before), iso(after)))
    assert got["total"] == 120
    st, got, _ = h.request("GET", "/v1/webhooks/events?end=%s" % iso(before))
    assert got["total"] == 0
    local = (after.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
             .strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    st, got, _ = h.request("GET", "/v1/webhooks/events?start=" + local.replace("+", "%2B"))
    assert st == 200 and got["total"] == 0
    for q in ["start=yesterday", "end=2026-13-01T00:00:00Z", "page=0", "page=x",
              "start=2026-05-08T00:00:00Z&end=2026-05-07T00:00:00Z"]:
        st, got, _ = h.request("GET", "/v1/webhooks/events?" + q)
        assert_error(st, got, 400)


def test_stats_match_attempts(ctx):
    h, r = start(ctx, "--retry-schedule", "100ms,100ms", "--breaker-threshold", "0")
    put(h, {"url": r.url("/seq/500,200")})
    # One event: attempt 1 fails (500), attempt 2 succeeds.
    st, got, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": {}})
    assert st == 202
    r.wait_for(2, "/seq/500,200", timeout=10)
    st, got, _ = h.request("POST", "/v1/webhooks/test")  # a third attempt, succeeded
    assert got["delivery"]["delivery_status"] == "succeeded", got

    def counts():
        st, s, _ = h.request("GET", "/v1/webhooks/stats?bucket_minutes=1440")
        assert st == 200
        return s
    wait_until(lambda: h.attempts_counted() == 3, 10, "3 attempts counted")
    s = counts()
    assert s["bucket_minutes"] == 1440 and TIME_RE.match(s["start_at"]) and TIME_RE.match(s["end_at"])
    by = {}
    for x in s["stats"]:
        assert set(x) == {"bucket_start", "delivery_status", "attempt_count"}
        by[x["delivery_status"]] = by.get(x["delivery_status"], 0) + x["attempt_count"]
        # Buckets align to multiples of bucket_minutes since the epoch.
        t = datetime.datetime.strptime(x["bucket_start"], "%Y-%m-%dT%H:%M:%SZ")
        assert t.hour == 0 and t.minute == 0, x
    assert by == {"succeeded": 2, "failed": 1}, s
    keys = [(x["bucket_start"], x["delivery_status"]) for x in s["stats"]]
    assert keys == sorted(keys)
    # Minute buckets are aligned too, and a window before the attempts is empty.
    st, s, _ = h.request("GET", "/v1/webhooks/stats?bucket_minutes=7")
    for x in s["stats"]:
        t = datetime.datetime.strptime(x["bucket_start"], "%Y-%m-%dT%H:%M:%SZ")
        assert (int(t.replace(tzinfo=datetime.timezone.utc).timestamp()) // 60) % 7 == 0, x
    st, s, _ = h.request("GET", "/v1/webhooks/stats?start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z")
    assert st == 200 and s["stats"] == [] and s["start_at"] == "2020-01-01T00:00:00Z"
    for q in ["bucket_minutes=0", "bucket_minutes=1441", "bucket_minutes=x", "start=garbage",
              "end=2020-01-01T00:00:00Z&start=2020-01-02T00:00:00Z"]:
        st, got, _ = h.request("GET", "/v1/webhooks/stats?" + q)
        assert_error(st, got, 400)
