"""End-to-end tests of the organization endpoint API (seed 002) and of the
errors every route shares, against the real hookd binary.

Each rejected request is followed by a check that it changed nothing.
"""
import json
import re

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
BASE = "/org/default/webhooks"
URL = "https://hooks.example.com/in"


def endpoints(h, key=None):
    st, body, _ = h.request("GET", BASE + "/endpoints", key=key or h.admin_key)
    assert st == 200, (st, body)
    return body


def create(h, **fields):
    body = {"url": URL, "description": "main", "event_types": ["alert.fired"]}
    body.update(fields)
    st, ep, _ = h.request("POST", BASE + "/endpoints", body)
    assert st == 201, (st, ep)
    return ep


def assert_error(st, body, status, code=None):
    assert st == status, (st, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert re.match(r"^[a-z][a-z0-9_]*$", body["error"]["code"]), body
    assert body["error"]["message"], body
    if code:
        assert body["error"]["code"] == code, body


def member_key(h):
    rc, out, err = h.cli("key", "create", "--org", "default", "--role", "member")
    assert rc == 0, err
    return out.strip()


def test_healthz_needs_no_key(ctx):
    h = ctx.hookd()
    st, body, _ = h.request("GET", "/healthz", key=None)
    assert (st, body) == (200, {"status": "ok"})


def test_create_shape(ctx):
    h = ctx.hookd()
    ep = create(h, event_types=["alert.fired", "alert.resolved"])
    assert set(ep) == {"id", "url", "description", "event_types", "is_active",
                       "consecutive_failures", "created_at", "secret"}, ep
    assert UUID_RE.match(ep["id"]), ep["id"]
    assert ep["url"] == URL and ep["description"] == "main"
    assert ep["event_types"] == ["alert.fired", "alert.resolved"]
    assert ep["is_active"] is True and ep["consecutive_failures"] == 0
    assert TIME_RE.match(ep["created_at"]), ep["created_at"]
    assert re.match(r"^[0-9a-f]{64}$", ep["secret"]), ep["secret"]


def test_list_newest_first_without_secret(ctx):
    h = ctx.hookd()
    assert endpoints(h) == []
    a = create(h, description="a")
    b = create(h, description="b")
    got = endpoints(h)
    assert [e["id"] for e in got] == [b["id"], a["id"]]
    for e in got:
        assert "secret" not in e
        assert set(e) == {"id", "url", "description", "event_types", "is_active",
                          "consecutive_failures", "created_at"}


def test_patch_any_subset(ctx):
    h = ctx.hookd()
    ep = create(h)
    path = BASE + "/endpoints/" + ep["id"]
    st, got, _ = h.request("PATCH", path, {"description": "renamed"})
    assert st == 200 and got["description"] == "renamed" and got["url"] == URL, got
    assert "secret" not in got
    st, got, _ = h.request("PATCH", path, {"url": "https://other.example.com/x",
                                           "event_types": ["*"], "is_active": False})
    assert st == 200, got
    assert got["url"] == "https://other.example.com/x"
    assert got["event_types"] == ["*"] and got["is_active"] is False
    st, got, _ = h.request("PATCH", path, {"is_active": True})
    assert st == 200 and got["is_active"] is True and got["consecutive_failures"] == 0
    assert endpoints(h)[0]["description"] == "renamed"


def test_rotate_secret(ctx):
    h = ctx.hookd()
    ep = create(h)
    st, got, _ = h.request("POST", BASE + "/endpoints/" + ep["id"] + "/rotate-secret")
    assert st == 200 and set(got) == {"id", "secret"}, got
    assert got["id"] == ep["id"] and got["secret"] != ep["secret"]
    assert re.match(r"^[0-9a-f]{64}$", got["secret"])


def test_delete_cascades_deliveries(ctx):
    h = ctx.hookd()
    ep = create(h)
    st, pub, _ = h.request("POST", "/org/default/events",
                           {"event_type": "alert.fired", "payload": {"n": 1}})
    assert st == 202 and pub["deliveries"] == 1, pub
    st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
    assert st == 200 and ds["total"] == 1, ds
    delivery = ds["deliveries"][0]["id"]
    st, body, _ = h.request("DELETE", BASE + "/endpoints/" + ep["id"])
    assert st == 204 and body is None
    assert endpoints(h) == []
    st, body, _ = h.request("GET", BASE + "/deliveries/" + delivery)
    assert_error(st, body, 404)
    st, body, _ = h.request("DELETE", BASE + "/endpoints/" + ep["id"])
    assert_error(st, body, 404)


def test_auth_errors_change_nothing(ctx):
    h = ctx.hookd()
    body = {"url": URL, "event_types": ["a"]}
    st, got, _ = h.request("POST", BASE + "/endpoints", body, key=None)
    assert_error(st, got, 401)
    st, got, _ = h.request("POST", BASE + "/endpoints", body, key="hk_not_a_real_key")
    assert_error(st, got, 401)
    st, got, _ = h.request("GET", BASE + "/endpoints", headers={"Authorization": "Basic abc"},
                           key=None)
    assert_error(st, got, 401)
    member = member_key(h)
    st, got, _ = h.request("POST", BASE + "/endpoints", body, key=member)
    assert_error(st, got, 403)
    assert endpoints(h) == []
    # A member may read and publish.
    assert endpoints(h, key=member) == []
    st, got, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": 1}, key=member)
    assert st == 202, got


def test_member_cannot_change_anything(ctx):
    h = ctx.hookd()
    ep = create(h)
    member = member_key(h)
    path = BASE + "/endpoints/" + ep["id"]
    for method, p, body in [("PATCH", path, {"description": "x"}), ("DELETE", path, None),
                            ("POST", path + "/rotate-secret", None)]:
        st, got, _ = h.request(method, p, body, key=member)
        assert_error(st, got, 403)
    assert endpoints(h) == [{k: v for k, v in ep.items() if k != "secret"}]


def test_other_org_is_not_found(ctx):
    h = ctx.hookd()
    ep = create(h)
    rc, out, err = h.cli("org", "create", "acme", "--name", "Acme Inc")
    assert rc == 0, err
    rc, out, err = h.cli("key", "create", "--org", "acme", "--role", "admin")
    assert rc == 0, err
    acme = out.strip()
    assert re.match(r"^\S+$", acme) and "\n" not in acme
    # acme's key on default's paths: 404, as if default did not exist.
    for method, path, body in [
            ("GET", BASE + "/endpoints", None),
            ("POST", BASE + "/endpoints", {"url": URL, "event_types": ["a"]}),
            ("PATCH", BASE + "/endpoints/" + ep["id"], {"description": "x"}),
            ("DELETE", BASE + "/endpoints/" + ep["id"], None),
            ("POST", "/org/default/events", {"event_type": "a", "payload": 1}),
            ("GET", "/org/nosuchorg/webhooks/endpoints", None)]:
        st, got, _ = h.request(method, path, body, key=acme)
        assert_error(st, got, 404)
    # acme sees only its own (empty) list, default is untouched.
    st, got, _ = h.request("GET", "/org/acme/webhooks/endpoints", key=acme)
    assert (st, got) == (200, [])
    assert len(endpoints(h)) == 1


def test_malformed_bodies(ctx):
    h = ctx.hookd(extra_args=["--max-body", "2KiB"])
    path = BASE + "/endpoints"
    st, got, _ = h.request("POST", path, raw=b'{"url": ')
    assert_error(st, got, 400, "invalid_json")
    st, got, _ = h.request("POST", path, raw=b'[1, 2]')
    assert_error(st, got, 400)
    st, got, _ = h.request("POST", path, raw=b'[' * 65 + b']' * 65)
    assert_error(st, got, 400)
    st, got, _ = h.request("POST", path, raw=b'{"url": "' + URL.encode() + b'"}',
                           content_type="text/plain")
    assert_error(st, got, 415)
    st, got, _ = h.request("POST", path, {"url": URL, "description": "x" * 3000,
                                          "event_types": ["a"]})
    assert_error(st, got, 413)
    st, got, _ = h.request("PUT", path, {"url": URL})
    assert_error(st, got, 405)
    st, got, _ = h.request("GET", "/org/default/nothing-here")
    assert_error(st, got, 404)
    assert endpoints(h) == []


def test_invalid_fields_are_422(ctx):
    h = ctx.hookd()
    bad = [
        {"url": "http://hooks.example.com/", "event_types": ["a"]},
        {"url": "https://user:pw@hooks.example.com/", "event_types": ["a"]},
        {"url": "https://hooks.example.com/" + "a" * 2048, "event_types": ["a"]},
        {"url": "https://127.0.0.1/x", "event_types": ["a"]},
        {"url": "https://[::1]/x", "event_types": ["a"]},
        {"url": "https://169.254.169.254/latest", "event_types": ["a"]},
        {"url": "https://10.1.2.3/", "event_types": ["a"]},
        {"url": "https:///nohost", "event_types": ["a"]},
        {"url": "not a url", "event_types": ["a"]},
        {"url": 42, "event_types": ["a"]},
        {"event_types": ["a"]},
        {"url": URL},
        {"url": URL, "event_types": []},
        {"url": URL, "event_types": "alert.fired"},
        {"url": URL, "event_types": ["bad type!"]},
        {"url": URL, "event_types": ["x" * 129]},
        {"url": URL, "event_types": [1]},
        {"url": URL, "event_types": ["a"], "description": "d" * 257},
        {"url": URL, "event_types": ["a"], "description": 5},
        {"url": URL, "event_types": ["a"], "colour": "red"},
    ]
    for body in bad:
        st, got, _ = h.request("POST", BASE + "/endpoints", body)
        assert_error(st, got, 422)
        assert len(got["error"]["message"]) < 300
    assert endpoints(h) == []
    ep = create(h)
    path = BASE + "/endpoints/" + ep["id"]
    for body in [{"url": "http://x.example.com/"}, {"event_types": []}, {"is_active": "yes"},
                 {"description": ["x"]}, {"nope": 1}]:
        st, got, _ = h.request("PATCH", path, body)
        assert_error(st, got, 422)
    assert endpoints(h) == [{k: v for k, v in ep.items() if k != "secret"}]


def test_unknown_ids_are_404(ctx):
    h = ctx.hookd()
    missing = "01890a5d-ac96-774b-bcce-b302099a8057"
    for method, path, body in [
            ("PATCH", BASE + "/endpoints/" + missing, {"description": "x"}),
            ("PATCH", BASE + "/endpoints/not-a-uuid", {"description": "x"}),
            ("DELETE", BASE + "/endpoints/" + missing, None),
            ("POST", BASE + "/endpoints/" + missing + "/rotate-secret", None),
            ("GET", BASE + "/endpoints/" + missing + "/deliveries", None),
            ("GET", BASE + "/deliveries/" + missing, None),
            ("GET", BASE + "/deliveries/zzz", None),
            ("POST", BASE + "/deliveries/" + missing + "/retry", None)]:
        st, got, _ = h.request(method, path, body)
        assert_error(st, got, 404)


def test_publish_fans_out_by_type(ctx):
    h = ctx.hookd()
    fired = create(h, event_types=["alert.fired"])
    star = create(h, event_types=["*"])
    other = create(h, event_types=["alert.resolved"])
    paused = create(h, event_types=["alert.fired"])
    st, _, _ = h.request("PATCH", BASE + "/endpoints/" + paused["id"], {"is_active": False})
    assert st == 200
    st, got, _ = h.request("POST", "/org/default/events",
                           {"event_type": "alert.fired", "payload": {"a": [1, 2]}})
    assert st == 202 and set(got) == {"event_id", "deliveries"}, got
    assert UUID_RE.match(got["event_id"]) and got["deliveries"] == 3
    totals = {}
    for ep in (fired, star, other, paused):
        st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
        assert st == 200
        totals[ep["id"]] = ds["total"]
    assert totals == {fired["id"]: 1, star["id"]: 1, other["id"]: 0, paused["id"]: 1}
    st, ds, _ = h.request("GET", BASE + "/endpoints/" + paused["id"] + "/deliveries")
    d = ds["deliveries"][0]
    assert d["event_id"] == got["event_id"] and d["status"] == "pending"
    assert d["event_type"] == "alert.fired" and d["attempt_count"] == 0


def test_publish_validation(ctx):
    h = ctx.hookd()
    ep = create(h, event_types=["*"])
    for body in [{"payload": 1}, {"event_type": "bad type", "payload": 1},
                 {"event_type": "", "payload": 1}, {"event_type": "a" * 129, "payload": 1},
                 {"event_type": "a"}, {"event_type": 3, "payload": 1},
                 {"event_type": "a", "payload": 1, "extra": True},
                 {"event_type": "a", "payload": 1, "idempotency_key": 7}]:
        st, got, _ = h.request("POST", "/v1/events", body)
        assert_error(st, got, 422)
    st, got, _ = h.request("POST", "/v1/events", raw=b"{nope")
    assert_error(st, got, 400)
    st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
    assert ds["total"] == 0
    # Any JSON value is a payload.
    for payload in [None, 0, "s", [1, {"x": None}], {"deep": {"er": True}}]:
        st, got, _ = h.request("POST", "/v1/events", {"event_type": "a.b-c_d", "payload": payload})
        assert st == 202 and got["deliveries"] == 1, got


def test_idempotency(ctx):
    h = ctx.hookd()
    ep = create(h, event_types=["*"])
    body = {"event_type": "a", "payload": {"x": 1, "y": 2}, "idempotency_key": "k1"}
    st, first, _ = h.request("POST", "/v1/events", body)
    assert st == 202
    same = {"event_type": "a", "payload": {"y": 2, "x": 1}, "idempotency_key": "k1"}
    st, again, _ = h.request("POST", "/v1/events", same)
    assert (st, again) == (202, first)
    st, got, _ = h.request("POST", "/v1/events", dict(body, payload={"x": 2}))
    assert_error(st, got, 409)
    # The header form.
    st, a, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": 1},
                         headers={"Idempotency-Key": "k2"})
    st2, b, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": 1},
                          headers={"Idempotency-Key": "k2"})
    assert st == st2 == 202 and a == b
    st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
    assert ds["total"] == 2, ds


