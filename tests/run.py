#!/usr/bin/env python3
"""The whole test suite: C unit tests, then end-to-end tests.

    python3 tests/run.py --build build-asan [-k substring] [-j 2] [--backend both]

Each end-to-end test runs in its own process (so a hang or crash is
contained and killed at its time limit), up to -j at once, once per store
backend: `test_x.test_y` on SQLite, `test_x.test_y[pg]` on PostgreSQL (-k
matches either name). A module that cannot apply to a backend says so with a
top-level `BACKENDS = ("sqlite",)` and a comment why. For the PostgreSQL runs,
run.py starts one throwaway cluster (tests/pg.py) for the whole run, passes
its base URL to the tests in HOOKD_TEST_PG (each hookd gets a database of its
own on it) and removes it at the end. The last line of output is always
`N passed, M failed`; the exit status is 1 if any failed.
"""
import argparse
import concurrent.futures
import glob
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Arguments for unit binaries that take a size.
UNIT_ARGS = {"unit_store": ["100000"]}
DEFAULT_TIMEOUT = 120
BACKENDS = {"sqlite": "", "postgres": "[pg]"}  # backend: suffix of its test names


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


def module_backends(src):
    """A module's BACKENDS = ("sqlite", ...) if it declares one, else all."""
    m = re.search(r"^BACKENDS = \(([^)]*)\)", src, re.M)
    if not m:
        return list(BACKENDS)
    got = re.findall(r"[\"'](\w+)[\"']", m.group(1))
    assert got and all(b in BACKENDS for b in got), "bad BACKENDS: " + m.group(0)
    return got


def discover(only, backends):
    """Test names, each test's backends in turn: mod.fn, mod.fn[pg]."""
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod = os.path.basename(path)[:-3]
        src = open(path).read()
        allowed = module_backends(src)
        for fn in re.findall(r"^def (test_\w+)\(ctx\)", src, re.M):
            for b in backends:
                name = "%s.%s%s" % (mod, fn, BACKENDS[b])
                if b in allowed and (not only or only in name):
                    tests.append(name)
    return tests


def backend_of(name):
    return "postgres" if name.endswith(BACKENDS["postgres"]) else "sqlite"


def run_one(build, name):
    """In the child process: run one test, print its failure, exit 0/1."""
    import harness
    backend = backend_of(name)
    mod_name, fn_name = name[:len(name) - len(BACKENDS[backend])].split(".")
    mod = importlib.import_module(mod_name)
    ctx = harness.Context(os.path.abspath(build), name, backend)
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
        ctx.drop_databases()
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    return 0 if ok else 1


def timeout_of(name):
    mod = name.split(".")[0]
    m = re.search(r"^TIMEOUT = (\d+)", open(os.path.join(HERE, mod + ".py")).read(), re.M)
    return int(m.group(1)) if m else DEFAULT_TIMEOUT


RUNNING = set()  # test processes (each a session leader) under way
RUNNING_LOCK = threading.Lock()
STOPPING = threading.Event()


def kill_group(p):
    """SIGKILL a test process and everything it started (hookd, receivers)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(build, name, env):
    t = time.time()
    if STOPPING.is_set():
        return name, 1, "not run: interrupted", 0.0
    cmd = [sys.executable, os.path.abspath(__file__), "--build", build, "--one", name]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True, env=env)
    with RUNNING_LOCK:
        RUNNING.add(p)
        if STOPPING.is_set():
            kill_group(p)
    try:
        out, _ = p.communicate(timeout=timeout_of(name))
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, _ = p.communicate()
        rc = 1
        out = "timed out after %d s\n%s" % (timeout_of(name), out or "")
    finally:
        with RUNNING_LOCK:
            RUNNING.discard(p)
    return name, rc, out, time.time() - t


def stop_everything(signum=None, frame=None):
    """Ctrl-C, SIGTERM: kill the tests under way, then unwind (the shared
    cluster is removed on the way out)."""
    STOPPING.set()
    with RUNNING_LOCK:
        for p in list(RUNNING):
            kill_group(p)
    if signum is not None:
        raise KeyboardInterrupt


def start_cluster():
    import pg
    t = time.time()
    c = pg.Cluster()
    try:
        c.start()
    except Exception:
        c.destroy()
        raise
    print("postgres: throwaway cluster at %s (%s, %.1fs)" % (c.base_url(), c.bin, time.time() - t),
          flush=True)
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-asan")
    ap.add_argument("-k", dest="only", default=None)
    ap.add_argument("-j", dest="jobs", type=int, default=2)
    ap.add_argument("--one", default=None)
    ap.add_argument("--no-units", action="store_true")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both",
                    help="store backend(s) the end-to-end tests run on (default both)")
    a = ap.parse_args()
    if a.one:
        sys.exit(run_one(a.build, a.one))
    signal.signal(signal.SIGTERM, stop_everything)
    passed = failed = 0
    if not a.no_units:
        passed, failed = run_units(a.build, a.only)
    backends = ["sqlite", "postgres"] if a.backend == "both" else [a.backend]
    tests = discover(a.only, backends)
    env = dict(os.environ)
    cluster = None
    pool = concurrent.futures.ThreadPoolExecutor(max(1, a.jobs))
    try:
        if any(backend_of(n) == "postgres" for n in tests):
            try:
                cluster = start_cluster()
                env["HOOKD_TEST_PG"] = cluster.base_url()
            except Exception as e:  # noqa: BLE001 - every postgres test fails, visibly
                print("FAIL - postgres cluster did not start: %s" % e, flush=True)
                failed += sum(backend_of(n) == "postgres" for n in tests)
                tests = [n for n in tests if backend_of(n) != "postgres"]
        for name, rc, out, dt in pool.map(lambda n: spawn(a.build, n, env), tests):
            if rc == 0:
                passed += 1
                print("ok - %s (%.1fs)" % (name, dt), flush=True)
                for line in out.splitlines():  # figures a test reports, e.g. the crash loop's
                    if line.startswith("report: "):
                        print("   " + line[len("report: "):], flush=True)
            else:
                failed += 1
                print("FAIL - %s (%.1fs)\n%s" % (name, dt, out[-6000:]), flush=True)
    except KeyboardInterrupt:
        stop_everything()
        print("interrupted", flush=True)
        failed += 1
    finally:
        if STOPPING.is_set():
            stop_everything()
        pool.shutdown(wait=True, cancel_futures=True)
        if cluster is not None:
            cluster.destroy()
        if any(backend_of(n) == "postgres" for n in tests):
            import pg
            pg.reap_orphans()  # private clusters of tests killed at their time limit
    if passed + failed == 0:
        print("no test ran")
        failed = 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
