"""Test harness: the real hookd binary, the real HTTPS receiver, certificates.

Python 3 standard library only (CI has nothing else). A test is a function
`test_*(ctx)` in a tests/test_*.py module; `ctx` gives it a fresh working
directory, started servers (stopped, and checked for sanitizer reports, at
the end of the test) and the test certificates.

Every test runs against one store backend, `ctx.backend`: "sqlite" (a file in
the test's directory) or "postgres" (a fresh database per hookd on the
cluster whose base URL run.py passes in HOOKD_TEST_PG; see tests/pg.py).
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pg

HERE = os.path.dirname(os.path.abspath(__file__))
TMP = os.path.join(HERE, "tmp")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
_DEFAULT = object()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, msg):
    deadline = time.time() + timeout
    while True:
        if pred():
            return
        if time.time() > deadline:
            raise AssertionError("timed out after %.0f s waiting for: %s" % (timeout, msg))
        time.sleep(0.05)


def certs():
    """A test CA, a server certificate it signed for 127.0.0.1, localhost and
    moves.test (tests/rebind.c resolves it), and a self-signed 'bad' one;
    made once, shared by every test."""
    out = os.path.join(TMP, "certs-2")
    names = {k: os.path.join(out, k + ".pem") for k in ("ca", "server", "bad")}
    names.update({k + "_key": os.path.join(out, k + ".key") for k in ("ca", "server", "bad")})
    if os.path.exists(os.path.join(out, "done")):
        return names
    os.makedirs(TMP, exist_ok=True)
    work = tempfile.mkdtemp(dir=TMP)

    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
        "-subj", "/CN=hookd test CA")
    ssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(work, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:moves.test\nbasicConstraints=CA:FALSE\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "3650", "-extfile", "ext.cnf")
    ssl("req", "-x509", *ec, "-keyout", "bad.key", "-out", "bad.pem", "-days", "3650",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    open(os.path.join(work, "done"), "w").close()
    try:
        os.rename(work, out)
    except OSError:  # another test process made them first
        shutil.rmtree(work, ignore_errors=True)
    return names


def _key_bytes(secret):
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify_standard_signature(secret, headers, body):
    """The Standard Webhooks check a receiver would run."""
    msg = "%s.%s.%s" % (headers["webhook-id"], headers["webhook-timestamp"], body)
    want = base64.b64encode(hmac.new(_key_bytes(secret), msg.encode(), hashlib.sha256).digest())
    sigs = headers.get("webhook-signature", "").split(" ")
    return any(s.startswith("v1,") and hmac.compare_digest(s[3:].encode(), want) for s in sigs)


def verify_agentvista_signature(secret, headers, body):
    m = re.match(r"^t=(\d+),v1=([0-9a-f]{64})$", headers.get("x-agentvista-signature", ""))
    if not m:
        return False
    want = hmac.new(_key_bytes(secret), ("%s.%s" % (m.group(1), body)).encode(),
                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(m.group(2), want)


def _sanitizer_report(text):
    return next((m for m in SANITIZER_MARKS if m in text), None)


class Receiver:
    def __init__(self, build_dir, workdir, cert="server", extra_args=()):
        self.bin = os.path.join(build_dir, "tests", "receiver")
        self.dir = workdir
        self.log = os.path.join(workdir, "requests.jsonl")
        self.cert = cert
        self.extra = list(extra_args)
        self.proc = None
        self.port = None

    def start(self):
        c = certs()
        port_file = os.path.join(self.dir, "receiver.port")
        self.proc = subprocess.Popen(
            [self.bin, "--cert", c[self.cert], "--key", c[self.cert + "_key"], "--log", self.log,
             "--port-file", port_file, *self.extra], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "receiver.err"), "w"))
        wait_until(lambda: os.path.exists(port_file) or self.proc.poll() is not None, 10,
                   "receiver port file")
        assert self.proc.poll() is None, "receiver exited"
        self.port = int(open(port_file).read())
        return self

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def requests(self, path=None):
        if not os.path.exists(self.log):
            return []
        # One read, then whole lines only, decoded one by one. Iterating the
        # file instead yielded a line the receiver was still writing as two:
        # its head (skipped, no newline yet) and, as the file grew under the
        # loop, its tail, which failed to parse (chaos.py, once in 1,000
        # kills). Bytes, so a write cut inside a UTF-8 character is no error.
        with open(self.log, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        out = []
        for line in lines:
            r = json.loads(line)
            if path is None or r["path"] == path or r["path"].startswith(path.rstrip("/") + "/"):
                out.append(r)
        return out

    def wait_for(self, n, path=None, timeout=10):
        wait_until(lambda: len(self.requests(path)) >= n, timeout,
                   "%d requests to %s (have %d)" % (n, path or "the receiver",
                                                    len(self.requests(path))))
        return self.requests(path)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Hookd:
    """The real hookd binary on a free port with a database of its own."""

    def __init__(self, build_dir, workdir, extra_args=(), env=None, db=None, key_file=None):
        self.bin = os.path.join(build_dir, "hookd")
        self.dir = workdir
        self.db = db or os.path.join(workdir, "hookd.db")
        self.backend = "postgres" if is_pg_url(self.db) else "sqlite"
        # The master key file: hookd's default (<db>.key) for SQLite; for a
        # URL, one passed by --master-key-file unless extra_args name one.
        self.key_file = key_file or (None if self.backend == "postgres" else self.db + ".key")
        self.extra = list(extra_args)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKD_TEST_")}
        self.env.update({
            "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        })
        self.env.update(env or {})
        self.port = free_port()
        self.admin_key = None
        self.proc = None
        self.runs = 0
        self.stdout_path = os.path.join(workdir, "hookd.stdout")
        self.stderr_path = os.path.join(workdir, "hookd.stderr")

    def start(self):
        self.runs += 1
        out = open(self.stdout_path, "a")
        err = open(self.stderr_path, "a")
        key = []
        if self.backend == "postgres" and self.key_file and "--master-key-file" not in self.extra:
            key = ["--master-key-file", self.key_file]
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--listen", "127.0.0.1:%d" % self.port, "--db", self.db,
             "--log-level", "debug", *key, *self.extra],
            stdout=out, stderr=err, env=self.env)
        out.close()
        err.close()
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("hookd exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                st, _, _ = self.request("GET", "/healthz", key=None, timeout=2)
                if st == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError("hookd not ready:\n" + self.log_tail())
            time.sleep(0.05)
        m = re.findall(r"default org admin key: (\S+)", open(self.stdout_path).read())
        if m:
            self.admin_key = m[0]
        return self

    def restart(self):
        return self.start()

    def request(self, method, path, body=None, key=_DEFAULT, headers=None, raw=None,
                content_type="application/json", timeout=30):
        h = {}
        if key is _DEFAULT:
            key = self.admin_key
        if key is not None:
            h["Authorization"] = "Bearer " + key
        data = raw
        if data is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            text = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        parsed = json.loads(text) if text else None
        return resp.status, parsed, hdrs

    def attempts_counted(self, status=None):
        """Attempts the workspace stats API counts (default key), over the
        last day; only those whose delivery has that status, if given."""
        st, s, _ = self.request("GET", "/v1/webhooks/stats?bucket_minutes=1440")
        assert st == 200, s
        return sum(x["attempt_count"] for x in s["stats"] if status in (None, x["delivery_status"]))

    def cli(self, *args):
        p = subprocess.run([self.bin, *args, "--db", self.db], capture_output=True, text=True,
                           env=self.env, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        self.wait_stopped(timeout)

    def wait_stopped(self, timeout=30):
        """Wait for a SIGTERM already sent: exit 0, no sanitizer report."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("hookd did not stop within %d s on SIGTERM" % timeout)
        report = _sanitizer_report(self.log_text())
        assert report is None, "sanitizer report (%s):\n%s" % (report, self.log_tail(60))
        assert rc == 0, "hookd exited %d on SIGTERM:\n%s" % (rc, self.log_tail())

    def log_text(self):
        try:
            return open(self.stderr_path, errors="replace").read()
        except OSError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


