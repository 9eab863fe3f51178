"""GET /v1/webhooks/stats over a history of 1,000,000 attempts.

The store is seeded through the store layer (tests/seed_attempts: claims and
records attempts exactly as the dispatcher does, spread over one UTC day),
then the real server answers the 24 h window from its per-minute rollup."""
import os
import subprocess
import time

TIMEOUT = 400
DAY = "2026-05-07"
DAY_MS = 1778112000000  # 2026-05-07T00:00:00Z
ATTEMPTS = 1000000


def test_stats_over_a_million_attempts(ctx):
    h = ctx.hookd()
    # A host that cannot be reached here: new attempts fail today, outside the seeded day.
    st, got, _ = h.request("PUT", "/v1/webhooks", {"url": "https://hooks.example.invalid/x"})
    assert st == 200, got
    h.stop()
    seed = os.path.join(ctx.build_dir, "tests", "seed_attempts")
    p = subprocess.run([seed, h.db, str(ATTEMPTS), str(DAY_MS)], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    ok, failed = map(int, p.stdout.split())
    assert ok + failed == ATTEMPTS
    h.start()
    t = time.time()
    st, s, _ = h.request("GET", "/v1/webhooks/stats?start=%sT00:00:00Z&end=%sT00:00:00Z&bucket_minutes=60"
                         % (DAY, "2026-05-08"))
    elapsed = time.time() - t
    assert st == 200, s
    print("stats over %d attempts answered in %.1f ms (ASan build, HTTP round trip)"
          % (ATTEMPTS, elapsed * 1000))
    assert s["start_at"] == DAY + "T00:00:00Z" and s["end_at"] == "2026-05-08T00:00:00Z"
    assert len(s["stats"]) == 48, len(s["stats"])  # 24 hourly buckets x {failed, succeeded}
    by = {"succeeded": 0, "failed": 0}
    for row in s["stats"]:
        by[row["delivery_status"]] += row["attempt_count"]
        assert row["bucket_start"].startswith(DAY) and row["bucket_start"].endswith(":00:00Z")
    assert by == {"succeeded": ok, "failed": failed}, (by, ok, failed)
    # A 15-minute bucket count adds up the same.
    st, s, _ = h.request("GET", "/v1/webhooks/stats?start=%sT00:00:00Z&end=2026-05-08T00:00:00Z"
                         "&bucket_minutes=15" % DAY)
    assert len(s["stats"]) == 96 * 2 and sum(r["attempt_count"] for r in s["stats"]) == ATTEMPTS
