"""GET /v1/webhooks/stats over a history of 1,000,000 attempts.

On SQLite the store is seeded through the store layer (tests/seed_attempts:
claims and records attempts exactly as the dispatcher does, spread over one
UTC day). On PostgreSQL that path costs a round trip per statement, some 5
minutes under ASan, so the same history (attempts and their per-minute
rollup, in the shape the recorder writes) is made by SQL in seconds; the
recorder's own rollup writes are checked by test_workspace_api's stats
tests on both backends. Then the real server answers the 24 h window from
its rollup."""
import os
import subprocess
import time

import pg

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
    t_seed = time.time()
    if ctx.backend == "postgres":
        ok, failed = seed_by_sql(h.db)
    else:
        seed = os.path.join(ctx.build_dir, "tests", "seed_attempts")
        p = subprocess.run([seed, h.db, str(ATTEMPTS), str(DAY_MS)], capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        ok, failed = map(int, p.stdout.split())
    t_seed = time.time() - t_seed
    assert ok + failed == ATTEMPTS
    h.start()
    t = time.time()
    st, s, _ = h.request("GET", "/v1/webhooks/stats?start=%sT00:00:00Z&end=%sT00:00:00Z&bucket_minutes=60"
                         % (DAY, "2026-05-08"))
    elapsed = time.time() - t
    assert st == 200, s
    print("report: stats over %d attempts (%s, seeded in %.0f s) answered in %.1f ms "
          "(ASan build, HTTP round trip)" % (ATTEMPTS, ctx.backend, t_seed, elapsed * 1000))
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


def seed_by_sql(url):
    """1,000 delivered events of the workspace webhook with 1,000 attempts
    each, evenly over the day, one in ten failed; and their rollup."""
    sql = """
    BEGIN;
    INSERT INTO events(id, org_id, event_type, body, created_at, fanout)
      SELECT 'seed-' || g, (SELECT id FROM orgs WHERE slug = 'default'), 'seed', '{{}}', {day}, 1
      FROM generate_series(1, 1000) g;
    INSERT INTO deliveries(id, endpoint_id, event_id, event_type, status, attempt_count,
                           last_http_status, created_at)
      SELECT 'seed-' || g, (SELECT id FROM endpoints WHERE is_primary = 1), 'seed-' || g, 'seed',
             1, 1000, 200, {day}
      FROM generate_series(1, 1000) g;
    INSERT INTO attempts(delivery_id, number, started_at, duration_ms, http_status, response_body)
      SELECT 'seed-' || (i / 1000 + 1), i % 1000 + 1, {day} + i * 86400000 / {n}, 1,
             CASE WHEN i % 10 = 0 THEN 500 ELSE 200 END, ''
      FROM generate_series(0::bigint, {n} - 1) i;
    INSERT INTO attempt_rollup(endpoint_id, minute, succeeded, failed)
      SELECT (SELECT id FROM endpoints WHERE is_primary = 1), started_at / 60000,
             count(*) FILTER (WHERE http_status = 200), count(*) FILTER (WHERE http_status <> 200)
      FROM attempts WHERE delivery_id LIKE 'seed-%' GROUP BY 2;
    COMMIT;
    """.format(day=DAY_MS, n=ATTEMPTS)
    pg.psql(url, sql, timeout=TIMEOUT)
    failed = ATTEMPTS // 10
    return ATTEMPTS - failed, failed
