"""End-to-end tests of the delivery engine: the real hookd binary delivering
to a real HTTPS receiver on loopback (tests/receiver.c, trusted through
--ca-file). Each test asserts what a receiver or an API user would see."""
import concurrent.futures
import http.client
import json
import time

from harness import verify_agentvista_signature, verify_standard_signature, wait_until

BASE = "/org/default/webhooks"
FAST = ["--retry-schedule", "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms"]


def start(ctx, *extra, allow=True):
    r = ctx.receiver()
    args = ["--ca-file", ctx.certs["ca"], *extra]
    if allow:
        args += ["--allow-targets", "127.0.0.0/8"]
    return ctx.hookd(extra_args=args), r


def endpoint(h, url, types=("*",)):
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": url, "event_types": list(types)})
    assert st == 201, ep
    return ep


def publish(h, payload=None, event_type="alert.fired"):
    st, got, _ = h.request("POST", "/v1/events", {"event_type": event_type,
                                                  "payload": payload if payload is not None else {"n": 1}})
    assert st == 202, got
    return got


def deliveries(h, ep):
    st, got, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries?per_page=100")
    assert st == 200, got
    return got["deliveries"]


def detail(h, delivery_id):
    st, got, _ = h.request("GET", BASE + "/deliveries/" + delivery_id)
    assert st == 200, got
    return got


def settled(h, ep, n=1):
    """Wait until the endpoint has n deliveries, none pending; return them."""
    def done():
        ds = deliveries(h, ep)
        return len(ds) == n and all(d["status"] != "pending" for d in ds)
    wait_until(done, 15, "deliveries settled")
    return deliveries(h, ep)


def test_body_headers_and_both_signatures(ctx):
    h, r = start(ctx)
    ep = endpoint(h, r.url("/status/200"))
    payload = {"monitor": "api", "status": "down", "n": [1, 2.5, None], "s": "é\u2603"}
    pub = publish(h, payload)
    req = r.wait_for(1, "/status/200")[0]
    body = json.loads(req["body"])
    assert list(body) == ["id", "type", "created_at", "data"]
    assert body["id"] == pub["event_id"] and body["type"] == "alert.fired"
    assert body["data"] == payload
    hd = req["headers"]
    assert req["method"] == "POST"
    assert hd["content-type"] == "application/json"
    assert hd["user-agent"].startswith("hookd/")
    assert hd["webhook-id"] == pub["event_id"]
    assert abs(int(hd["webhook-timestamp"]) - time.time()) < 30
    assert verify_standard_signature(ep["secret"], hd, req["body"])
    assert verify_agentvista_signature(ep["secret"], hd, req["body"])
    assert hd["x-agentvista-signature"].startswith("t=" + hd["webhook-timestamp"] + ",v1=")
    assert "accept-encoding" not in hd or "gzip" not in hd["accept-encoding"]
    d = settled(h, ep)[0]
    assert d["status"] == "succeeded" and d["attempt_count"] == 1 and d["last_http_status"] == 200
    assert d["next_attempt_at"] is None
    full = detail(h, d["id"])
    assert full["endpoint_id"] == ep["id"] and full["payload"] == body
    assert len(full["attempts"]) == 1
    a = full["attempts"][0]
    assert set(a) == {"attempt_number", "started_at", "duration_ms", "http_status", "error",
                      "response_body"}
    assert a["attempt_number"] == 1 and a["http_status"] == 200 and a["error"] is None
    assert a["response_body"] == "status 200" and a["duration_ms"] >= 0


def test_flaky_receiver_succeeds_on_third_attempt(ctx):
    h, r = start(ctx, *FAST)
    ep = endpoint(h, r.url("/seq/500,500,200"))
    pub = publish(h)
    reqs = r.wait_for(3, "/seq/500,500,200")
    assert {q["headers"]["webhook-id"] for q in reqs} == {pub["event_id"]}
    d = settled(h, ep)[0]
    assert d["status"] == "succeeded" and d["attempt_count"] == 3 and d["last_http_status"] == 200
    attempts = detail(h, d["id"])["attempts"]
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3]
    assert [a["http_status"] for a in attempts] == [500, 500, 200]
    assert attempts[0]["error"] and attempts[2]["error"] is None
    time.sleep(0.5)
    assert len(r.requests("/seq/500,500,200")) == 3


def test_gone_fails_at_once(ctx):
    h, r = start(ctx, *FAST)
    ep = endpoint(h, r.url("/status/410"))
    publish(h)
    d = settled(h, ep)[0]
    assert d["status"] == "failed" and d["attempt_count"] == 1 and d["last_http_status"] == 410
    time.sleep(0.5)
    assert len(r.requests("/status/410")) == 1


