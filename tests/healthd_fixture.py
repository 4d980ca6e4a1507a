"""Start the real healthd binary on a free loopback port and talk HTTP to it.

Used by every Python test (integration, plugins against real servers).
Meson passes the paths through the environment:
  HEALTHD_BIN          the healthd binary under test
  HEALTHD_PLUGIN_DIR   the build tree's plugin directory (dummy.so, http.so, ...)
  HEALTHD_FIXTURE_DIR  the build directory holding test fixture plugins
  HEALTHD_WRAPPER      optional command put before healthd (the `valgrind` test
                       setup); a run the wrapper flags (exit 99) fails the test
  HEALTHD_TIME_SCALE   factor for time bounds under a slow wrapper (default 1)

    with Healthd(config={"checks": [...]}) as h:
        status, headers, body = h.get("/health/?checks=true")

Standard library only; run with /usr/bin/python3.
"""

import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

BIN = os.environ.get("HEALTHD_BIN", "healthd")
WRAPPER = shlex.split(os.environ.get("HEALTHD_WRAPPER", ""))
TIME_SCALE = float(os.environ.get("HEALTHD_TIME_SCALE", "1"))
WRAPPER_ERROR = 99  # valgrind --error-exitcode in meson.build
WRAPPER_LINE = re.compile(r"==\d+== ")  # what valgrind --quiet prints: errors only
PLUGIN_DIR = os.environ.get("HEALTHD_PLUGIN_DIR", "")
FIXTURE_DIR = os.environ.get("HEALTHD_FIXTURE_DIR", "")
START_TIMEOUT = 15.0 * TIME_SCALE
# How a served healthd's lines start off the journal: an RFC 3339 time stamp
# in UTC with milliseconds (core/log.c).
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


class StartupError(Exception):
    """healthd exited before it listened; .returncode and .log say why."""

    def __init__(self, returncode, log):
        super().__init__(f"healthd exited with {returncode}: {log.strip()}")
        self.returncode = returncode
        self.log = log


def run_healthd(args, env=None, timeout=30):
    """Run healthd to completion (for --check-config, --version, refused starts).

    Returns (returncode, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.pop("HEALTH_URL_SECRET", None)
    if env:
        full_env.update(env)
    p = subprocess.run(WRAPPER + [BIN] + list(args), capture_output=True, text=True,
                       env=full_env, timeout=timeout * TIME_SCALE, stdin=subprocess.DEVNULL)
    if WRAPPER and p.returncode == WRAPPER_ERROR:
        raise AssertionError(f"{WRAPPER[0]} found errors:\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


class Healthd:
    """One healthd process.

    config:     dict written as the config file (None: no --config, embedded default)
    secret:     None starts with --no-url-secret; a string sets HEALTH_URL_SECRET;
                False passes neither, so the config file decides
    plugin_dir: defaults to the build tree's plugin directory
    args:       extra command-line arguments
    env:        extra environment
    loaded:     start() returns once every plugin has loaded (the "ready" line);
                False: once healthd listens, while isolated plugins may still load
    """

    def __init__(self, config=None, secret=None, plugin_dir=None, args=(), env=None,
                 listen="127.0.0.1:0", loaded=True):
        self.config = config
        self.secret = secret
        self.plugin_dir = plugin_dir if plugin_dir is not None else PLUGIN_DIR
        self.args = list(args)
        self.env = env or {}
        self.listen = listen
        self.loaded = loaded
        self.proc = None
        self.host = None
        self.port = None
        self._lines = []
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="healthd-test-")
        self.config_path = None

    # -- lifetime ---------------------------------------------------------

    def start(self):
        cmd = WRAPPER + [BIN, "--listen", self.listen]
        if self.plugin_dir:
            cmd += ["--plugin-dir", self.plugin_dir]
        if self.config is not None:
            self.config_path = os.path.join(self._tmp.name, "healthd.json")
            with open(self.config_path, "w") as f:
                if isinstance(self.config, str):
                    f.write(self.config)
                else:
                    json.dump(self.config, f)
            cmd += ["--config", self.config_path]
        env = dict(os.environ)
        env.pop("HEALTH_URL_SECRET", None)
        if self.secret is None:
            cmd.append("--no-url-secret")
        elif self.secret is not False:
            env["HEALTH_URL_SECRET"] = self.secret
        env.update(self.env)
        cmd += self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        ready = threading.Event()
        started = []

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    self._lines.append(line)
                if re.search(r"listening on https?://", line) and self.port is None:
                    url = urllib.parse.urlsplit(line.split("listening on ", 1)[1].split()[0])
                    self.host = url.hostname
                    self.port = url.port
                # isolated plugins load after healthd listens: "ready" says
                # they have (core/loading.c)
                if self.port is not None and not started and (
                        not self.loaded or re.search(r"\bready: \d+ check", line)):
                    started.append(True)
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=reader, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("healthd did not start listening within "
                                   f"{START_TIMEOUT}s:\n{self.log}")
        if not started:
            rc = self.stop()
            raise StartupError(rc, self.log)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal healthd and wait; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)  # stderr drained to its end
        self.proc.stderr.close()
        if WRAPPER and self.proc.returncode == WRAPPER_ERROR:
            raise AssertionError(f"{WRAPPER[0]} found errors:\n{self.log}")
        if WRAPPER and any(WRAPPER_LINE.match(line) for line in self._lines):
            # an executor's report (they run under the wrapper too): with
            # --quiet, valgrind prints nothing but errors
            raise AssertionError(f"{WRAPPER[0]} found errors in an executor:\n{self.log}")
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self._tmp.cleanup()

    def __del__(self):
        self._tmp.cleanup()

    @property
    def log(self):
        with self._lock:
            return "\n".join(self._lines)

    @property
    def messages(self):
        """The log's lines without their time stamps."""
        with self._lock:
            return [STAMP.sub("", line, count=1) if STAMP.match(line) else line
                    for line in self._lines]

    @property
    def tmpdir(self):
        return self._tmp.name

    # -- HTTP -------------------------------------------------------------

    def connection(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, timeout=10):
        """One request on a fresh connection: (status, headers, body bytes).

        Header names in the returned dict are lower case."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, headers=None, timeout=10):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def get_json(self, path, headers=None, timeout=10):
        status, hdrs, body = self.get(path, headers, timeout)
        return status, json.loads(body)

    def raw(self, data, timeout=5, read_limit=1 << 20):
        """Send raw bytes on a new socket; return what came back until close or timeout."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            try:
                while len(out) < read_limit:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except socket.timeout:
                pass
            return out

    def metrics(self):
        """GET /metrics parsed into {(name, frozenset(labels.items())): value}."""
        status, _, body = self.get("/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}")
        return parse_prometheus(body.decode())


