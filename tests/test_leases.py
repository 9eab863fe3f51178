"""Leases fence stale workers: a hookd paused (SIGSTOP) past its lease, then
resumed, writes nothing; the worker that claimed the delivery after the
lease expired is the one whose attempt counts. A hookd killed mid-attempt
and started again attempts at once, without waiting for its dead lease."""
import os
import signal
import time

from harness import wait_until

BASE = "/org/default/webhooks"


def test_worker_paused_past_its_lease_writes_nothing(ctx):
    r = ctx.receiver()
    args = ["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
            "--connect-timeout", "1s", "--attempt-timeout", "3s", "--lease-margin", "0s",
            "--retry-schedule", "1h"]
    a = ctx.hookd(extra_args=args)
    key = a.admin_key
    st, ep, _ = a.request("POST", BASE + "/endpoints", {"url": r.url("/sleep/1000"), "event_types": ["*"]})
    st, pub, _ = a.request("POST", "/v1/events", {"event_type": "x", "payload": {}})
    assert st == 202
    time.sleep(0.3)  # A has claimed the delivery and sent it
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        # A second worker on the same database: A's lease (1 s + 3 s) must
        # expire before it may claim the delivery.
        b = ctx.hookd(extra_args=args, db=a.db)
        if ctx.backend == "sqlite":  # PostgreSQL is shared by design: nothing to warn of
            assert "another hookd is using this database" in b.log_text()

        def detail():
            st, ds, _ = b.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries", key=key)
            return ds["deliveries"][0]
        wait_until(lambda: detail()["status"] == "succeeded", 20, "B to deliver after the lease expired")
        reqs = r.requests("/sleep/1000")
        assert len(reqs) == 2, "A's attempt and B's"
        assert reqs[1]["t_ms"] - reqs[0]["t_ms"] >= 3500, "B claimed before A's lease expired"
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    # A wakes up and finishes its own attempt: its result must be fenced off.
    wait_until(lambda: "fenced=1" in a.log_text(), 10, "A to record (and be fenced)")
    st, d, _ = b.request("GET", BASE + "/deliveries/" + detail()["id"], key=key)
    assert d["attempt_count"] == 1 and len(d["attempts"]) == 1, d
    assert d["status"] == "succeeded"


def test_restart_after_kill9_attempts_again_at_once(ctx):
    """Leases of a process that died are taken back when hookd starts again
    (on SQLite, as the file's only user; on PostgreSQL, because the dead
    node's liveness lock is gone), not when they would expire a minute on."""
    r = ctx.receiver()
    args = ["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
            "--connect-timeout", "1s", "--attempt-timeout", "60s", "--retry-schedule", "1h"]
    h = ctx.hookd(extra_args=args)
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": r.url("/sleep/2000"), "event_types": ["*"]})
    assert st == 201, ep
    st, pub, _ = h.request("POST", "/v1/events", {"event_type": "x", "payload": {}})
    assert st == 202
    time.sleep(0.5)  # claimed and sent; the receiver answers only after 2 s
    assert r.requests("/sleep/2000") == []
    h.kill9()  # mid-attempt: the delivery stays leased for 61 s
    t = time.time()
    h.restart()

    def status():
        st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
        return ds["deliveries"][0]["status"]
    wait_until(lambda: status() == "succeeded", 15, "the delivery to be attempted again and succeed")
    assert time.time() - t < 15
    assert len(r.requests("/sleep/2000")) == 2, "the killed attempt and the one after the restart"
