"""Tools for plugin authors (suite tools): `healthd --test-plugin`, the
contract suite, against the shipped plugins, the examples and fixtures that
break the contract one way each; `healthd --run-check`; and the ABI hardening
seen from a real server (late message(), out-of-range status, garbage in
struct healthd_check, a slow load()).

Fixtures: tests/fixtures/contract.c (see tests/fixtures/meson.build).
"""

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import healthd_fixture
from healthd_fixture import FIXTURE_DIR, PLUGIN_DIR, TIME_SCALE, run_healthd

TAP_LINE = re.compile(r"^(not )?ok (\d+) - (.*)$")
LATE = re.compile(r"\blate\b")  # the harness's word for a run the host would time out
ABI = re.escape(healthd_fixture.abi_version())  # the fixtures' ABI: the build's


def fixture(name):
    return os.path.join(FIXTURE_DIR, name + ".so")


def harness(so, *args, timeout=90):
    """healthd --test-plugin: (rc, [(ok, text)], stdout, stderr), TAP checked."""
    rc, out, err = run_healthd(["--test-plugin", so, *args], timeout=timeout)
    results = []
    plan = None
    for line in out.splitlines():
        m = TAP_LINE.match(line)
        if m:
            results.append((m.group(1) is None, m.group(3)))
            if int(m.group(2)) != len(results):
                raise AssertionError(f"TAP numbering broken at {line!r}:\n{out}")
        elif line.startswith("1.."):
            plan = int(line[3:])
    if plan != len(results):
        raise AssertionError(f"TAP plan {plan} but {len(results)} results:\n{out}")
    return rc, results, out, err


