"""Throwaway PostgreSQL clusters for the tests (Debian's postgresql package).

A Cluster is initdb'd in a temporary directory owned by the `postgres` OS
user (initdb refuses root; as root each server command runs through
`runuser -u postgres --`), listens on 127.0.0.1 on a free port with its unix
socket inside that directory, and trusts every local connection. run.py keeps
one for the whole run and hands its base URL to the tests in HOOKD_TEST_PG;
a test that stops or kills PostgreSQL makes a private one.

    c = Cluster().start()
    url = c.create_database("t1")   # postgres://postgres@127.0.0.1:PORT/t1
    c.stop(); c.start(); c.kill(); c.destroy()

Every started cluster is listed in tests/tmp/pg-clusters/ until it is
destroyed, so run.py can stop those a killed test process left behind
(reap_orphans).
"""
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "tmp", "pg-clusters")
USER = "postgres"


def _version_key(path):
    m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", path)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def bin_dir():
    """The newest /usr/lib/postgresql/<version>/bin with initdb in it."""
    dirs = sorted((os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
                  key=lambda d: _version_key(d + "/"))
    if not dirs:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                           "scripts/deps.sh test installs it")
    return dirs[-1]


def tool(name):
    """A PostgreSQL client program: the server's own version first, then PATH."""
    try:
        p = os.path.join(bin_dir(), name)
        if os.access(p, os.X_OK):
            return p
    except RuntimeError:
        pass
    p = shutil.which(name)
    if not p:
        raise RuntimeError("%s not found" % name)
    return p


def available():
    try:
        bin_dir()
        return True
    except RuntimeError:
        return False


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner():
    """Prefix that runs a server command as the postgres user when we are root."""
    return ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []


def _db_url(base, dbname):
    return base.rstrip("/") + "/" + dbname


