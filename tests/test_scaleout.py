"""Scale-out on PostgreSQL: several hookd nodes on one database share the
work. Events are published to every node's API, each delivery is claimed by
one node under a lease, a node killed with -9 leaves its leases to expire and
the others deliver its work, a pause through one node stops every node, and
a PostgreSQL restart under load costs 503s for a few seconds and nothing
that was acknowledged."""
import collections
import http.client
import json
import os
import threading
import time

from harness import wait_until, write_master_key

TIMEOUT = 420
# Several processes on one database, and the database server stopped under
# load: there is no such thing with SQLite (one hookd per file, by its lock).
BACKENDS = ("postgres",)

BASE = "/org/default/webhooks"
LEASE = ["--connect-timeout", "1s", "--attempt-timeout", "3s", "--lease-margin", "1s"]


class Tail:
    """The receiver's request log, read incrementally: arrivals by webhook-id."""

    def __init__(self, r, path=None):
        self.file = r.log
        self.path = path
        self.offset = 0
        self.by_id = collections.Counter()
        self.n = 0

    def poll(self):
        if not os.path.exists(self.file):
            return self
        with open(self.file, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            q = json.loads(line)
            if self.path is None or q["path"] == self.path:
                self.by_id[q["headers"].get("webhook-id")] += 1
                self.n += 1
        return self


class Client:
    """One keep-alive API connection to a node."""

    def __init__(self, h, key, timeout=15):
        self.h, self.key, self.timeout = h, key, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"}
        h.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.h.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                text = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, (json.loads(text) if text else None)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection: once more on
                # a new one (publishes carry an idempotency key, so it is safe).
                self.close()
                if attempt == 2:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def attempts_logged(h):
    """Attempts this node recorded (its debug log has one line per attempt)."""
    return h.log_text().count(" msg=\"attempt\" ")


def nodes(ctx, n, db, extra):
    """n hookd on one database and one master key file; the first makes the
    default org and prints its admin key, the others use that key."""
    key_file = write_master_key(os.path.join(ctx.workdir, "master.key"))
    args = ["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"], *extra]
    first = ctx.hookd(extra_args=args, db=db, key_file=key_file)
    assert first.admin_key, "no admin key printed on the first start"
    out = [first]
    for _ in range(n - 1):
        h = ctx.hookd(extra_args=args, db=db, key_file=key_file)
        assert h.admin_key is None, "a second node made another admin key"
        h.admin_key = first.admin_key
        out.append(h)
    return out


def publish_all(hs, count, threads_per_node, event_type="scale"):
    """Publish events 0..count-1, event i to node i % len(hs), over
    threads_per_node keep-alive connections per node. Returns {i: event_id}."""
    acked, errors, lock = {}, [], threading.Lock()

    def worker(node, share):
        c = Client(hs[node], hs[node].admin_key)
        try:
            for i in share:
                st, got = c.request("POST", "/v1/events",
                                    {"event_type": event_type, "payload": {"n": i},
                                     "idempotency_key": "n-%d" % i})
                with lock:
                    if st == 202:
                        acked[i] = got["event_id"]
                    else:
                        errors.append((i, st, got))
        except Exception as e:  # noqa: BLE001 - reported by the caller
            with lock:
                errors.append((None, "exception", repr(e)))
        finally:
            c.close()

    ts = []
    for node in range(len(hs)):
        mine = list(range(node, count, len(hs)))
        for k in range(threads_per_node):
            ts.append(threading.Thread(target=worker, args=(node, mine[k::threads_per_node])))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, "publishes not acknowledged: %s" % errors[:5]
    return acked


def all_deliveries(h, endpoint_id):
    out, page = [], 1
    while True:
        st, ds, _ = h.request("GET", BASE + "/endpoints/%s/deliveries?per_page=100&page=%d"
                              % (endpoint_id, page))
        assert st == 200, ds
        out += ds["deliveries"]
        if len(ds["deliveries"]) < 100:
            return ds["total"], out
        page += 1