def test_redirect_is_not_followed(ctx):
    h, r = start(ctx, "--retry-schedule", "10m")
    ep = endpoint(h, r.url("/redirect"))
    publish(h)
    r.wait_for(1, "/redirect")
    wait_until(lambda: deliveries(h, ep)[0]["attempt_count"] == 1, 10, "attempt recorded")
    d = deliveries(h, ep)[0]
    assert d["status"] == "pending" and d["last_http_status"] == 302
    time.sleep(0.3)
    assert r.requests("/status/200") == []


def test_retry_after_is_honoured(ctx):
    h, r = start(ctx, *FAST)
    ep = endpoint(h, r.url("/retry-after/2/429"))
    publish(h)
    reqs = r.wait_for(2, "/retry-after/2/429", timeout=10)
    gap = reqs[1]["t_ms"] - reqs[0]["t_ms"]
    assert gap >= 1900, "second attempt after %d ms, Retry-After said 2 s" % gap
    d = settled(h, ep)[0]
    assert d["status"] == "succeeded" and d["attempt_count"] == 2
    assert detail(h, d["id"])["attempts"][0]["http_status"] == 429


def test_breaker_pauses_holds_and_resumes(ctx):
    # One attempt at a time, so the count at the pause is exact.
    h, r = start(ctx, *FAST, "--breaker-threshold", "3", "--max-in-flight-per-endpoint", "1")
    ep = endpoint(h, r.url("/status/500"))
    for i in range(2):
        publish(h, {"i": i})

    def state():
        st, eps, _ = h.request("GET", BASE + "/endpoints")
        return eps[0]
    wait_until(lambda: state()["is_active"] is False, 15, "endpoint paused")
    assert state()["consecutive_failures"] == 3
    sent = len(r.requests("/status/500"))
    assert sent == 3
    publish(h, {"i": 2})  # published while paused: waits too
    time.sleep(1.0)
    assert len(r.requests("/status/500")) == sent, "a paused endpoint was contacted"
    ds = deliveries(h, ep)
    assert len(ds) == 3 and all(d["status"] == "pending" for d in ds)
    # Fix the receiver and re-enable: the waiting deliveries go out, counter reset.
    st, got, _ = h.request("PATCH", BASE + "/endpoints/" + ep["id"],
                           {"url": r.url("/status/200"), "is_active": True})
    assert st == 200 and got["is_active"] is True and got["consecutive_failures"] == 0
    r.wait_for(3, "/status/200")
    ds = settled(h, ep, 3)
    assert all(d["status"] == "succeeded" for d in ds)
    assert state()["consecutive_failures"] == 0


def test_pause_gives_back_deliveries_claimed_ahead(ctx):
    # hookd claims up to a cap's worth ahead of the per-endpoint cap. When
    # the breaker pauses the endpoint, those must not go out, and must go
    # out as soon as it is enabled again: not when their leases end (50 s).
    h, r = start(ctx, *FAST, "--breaker-threshold", "2", "--max-in-flight-per-endpoint", "2")
    ep = endpoint(h, r.url("/status/500"))
    path = BASE + "/endpoints/" + ep["id"]
    assert h.request("PATCH", path, {"is_active": False})[0] == 200
    for i in range(12):  # waiting, then claimed together: 2 in flight, 2 ahead
        publish(h, {"i": i})
    assert h.request("PATCH", path, {"is_active": True})[0] == 200

    def state():
        return h.request("GET", BASE + "/endpoints")[1][0]
    wait_until(lambda: state()["is_active"] is False, 15, "endpoint paused")
    sent = len(r.requests("/status/500"))
    time.sleep(1.0)
    assert len(r.requests("/status/500")) == sent, "a paused endpoint was contacted"
    st, got, _ = h.request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})
    assert st == 200 and got["is_active"] is True
    r.wait_for(12, "/status/200", timeout=10)
    assert all(d["status"] == "succeeded" for d in settled(h, ep, 12))