class Silent:
    """A loopback TCP server that accepts and never answers, or answers
    `reply` to whatever it reads. Stops with the test."""

    def __init__(self, reply=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            if self.reply is not None:
                c.settimeout(2)
                try:
                    c.recv(256)
                    c.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


class Harness(unittest.TestCase):
    def assert_passes(self, so, *args):
        rc, results, out, err = harness(so, *args)
        self.assertEqual(rc, 0, out + err)
        self.assertTrue(results and all(ok for ok, _ in results), out)
        return [text for _, text in results]

    def assert_fails(self, so, pattern, *args, timeout=90):
        started = time.monotonic()
        rc, results, out, err = harness(so, *args, timeout=timeout)
        self.assertEqual(rc, 1, out + err)
        failed = [text for ok, text in results if not ok]
        self.assertTrue(any(re.search(pattern, t) for t in failed),
                        f"no failure matching {pattern!r}:\n{out}")
        return out, time.monotonic() - started

    # -- what must pass ---------------------------------------------------

    def test_dummy(self):
        texts = self.assert_passes(os.path.join(PLUGIN_DIR, "dummy.so"))
        for step in ("load: plugin dummy", "instantiate: test-a registered",
                     "instantiate: test-b registered", "unload: destroy() of every check",
                     "run true: OK", "run false: CRITICAL", "cancel test-a:",
                     "concurrent: test-a and test-b ran at the same time",
                     "memory test-b:"):
            self.assertTrue(any(t.startswith(step) for t in texts), f"{step!r} in {texts}")

    def test_check_selects_one(self):
        texts = self.assert_passes(os.path.join(PLUGIN_DIR, "dummy.so"), "--check", "false")
        self.assertTrue(any(t.startswith("run false:") for t in texts), texts)
        self.assertFalse(any(t.startswith("run true:") for t in texts), texts)

    def test_check_unknown(self):
        self.assert_fails(os.path.join(PLUGIN_DIR, "dummy.so"), r"--check nosuch: no such check",
                          "--check", "nosuch")

    def test_http_plugin(self):
        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            texts = self.assert_passes(os.path.join(PLUGIN_DIR, "http.so"), "--option",
                                       f"url=http://127.0.0.1:{srv.server_address[1]}/")
            self.assertTrue(any(t.startswith("run test-a: OK") for t in texts), texts)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_http_plugin_waits_and_stops_when_cancelled(self):
        s = Silent()
        try:
            texts = self.assert_passes(os.path.join(PLUGIN_DIR, "http.so"), "--option",
                                       f"url=http://127.0.0.1:{s.port}/")
        finally:
            s.close()
        self.assertTrue(any(re.match(r"cancel test-a: stopped \d+ ms after cancelled", t)
                            for t in texts), texts)

    def test_postgres_plugin(self):
        port = healthd_fixture.free_port()  # nothing listens: refused at once
        texts = self.assert_passes(os.path.join(PLUGIN_DIR, "postgres.so"), "--option",
                                   f"conninfo=host=127.0.0.1 port={port} dbname=x user=x")
        self.assertTrue(any(t.startswith("run test-a: CRITICAL") for t in texts), texts)

    def test_heartbeat_example(self):
        with tempfile.NamedTemporaryFile() as beat:
            texts = self.assert_passes(fixture("heartbeat"), "--option", f"path={beat.name}")
        self.assertTrue(any(t.startswith("run test-a: OK") for t in texts), texts)

    def test_tcp_example(self):
        s = Silent(reply=b"+PONG\r\n")
        try:
            texts = self.assert_passes(fixture("tcp"), "--option", f"port={s.port}",
                                       "--option", "send=PING", "--option", "expect=+PONG")
        finally:
            s.close()
        self.assertTrue(any(re.match(r"run test-a: OK in \d+ ms of \d+ ms: 127\.0\.0\.1:\d+ "
                                     r"answered", t) for t in texts), texts)

    def test_tcp_example_waits_in_slices(self):
        """A service that accepts and never answers: the example gives up by
        the deadline with its own message, and soon after cancelled()."""
        s = Silent()
        try:
            texts = self.assert_passes(fixture("tcp"), "--option", f"port={s.port}",
                                       "--option", "expect=+PONG")
        finally:
            s.close()
        self.assertTrue(any(re.match(r"run test-a: CRITICAL in \d+ ms of 2000 ms: "
                                     r"127\.0\.0\.1:\d+: no answer within 2000 ms", t)
                            for t in texts), texts)
        self.assertTrue(any(re.match(r"cancel test-a: stopped \d+ ms after cancelled", t)
                            for t in texts), texts)
        self.assertFalse(any(LATE.search(t) for t in texts), texts)

    def test_stopping_at_the_deadline_is_not_late(self):
        """Back a few ms after its deadline, within the host's grace
        (HEALTHD_DEADLINE_GRACE_MS): a 1.2 host takes that answer, so the
        harness neither fails the run nor calls it late."""
        texts = self.assert_passes(fixture("atdeadline"))
        self.assertTrue(any(re.match(r"run atdeadline-check: CRITICAL in 20\d\d ms of 2000 ms: "
                                     r"no answer within 2000 ms$", t) for t in texts), texts)
        self.assertFalse(any(LATE.search(t) for t in texts), texts)

    def test_cancel_honoured(self):
        texts = self.assert_passes(fixture("cgood"))
        self.assertTrue(any(re.match(r"cancel cgood-check: stopped \d+ ms after cancelled", t)
                            for t in texts), texts)

    # -- what must fail, with the reason ----------------------------------

    def test_ignores_cancel(self):
        self.assert_fails(fixture("ignorescancel"),
                          r"^cancel ignorescancel-check: still running \d+ ms after "
                          r"cancelled\(\) turned true")

    def test_hang_is_reported_not_suffered(self):
        out, took = self.assert_fails(fixture("hang"),
                                      r"^run hang-check: still running \d+ ms after its "
                                      r"2000 ms deadline: it heeds neither", timeout=60)
        self.assertIn("not ok 4 - cancel hang-check: still running", out)

    def test_crash(self):
        out, _ = self.assert_fails(fixture("crash"),
                                   r"^run: the plugin crashed: killed by signal \d+ \(.*\) "
                                   r"while running check crash-check")

    def test_leak(self):
        self.assert_fails(fixture("leak"), r"^memory leak-check: the heap grew by \d+ bytes "
                                           r"over \d+ runs \(\d+ per run\)")

    def test_bad_status(self):
        self.assert_fails(fixture("badstatus"),
                          r"^run badstatus-check: run\(\) returned 7, not a status")

    def test_late_message(self):
        """Each run leaves a thread that calls message() 50 ms later and ends:
        the step whose runs left it says so, however fast the machine, and the
        memory step reads the heap once those threads ended, finding no leak."""
        out, _ = self.assert_fails(fixture("latemessage"),
                                   r"^run: the plugin called message\(\) or timed_out\(\) "
                                   r"\d+ times? outside run\(\)")
        self.assertRegex(out, r"\nok \d+ - memory latemessage-check: \d+ runs, heap ")
        self.assertRegex(out, r"\nnot ok \d+ - memory: the plugin called message\(\)")

    def test_garbage_flags(self):
        out, _ = self.assert_fails(fixture("garbageflags"),
                                   rf"^load: .*refused: .*has flags 0x5a5a5a5b, but ABI {ABI} "
                                   r"defines only 0x1: start from HEALTHD_CHECK_INIT")
        self.assertRegex(out, r"\nok \d+ - run: not run, the plugin did not load # SKIP\n")

    def test_garbage_size(self):
        self.assert_fails(fixture("garbagesize"),
                          r"^load: .*struct healthd_check has size 2147237401, impossible for "
                          rf"ABI {ABI}")

    def test_refused_plugin(self):
        self.assert_fails(fixture("wrongmajor"), r"^load: .*refused: built for plugin ABI 2")

    def test_file_name_in_the_current_directory(self):
        """"dummy.so", not "./dummy.so": the file here, not a library search."""
        p = subprocess.run(healthd_fixture.WRAPPER + [healthd_fixture.BIN, "--test-plugin",
                                                      "dummy.so", "--check", "true"],
                           cwd=PLUGIN_DIR, capture_output=True, text=True,
                           timeout=60 * TIME_SCALE, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ok 1 - load: plugin dummy", p.stdout)

    def test_usage_errors(self):
        dummy = os.path.join(PLUGIN_DIR, "dummy.so")
        for args, msg in ((["--test-plugin", dummy, "--option", "novalue"], "expected KEY=VALUE"),
                          (["--test-plugin", "/nonexistent.so"], "No such file"),
                          (["--option", "a=b"], "go with --test-plugin")):
            rc, out, err = run_healthd(args)
            self.assertEqual(rc, 2, err)
            self.assertIn(msg, err)


class RunCheck(unittest.TestCase):
    CHECKS = [{"name": n, "plugin": "dummy", "result": n} for n in
              ("ok", "warning", "critical", "unknown")]

    def run_check(self, name, in_process=("dummy",), checks=None):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump({"in_process": list(in_process),
                           "checks": checks if checks is not None else self.CHECKS}, f)
            return run_healthd(["--config", path, "--run-check", name])

    def test_exit_codes(self):
        for in_process in (("dummy",), ()):  # in the server, and in an executor
            for code, name in enumerate(("ok", "warning", "critical", "unknown")):
                with self.subTest(name=name, isolated=not in_process):
                    rc, out, err = self.run_check(name, in_process)
                    self.assertEqual(rc, code, err)
                    self.assertRegex(out, rf"^{name.upper()} - {name} after 0 ms \| "
                                          r"time=\d+\.\d{3}s;;;0\n$")

    def test_fixed_check(self):
        rc, out, _ = self.run_check("false")
        self.assertEqual((rc, out.split(" |")[0]), (2, "CRITICAL - always fails"))

    def test_timeout(self):
        rc, out, _ = self.run_check("slow", checks=[{"name": "slow", "plugin": "dummy",
                                                     "delay_ms": 3000, "timeout_ms": 200}],
                                    in_process=())
        self.assertEqual(rc, 2)
        self.assertRegex(out, r"^CRITICAL - timeout after 200 ms \| time=0\.\d{3}s;;;0\n$")

    def test_unknown_check(self):
        rc, out, _ = self.run_check("nosuch")
        self.assertEqual(rc, 3)
        self.assertRegex(out, r'^UNKNOWN - no check named "nosuch" \(checks: .*\bok\b')

    def test_bad_config(self):
        rc, out, err = self.run_check("ok", checks=[{"name": "x", "plugin": "nosuch"}])
        self.assertEqual(rc, 3)
        self.assertRegex(out, r'^UNKNOWN - .*unknown plugin "nosuch"')


class DeadlineHelpers(unittest.TestCase):
    """ABI 1.2's wait_fd() ends a wait at the deadline, and the host waits
    HEALTHD_DEADLINE_GRACE_MS longer: a plugin that stops exactly at its
    deadline keeps its own message instead of the host's "timeout after N ms"
    (the tcp example waits with wait_fd against a server that never answers)."""

    def test_stopping_at_the_deadline_keeps_the_message(self):
        if healthd_fixture.WRAPPER:
            self.skipTest("under a wrapper (valgrind) a run's way back takes longer than "
                          "the 50 ms grace")
        d = tempfile.mkdtemp(prefix="healthd-tools-")
        self.addCleanup(shutil.rmtree, d)
        shutil.copy(fixture("tcp"), d)
        s = Silent()
        self.addCleanup(s.close)
        config = {"in_process": ["tcp"], "checks": [
            {"name": "quiet", "plugin": "tcp", "host": "127.0.0.1", "port": s.port,
             "send": "PING\r\n", "expect": "+PONG", "timeout_ms": 300}]}
        for in_process in (["tcp"], []):
            config["in_process"] = in_process
            with self.subTest(in_process=in_process):
                with healthd_fixture.running(self, config, plugin_dir=d) as h:
                    for _ in range(3):
                        status, body = h.get_json("/health/?checks=quiet&verbose=1")
                        self.assertEqual(status, 503, body)
                        self.assertEqual(body["details"]["quiet"]["output"],
                                         f"127.0.0.1:{s.port}: no answer within 300 ms", body)
                    metrics = h.metrics()
                    self.assertEqual(metrics[("healthd_check_timeouts_total",
                                              frozenset({("check", "quiet")}))], 3)


class Hardening(unittest.TestCase):
    """The ABI checks, seen from a real server."""

    def plugin_dir(self, *names):
        d = tempfile.mkdtemp(prefix="healthd-tools-")
        self.addCleanup(shutil.rmtree, d)
        for n in names:
            shutil.copy(fixture(n), d)
        return d

    def wait_log(self, h, pattern, timeout=10):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while time.monotonic() < deadline:
            if re.search(pattern, h.log):
                return
            time.sleep(0.02)
        self.fail(f"no log line matching {pattern!r}:\n{h.log}")

    def test_late_message_is_a_no_op(self):
        """A thread of the plugin writes the report after run() returned: in
        the server's runner (a worker's stack) and in an executor (heap, freed
        after the result is sent). Ignored, said once, nothing corrupted."""
        for in_process in (["latemessage"], []):
            with self.subTest(in_process=in_process):
                with healthd_fixture.running(self, {"in_process": in_process},
                                             plugin_dir=self.plugin_dir("latemessage")) as h:
                    for _ in range(20):
                        status, body = h.get_json("/health/?checks=latemessage-check&verbose=1")
                        self.assertEqual(status, 200, body)
                    self.wait_log(h, r"called message\(\) outside run\(\)")
                    # names the plugin and the check whose report it was
                    self.wait_log(h, r"plugin latemessage called message\(\) outside run\(\)"
                                     r".* with the report of check latemessage-check ")
                    status, body = h.get_json("/health/?checks=latemessage-check&verbose=1")
                    self.assertEqual(status, 200)
                    self.assertIn("started a thread", json.dumps(body))
                    self.assertNotIn("after run() returned", json.dumps(body))
                self.assertEqual(len(re.findall(r"called message\(\) outside run", h.log)), 1,
                                 h.log)

    def test_bad_status_warned_once(self):
        for in_process in (["badstatus"], []):
            with self.subTest(in_process=in_process):
                with healthd_fixture.running(self, {"in_process": in_process},
                                             plugin_dir=self.plugin_dir("badstatus")) as h:
                    for _ in range(3):
                        status, body = h.get_json("/health/?checks=badstatus-check&verbose=1")
                        self.assertEqual(status, 503)
                        self.assertEqual(body["details"]["badstatus-check"]["status"], "fail")
                    self.wait_log(h, r"check badstatus-check \(plugin badstatus\): run\(\) "
                                     r"returned 7, not a status")
                self.assertEqual(len(re.findall(r"returned 7, not a status", h.log)), 1, h.log)
                # counted as UNKNOWN, which the HTTP body does not tell from CRITICAL
                d = self.plugin_dir("badstatus")
                with open(os.path.join(d, "c.json"), "w") as f:
                    json.dump({"in_process": in_process}, f)
                rc, out, err = run_healthd(["--plugin-dir", d, "--config",
                                            os.path.join(d, "c.json"), "--run-check",
                                            "badstatus-check"])
                self.assertEqual((rc, out.split(" |")[0]), (3, "UNKNOWN - returns 7"), err)

    def test_garbage_refused_at_startup(self):
        for name, msg in (("garbageflags", rf"has flags 0x5a5a5a5b, but ABI {ABI} defines only"),
                          ("garbagesize", rf"has size 2147237401, impossible for ABI {ABI}")):
            for in_process in ([name], []):
                with self.subTest(name=name, in_process=in_process):
                    d = self.plugin_dir(name)
                    with open(os.path.join(d, "c.json"), "w") as f:
                        json.dump({"in_process": in_process}, f)
                    rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret",
                                                "--config", os.path.join(d, "c.json"),
                                                "--check-config"])
                    self.assertEqual(rc, 1)
                    self.assertRegex(err, rf"plugin .*{name}\.so: refused: .*{msg}")

    def test_slow_load_logged(self):
        for in_process in (["slowload"], []):
            with self.subTest(in_process=in_process):
                d = self.plugin_dir("slowload")
                with open(os.path.join(d, "c.json"), "w") as f:
                    json.dump({"in_process": in_process}, f)
                rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--config",
                                            os.path.join(d, "c.json"), "--check-config"])
                self.assertEqual(rc, 0, err)
                self.assertRegex(err, r"plugin slowload: load\(\) took 1\d\d\d ms: load\(\) and "
                                      r"instantiate\(\) must not block")


if __name__ == "__main__":
    healthd_fixture.main()