def test_publish_is_durable_across_kill9(ctx):
    import concurrent.futures
    h = ctx.hookd()
    ep = create(h, event_types=["*"])
    acked = []

    def pub(i):
        st, got, _ = h.request("POST", "/v1/events", {"event_type": "t", "payload": {"i": i}})
        return got["event_id"] if st == 202 else None

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        acked = [e for e in pool.map(pub, range(300)) if e]
    assert len(acked) == 300
    h.kill9()
    h.restart()
    seen = set()
    page = 1
    while True:
        st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] +
                              "/deliveries?per_page=100&page=%d" % page)
        assert st == 200, ds
        seen.update(d["event_id"] for d in ds["deliveries"])
        if len(ds["deliveries"]) < 100:
            break
        page += 1
    assert ds["total"] == 300
    assert set(acked) <= seen, "lost %d acknowledged events" % len(set(acked) - seen)


def test_cli_help_and_env(ctx):
    h = ctx.hookd(env={"HOOKD_MAX_BODY": "1KiB"})
    st, got, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": "x" * 2000})
    assert_error(st, got, 413)
    for args in (["serve", "--help"], ["migrate", "--help"], ["org", "create", "--help"],
                 ["key", "create", "--help"]):
        rc, out, err = h.cli(*args)
        assert rc == 0 and "usage:" in out and "--db" in out, (args, out, err)
    rc, out, err = h.cli("migrate")
    assert rc == 0 and "schema version" in out, (out, err)
    rc, out, err = h.cli("key", "create", "--org", "nosuch")
    assert rc != 0 and out == ""


def test_bootstrap_key_once(ctx):
    h = ctx.hookd()
    key = h.admin_key
    assert key
    h.stop()
    h.start()
    assert h.admin_key == key
    assert "admin key" not in open(h.stdout_path).read().split("default org admin key")[-1]
    assert endpoints(h) == []
    log = h.log_text()
    assert key not in log
