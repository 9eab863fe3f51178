"""The crash loop of tests/chaos.py, small: 24 kill -9s under a stream of
publishes. `make chaos N=1000` runs the long version."""
import chaos

TIMEOUT = 300


def test_crash_loop_loses_nothing(ctx):
    res = chaos.run(ctx, kills=24, seed=7, log=lambda line: print("report: " + line))
    assert res["acked"] > 0
    assert res["lost"] == [], "lost acknowledged events: %s" % res["lost"][:20]
    assert res["unexpected"] == [], "deliveries of events never published: %s" % res["unexpected"][:20]
    assert res["mixed_ids"] == [], "an event delivered under two webhook-ids: %s" % res["mixed_ids"][:20]
