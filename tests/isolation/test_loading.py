"""Serving while plugins load (core/loading.c): healthd listens and answers
ping before its isolated plugins have loaded; until a plugin has, every
/health/ answer is 503 and names it; a load() past isolation.load_timeout_ms
is killed and tried again with the restart backoff; SIGTERM ends healthd at
once meanwhile; systemd hears READY=1 when healthd serves, and STATUS= names
what still loads. Fixtures: sleepload.so sleeps FIXTURE_LOAD_MS in load(),
hangload.so never returns from it. Every wait is for an event (a log line, a
datagram, an exit), bounded and scaled by TIME_SCALE."""

import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from healthd_fixture import FIXTURE_DIR, PLUGIN_DIR, TIME_SCALE, Healthd, run_healthd

WAIT = 15.0 * TIME_SCALE  # upper bound for an awaited event
LOAD_MS = int(3000 * TIME_SCALE)  # sleepload's load(): far longer than a request


def plugin_dir(*fixtures):
    """A plugin directory with dummy.so (in process) and the fixtures."""
    d = tempfile.mkdtemp(prefix="healthd-loading-")
    shutil.copy(os.path.join(PLUGIN_DIR, "dummy.so"), d)
    for name in fixtures:
        shutil.copy(os.path.join(FIXTURE_DIR, name + ".so"), d)
    return d


def wait_log(h, pattern, count=1):
    """Waits until `count` log lines match pattern; returns the matches."""
    rx = re.compile(pattern)
    end = time.monotonic() + WAIT
    while True:
        found = [m for line in h.log.splitlines() if (m := rx.search(line))]
        if len(found) >= count:
            return found
        if time.monotonic() > end or h.proc.poll() is not None:
            raise AssertionError(f"no {count} line(s) matching {pattern!r}:\n{h.log}")
        time.sleep(0.02)


class LoadingTest(unittest.TestCase):
    def serve(self, fixtures, config=None, env=None):
        d = plugin_dir(*fixtures)
        self.addCleanup(shutil.rmtree, d)
        h = Healthd(config=config, plugin_dir=d, env=env, loaded=False)
        h.start()
        self.addCleanup(h.stop)
        return h


class ServeWhileLoading(LoadingTest):
    def test_ping_and_503_while_loading_then_200(self):
        h = self.serve(["sleepload"], env={"FIXTURE_LOAD_MS": str(LOAD_MS)},
                       config={"checks": [{"name": "later", "plugin": "sleepload"}],
                               "groups": {"live": {"checks": ["true"]}}})
        # start() returned on "listening": load() sleeps for seconds yet
        status, _, body = h.get("/health/ping")
        self.assertEqual((status, body), (200, b"pong"))
        status, doc = h.get_json("/health/?verbose=1")
        self.assertEqual(status, 503, doc)
        self.assertEqual(doc["health"], "degraded")
        # the configured check is known by name; the plugin's own are not yet
        self.assertEqual(doc["available_checks"], ["true", "false", "loading:sleepload", "later"])
        for name in ("loading:sleepload", "later"):
            self.assertEqual(doc["details"][name]["output"],
                             "plugin sleepload is loading: its checks are not known yet")
            self.assertFalse(doc["checks"][name])
        # whatever a request selects, and any group: 503 while it loads
        status, doc = h.get_json("/health/?checks=true")
        self.assertEqual(status, 503, doc)
        self.assertEqual(doc["checks"], {"loading:sleepload": False, "true": True})
        status, doc = h.get_json("/health/live")
        self.assertEqual(status, 503, doc)

        wait_log(h, r"plugin sleepload 0\.1: loaded in \d+ ms \(isolated, executor pid \d+\)")
        wait_log(h, r"ready: 4 checks \(2 in defaults\), plugins dummy [^,]+, sleepload 0\.1 "
                    r"\(isolated\)")
        status, doc = h.get_json("/health/?verbose=1")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["available_checks"], ["true", "false", "sleepload-check", "later"])
        self.assertEqual(doc["checks"], {"later": True, "sleepload-check": True})
        status, _ = h.get_json("/health/live")
        self.assertEqual(status, 200)

    def test_hanging_load_is_killed_and_retried_with_backoff(self):
        h = self.serve(["hangload"], config={"isolation": {"load_timeout_ms": 300,
                                                           "restart_min_ms": 100}})
        lines = wait_log(h, r"plugin hangload \(.*/hangload\.so\): loading failed: its executor "
                            r"did not finish load\(\) within 300 ms "
                            r"\(isolation\.load_timeout_ms\); next try in (\d+) ms", count=3)
        self.assertEqual([int(m[1]) for m in lines[:3]], [100, 200, 400])
        status, _, body = h.get("/health/ping")
        self.assertEqual((status, body), (200, b"pong"))
        status, doc = h.get_json("/health/?verbose=1")
        self.assertEqual(status, 503, doc)
        self.assertIn("plugin hangload is loading",
                      doc["details"]["loading:hangload"]["output"])
        self.assertNotIn("ready: ", h.log)
        self.assertEqual(h.stop(), 0, h.log)

    def test_sigterm_while_loading_ends_healthd_at_once(self):
        h = self.serve(["hangload"])  # load_timeout_ms: 30 s by default
        h.proc.send_signal(signal.SIGTERM)
        # a hang guard: the bound is generous, healthd takes milliseconds; stop()
        # also drains stderr to its end before the log is read
        self.assertEqual(h.stop(timeout=5 * TIME_SCALE), 0, h.log)
        self.assertIn("SIGTERM: shutting down", h.log)

    def test_sighup_while_loading_waits_for_the_load(self):
        h = self.serve(["sleepload"], env={"FIXTURE_LOAD_MS": str(LOAD_MS)})
        h.proc.send_signal(signal.SIGHUP)
        wait_log(h, r"SIGHUP: reloading once the plugins still loading have loaded")
        self.assertNotIn("plugin sleepload 0.1: loaded", h.log)
        wait_log(h, r"reload: 0 checks added, 0 removed, 3 kept")
        messages = h.messages
        loaded = next(i for i, m in enumerate(messages) if "plugin sleepload 0.1: loaded" in m)
        reload = next(i for i, m in enumerate(messages) if m.startswith("healthd: reload: "))
        self.assertLess(loaded, reload, h.log)
        status, doc = h.get_json("/health/")
        self.assertEqual((status, doc["checks"]), (200, {"sleepload-check": True}))

    def test_refusal_after_listening_fails_the_start(self):
        # a refusal found while serving ends healthd as it ended the start
        d = plugin_dir()
        self.addCleanup(shutil.rmtree, d)
        shutil.copy(os.path.join(FIXTURE_DIR, "loadfails.so"), d)
        h = Healthd(plugin_dir=d, loaded=False)
        h.start()
        self.addCleanup(h.stop)
        self.assertEqual(h.proc.wait(WAIT), 1, h.log)
        self.assertIn(f"plugin {d}/loadfails.so: refused: ", h.log)
        self.assertIn("its load function failed: cannot find /etc/fixture.conf", h.log)
        self.assertNotIn("ready: ", h.log)


