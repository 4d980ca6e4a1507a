"""A throwaway PostgreSQL cluster for the postgres plugin's tests and benchmark.

    with PgCluster() as pg:                 # initdb + start, 127.0.0.1 only
        pg.create_user("app", "secret")     # a scram-sha-256 login role
        pg.conninfo("app", "secret", application_name="x")
        pg.sql("SELECT 1")                  # as the superuser, over the unix socket
        pg.freeze(); pg.thaw()              # SIGSTOP / SIGCONT every process of it
        pg.stop(); pg.start(); pg.restart()

The cluster lives in a temporary directory owned by whoever runs its server:
the `postgres` user when the tests run as root (initdb refuses root), else
the current user. It holds the data directory, unix socket and server log. It listens
on a free loopback port and on the socket; fsync is off. The superuser
`postgres` connects over the socket without a password (trust); every TCP
connection needs a scram-sha-256 password. The cluster is always stopped and
its directory removed: by close(), by the `with` block, and at exit for one a
failed test left behind, thawing it first if it was frozen.

The superuser role is `postgres` either way. Standard library only; run with
/usr/bin/python3, as root or not.
"""

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_USER = "postgres"  # the superuser role; also the OS user of the server as root
AS_ROOT = os.geteuid() == 0
START_TIMEOUT = 60


def bindir():
    """The directory with initdb, pg_ctl, psql: pg_config's, else the newest installed."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10)
        d = out.stdout.strip()
        if out.returncode == 0 and os.path.exists(os.path.join(d, "initdb")):
            return d
    except (OSError, subprocess.TimeoutExpired):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    if not found:
        raise RuntimeError("no PostgreSQL server binaries (initdb) found; "
                           "install postgresql (Debian: apt-get install postgresql)")
    return os.path.dirname(found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_live = set()


@atexit.register
def _close_leftovers():
    for c in list(_live):
        c.close()


class PgCluster:
    def __init__(self, log_connections=False):
        self.bin = bindir()
        self.log_connections = log_connections
        self.dir = None
        self.data = None
        self.port = None
        self.frozen = []
        self.running = False

    # -- lifetime ---------------------------------------------------------

    def __enter__(self):
        try:
            return self.create()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    def create(self):
        self.dir = tempfile.mkdtemp(prefix="healthd-pg-")
        _live.add(self)
        self._give_to_server(self.dir)
        # searchable by others, as /run/postgresql is: it is the socket
        # directory too, and a sandboxed healthd has no capability to pass a
        # 0700 directory of another user, even as root (data/ stays 0700)
        os.chmod(self.dir, 0o711)
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "server.log")
        self._as_postgres([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", PG_USER,
                           "-E", "UTF8", "--locale=C", "--no-sync",
                           "--auth-local=trust", "--auth-host=scram-sha-256"], timeout=120)
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("# written by tests/postgres/pg_cluster.py\n"
                    "local all postgres trust\n"
                    "local all all scram-sha-256\n"
                    "host  all all 127.0.0.1/32 scram-sha-256\n")
        for attempt in range(5):  # the free port may be taken before the server binds it
            self.port = free_port()
            self._write_conf()
            try:
                self.start()
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        return self

    def _write_conf(self):
        with open(os.path.join(self.data, "postgresql.auto.conf"), "w") as f:
            f.write(f"listen_addresses = '127.0.0.1'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\n"
                    f"fsync = off\n"
                    f"full_page_writes = off\n"
                    f"password_encryption = 'scram-sha-256'\n"
                    f"max_connections = 50\n"
                    f"shared_buffers = '16MB'\n"
                    f"log_connections = {'on' if self.log_connections else 'off'}\n"
                    f"log_line_prefix = '%m [%p] '\n")
        self._give_to_server(os.path.join(self.data, "postgresql.auto.conf"))

    def start(self):
        self.thaw()
        r = self._as_postgres([os.path.join(self.bin, "pg_ctl"), "start", "-D", self.data,
                               "-l", self.logfile, "-w", "-t", str(START_TIMEOUT)],
                              timeout=START_TIMEOUT + 30, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                               f"{self.server_log()[-3000:]}")
        self.running = True

    def stop(self, mode="fast"):
        """Stops the server (fast: backends are told and closed; immediate: SIGQUIT)."""
        self.thaw()
        if not self.running:
            return
        self._as_postgres([os.path.join(self.bin, "pg_ctl"), "stop", "-D", self.data,
                           "-m", mode, "-w", "-t", str(START_TIMEOUT)],
                          timeout=START_TIMEOUT + 30, check=False)
        self.running = False

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def close(self):
        """Stops and removes everything; safe to call twice and after failures."""
        try:
            if self.data and os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self.running = True
                self.stop("immediate")
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            _live.discard(self)

    # -- freezing ---------------------------------------------------------

    def pids(self):
        """The postmaster and all its children (the whole cluster)."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            master = int(f.readline())
        children = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master:
                children.append(int(d))
        return [master] + children

    def freeze(self):
        """SIGSTOPs every process of the cluster: connects and queries then hang."""
        pids = self.pids()
        os.kill(pids[0], signal.SIGSTOP)  # the postmaster first: it forks no one after this
        self.frozen.append(pids[0])
        for pid in self.pids()[1:]:
            try:
                os.kill(pid, signal.SIGSTOP)
                self.frozen.append(pid)
            except ProcessLookupError:
                pass

    def thaw(self):
        for pid in reversed(self.frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    # -- using it ---------------------------------------------------------

    def sql(self, query, db="postgres"):
        """Runs query as the superuser over the socket; returns rows as lists of strings."""
        r = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                            "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
                            "-U", PG_USER, "-d", db, "-c", query],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def create_user(self, name, password):
        self.sql(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")

    def conninfo(self, user, password, dbname="postgres", **extra):
        """A keyword/value conninfo for TCP on loopback."""
        parts = [f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"]
        if password is not None:
            parts.append(f"password={password}")
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    def server_log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def _give_to_server(path):
        """Makes path the server's: the postgres user's as root, else already ours."""
        if AS_ROOT:
            pw = pwd.getpwnam(PG_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _as_postgres(self, cmd, timeout, check=True):
        """Runs a server program: as the postgres user when root, else as ourselves."""
        prefix = ["runuser", "-u", PG_USER, "--"] if AS_ROOT else []
        r = subprocess.run(prefix + cmd, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                           cwd=self.dir)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): "
                               f"{r.stdout}{r.stderr}")
        return r
