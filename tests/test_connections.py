"""How hookd keeps its connections to receivers, seen from a receiver: which
connection (client port) each delivery arrived on. The connection handling
is libcurl's, the same on both stores."""
import resource
import socket
import threading

from harness import wait_until

BACKENDS = ("sqlite",)
BASE = "/org/default/webhooks"


class Hanging:
    """A TCP listener on loopback that accepts and never says a word: a TLS
    handshake to it waits until hookd gives up."""

    def __init__(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4096)
        self.port = self.ls.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.ls.accept()[0])
            except OSError:
                return

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
    deliveries opened a connection (and paid a TLS handshake) of its own."""
    slow = Hanging()
    ctx.cleanup(slow.close)
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--ca-file", ctx.certs["ca"], "--allow-targets", "127.0.0.0/8",
                              "--max-connections-per-host", "0", "--max-in-flight-per-endpoint", "2000",
                              "--connect-timeout", "120s", "--attempt-timeout", "120s"])
    for url, kind in (("https://127.0.0.1:%d/" % slow.port, "slow"), (r.url("/status/200"), "fast")):
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