def test_pause_through_the_api_gives_back_deliveries_claimed_ahead(ctx):
    # As above, but paused by a PATCH: attempts under way finish, and what
    # was claimed ahead for their slots is not sent when they do.
    h, r = start(ctx, "--max-in-flight-per-endpoint", "2")
    ep = endpoint(h, r.url("/sleep/1500"))
    path = BASE + "/endpoints/" + ep["id"]
    for i in range(12):  # 2 in flight, 2 claimed ahead
        publish(h, {"i": i})
    wait_until(lambda: len(r.requests()) >= 2, 15, "the first two answered")
    assert h.request("PATCH", path, {"is_active": False})[0] == 200
    paused_ms = time.time() * 1000
    time.sleep(4.0)  # those in flight answered, and the receiver logs a request once answered
    assert [q for q in r.requests() if q["t_ms"] > paused_ms] == [], "a paused endpoint was contacted"
    st, got, _ = h.request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})
    assert st == 200 and got["is_active"] is True
    ds = settled(h, ep, 12)
    assert all(d["status"] == "succeeded" for d in ds)
    assert len(r.requests()) == 12


def test_reenabling_a_backlog_delivers_each_once(ctx):
    # A paused endpoint's backlog waits where it is, and is claimable again
    # once the endpoint is: none may be left behind or sent twice.
    h, r = start(ctx)
    st, got, _ = h.request("PUT", "/v1/webhooks", {"url": r.url("/status/200"), "enabled": False})
    assert st == 200, got
    n = 2 * 4096 + 100

    def pub(i):
        return h.request("POST", "/v1/events", {"event_type": "t", "payload": {"i": i}})[0]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert list(pool.map(pub, range(n))) == [202] * n
    time.sleep(0.5)
    assert r.requests() == [], "a disabled webhook was contacted"
    st, got, _ = h.request("PUT", "/v1/webhooks", {"enabled": True})
    assert st == 200 and got["webhook"]["enabled"] is True, got
    wait_until(lambda: h.attempts_counted("succeeded") >= n, 120, "the backlog delivered")
    ids = [q["headers"]["webhook-id"] for q in r.requests("/status/200")]
    assert len(ids) == len(set(ids)) == n
    assert h.attempts_counted() == n


BACKLOG = 2 * 4096 + 100  # three chunks of SQLite's release, when it had them
CAP = 8


def publish_backlog(h):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: publish(h, {"i": i}), range(BACKLOG)))


def all_delivered(r, path):
    r.wait_for(BACKLOG, path, timeout=120)
    time.sleep(0.5)
    ids = [q["headers"]["webhook-id"] for q in r.requests(path)]
    assert len(ids) == len(set(ids)) == BACKLOG, "a delivery left behind or sent twice"


def test_pausing_mid_backlog_sends_nothing_more_then_each_once(ctx):
    h, r = start(ctx, "--max-in-flight-per-endpoint", str(CAP))
    ep = endpoint(h, r.url("/sleep/2000"))
    path = BASE + "/endpoints/" + ep["id"]
    publish_backlog(h)
    st, got, _ = h.request("PATCH", path, {"is_active": False})
    paused_ms = time.time() * 1000
    assert st == 200 and got["is_active"] is False
    # Those in flight finish (2 s), and what was claimed ahead for their
    # slots is given back, not sent (the receiver logs a request once it
    # has answered it, 2 s more).
    time.sleep(5.0)
    late = [q for q in r.requests() if q["t_ms"] > paused_ms]
    assert late == [], "a paused endpoint was contacted"
    st, got, _ = h.request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})
    assert st == 200 and got["is_active"] is True
    all_delivered(r, None)  # before the pause too


def test_breaker_pauses_mid_backlog(ctx):
    h, r = start(ctx, *FAST, "--breaker-threshold", "3", "--max-in-flight-per-endpoint", str(CAP))
    ep = endpoint(h, r.url("/status/500"))
    path = BASE + "/endpoints/" + ep["id"]
    assert h.request("PATCH", path, {"is_active": False})[0] == 200
    publish_backlog(h)
    # The first failures trip the breaker, which stops the rest.
    assert h.request("PATCH", path, {"is_active": True})[0] == 200
    wait_until(lambda: h.request("GET", BASE + "/endpoints")[1][0]["is_active"] is False, 15,
               "endpoint paused")
    time.sleep(1.0)  # those in flight answered
    sent = len(r.requests())
    time.sleep(1.0)
    assert len(r.requests()) == sent, "a paused endpoint was contacted"
    assert h.request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})[0] == 200
    all_delivered(r, "/status/200")


