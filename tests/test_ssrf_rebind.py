"""DNS rebinding: a name that resolves to an allowed address and then to
loopback must never get a connection through to loopback, because hookd
checks the address each socket actually connects to, not the name."""
import os

from harness import wait_until

BASE = "/org/default/webhooks"


def test_rebinding_name_never_reaches_loopback(ctx):
    r = ctx.receiver()
    shim = os.path.join(ctx.build_dir, "tests", "librebind.so")
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.2/32", "--ca-file", ctx.certs["ca"],
                              "--retry-schedule", "1h"],
                  env={"LD_PRELOAD": shim,
                       "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:verify_asan_link_order=0"})
    port = r.url("/").split(":")[2].split("/")[0]
    st, ep, _ = h.request("POST", BASE + "/endpoints",
                          {"url": "https://rebind.test:%s/status/200" % port, "event_types": ["*"]})
    assert st == 201, ep
    st, _, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": {}})

    def attempt():
        st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
        return ds["deliveries"][0]["attempt_count"] == 1 and ds["deliveries"][0]
    wait_until(attempt, 15, "the attempt")
    st, d, _ = h.request("GET", BASE + "/deliveries/" + attempt()["id"])
    a = d["attempts"][0]
    assert a["http_status"] is None
    assert "blocked: 127.0.0.1 is a loopback address" in a["error"], a["error"]
    assert r.requests() == [], "a request reached the loopback receiver"