def test_three_nodes_exactly_once(ctx):
    n_events = 10000
    r = ctx.receiver()
    db = ctx.new_database()
    hs = nodes(ctx, 3, db, ["--retry-schedule", "1s,1s,1s"])
    # The workspace webhook: one endpoint, and the one /v1/webhooks/stats counts.
    st, wh, _ = hs[0].request("PUT", "/v1/webhooks", {"url": r.url("/status/200")})
    assert st == 200, wh
    st, eps, _ = hs[1].request("GET", BASE + "/endpoints")
    assert st == 200 and len(eps) == 1, eps  # every node sees it
    ep = eps[0]
    t0 = time.time()
    acked = publish_all(hs, n_events, threads_per_node=3)
    t_pub = time.time() - t0
    assert len(acked) == n_events and len(set(acked.values())) == n_events
    want = set(acked.values())
    tail = Tail(r, "/status/200")
    wait_until(lambda: want <= set(tail.poll().by_id), 180,
               "all %d events at the receiver" % n_events)
    t_all = time.time() - t0
    time.sleep(1.5)  # any late duplicate lands now
    tail.poll()
    dups = {k: v for k, v in tail.by_id.items() if v > 1}
    unexpected = set(tail.by_id) - want
    assert not unexpected, "deliveries of events never published: %s" % list(unexpected)[:5]
    assert not dups, "%d events delivered more than once, e.g. %s" % (len(dups), list(dups.items())[:5])
    assert tail.n == n_events

    # The API agrees, whichever node answers: all succeeded, one attempt each.
    def stats():
        st, s, _ = hs[2].request("GET", "/v1/webhooks/stats?bucket_minutes=1440")
        assert st == 200, s
        by = collections.Counter()
        for row in s["stats"]:
            by[row["delivery_status"]] += row["attempt_count"]
        return by
    wait_until(lambda: stats() == {"succeeded": n_events}, 30, "stats: %d succeeded" % n_events)
    total, ds = all_deliveries(hs[1], ep["id"])
    assert total == n_events and len(ds) == n_events, (total, len(ds))
    assert {d["event_id"] for d in ds} == want
    bad = [d for d in ds if d["status"] != "succeeded" or d["attempt_count"] != 1]
    assert not bad, "%d deliveries not succeeded at the first attempt: %s" % (len(bad), bad[:3])
    per_node = [sum(1 for i in acked if i % 3 == k) for k in range(3)]
    delivered_by = [attempts_logged(h) for h in hs]
    print("report: scaleout: 3 nodes, %d events published in %.1f s (%.0f/s, %s per node), "
          "all delivered %.1f s after the first publish (%s attempts per node); duplicates=0, "
          "stats succeeded=%d failed=0" % (n_events, t_pub, n_events / t_pub,
                                          "/".join(map(str, per_node)), t_all,
                                          "/".join(map(str, delivered_by)), n_events))


def test_a_pause_through_one_node_stops_every_node(ctx):
    """Each node claims ahead for an endpoint at its cap. A pause through one
    node's API reaches the others too: none sends what it claimed ahead."""
    r = ctx.receiver()
    db = ctx.new_database()
    hs = nodes(ctx, 2, db, ["--max-in-flight-per-endpoint", "1"])
    st, ep, _ = hs[0].request("POST", BASE + "/endpoints",
                              {"url": r.url("/sleep/1500"), "event_types": ["*"]})
    assert st == 201, ep
    for i in range(12):  # each node: 1 in flight, 1 claimed ahead
        st, _, _ = hs[i % 2].request("POST", "/v1/events", {"event_type": "t", "payload": {"i": i}})
        assert st == 202
    wait_until(lambda: len(r.requests()) >= 2, 15, "the first attempts answered")
    path = BASE + "/endpoints/" + ep["id"]
    assert hs[0].request("PATCH", path, {"is_active": False})[0] == 200
    paused_ms = time.time() * 1000
    time.sleep(4.0)  # those in flight answered (the receiver logs a request once answered)
    late = [q for q in r.requests() if q["t_ms"] > paused_ms]
    assert late == [], "the paused endpoint was contacted %d times" % len(late)
    st, got, _ = hs[1].request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})
    assert st == 200 and got["is_active"] is True

    def succeeded():
        total, ds = all_deliveries(hs[1], ep["id"])
        return total == 12 and all(d["status"] == "succeeded" for d in ds)
    wait_until(succeeded, 30, "all 12 delivered once re-enabled")
    assert len(r.requests()) == 12