def test_manual_retry_adds_one_attempt_same_webhook_id(ctx):
    h, r = start(ctx)
    ep = endpoint(h, r.url("/status/200"))
    pub = publish(h)
    d = settled(h, ep)[0]
    st, got, _ = h.request("POST", BASE + "/deliveries/" + d["id"] + "/retry")
    assert (st, got) == (202, {"queued": True, "delivery_id": d["id"]})
    reqs = r.wait_for(2, "/status/200")
    assert [q["headers"]["webhook-id"] for q in reqs] == [pub["event_id"]] * 2
    wait_until(lambda: detail(h, d["id"])["attempt_count"] == 2, 10, "second attempt recorded")
    full = detail(h, d["id"])
    assert full["status"] == "succeeded" and [a["attempt_number"] for a in full["attempts"]] == [1, 2]
    time.sleep(0.5)
    assert len(r.requests("/status/200")) == 2


def test_manual_retry_of_failed_delivery(ctx):
    h, r = start(ctx, "--retry-schedule", "100ms")
    ep = endpoint(h, r.url("/seq/500,500,200"))
    publish(h)
    d = settled(h, ep)[0]
    assert d["status"] == "failed" and d["attempt_count"] == 2
    st, got, _ = h.request("POST", BASE + "/deliveries/" + d["id"] + "/retry")
    assert st == 202
    wait_until(lambda: detail(h, d["id"])["status"] == "succeeded", 10, "retried to success")
    assert detail(h, d["id"])["attempt_count"] == 3


def test_slow_endpoint_does_not_delay_healthy_one(ctx):
    h, r = start(ctx, "--max-in-flight-per-endpoint", "8", "--attempt-timeout", "30s")
    endpoint(h, r.url("/sleep/10000"), types=["slow"])
    endpoint(h, r.url("/status/200"), types=["fast"])
    t0 = time.time()
    for i in range(40):
        publish(h, {"i": i}, event_type="slow")
    for i in range(20):
        publish(h, {"i": i}, event_type="fast")
    reqs = r.wait_for(20, "/status/200", timeout=8)
    elapsed = max(q["done_ms"] for q in reqs) / 1000.0 - t0
    assert elapsed < 8, "healthy endpoint waited %.1f s behind a slow one" % elapsed
    assert len(r.requests("/sleep/10000")) <= 8 + 1, "per-endpoint cap not applied"


def test_blocked_target_is_never_contacted(ctx):
    h, r = start(ctx, "--retry-schedule", "10m", allow=False)
    # A host name passes URL validation; it resolves to loopback at connect time.
    port = r.url("/").split(":")[2].split("/")[0]
    ep = endpoint(h, "https://localhost:%s/status/200" % port)
    publish(h)
    wait_until(lambda: deliveries(h, ep)[0]["attempt_count"] == 1, 10, "attempt recorded")
    d = deliveries(h, ep)[0]
    assert d["status"] == "pending" and d["last_http_status"] is None
    a = detail(h, d["id"])["attempts"][0]
    assert a["http_status"] is None
    assert "blocked" in a["error"] and "loopback" in a["error"], a["error"]
    assert r.requests() == []


def test_kill9_during_stream_loses_nothing(ctx):
    h, r = start(ctx, *FAST)
    ep = endpoint(h, r.url("/status/200"))
    acked = [publish(h, {"i": i})["event_id"] for i in range(150)]
    time.sleep(0.05)
    h.kill9()
    h.restart()
    acked += [publish(h, {"i": i})["event_id"] for i in range(150, 200)]
    h.kill9()
    h.restart()

    def all_arrived():
        got = {q["headers"]["webhook-id"] for q in r.requests("/status/200")}
        return set(acked) <= got
    wait_until(all_arrived, 30, "every acknowledged event delivered")
    got = [q["headers"]["webhook-id"] for q in r.requests("/status/200")]
    assert set(got) == set(acked), "unexpected deliveries"
    ds = settled(h, ep, 100)
    assert all(d["status"] == "succeeded" for d in ds)


def test_sigterm_lets_in_flight_attempts_finish(ctx):
    h, r = start(ctx, "--grace", "10s")
    ep = endpoint(h, r.url("/sleep/1500"))
    for i in range(3):
        publish(h, {"i": i})
    time.sleep(0.5)  # the three attempts are in flight now
    t = time.time()
    h.stop()  # SIGTERM: exit 0, sanitizers clean
    assert time.time() - t >= 0.8, "did not wait for the in-flight attempts"
    assert len(r.requests("/sleep/1500")) == 3
    h.start()
    ds = deliveries(h, ep)
    assert len(ds) == 3 and all(d["status"] == "succeeded" and d["attempt_count"] == 1 for d in ds), ds
    time.sleep(0.5)
    assert len(r.requests("/sleep/1500")) == 3, "an attempt finished in the grace period was repeated"


