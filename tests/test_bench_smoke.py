"""bench/run --smoke: the benchmark at tiny sizes, so it keeps working.
No timing is asserted: only that every figure is measured and sane."""
import json
import os
import subprocess

TIMEOUT = 600
# bench/run starts its own hookds, on a SQLite file and (with --db postgres)
# on a throwaway PostgreSQL cluster of its own: it does not take the test's
# database, so one run covers both backends.
BACKENDS = ("sqlite",)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_smoke(ctx):
    out = os.path.join(ctx.workdir, "bench.json")
    p = subprocess.run([os.path.join(ROOT, "bench", "run"), "--smoke", "--db", "postgres", "--out", out],
                       capture_output=True, text=True, timeout=TIMEOUT - 30)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    r = json.load(open(out))
    for k in ("limit_rps", "ceiling_rps", "ceiling_2threads_rps", "ingest_rps", "healthz_rps",
              "drain_rps", "drain_peak_rss_mib", "inflight_peak_rss_mib", "inflight_after_rss_mib",
              "inflight_client_peak_rss_mib", "stats_p50_ms", "ceiling_over_limit",
              "drain_over_ceiling", "drain_over_limit", "ingest_over_healthz",
              "pg1_ingest_rps", "pg1_drain_rps", "pg2_ingest_rps", "pg2_drain_rps",
              "isolation_alone_rps", "isolation_rps", "isolation_ratio",
              "beside_hanging_drain_rps", "beside_hanging_over_drain",
              "h2load_h1_rps", "h2load_h1_over_limit", "inflight_h2load_peak_rss_mib"):
        assert isinstance(r[k], (int, float)) and r[k] > 0, (k, r.get(k))
    # Both ends stamp to the millisecond: 0 ms is a real latency here.
    assert 0 <= r["latency_p50_ms"] <= r["latency_p99_ms"], r
    assert r["drain_events"] >= 2000 and r["latency_events"] > 0
    # Every attempt of the in-flight bursts was delivered (with the 600 that
    # a usual file limit allows, hookd frees the transfers it does not keep).
    for k in ("inflight_succeeded", "inflight_h1_succeeded"):
        assert r[k] == r["inflight"], (k, r[k])
    # Each target is judged (at smoke sizes the verdicts mean nothing).
    assert sorted(r["targets_met"]) == sorted(
        ("ingest_rps", "drain_over_ceiling", "drain_over_limit", "latency_p99_ms",
         "drain_peak_rss_mib", "inflight_peak_rss_mib", "stats_p50_ms")), r["targets_met"]
    assert all(isinstance(v, bool) for v in r["targets_met"].values()), r["targets_met"]
    assert "drain / ceiling" in p.stdout and "PostgreSQL, 2 nodes: drain" in p.stdout
    assert "beside one hanging with 2000 due" in p.stdout
    assert "drain beside 20 endpoints with one hanging each" in p.stdout
    assert r["pg2_drain_events"] >= 2000