def test_kill9_node_mid_drain(ctx):
    n_events = 3000
    r = ctx.receiver()
    db = ctx.new_database()
    # Short leases (1 s + 3 s + 1 s) so the dead node's claims expire soon;
    # a small per-endpoint cap and a 20 ms receiver so the drain takes seconds.
    hs = nodes(ctx, 3, db, [*LEASE, "--retry-schedule", "500ms,1s,1s,1s,1s,1s",
                            "--breaker-threshold", "0", "--max-in-flight-per-endpoint", "16",
                            "--grace", "500ms"])
    path = "/sleep/20"
    st, ep, _ = hs[0].request("POST", BASE + "/endpoints", {"url": r.url(path), "event_types": ["*"]})
    assert st == 201, ep
    st, got, _ = hs[0].request("PATCH", BASE + "/endpoints/" + ep["id"], {"is_active": False})
    assert st == 200 and got["is_active"] is False, got
    acked = publish_all(hs, n_events, threads_per_node=2)
    assert len(acked) == n_events
    want = set(acked.values())
    time.sleep(0.5)
    assert r.requests() == [], "a disabled endpoint was contacted"
    st, got, _ = hs[1].request("PATCH", BASE + "/endpoints/" + ep["id"], {"is_active": True})
    assert st == 200 and got["is_active"] is True, got
    t0 = time.time()
    tail = Tail(r, path)
    wait_until(lambda: tail.poll().n >= n_events // 3, 60, "a third of the events delivered")
    # The busiest node so far: the one most likely to hold leases now.
    before = [attempts_logged(h) for h in hs]
    victim = hs[max(range(3), key=lambda k: before[k])]
    victim.kill9()
    alive = next(h for h in hs if h is not victim)
    t_kill = time.time() - t0
    at_kill = tail.n
    wait_until(lambda: want <= set(tail.poll().by_id), 120,
               "every event delivered after the kill (have %d of %d distinct)"
               % (len(set(tail.by_id) & want), n_events))
    t_all = time.time() - t0
    time.sleep(1.5)
    tail.poll()
    unexpected = set(tail.by_id) - want
    assert not unexpected, "deliveries of events never published: %s" % list(unexpected)[:5]
    dups = sum(v - 1 for v in tail.by_id.values())
    # The survivors record every delivery as succeeded (a duplicate is a
    # second successful attempt, never a lost one).
    def settled():
        total, ds = all_deliveries(alive, ep["id"])
        return total == n_events and all(d["status"] == "succeeded" for d in ds)
    wait_until(settled, 60, "every delivery recorded as succeeded")
    after = [attempts_logged(h) for h in hs]
    print("report: kill -9 of 1 of 3 nodes after %d of %d arrivals (%.1f s into the drain; "
          "attempts per node %s at the kill, %s at the end): all delivered after %.1f s, "
          "lost=0 duplicates=%d" % (at_kill, n_events, t_kill, "/".join(map(str, before)),
                                    "/".join(map(str, after)), t_all, dups))


def test_postgres_restart_under_load(ctx):
    cluster = ctx.pg_cluster()  # private: this test stops and starts it
    db = cluster.create_database("hookd")
    r = ctx.receiver()
    key_file = write_master_key(os.path.join(ctx.workdir, "master.key"))
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
                              *LEASE, "--retry-schedule", "200ms,500ms,1s,1s,1s,1s,1s,1s,1s",
                              "--breaker-threshold", "0", "--log-level", "info"],
                  db=db, key_file=key_file)
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": r.url("/status/200"), "event_types": ["*"]})
    assert st == 201, ep

    lock = threading.Lock()
    answers = []        # (time, status, body) of every answer
    acked = {}          # n -> event_id
    transport = []      # requests with no answer at all
    counter = [0]
    stop = threading.Event()

    def publisher():
        c = Client(h, h.admin_key, timeout=20)
        while not stop.is_set():
            with lock:
                n = counter[0]
                counter[0] += 1
            try:
                st, got = c.request("POST", "/v1/events", {"event_type": "restart", "payload": {"n": n}})
            except Exception as e:  # noqa: BLE001 - counted, asserted below
                with lock:
                    transport.append((n, repr(e)))
                c.close()
                time.sleep(0.05)
                continue
            with lock:
                answers.append((time.time(), st, got))
                if st == 202:
                    acked[n] = got["event_id"]
            if st != 202:
                time.sleep(0.02)  # no busy loop against an outage
        c.close()

    pubs = [threading.Thread(target=publisher) for _ in range(2)]
    for t in pubs:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 200, 30, "publishing under way")
        t_stop = time.time()
        cluster.stop("fast")
        time.sleep(3)
        t_start = time.time()
        cluster.start()
        t_up = time.time()

        def recovered():
            with lock:
                return any(t > t_up and st == 202 for t, st, _ in answers)
        wait_until(recovered, 15, "a 202 again after PostgreSQL came back")
        t_rec = next(t for t, st, _ in answers if t > t_up and st == 202)
        time.sleep(2)
    finally:
        stop.set()
        for t in pubs:
            t.join()
    with lock:
        statuses = collections.Counter(st for _, st, _ in answers)
        bad = [(st, got) for _, st, got in answers if st not in (202, 503)]
        errs = [got for _, st, got in answers if st == 503]
        outage = sum(1 for t, st, _ in answers if t_stop <= t <= t_start and st == 503)
    assert not transport, "%d publishes got no answer, e.g. %s" % (len(transport), transport[:3])
    assert not bad, "answers other than 202 and 503: %s" % bad[:5]
    assert statuses[503] >= 1 and outage >= 1, "no 503 while PostgreSQL was down: %s" % statuses
    for got in errs:
        assert isinstance(got, dict) and set(got) == {"error"}, got
        assert set(got["error"]) == {"code", "message"}, got
        # The database being away is said as such, not as a generic failure.
        assert got["error"]["code"] == "store_unavailable", got
    # Every acknowledged event arrives, the ones of before the stop included.
    want = set(acked.values())
    tail = Tail(r, "/status/200")
    wait_until(lambda: want <= set(tail.poll().by_id), 90,
               "every acknowledged event delivered (have %d of %d)"
               % (len(set(tail.by_id) & want), len(want)))
    unexpected_n = set()
    for q in r.requests("/status/200"):
        n = json.loads(q["body"])["data"]["n"]
        if n in acked and acked[n] != q["headers"]["webhook-id"]:
            unexpected_n.add(n)
    assert not unexpected_n, "an event delivered under another webhook-id: %s" % sorted(unexpected_n)[:5]
    dups = sum(v - 1 for v in tail.by_id.values())
    print("report: postgres stopped %.1f s under load: %d published, %d acknowledged (202), "
          "%d answered 503 (%s), first 202 %.1f s after the restart; lost=0 duplicates=%d"
          % (t_start - t_stop, counter[0], len(acked), statuses[503],
             ",".join(sorted({g["error"]["code"] for g in errs})), t_rec - t_up, dups))