def test_sigterm_stops_taking_requests(ctx):
    """After SIGTERM, while an attempt is still in its grace period: a new
    connection is closed unanswered, and a publish on a connection opened
    before the signal gets 503 shutting_down and stores nothing."""
    h, r = start(ctx, "--grace", "10s")
    ep = endpoint(h, r.url("/sleep/3000"))
    publish(h)
    time.sleep(0.5)  # the attempt is in flight now (the receiver logs it when answered)
    kept = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    kept.request("GET", "/healthz")
    resp = kept.getresponse()
    assert resp.status == 200 and resp.read()
    h.proc.terminate()
    wait_until(lambda: 'msg="stopping"' in h.log_text(), 10, "hookd took the signal")
    # Publishes on the open connection until one is refused: any 202 before
    # the publisher stopped is an accepted event, and must be delivered.
    accepted, deadline = 0, time.time() + 5
    while True:
        kept.request("POST", "/v1/events", body=json.dumps({"event_type": "a", "payload": 1}),
                     headers={"Authorization": "Bearer " + h.admin_key,
                              "Content-Type": "application/json"})
        resp = kept.getresponse()
        got = json.loads(resp.read())
        if resp.status != 202 or time.time() > deadline:
            break
        accepted += 1
    assert resp.status == 503 and got["error"]["code"] == "shutting_down", (resp.status, got)
    fresh = http.client.HTTPConnection("127.0.0.1", h.port, timeout=5)
    try:
        fresh.request("GET", "/healthz")
        st = fresh.getresponse().status
        raise AssertionError("a new connection after SIGTERM was answered %d" % st)
    except OSError:
        pass  # closed unanswered (or refused)
    kept.close()
    h.wait_stopped()
    # The attempt in flight finished in the grace period; any event accepted
    # just before the refusal may have waited for the restart instead.
    assert 1 <= len(r.requests("/sleep/3000")) <= 1 + accepted
    h.start()
    ds = deliveries(h, ep)
    assert len(ds) == 1 + accepted, ds
    wait_until(lambda: all(d["status"] == "succeeded" for d in deliveries(h, ep)), 15,
               "every accepted event delivered")


def test_sigterm_past_grace_leaves_deliveries_pending(ctx):
    h, r = start(ctx, "--grace", "300ms")
    ep = endpoint(h, r.url("/sleep/3000"))
    publish(h)
    time.sleep(0.5)
    t = time.time()
    h.stop()
    assert time.time() - t < 2.5, "grace period not applied"
    h.start()
    ds = deliveries(h, ep)
    assert ds[0]["status"] in ("pending", "succeeded")
    # The abandoned attempt is made again after the restart and succeeds.
    wait_until(lambda: deliveries(h, ep)[0]["status"] == "succeeded", 15, "redelivered after restart")


def test_proxy_environment_is_ignored(ctx):
    # A proxy that does not exist: were it used, no delivery could arrive.
    proxy = "http://127.0.0.1:9"
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"]],
                  env={"https_proxy": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy,
                       "all_proxy": proxy, "NO_PROXY": ""})
    endpoint(h, r.url("/status/200"))
    publish(h)
    req = r.wait_for(1, "/status/200")[0]
    assert "via" not in req["headers"] and "proxy-authorization" not in req["headers"]


def test_burst_larger_than_the_kept_transfers(ctx):
    """600 attempts in flight at once, more than the idle transfers hookd
    keeps for reuse (256): as they finish, the surplus is freed. Each
    arrives once, each is recorded, and delivery goes on afterwards."""
    h, r = start(ctx, "--max-in-flight-per-endpoint", "600", "--attempt-timeout", "60s")
    st, got, _ = h.request("PUT", "/v1/webhooks", {"url": r.url("/sleep/300"), "enabled": False})
    assert st == 200, got
    acked = [publish(h, {"i": i})["event_id"] for i in range(600)]
    st, got, _ = h.request("PUT", "/v1/webhooks", {"enabled": True})
    assert st == 200, got
    reqs = r.wait_for(600, "/sleep/300", timeout=60)
    assert sorted(q["headers"]["webhook-id"] for q in reqs) == sorted(acked)

    wait_until(lambda: h.attempts_counted("succeeded") == 600, 30, "600 attempts recorded as succeeded")
    later = [publish(h, {"i": i})["event_id"] for i in range(600, 620)]
    reqs = r.wait_for(620, "/sleep/300", timeout=30)
    assert sorted(q["headers"]["webhook-id"] for q in reqs) == sorted(acked + later)