def is_pg_url(db):
    return db.startswith("postgres://") or db.startswith("postgresql://")


def write_master_key(path, version=1):
    """A master key file as hookd makes one: `<version> <64 hex>`, 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%d %s\n" % (version, secrets.token_hex(32)))
    return path


class Context:
    def __init__(self, build_dir, name, backend=None):
        self.build_dir = build_dir
        self.backend = backend or os.environ.get("HOOKD_TEST_BACKEND", "sqlite")
        assert self.backend in ("sqlite", "postgres"), self.backend
        os.makedirs(TMP, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix=name.replace("[pg]", ".pg") + ".", dir=TMP)
        self._cleanups = []
        self.servers = []
        self.certs = certs()
        self._pg_base = os.environ.get("HOOKD_TEST_PG") or None
        self._pg_own = None
        self.databases = []  # (base URL, name) made by new_database

    def cleanup(self, fn):
        self._cleanups.append(fn)

    # -- PostgreSQL -------------------------------------------------------
    def pg_base(self):
        """The shared cluster's base URL (HOOKD_TEST_PG), or, when a test runs
        alone without run.py's cluster, a private one for this test."""
        if not self._pg_base:
            self._pg_own = pg.Cluster().start()
            self._cleanups.insert(0, self._pg_own.destroy)  # runs last
            self._pg_base = self._pg_own.base_url()
        return self._pg_base

    def pg_cluster(self, **kw):
        """A private cluster of this test's own (to stop, kill, restart)."""
        c = pg.Cluster(**kw)
        self._cleanups.insert(0, c.destroy)
        return c.start()

    def new_database(self, base=None):
        """A fresh, uniquely named database; returns its URL."""
        base = base or self.pg_base()
        name = "t%d_%d_%s" % (os.getpid(), len(self.databases), secrets.token_hex(3))
        url = pg.create_database(base, name)
        self.databases.append((base, name))
        return url

    def drop_databases(self):
        """Drop the databases made by new_database (run.py does it for a test
        that passed; a failed one keeps them to look at)."""
        for base, name in self.databases:
            try:
                pg.drop_database(base, name)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                pass
        self.databases = []

    def db_dump(self, h):
        """What hookd h keeps at rest, as bytes: the SQLite files, or a
        pg_dump of its database."""
        if is_pg_url(h.db):
            return pg.dump(h.db)
        out = b""
        for p in (h.db, h.db + "-wal"):
            if os.path.exists(p):
                out += open(p, "rb").read()
        return out

    def hookd(self, extra_args=(), env=None, start=True, db=None, key_file=None):
        """A hookd on a database of its own (a SQLite file in its directory,
        or a new database on the shared cluster), unless db names one. For a
        postgres:// db the master key file is <workdir>/<database>.key, so
        hookds on one database share it, unless key_file is given."""
        d = os.path.join(self.workdir, "hookd%d" % len(self.servers))
        os.makedirs(d)
        if db is None and self.backend == "postgres":
            db = self.new_database()
        if db is not None and is_pg_url(db) and key_file is None:
            key_file = os.path.join(self.workdir, "%s_%s.key" % (
                pg.dbname_of(db), re.sub(r"\W", "_", pg.base_of(db).rsplit(":", 1)[-1])))
        h = Hookd(self.build_dir, d, extra_args, env, db, key_file)
        self.servers.append(h)
        self.cleanup(h.stop)
        return h.start() if start else h

    def receiver(self, cert="server", extra_args=()):
        d = os.path.join(self.workdir, "receiver%d" % len(self.servers))
        os.makedirs(d)
        r = Receiver(self.build_dir, d, cert, extra_args)
        self.servers.append(r)
        self.cleanup(r.stop)
        return r.start()

    def close(self):
        """Run cleanups in reverse; the first failure (e.g. a sanitizer
        report at stop) is raised after all have run."""
        first = None
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - collect, re-raise the first
                first = first or e
        if first:
            raise first

    def hookd_logs(self):
        return "\n".join("--- %s\n%s" % (s.dir, s.log_tail()) for s in self.servers
                         if isinstance(s, Hookd))
