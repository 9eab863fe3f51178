#!/usr/bin/env python3
"""Crash loop: publish a stream of events while kill -9-ing and restarting
hookd at random moments, then drain and check, Jepsen-style, against what
was acknowledged.

    python3 tests/chaos.py --build build-asan --kills 1000   (make chaos N=1000)

Every publish carries a unique sequence number n in its payload, so the
checker knows what was sent (attempted), what was acknowledged (202) and
what arrived (the receiver's log). It reports:
    lost        acknowledged, never delivered                  (must be 0)
    unexpected  delivered, never published                      (must be 0)
    duplicated  deliveries beyond the first of an event          (reported)
Some kills are aimed at the moment just after the receiver answered 2xx and
before hookd could commit the attempt.
"""
import argparse
import collections
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAST = "50ms,100ms,200ms,400ms,800ms,1s,1s,1s,1s"


def publisher(h, stop, counter, lock, attempted, acked):
    while not stop.is_set():
        with lock:
            n = counter[0]
            counter[0] += 1
            attempted.add(n)
        try:
            st, got, _ = h.request("POST", "/v1/events", {"event_type": "chaos", "payload": {"n": n}},
                                   timeout=5)
        except OSError:
            time.sleep(0.02)
            continue
        if st == 202:
            with lock:
                acked[n] = got["event_id"]


def arrivals(r):
    seen = collections.defaultdict(list)
    for q in r.requests("/status/200"):
        seen[json.loads(q["body"])["data"]["n"]].append(q["headers"]["webhook-id"])
    return seen


def run(ctx, kills, seed=1, log=print):
    rng = random.Random(seed)
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
                              "--retry-schedule", FAST, "--breaker-threshold", "0",
                              "--grace", "200ms", "--log-level", "info"])
    st, ep, _ = h.request("POST", "/org/default/webhooks/endpoints",
                          {"url": r.url("/status/200"), "event_types": ["*"]})
    assert st == 201
    counter, lock = [0], threading.Lock()
    attempted, acked = set(), {}
    aimed = 0
    for k in range(kills):
        stop = threading.Event()
        pubs = [threading.Thread(target=publisher, args=(h, stop, counter, lock, attempted, acked))
                for _ in range(4)]
        for t in pubs:
            t.start()
        try:
            if k % 3 == 2:
                # Aim at "receiver answered, attempt not yet committed".
                before = len(r.requests())
                deadline = time.time() + 1
                while len(r.requests()) == before and time.time() < deadline:
                    time.sleep(0.001)
                aimed += 1
            else:
                time.sleep(rng.uniform(0.02, 0.3))
            h.kill9()
        finally:
            # Also on a failure here: publishers left running kept the
            # process alive until make's timeout.
            stop.set()
            for t in pubs:
                t.join()
        h.start()
    # Drain: every acknowledged event must arrive.
    deadline = time.time() + 120
    while time.time() < deadline:
        seen = arrivals(r)
        if all(n in seen for n in acked):
            break
        time.sleep(0.2)
    time.sleep(1)  # let any last retries land before counting duplicates
    seen = arrivals(r)
    lost = [n for n in acked if n not in seen]
    unexpected = [n for n in seen if n not in attempted]
    duplicated = sum(len(v) - 1 for v in seen.values())
    mixed_ids = [n for n, v in seen.items() if len(set(v)) > 1 or (n in acked and v[0] != acked[n])]
    log("chaos: kills=%d aimed=%d attempted=%d acknowledged=%d delivered=%d" %
        (kills, aimed, len(attempted), len(acked), len(seen)))
    log("lost=%d unexpected=%d duplicated=%d" % (len(lost), len(unexpected), duplicated))
    return {"lost": lost, "unexpected": unexpected, "duplicated": duplicated,
            "mixed_ids": mixed_ids, "acked": len(acked)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-asan")
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    ctx = harness.Context(os.path.abspath(a.build), "chaos")
    try:
        res = run(ctx, a.kills, a.seed)
    finally:
        ctx.close()
    ok = not res["lost"] and not res["unexpected"] and not res["mixed_ids"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
