"""The PostgreSQL store: its claims, driven through store.h by the C unit
test (tests/unit_store.c, --pg) against a real database: every write that
makes a delivery claimable is claimed from at once, not only when the
node's once-a-second walk of the database finds it. And a database an
older hookd left behind."""
import os
import re
import subprocess
import time

import pg
from test_delivery import BASE, endpoint, publish, settled, start

BACKENDS = ("postgres",)


def test_every_write_is_claimable_at_once(ctx):
    url = ctx.new_database()
    p = subprocess.run([os.path.join(ctx.build_dir, "tests", "unit_store"), "--pg", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and re.search(r"^\d+ passed, 0 failed$", p.stdout, re.M), \
        p.stdout[-3000:] + p.stderr[-3000:]


def test_a_backlog_paused_by_an_older_version_goes_out_once_enabled(ctx):
    # Before schema version 3, a pause marked its endpoint's pending
    # deliveries held, and a re-enable unmarked them. A database left with
    # a paused backlog by such a version must deliver it once the endpoint
    # is enabled under this one. The SQL gives the database back version
    # 2's shape: the column, its index, the marks, and the index on
    # event_id (dropped by version 4).
    h, r = start(ctx)
    ep = endpoint(h, r.url("/status/200"))
    path = BASE + "/endpoints/" + ep["id"]
    assert h.request("PATCH", path, {"is_active": False})[0] == 200
    for i in range(5):
        publish(h, {"i": i})
    h.stop()
    pg.psql(h.db, "DROP INDEX deliveries_due;"
                  " ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
                  " UPDATE deliveries SET held = 1;"
                  " CREATE INDEX deliveries_due ON deliveries(endpoint_id, next_attempt_at)"
                  " WHERE status = 0 AND held = 0;"
                  " CREATE INDEX deliveries_event ON deliveries(event_id);"
                  " DELETE FROM hookd_schema WHERE version >= 3;")
    h.start()
    assert "backend=postgres version=3" in h.log_text()
    assert "backend=postgres version=4" in h.log_text()
    time.sleep(1.5)  # a walk of the database has come and gone
    assert r.requests() == [], "a paused endpoint was contacted"
    assert h.request("PATCH", path, {"is_active": True})[0] == 200
    ds = settled(h, ep, 5)
    assert all(d["status"] == "succeeded" for d in ds)
    assert len(r.requests()) == 5
