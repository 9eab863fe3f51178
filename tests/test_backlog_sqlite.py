"""A release of held deliveries that a crash cut short, on SQLite.

SQLite lets an endpoint's held deliveries go in chunks, each in a
transaction of its own, so a kill -9 between two chunks leaves an active
endpoint with deliveries still held. The next start must let them go."""
import sqlite3

from test_delivery import BASE, endpoint, publish, settled, start

# PostgreSQL releases them in the transaction that re-enables the endpoint:
# this state cannot arise there.
BACKENDS = ("sqlite",)


def test_restart_finishes_a_release_cut_short(ctx):
    h, r = start(ctx)
    ep = endpoint(h, r.url("/status/200"))
    assert h.request("PATCH", BASE + "/endpoints/" + ep["id"], {"is_active": False})[0] == 200
    for i in range(5):
        publish(h, {"i": i})
    h.kill9()
    # What dying between two chunks leaves: the endpoint re-enabled, its
    # deliveries still held.
    db = sqlite3.connect(h.db)
    with db:
        db.execute("UPDATE endpoints SET is_active = 1 WHERE id = ?", (ep["id"],))
    held = db.execute("SELECT count(*) FROM deliveries WHERE held = 1").fetchone()[0]
    db.close()
    assert held == 5
    h.restart()
    r.wait_for(5, "/status/200")
    assert all(d["status"] == "succeeded" for d in settled(h, ep, 5))
    assert "released the rest of an interrupted release" in h.log_text()
