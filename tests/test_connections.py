"""How hookd keeps its connections to receivers, seen from a receiver: which
connection (client port) each delivery arrived on. The connection handling
is libcurl's, the same on both stores."""
import os
import resource
import socket
import threading
import time

from harness import wait_until

BACKENDS = ("sqlite",)
BASE = "/org/default/webhooks"


def multi_for(url):
    """The multi handle hookd's loop puts a transfer to url on: FNV-1a of
    the URL's authority, case folded, modulo 16, as curlpoll_multi_for does
    (tests/unit_curlpoll.c pins its values). Each multi handle has its own
    connection cache and its own limit of connections kept."""
    authority = url.split("://", 1)[1]
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    h = 2166136261
    for ch in authority.lower().encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h % 16


class Hanging:
    """A TCP listener on loopback that accepts and never says a word: a TLS
    handshake to it waits until hookd gives up. Its port is chosen so that
    hookd's transfers to it go on the same multi handle as those to
    beside_url."""

    def __init__(self, beside_url):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        while True:
            self.ls = socket.socket()
            self.ls.bind(("127.0.0.1", 0))
            self.port = self.ls.getsockname()[1]
            if multi_for(self.url()) == multi_for(beside_url):
                break
            self.ls.close()
        self.ls.listen(4096)
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.ls.accept()[0])
            except OSError:
                return

    def url(self):
        return "https://127.0.0.1:%d/" % self.port

    def close(self):
        self.ls.close()
        for c in self.held:
            c.close()


def publish(h, event_type, i):
    st, got, _ = h.request("POST", "/v1/events", {"event_type": event_type, "payload": {"i": i}})
    assert st == 202, got


def test_connections_are_reused_beside_a_thousand_hanging(ctx):
    """With 1,100 attempts hanging at a slow receiver, deliveries to a
    healthy one still reuse their connections. libcurl counts connections in
    use against its limit of kept ones, and past that limit closes each as
    its transfer ends: with a fixed limit of 1,024 every one of these
    deliveries opened a connection (and paid a TLS handshake) of its own.
    The slow receiver's transfers share the healthy one's multi handle, and
    so its connection cache and limit."""
    r = ctx.receiver()
    slow = Hanging(r.url("/status/200"))
    ctx.cleanup(slow.close)
    h = ctx.hookd(extra_args=["--ca-file", ctx.certs["ca"], "--allow-targets", "127.0.0.0/8",
                              "--max-connections-per-host", "0", "--max-in-flight-per-endpoint", "2000",
                              "--connect-timeout", "120s", "--attempt-timeout", "120s"])
    for url, kind in ((slow.url(), "slow"), (r.url("/status/200"), "fast")):
        st, got, _ = h.request("POST", BASE + "/endpoints", {"url": url, "event_types": [kind]})
        assert st == 201, got
    for i in range(1100):
        publish(h, "slow", i)
    wait_until(lambda: len(slow.held) >= 1100, 60,
               "1,100 connections to the slow receiver (have %d)" % len(slow.held))

    # In waves of 10, so that at most about 10 are under way at once however
    # slow the machine: kept, their connections serve every later wave.
    for wave in range(20):
        for i in range(10):
            publish(h, "fast", wave * 10 + i)
        reqs = r.wait_for(wave * 10 + 10, "/status/200", timeout=60)
    ports = {q["peer_port"] for q in reqs}
    assert len(ports) <= 50, "200 deliveries came over %d connections" % len(ports)


