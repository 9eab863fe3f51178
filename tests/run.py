#!/usr/bin/env python3
"""The whole test suite: C unit tests, then end-to-end tests.

    python3 tests/run.py --build build-asan [-k substring] [-j 2]

Each end-to-end test runs in its own process (so a hang or crash is
contained and killed at its time limit), up to -j at once. The last line of
output is always `N passed, M failed`; the exit status is 1 if any failed.
"""
import argparse
import concurrent.futures
import glob
import importlib
import os
import re
import shutil
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Arguments for unit binaries that take a size.
UNIT_ARGS = {"unit_store": ["100000"]}
DEFAULT_TIMEOUT = 120


def run_units(build, only):
    passed = failed = 0
    for path in sorted(glob.glob(os.path.join(build, "tests", "unit_*"))):
        name = os.path.basename(path)
        if not os.access(path, os.X_OK) or os.path.isdir(path) or (only and only not in name):
            continue
        t = time.time()
        p = subprocess.run([path, *UNIT_ARGS.get(name, [])], capture_output=True, text=True,
                           timeout=600)
        m = re.search(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
        np, nf = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if p.returncode != 0 and nf == 0:
            nf = 1
        passed += np
        failed += nf
        status = "ok" if nf == 0 else "FAIL"
        print("%s - %s (%d checks, %.1fs)" % (status, name, np + nf, time.time() - t), flush=True)
        if nf:
            bad = [l for l in p.stdout.splitlines() if l.startswith("not ok")]
            print("\n".join(bad[:20]) + "\n" + p.stderr[-3000:], flush=True)
        for l in p.stdout.splitlines():
            if l.startswith("# "):
                print("   " + l, flush=True)
    return passed, failed


def discover(only):
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod = os.path.basename(path)[:-3]
        src = open(path).read()
        for fn in re.findall(r"^def (test_\w+)\(ctx\)", src, re.M):
            name = "%s.%s" % (mod, fn)
            if not only or only in name:
                tests.append(name)
    return tests


def run_one(build, name):
    """In the child process: run one test, print its failure, exit 0/1."""
    import harness
    mod_name, fn_name = name.split(".")
    mod = importlib.import_module(mod_name)
    ctx = harness.Context(os.path.abspath(build), name)
    ok = False
    try:
        getattr(mod, fn_name)(ctx)
        ok = True
    except Exception:  # noqa: BLE001 - report any failure
        traceback.print_exc()
        print(ctx.hookd_logs())
    try:
        ctx.close()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        ok = False
    if ok:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    return 0 if ok else 1


def timeout_of(name):
    mod = name.split(".")[0]
    m = re.search(r"^TIMEOUT = (\d+)", open(os.path.join(HERE, mod + ".py")).read(), re.M)
    return int(m.group(1)) if m else DEFAULT_TIMEOUT


def spawn(build, name):
    t = time.time()
    cmd = [sys.executable, os.path.abspath(__file__), "--build", build, "--one", name]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_of(name),
                           start_new_session=True)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc = 1
        out = "timed out after %d s\n%s" % (timeout_of(name), (e.stdout or b"").decode(errors="replace")
                                             if isinstance(e.stdout, bytes) else (e.stdout or ""))
    return name, rc, out, time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-asan")
    ap.add_argument("-k", dest="only", default=None)
    ap.add_argument("-j", dest="jobs", type=int, default=2)
    ap.add_argument("--one", default=None)
    ap.add_argument("--no-units", action="store_true")
    a = ap.parse_args()
    if a.one:
        sys.exit(run_one(a.build, a.one))
    passed = failed = 0
    if not a.no_units:
        passed, failed = run_units(a.build, a.only)
    tests = discover(a.only)
    with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as pool:
        for name, rc, out, dt in pool.map(lambda n: spawn(a.build, n), tests):
            if rc == 0:
                passed += 1
                print("ok - %s (%.1fs)" % (name, dt), flush=True)
                for line in out.splitlines():  # figures a test reports, e.g. the crash loop's
                    if line.startswith("report: "):
                        print("   " + line[len("report: "):], flush=True)
            else:
                failed += 1
                print("FAIL - %s (%.1fs)\n%s" % (name, dt, out[-6000:]), flush=True)
    if passed + failed == 0:
        print("no test ran")
        failed = 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
