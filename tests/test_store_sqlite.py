"""The SQLite store, through the database file itself: a database an older
hookd left behind, and a recorder's batch that piles up while another
process holds the file's lock."""
import sqlite3
import time

from harness import wait_until
from test_delivery import BASE, endpoint, publish, settled, start

# These reach into the SQLite file.
BACKENDS = ("sqlite",)


def count(h, where, *args):
    db = sqlite3.connect(h.db)
    try:
        return db.execute("SELECT count(*) FROM deliveries WHERE " + where, args).fetchone()[0]
    finally:
        db.close()


# Until schema version 4, a pause marked its endpoint's pending deliveries
# held and a re-enable unmarked them, in chunks on a thread of their own; a
# crash between two chunks left an active endpoint with some still held.
# This gives a version 4 database version 3's shape: the column, its two
# indexes, the marks.
OLD_SHAPE = """
DROP INDEX deliveries_due;
ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET held = 1 WHERE status = 0;
CREATE INDEX deliveries_held ON deliveries(endpoint_id, created_at) WHERE status = 0 AND held = 1;
CREATE INDEX deliveries_due ON deliveries(endpoint_id, next_attempt_at)
  WHERE status = 0 AND held = 0;
PRAGMA user_version = 3;
"""


def test_deliveries_an_older_version_held_go_out_once_their_endpoint_is_active(ctx):
    h, r = start(ctx)
    paused = endpoint(h, r.url("/status/200"), types=["p"])
    cut_short = endpoint(h, r.url("/status/204"), types=["c"])
    for ep in (paused, cut_short):
        assert h.request("PATCH", BASE + "/endpoints/" + ep["id"], {"is_active": False})[0] == 200
    for i in range(5):
        publish(h, {"i": i}, event_type="p")
        publish(h, {"i": i}, event_type="c")
    h.kill9()
    db = sqlite3.connect(h.db)
    db.executescript(OLD_SHAPE)
    # A release the crash cut short: the endpoint active, its backlog held.
    db.execute("UPDATE endpoints SET is_active = 1 WHERE id = ?", (cut_short["id"],))
    db.commit()
    db.close()
    h.restart()
    assert "backend=sqlite version=4" in h.log_text()
    r.wait_for(5, "/status/204")
    assert all(d["status"] == "succeeded" for d in settled(h, cut_short, 5))
    assert r.requests("/status/200") == [], "a paused endpoint was contacted"
    assert h.request("PATCH", BASE + "/endpoints/" + paused["id"], {"is_active": True})[0] == 200
    r.wait_for(5, "/status/200")
    assert all(d["status"] == "succeeded" for d in settled(h, paused, 5))
    assert len(r.requests()) == 10


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