@contextlib.contextmanager
def running(test, config, **kw):
    """Healthd with `config` (and Healthd's keywords); when the block ends it
    must have exited 0, which under a sanitizer also means no report."""
    h = Healthd(config=config, **kw)
    with h:
        yield h
    test.assertEqual(h.proc.returncode, 0, f"healthd did not exit cleanly:\n{h.log}")


class ServerTest(unittest.TestCase):
    """One healthd for all tests of a class: set CONFIG (and SECRET, as for
    Healthd's secret) on the subclass; the tests use self.h."""

    CONFIG = None
    SECRET = None

    @classmethod
    def setUpClass(cls):
        cls.h = Healthd(config=cls.CONFIG, secret=cls.SECRET).start()

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()


def parse_prometheus(text):
    """Strict enough parser for the text exposition format; raises on a bad line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_txt, value = rest.rsplit("}", 1)
            labels = {}
            for part in _split_labels(labels_txt):
                k, v = part.split("=", 1)
                if not (v.startswith('"') and v.endswith('"')):
                    raise ValueError(f"bad label in {line!r}")
                labels[k] = v[1:-1]
        else:
            name, value = line.split(" ", 1)
            labels = {}
        value = value.strip()
        if " " in value:
            raise ValueError(f"bad sample line {line!r}")
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples


def _split_labels(txt):
    parts, cur, quoted, esc = [], "", False, False
    for ch in txt:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            cur += ch
            esc = True
        elif ch == '"':
            cur += ch
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def abi_version():
    """The plugin ABI the build's header declares, as "MAJOR.MINOR"."""
    hdr = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "include", "healthd",
                       "plugin.h")
    with open(hdr) as f:
        text = f.read()
    major = re.search(r"#define HEALTHD_ABI_MAJOR (\d+)", text).group(1)
    minor = re.search(r"#define HEALTHD_ABI_MINOR (\d+)", text).group(1)
    return f"{major}.{minor}"


def read_until_closed(s, seconds):
    """Reads s until the server closes it (EOF or a reset) or `seconds` pass:
    (everything read, whether it was closed)."""
    out = b""
    deadline = time.monotonic() + seconds
    s.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def free_port():
    """A loopback TCP port that was free a moment ago (for helper servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    """Run the calling module's unittest cases, verbosely, exit non-zero on failure."""
    unittest.main(module="__main__", verbosity=2)