def cpu_seconds(pid):
    """utime + stime of a process so far, in seconds."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_connections_closed_by_the_receiver_cost_nothing(ctx):
    """hookd keeps a keep-alive connection registered with epoll while no
    transfer uses it (src/curlpoll.c). When the receiver then closes it,
    the socket stays readable for good: hookd must drop it at the first
    event, not wake up for it again and again. Idle, it spends almost no
    CPU; spinning on such a socket would take a whole core."""
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--ca-file", ctx.certs["ca"], "--allow-targets", "127.0.0.0/8"])
    st, got, _ = h.request("PUT", "/v1/webhooks", {"url": r.url("/status/200"), "enabled": True})
    assert st == 200, got
    for i in range(20):
        publish(h, "x", i)
    r.wait_for(20, "/status/200")
    wait_until(lambda: h.attempts_counted("succeeded") == 20, 10, "20 attempts recorded")
    r.stop()  # closes hookd's idle connections from the receiver's side
    time.sleep(0.5)
    before = cpu_seconds(h.proc.pid)
    time.sleep(2)
    spent = cpu_seconds(h.proc.pid) - before
    assert spent < 0.5, "idle hookd spent %.2f s of CPU in 2 s" % spent


class Refusing:
    """A TCP listener that accepts and closes at once, counting the
    connections: an attempt to it fails in its TLS handshake."""

    def __init__(self, host, port):
        self.ls = socket.create_server((host, port))
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.ls.accept()[0].close()
            except OSError:
                return
            self.accepted += 1

    def close(self):
        self.ls.close()


def test_a_receiver_that_moves_is_found_at_its_new_address(ctx):
    """hookd keeps a receiver's resolved address for --dns-ttl: most
    transfers skip libcurl's DNS cache expiry (libcurl 7.88 walks the whole
    cache each time), one per TTL on each multi handle runs it. A name that
    moves to a new address must be looked up again and reached there; with
    the expiry never run, every retry went back to the old address."""
    r = ctx.receiver()
    old = Refusing("127.0.0.2", r.port)
    ctx.cleanup(old.close)
    moves = os.path.join(ctx.workdir, "moves.test")
    with open(moves, "w") as f:
        f.write("127.0.0.2\n")
    shim = os.path.join(ctx.build_dir, "tests", "librebind.so")
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
                              "--dns-ttl", "1s", "--retry-schedule", ",".join(["1s"] * 30),
                              "--breaker-threshold", "0"],
                  env={"LD_PRELOAD": shim, "HOOKD_TEST_MOVES": moves,
                       "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:verify_asan_link_order=0"})
    st, got, _ = h.request("PUT", "/v1/webhooks",
                           {"url": "https://moves.test:%d/status/200" % r.port, "enabled": True})
    assert st == 200, got
    publish(h, "x", 0)
    wait_until(lambda: old.accepted >= 2, 30, "two attempts at the old address")
    with open(moves, "w") as f:
        f.write("127.0.0.1\n")
    reqs = r.wait_for(1, "/status/200", timeout=30)
    assert len(reqs) == 1, reqs


def sockets_of(pid):
    """How many sockets a process holds."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def test_idle_connections_elsewhere_leave_a_busy_host_its_own(ctx):
    """hookd keeps about 1,024 idle connections in all, over its 16 multi
    handles. Once more than that sit idle at other hosts, a host on another
    multi handle must still keep (at least 64 of) its connections between
    deliveries, not open one per delivery."""
    busy = ctx.receiver()
    others = []
    while len(others) < 17:  # receivers on the other 15 multi handles
        r = ctx.receiver()
        if multi_for(r.url("/")) != multi_for(busy.url("/")):
            others.append(r)
    h = ctx.hookd(extra_args=["--ca-file", ctx.certs["ca"], "--allow-targets", "127.0.0.0/8"])
    eps = []
    for url, kind in [(r.url("/sleep/1000"), "burst") for r in others] + [(busy.url("/sleep/300"), "fast")]:
        st, got, _ = h.request("POST", BASE + "/endpoints", {"url": url, "event_types": [kind]})
        assert st == 201, got
        eps.append(got["id"])

    def succeeded(ep):
        st, got, _ = h.request("GET", BASE + "/endpoints/" + ep + "/deliveries?per_page=100")
        assert st == 200, got
        return sum(d["status"] == "succeeded" for d in got["deliveries"])
    # 64 events, each to all 17: 64 attempts at once per endpoint (its cap),
    # so 64 connections to each receiver, idle once they are answered.
    for i in range(64):
        publish(h, "burst", i)
    wait_until(lambda: all(succeeded(ep) == 64 for ep in eps[:-1]), 120, "the burst answered")
    made = sum(len({q["peer_port"] for q in r.requests()}) for r in others)
    assert made > 1024, "the burst made only %d connections" % made
    held = sockets_of(h.proc.pid)
    assert held > 1024, "hookd holds only %d sockets after the burst" % held

    # Waves of 20 attempts that overlap (each answered after 0.3 s): as
    # each ends, the others still hold their connections, and libcurl
    # closes idle ones beyond what the multi handle may keep. Kept, the
    # first wave's connections serve every later one.
    for wave in range(5):
        for i in range(20):
            publish(h, "fast", wave * 20 + i)
        wait_until(lambda: succeeded(eps[-1]) == wave * 20 + 20, 60, "wave %d answered" % wave)
    ports = {q["peer_port"] for q in busy.requests("/sleep/300")}
    assert len(ports) <= 40, "100 deliveries came over %d connections" % len(ports)
