"""Hostile API clients: nothing they send crashes hookd, changes what it
should not, or exhausts it."""
import concurrent.futures
import json
import socket
import time

BASE = "/org/default/webhooks"


def endpoint(h):
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": "https://hooks.example.com/x",
                                                      "event_types": ["*"]})
    assert st == 201
    return ep


def total(h, ep):
    st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
    return ds["total"]


def test_concurrent_publishes_with_one_key_make_one_event(ctx):
    h = ctx.hookd()
    ep = endpoint(h)
    body = {"event_type": "order.paid", "payload": {"order": 42}, "idempotency_key": "order-42"}

    def pub(_):
        return h.request("POST", "/v1/events", body)
    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(pub, range(100)))
    assert all(st == 202 for st, _, _ in answers), [a[0] for a in answers]
    assert len({got["event_id"] for _, got, _ in answers}) == 1
    assert total(h, ep) == 1


def test_json_nesting_limit(ctx):
    h = ctx.hookd()
    ep = endpoint(h)
    ok = '{"event_type":"a","payload":' + "[" * 63 + "]" * 63 + "}"  # 64 levels in all
    st, got, _ = h.request("POST", "/v1/events", raw=ok.encode())
    assert st == 202, got
    deep = '{"event_type":"a","payload":' + "[" * 64 + "]" * 64 + "}"
    st, got, _ = h.request("POST", "/v1/events", raw=deep.encode())
    assert st == 400 and got["error"]["code"] == "invalid_json", got
    bomb = '{"event_type":"a","payload":' + "[" * 200000 + "]" * 200000 + "}"
    st, got, _ = h.request("POST", "/v1/events", raw=bomb.encode())
    assert st == 400
    assert total(h, ep) == 1


def raw_request(h, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", h.port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                break
    except socket.timeout:
        pass
    s.close()
    return out


def test_oversized_header_url_and_query(ctx):
    h = ctx.hookd()
    big = "x" * 100000
    # The per-connection memory limit (64 KiB) bounds all three; libmicrohttpd
    # answers them itself, before any handler runs.
    for req, want in [(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + big.encode() + b"\r\n\r\n", 431),
                      (b"GET /" + big.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
                      (b"GET /v1/webhooks/events?start=" + big.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)]:
        out = raw_request(h, req)
        assert out.startswith(b"HTTP/1.1 %d " % want), out[:200]
    st, got, _ = h.request("GET", "/healthz", key=None)
    assert st == 200, "the server did not survive"


def test_slow_clients_cannot_exhaust_the_server(ctx):
    h = ctx.hookd(extra_args=["--conn-timeout", "2s", "--max-connections", "64"])
    slow = []
    for _ in range(80):  # more than the connection cap, each sending a header byte at a time
        try:
            s = socket.create_connection(("127.0.0.1", h.port), timeout=2)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: a\r\n")
            slow.append(s)
        except OSError:
            pass
    time.sleep(3.5)  # past the connection timeout: the server dropped them
    closed = 0
    for s in slow:
        try:
            s.sendall(b"X-a: b\r\n")
            s.settimeout(0.5)
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    assert closed == len(slow), "%d of %d slow connections still open" % (len(slow) - closed, len(slow))
    st, got, _ = h.request("GET", "/healthz", key=None, timeout=5)
    assert st == 200
