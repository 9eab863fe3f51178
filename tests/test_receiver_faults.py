"""Hostile and broken receivers: every attempt ends within the attempt
timeout + 1 s, memory stays bounded, and each is a failed attempt whose error
says what happened."""
import gzip
import os
import time

from harness import wait_until

BASE = "/org/default/webhooks"
TIMEOUT = 180


def setup(ctx, path, cert="server", extra=()):
    r = ctx.receiver(cert=cert, extra_args=extra)
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
                              "--attempt-timeout", "2s", "--connect-timeout", "1s",
                              "--retry-schedule", "1h"])
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": r.url(path), "event_types": ["*"]})
    assert st == 201, ep
    return h, r, ep


def one_attempt(h, ep, within):
    """Publish once; return the delivery's first attempt, asserting it ended in time."""
    t = time.time()
    st, _, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": {}})
    assert st == 202

    def attempt():
        st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
        return ds["deliveries"] and ds["deliveries"][0]["attempt_count"] == 1
    wait_until(attempt, within + 5, "the attempt to be recorded")
    elapsed = time.time() - t
    st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
    st, d, _ = h.request("GET", BASE + "/deliveries/" + ds["deliveries"][0]["id"])
    a = d["attempts"][0]
    assert a["duration_ms"] <= within * 1000, a
    assert elapsed <= within + 2, "attempt took %.1f s" % elapsed
    assert d["status"] == "pending", d  # failed, retry scheduled in 1 h
    return a


def rss_kib(h):
    for line in open("/proc/%d/status" % h.proc.pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def test_never_sends_headers(ctx):
    h, r, ep = setup(ctx, "/hang")
    a = one_attempt(h, ep, 3)
    assert a["http_status"] is None and "timeout" in a["error"].lower(), a


def test_one_byte_a_second(ctx):
    h, r, ep = setup(ctx, "/trickle")
    a = one_attempt(h, ep, 3)
    assert "timeout" in a["error"].lower(), a


def test_one_gigabyte_body(ctx):
    h, r, ep = setup(ctx, "/huge")
    before = rss_kib(h)
    a = one_attempt(h, ep, 3)
    assert a["http_status"] == 200 and "body over" in a["error"], a
    assert len(a["response_body"]) == 4096
    assert rss_kib(h) - before < 64 * 1024, "memory grew with the body"


def test_gzip_bomb(ctx):
    bomb = os.path.join(ctx.workdir, "bomb.gz")
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        zeros = b"\0" * (1 << 20)
        for _ in range(256):  # 256 MiB of zeros in about 256 KiB
            f.write(zeros)
    h, r, ep = setup(ctx, "/gzip", extra=["--bomb", bomb])
    before = rss_kib(h)
    a = one_attempt(h, ep, 3)
    # hookd never asks for compression and never inflates: it reads raw bytes, capped.
    assert "accept-encoding" not in r.requests("/gzip")[0]["headers"]
    assert a["http_status"] == 200 and "body over" in a["error"], a
    assert rss_kib(h) - before < 64 * 1024


def test_connection_dropped(ctx):
    h, r, ep = setup(ctx, "/drop")
    a = one_attempt(h, ep, 3)
    assert a["http_status"] is None and a["error"], a


def test_bad_certificate(ctx):
    h, r, ep = setup(ctx, "/status/200", cert="bad")
    a = one_attempt(h, ep, 3)
    assert a["http_status"] is None and ("certificate" in a["error"].lower() or "ssl" in a["error"].lower()), a
    assert r.requests() == [], "the body was sent to an unverified receiver"


def test_connection_refused(ctx):
    h, r, ep = setup(ctx, "/status/200")
    r.stop()
    a = one_attempt(h, ep, 3)
    assert a["http_status"] is None and ("connect" in a["error"].lower()), a