def psql(url, sql, timeout=60):
    """Run SQL through psql on a postgres:// URL; returns stdout (unaligned,
    tuples only, '|' separated). Raises on any error."""
    p = subprocess.run([tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-d", url, "-c", sql], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    if p.returncode != 0:
        raise RuntimeError("psql failed (%d) on %r: %s" % (p.returncode, sql[:200], p.stderr.strip()))
    return p.stdout


def create_database(base, name):
    """CREATE DATABASE name on the cluster at base (postgres://user@host:port);
    returns the database's URL."""
    if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", name):
        raise ValueError("database name %r" % name)
    psql(_db_url(base, "postgres"), 'CREATE DATABASE "%s"' % name)
    return _db_url(base, name)


def drop_database(base, name):
    psql(_db_url(base, "postgres"), 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def dbname_of(url):
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def base_of(url):
    return url.rsplit("/", 1)[0]


def dump(url, timeout=120):
    """pg_dump of one database as text (schema and data): what is at rest."""
    p = subprocess.run([tool("pg_dump"), "--no-owner", "-d", url], capture_output=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("pg_dump failed: %s" % p.stderr.decode(errors="replace")[-2000:])
    return p.stdout


class Cluster:
    """A throwaway cluster on 127.0.0.1:port (a free one unless given)."""

    SETTINGS = {
        "listen_addresses": "'127.0.0.1'",
        "max_connections": "300",
        "shared_buffers": "64MB",
        "logging_collector": "off",
        "log_min_messages": "warning",
        "log_connections": "off",
        "log_disconnections": "off",
        "fsync": "on",
        "synchronous_commit": "on",
    }

    def __init__(self, port=None, settings=None):
        self.fixed_port = port is not None
        self.port = port or _free_port()
        self.settings = dict(self.SETTINGS, **(settings or {}))
        self.bin = bin_dir()
        self.dir = None
        self.data = None
        self.log = None
        self.running = False
        self._n = 0

    # -- life cycle -------------------------------------------------------
    def _run(self, *args, timeout=120, check=True):
        p = subprocess.run([*_as_owner(), *args], capture_output=True, text=True,
                           timeout=timeout, cwd="/")
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s\n%s" % (
                os.path.basename(args[0]), p.returncode, p.stdout[-2000:], p.stderr[-2000:],
                self.log_tail()))
        return p

    def _init(self):
        # /tmp, not tests/tmp: the unix socket path must stay under 108 bytes
        # and every parent directory must be searchable by the postgres user.
        self.dir = tempfile.mkdtemp(prefix="hookd-pg.")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", USER,
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        self._write_conf()
        os.makedirs(REGISTRY, exist_ok=True)
        with open(os.path.join(REGISTRY, os.path.basename(self.dir)), "w") as f:
            f.write("%s %d\n" % (self.dir, os.getpid()))

    def _write_conf(self):
        conf = dict(self.settings, port=str(self.port),
                    unix_socket_directories="'%s'" % self.dir)
        # The file is the postgres user's; appending as root keeps its owner.
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))

    def start(self, timeout=60):
        if self.dir is None:
            self._init()
        for tries in range(5):
            p = self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log,
                          "-w", "-t", str(timeout), "start", timeout=timeout + 10, check=False)
            if p.returncode == 0:
                self.running = True
                return self
            in_use = "Address already in use" in self.log_tail(20)
            if not in_use or self.fixed_port or tries == 4:
                raise RuntimeError("pg_ctl start failed (%d): %s\n%s" % (
                    p.returncode, p.stderr[-2000:], self.log_tail()))
            self.port = _free_port()  # lost the race for the port: take another
            self._write_conf()

    def stop(self, mode="fast", timeout=60):
        """pg_ctl stop -m fast (smart | fast | immediate)."""
        if self.data and self.running:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w",
                      "-t", str(timeout), "stop", timeout=timeout + 10)
        self.running = False
        return self

    def restart(self, mode="fast"):
        self.stop(mode)
        return self.start()

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def kill(self):
        """SIGKILL the postmaster and its backends, as a crash would."""
        pid = self.postmaster_pid()
        if pid:
            children = _children(pid)
            for p in [pid, *children]:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # Until gone, not only dead: a zombie postmaster still owns its
            # postmaster.pid for the next start.
            deadline = time.time() + 10
            while time.time() < deadline and any(os.path.exists("/proc/%d" % p)
                                                 for p in [pid, *children]):
                time.sleep(0.02)
        self.running = False
        return self

    def destroy(self):
        """Stop (immediately) and remove everything."""
        if self.data and self.running:
            try:
                self.stop("immediate")
            except Exception:  # noqa: BLE001 - the directory goes anyway
                self.kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            try:
                os.unlink(os.path.join(REGISTRY, os.path.basename(self.dir)))
            except OSError:
                pass
            self.dir = None

    # -- use --------------------------------------------------------------
    def base_url(self):
        return "postgres://%s@127.0.0.1:%d" % (USER, self.port)

    def url(self, dbname="postgres"):
        return _db_url(self.base_url(), dbname)

    def create_database(self, name=None):
        if name is None:
            self._n += 1
            name = "db%d" % self._n
        return create_database(self.base_url(), name)

    def psql(self, sql, dbname="postgres"):
        return psql(self.url(dbname), sql)

    def ready(self):
        p = subprocess.run([tool("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                           capture_output=True)
        return p.returncode == 0

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except (OSError, TypeError):
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()


def _children(pid):
    out = []
    for d in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d.split("/")[2]))
        except (OSError, IndexError, ValueError):
            pass
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap_orphans():
    """Stop and remove clusters whose process died without destroying them
    (a test killed at its time limit). Returns how many."""
    n = 0
    for entry in glob.glob(os.path.join(REGISTRY, "*")):
        try:
            d, owner = open(entry).read().split()
        except (OSError, ValueError):
            continue
        if _alive(int(owner)):
            continue  # still in use (another run of the suite, maybe)
        c = Cluster.__new__(Cluster)
        c.dir, c.data, c.log, c.running = d, os.path.join(d, "data"), os.path.join(d, "server.log"), True
        c.bin, c.fixed_port = bin_dir(), True
        try:
            c.stop("immediate", timeout=20)
        except Exception:  # noqa: BLE001
            c.kill()
        c.destroy()
        try:
            os.unlink(entry)
        except OSError:
            pass
        n += 1
    return n
