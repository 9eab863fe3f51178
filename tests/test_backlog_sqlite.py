"""Pausing and re-enabling an endpoint with a backlog, on SQLite.

SQLite holds a paused endpoint's pending deliveries, and lets them go when
it is re-enabled, in chunks of 4,096 (store_sqlite_backlog.c), each in a
transaction of its own, on a thread of their own after the pause or
re-enable is answered, so that publishes and other deliveries go on
meanwhile. These tests read the database file itself: whether a delivery
is held is not part of the API, but a paused endpoint whose backlog is not
held slows every claim, and an active one whose backlog stays held never
delivers it. A kill -9 between two chunks leaves either state behind; the
next start must finish the job. One more test locks the database file to
make the recorder's batch span hundreds of endpoints."""
import concurrent.futures
import sqlite3
import time

from harness import wait_until
from test_delivery import BASE, FAST, endpoint, publish, settled, start

# PostgreSQL does not hold a paused endpoint's deliveries at all: none of
# this can arise there.
BACKENDS = ("sqlite",)

CAP = 8
BACKLOG = 2 * 4096 + 100  # three chunks


def count(h, where, *args):
    db = sqlite3.connect(h.db)
    try:
        return db.execute("SELECT count(*) FROM deliveries WHERE " + where, args).fetchone()[0]
    finally:
        db.close()


def pending(h, ep_id, held):
    return count(h, "endpoint_id = ? AND status = 0 AND held = ?", ep_id, int(held))


def succeeded(h, ep_id):
    return count(h, "endpoint_id = ? AND status = 1", ep_id)


def publish_backlog(h):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: publish(h, {"i": i}), range(BACKLOG)))


def delivered(h, ep_id):
    wait_until(lambda: succeeded(h, ep_id) == BACKLOG, 120, "the backlog delivered")


def test_pausing_a_backlog_of_several_chunks_holds_all_of_it(ctx):
    h, r = start(ctx, "--max-in-flight-per-endpoint", str(CAP))
    ep = endpoint(h, r.url("/sleep/2000"))
    path = BASE + "/endpoints/" + ep["id"]
    publish_backlog(h)
    st, got, _ = h.request("PATCH", path, {"is_active": False})
    paused_ms = time.time() * 1000
    assert st == 200 and got["is_active"] is False
    # All but those in flight when it paused (at most a cap), which are
    # recorded unheld; claims skip them while it is paused.
    wait_until(lambda: pending(h, ep["id"], held=False) <= CAP, 15, "the backlog held")
    assert pending(h, ep["id"], held=True) >= BACKLOG - CAP - len(r.requests())
    # Those in flight finish (2 s), and what was claimed ahead for their
    # slots is given back, not sent (the receiver logs a request once it
    # has answered it, 2 s more).
    time.sleep(5.0)
    late = [q for q in r.requests() if q["t_ms"] > paused_ms]
    assert late == [], "a paused endpoint was contacted"
    st, got, _ = h.request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})
    assert st == 200 and got["is_active"] is True
    delivered(h, ep["id"])
    time.sleep(0.5)
    ids = [q["headers"]["webhook-id"] for q in r.requests()]
    assert len(ids) == len(set(ids)) == BACKLOG, "a delivery left behind or sent twice"


def test_breaker_holds_a_backlog_of_several_chunks(ctx):
    h, r = start(ctx, *FAST, "--breaker-threshold", "3",
                 "--max-in-flight-per-endpoint", str(CAP))
    ep = endpoint(h, r.url("/status/500"))
    path = BASE + "/endpoints/" + ep["id"]
    assert h.request("PATCH", path, {"is_active": False})[0] == 200
    publish_backlog(h)
    assert pending(h, ep["id"], held=True) == BACKLOG
    # Released in chunks, then the first failures trip the breaker, which
    # holds everything again (after its record).
    assert h.request("PATCH", path, {"is_active": True})[0] == 200
    wait_until(lambda: h.request("GET", BASE + "/endpoints")[1][0]["is_active"] is False, 15,
               "endpoint paused")
    wait_until(lambda: pending(h, ep["id"], held=False) <= 2 * CAP, 15, "the backlog held")
    sent = len(r.requests())
    time.sleep(1.0)
    assert len(r.requests()) == sent, "a paused endpoint was contacted"
    assert h.request("PATCH", path, {"url": r.url("/status/200"), "is_active": True})[0] == 200
    delivered(h, ep["id"])


def killed_with_five_held(h, ep, sql):
    """Pause ep, publish 5 events to it, kill -9 hookd, then run sql (with
    ep's id as its one parameter) on the database: what a crash between two
    chunks would leave."""
    assert h.request("PATCH", BASE + "/endpoints/" + ep["id"], {"is_active": False})[0] == 200
    for i in range(5):
        publish(h, {"i": i})
    h.kill9()
    db = sqlite3.connect(h.db)
    with db:
        db.execute(sql, (ep["id"],))
    db.close()


def test_restart_finishes_a_release_cut_short(ctx):
    h, r = start(ctx)
    ep = endpoint(h, r.url("/status/200"))
    # The endpoint re-enabled, its deliveries still held.
    killed_with_five_held(h, ep, "UPDATE endpoints SET is_active = 1 WHERE id = ?")
    assert pending(h, ep["id"], held=True) == 5
    h.restart()
    r.wait_for(5, "/status/200")
    assert all(d["status"] == "succeeded" for d in settled(h, ep, 5))
    assert "released the rest of an interrupted release" in h.log_text()


def test_restart_finishes_a_pause_cut_short(ctx):
    h, r = start(ctx)
    ep = endpoint(h, r.url("/status/200"), types=["alert.fired"])
    endpoint(h, r.url("/status/204"), types=["other"])
    path = BASE + "/endpoints/" + ep["id"]
    # The endpoint paused, its deliveries not held.
    killed_with_five_held(h, ep, "UPDATE deliveries SET held = 0 WHERE endpoint_id = ?")
    h.restart()
    assert "held the rest of an interrupted pause" in h.log_text()
    assert pending(h, ep["id"], held=True) == 5
    publish(h, {"i": "other"}, event_type="other")
    r.wait_for(1, "/status/204")
    assert r.requests("/status/200") == [], "a paused endpoint was contacted"
    assert h.request("PATCH", path, {"is_active": True})[0] == 200
    r.wait_for(5, "/status/200")
    assert all(d["status"] == "succeeded" for d in settled(h, ep, 5))


def test_a_record_batch_across_hundreds_of_endpoints(ctx):
    # Attempts to 300 endpoints finish while the database is locked, so the
    # recorder's next batch spans about 300 endpoints. A batch used to fold
    # the breaker's counters for at most 256: it failed for good and was
    # retried forever, and nothing was recorded or delivered after it.
    h, r = start(ctx)
    eps = [endpoint(h, r.url("/sleep/1000")) for _ in range(300)]
    publish(h)
    time.sleep(0.5)  # all claimed and sent; the receiver answers at 1 s
    db = sqlite3.connect(h.db, timeout=10)
    db.execute("BEGIN IMMEDIATE")
    time.sleep(2.0)  # the answers come back meanwhile and queue up
    db.rollback()
    db.close()
    wait_until(lambda: count(h, "status = 1") == len(eps), 30, "all 300 attempts recorded")
    assert "recording attempts failed" not in h.log_text()