class Notify(LoadingTest):
    def test_ready_while_loading_then_status_once_loaded(self):
        tmp = tempfile.TemporaryDirectory(prefix="healthd-loading-notify-")
        self.addCleanup(tmp.cleanup)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        path = os.path.join(tmp.name, "notify")
        sock.bind(path)
        sock.settimeout(WAIT)
        h = self.serve(["sleepload"], env={"FIXTURE_LOAD_MS": str(LOAD_MS),
                                           "NOTIFY_SOCKET": path})
        first = sock.recv(4096).decode().splitlines()
        # READY=1 as soon as it serves, naming what still loads
        self.assertEqual(first, ["READY=1",
                                 "STATUS=loading sleepload; 3 checks, 0 failing"], h.log)
        while True:
            lines = sock.recv(4096).decode().splitlines()
            if "STATUS=3 checks, 0 failing" in lines:
                break
            self.assertNotIn("READY=1", lines)
        self.assertIn("plugin sleepload 0.1: loaded", h.log)


class OneShotModes(unittest.TestCase):
    def test_check_config_loads_before_it_reports(self):
        d = plugin_dir("sleepload")
        self.addCleanup(shutil.rmtree, d)
        rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"],
                                   env={"FIXTURE_LOAD_MS": "200"})
        self.assertEqual(rc, 0, err)
        self.assertIn("check sleepload-check: plugin sleepload, in defaults", out)

    def test_load_timeout_ms_is_checked(self):
        with tempfile.TemporaryDirectory(prefix="healthd-loading-") as d:
            path = os.path.join(d, "c.json")
            for value in (0, 9, "30s", 600001):
                with open(path, "w") as f:
                    json.dump({"isolation": {"load_timeout_ms": value}}, f)
                rc, _, err = run_healthd(["--config", path, "--no-url-secret", "--check-config"])
                self.assertEqual(rc, 1, (value, err))
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(f"{path}: isolation.load_timeout_ms: ", err)

    def test_test_plugin_fails_a_slow_load(self):
        rc, out, err = run_healthd(["--test-plugin", os.path.join(FIXTURE_DIR, "sleepload.so")],
                                   env={"FIXTURE_LOAD_MS": "5500"})
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r"not ok \d+ - load: load\(\) and instantiate\(\) took \d+ ms, "
                              r"more than the 5000 ms budget")


if __name__ == "__main__":
    import healthd_fixture
    healthd_fixture.main()
