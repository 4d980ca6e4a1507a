"""Issue 13: background checks (interval_ms), thresholds, fresh metrics.

The real binary over HTTP; the http plugin (in its executor process) polls a
real loopback HTTP server (tests/http/loopback.py), whose request log counts
the runs and whose /switch route answers a status the test sets, or holds
the run until the test opens its gate. Every wait is for an event, bounded
by WAIT (scaled by HEALTHD_TIME_SCALE).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))

from healthd_fixture import PLUGIN_DIR, TIME_SCALE, main, run_healthd, running  # noqa: E402
from loopback import LoopbackServer, LoopbackTestCase  # noqa: E402

WAIT = 20.0 * TIME_SCALE
HELD = re.compile(r" \((failure|success) (\d+) of (\d+) before (critical|passing)\)$")


def wait_until(what, fn, timeout=WAIT, every=0.02):
    """Calls fn() until it returns something true; returns that, or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def http_check(name, srv, path, **kw):
    return dict({"name": name, "plugin": "http", "url": srv.url(path)}, **kw)


class Background(LoopbackTestCase):
    def details(self, h, name):
        status, body = h.get_json(f"/health/?checks={name}&verbose=1")
        self.assertEqual(status, 200 if body["checks"][name] else 503, body)
        return body["details"][name]

    def test_requests_never_run_a_background_check(self):
        # one background run now, the next a minute away; a request-driven
        # check beside it shows that the same requests do cost runs there
        config = {"checks": [http_check("bg", self.srv, "/switch?c=bg", interval_ms=60000),
                             http_check("fg", self.srv, "/switch?c=fg")]}
        with running(self, config) as h:
            wait_until("the first background run", lambda: self.srv.count("/switch?c=bg") >= 1)
            d = wait_until("its result", lambda: (lambda d: d if d["status"] == "pass" else None)(
                self.details(h, "bg")))
            self.assertRegex(d["output"], r"^200 in \d+ ms$")
            self.assertGreaterEqual(d["age_ms"], 0)
            for _ in range(20):
                status, body = h.get_json("/health/?checks=bg,fg")
                self.assertEqual((status, body["checks"]), (200, {"bg": True, "fg": True}))
                self.assertEqual(h.get("/health/?checks=bg&verbose=1")[0], 200)
                self.assertEqual(h.get("/health/?checks=bg", headers={
                    "Accept": "application/health+json"})[0], 200)
                h.metrics()
            self.assertEqual(self.srv.count("/switch?c=bg"), 1)
            self.assertEqual(self.srv.count("/switch?c=fg"), 20)
            m = h.metrics()
            self.assertEqual(m[("healthd_check_runs_total", frozenset({("check", "bg")}))], 1)
            self.assertEqual(m[("healthd_check_runs_total", frozenset({("check", "fg")}))], 20)

    def test_runs_on_its_schedule_without_requests(self):
        config = {"checks": [http_check("bg", self.srv, "/switch?c=sched", interval_ms=200)]}
        with running(self, config) as h:
            wait_until("five background runs", lambda: self.srv.count("/switch?c=sched") >= 5)
            d = self.details(h, "bg")
            self.assertEqual(d["status"], "pass")
            # never older than interval + timeout while runs keep coming
            self.assertLessEqual(d["age_ms"], 200 + 2000)

    def test_no_result_yet_then_the_first_one(self):
        self.srv.gate.clear()  # the first run waits here until the test is done looking
        config = {"checks": [http_check("bg", self.srv, "/switch?c=gate", interval_ms=100,
                                        timeout_ms=120000)]}
        with running(self, config) as h:
            wait_until("the first run to reach the server",
                       lambda: self.srv.count("/switch?c=gate") >= 1)
            status, body = h.get_json("/health/?checks=bg&verbose=1")
            self.assertEqual(status, 503)
            self.assertEqual(body["checks"], {"bg": False})
            self.assertEqual(body["details"]["bg"]["status"], "fail")
            self.assertEqual(body["details"]["bg"]["output"], "no result yet")
            self.assertNotIn("age_ms", body["details"]["bg"])
            m = h.metrics()
            label = frozenset({("check", "bg")})
            # never ran: no made-up sample, no timestamp
            self.assertNotIn(("healthd_check_up", label), m)
            self.assertNotIn(("healthd_check_last_run_timestamp_seconds", label), m)
            self.assertEqual(m[("healthd_check_runs_total", label)], 1)
            # still the one run in flight: requests joined nothing, started nothing
            self.assertEqual(self.srv.count("/switch?c=gate"), 1)
            before = time.time()
            self.srv.gate.set()
            wait_until("the first result", lambda: h.get("/health/?checks=bg")[0] == 200)
            m = h.metrics()
            self.assertEqual(m[("healthd_check_up", label)], 1)
            stamp = m[("healthd_check_last_run_timestamp_seconds", label)]
            self.assertGreaterEqual(stamp, before - 1)
            self.assertLessEqual(stamp, time.time() + 1)

    def test_stale_when_a_run_hangs_past_interval_and_timeout(self):
        # dummy runs in process and its delay_ms ignores the deadline: the run
        # times out once (a result), then holds its flight, so no run can
        # start and the result ages past interval + timeout
        delay = int(4000 * TIME_SCALE)
        config = {"checks": [{"name": "stuck", "plugin": "dummy", "interval_ms": 100,
                              "timeout_ms": 100, "delay_ms": delay}]}
        with running(self, config) as h:
            d = wait_until("a stale answer", lambda: (
                lambda d: d if d["output"].startswith("stale:") else None)(
                self.details(h, "stuck")), every=0.05)
            self.assertEqual(d["status"], "fail")
            self.assertRegex(d["output"], r"^stale: last result \d+\.\d s ago$")
            self.assertGreater(d["age_ms"], 100 + 100)
            m = h.metrics()
            label = frozenset({("check", "stuck")})
            self.assertEqual(m[("healthd_check_up", label)], 0)  # stale reads as failed
            self.assertEqual(m[("healthd_check_runs_total", label)], 1)
            self.assertEqual(m[("healthd_check_timeouts_total", label)], 1)
            self.assertIn("check stuck: no answer after 100 ms", h.log)

    def test_thresholds_in_background(self):
        config = {"checks": [http_check("bg", self.srv, "/switch?c=thr",
                                        interval_ms=int(300 * TIME_SCALE),
                                        failures_before_critical=3,
                                        successes_before_passing=2)]}
        with running(self, config) as h:
            wait_until("a passing result", lambda: self.details(h, "bg")["status"] == "pass")
            for flip, held_word, before, after in ((500, "failure", "pass", "fail"),
                                                   (200, "success", "fail", "pass")):
                with self.srv.lock:
                    self.srv.switch_status = flip
                seen = []

                def observe():
                    d = self.details(h, "bg")
                    m = HELD.search(d["output"])
                    seen.append((d["status"], d["run_status"], m and int(m.group(2)),
                                 m and m.group(1)))
                    return d["status"] == after

                wait_until(f"the answer to turn {after}", observe, every=0.05)
                held = [s for s in seen if s[2] is not None]
                # held back while runs already went the other way, counted up
                self.assertTrue(held, seen)
                for status, run_status, n, word in held:
                    self.assertEqual((status, run_status, word), (before, after, held_word), seen)
                    self.assertLess(n, 3 if flip == 500 else 2, seen)
                self.assertEqual(seen[-1][1:], (after, None, None), seen)


class Thresholds(unittest.TestCase):
    """Request-driven: every request is one run, so the counts are exact."""

    @classmethod
    def setUpClass(cls):
        cls.srv = LoopbackServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def probe(self, h):
        status, body = h.get_json("/health/?checks=api&verbose=1")
        d = body["details"]["api"]
        self.assertEqual(status, 200 if d["status"] != "fail" else 503, body)
        return status, d["status"], d["run_status"], d["output"]

    def set_status(self, code):
        with self.srv.lock:
            self.srv.switch_status = code

    def test_both_directions(self):
        self.srv.reset()
        config = {"checks": [http_check("api", self.srv, "/switch?c=req",
                                        failures_before_critical=3,
                                        successes_before_passing=2)]}
        with running(self, config) as h:
            self.assertEqual(self.probe(h)[:3], (200, "pass", "pass"))
            self.set_status(500)
            self.assertEqual(self.probe(h), (200, "pass", "fail",
                                             "expected 200, got 500 (failure 1 of 3 before critical)"))
            self.assertEqual(self.probe(h)[:3], (200, "pass", "fail"))
            self.assertEqual(self.probe(h), (503, "fail", "fail", "expected 200, got 500"))
            self.assertEqual(self.probe(h)[:3], (503, "fail", "fail"))
            self.set_status(200)
            status, eff, run, out = self.probe(h)
            self.assertEqual((status, eff, run), (503, "fail", "pass"))
            self.assertRegex(out, r"^200 in \d+ ms \(success 1 of 2 before passing\)$")
            status, eff, run, out = self.probe(h)
            self.assertEqual((status, eff, run), (200, "pass", "pass"))
            self.assertRegex(out, r"^200 in \d+ ms$")
            # a single failure in between starts the count afresh
            self.set_status(500)
            self.assertEqual(self.probe(h)[:3], (200, "pass", "fail"))
            self.set_status(200)
            self.assertEqual(self.probe(h)[:3], (200, "pass", "pass"))
            self.set_status(500)
            self.assertTrue(self.probe(h)[3].endswith(" (failure 1 of 3 before critical)"))
            self.assertEqual(self.srv.count("/switch?c=req"), 10)
            m = h.metrics()
            label = frozenset({("check", "api")})
            self.assertEqual(m[("healthd_check_up", label)], 1)      # what requests answer
            self.assertEqual(m[("healthd_check_status", label)], 2)  # the last run's own
            self.assertEqual(m[("healthd_check_failures_total", label)], 6)

    def test_default_body_unchanged_by_thresholds(self):
        config = {"checks": [{"name": "a", "plugin": "dummy", "failures_before_critical": 2}]}
        with running(self, config) as h:
            status, _, body = h.get("/health/")
            self.assertEqual(status, 200)
            self.assertEqual(body, b'{"available_checks":["true","false","a"],"checks":{"a":true},'
                                   b'"health":"running"}\n')


class Metrics(unittest.TestCase):
    def test_timestamps_increase_and_pass_promtool(self):
        config = {"checks": [{"name": "bg", "plugin": "dummy", "interval_ms": 100},
                             {"name": "fg", "plugin": "dummy", "defaults": False}]}
        key = ("healthd_check_last_run_timestamp_seconds", frozenset({("check", "bg")}))
        with running(self, config) as h:
            first = wait_until("a first timestamp", lambda: h.metrics().get(key))
            later = wait_until("a later timestamp",
                               lambda: (lambda v: v if v and v > first else None)(
                                   h.metrics().get(key)))
            self.assertGreater(later, first)
            self.assertLess(abs(later - time.time()), 60)
            m = h.metrics()
            fg = frozenset({("check", "fg")})
            self.assertNotIn(("healthd_check_up", fg), m)  # never ran
            self.assertNotIn(("healthd_check_last_run_timestamp_seconds", fg), m)
            self.assertEqual(h.get("/health/?checks=fg")[0], 200)
            m = h.metrics()
            self.assertEqual(m[("healthd_check_up", fg)], 1)
            self.assertIn(("healthd_check_last_run_timestamp_seconds", fg), m)
            if shutil.which("promtool") is None:
                if os.environ.get("CI") == "true":
                    self.fail("needs promtool (package prometheus)")
                self.skipTest("needs promtool (package prometheus)")
            body = h.get("/metrics")[2]
            p = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class BadConfig(unittest.TestCase):
    def refused(self, check, message):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump({"checks": [dict({"name": "x", "plugin": "dummy"}, **check)]}, f)
            rc, out, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                        "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 1, out)
            lines = err.replace(path, "CONFIG").strip().splitlines()
            self.assertEqual(lines, ["healthd: error: CONFIG: " + message])

    def test_interval_below_the_floor(self):
        self.refused({"interval_ms": 50}, "checks[0].interval_ms: expected an integer from "
                     "100 to 86400000, got 50")
        self.refused({"interval_ms": 0}, "checks[0].interval_ms: expected an integer from "
                     "100 to 86400000, got 0")

    def test_wrong_types(self):
        self.refused({"interval_ms": "1s"}, "checks[0].interval_ms: expected an integer from "
                     "100 to 86400000, got a string")
        self.refused({"failures_before_critical": -1}, "checks[0].failures_before_critical: "
                     "expected an integer from 0 to 1000, got -1")
        self.refused({"successes_before_passing": 1.5}, "checks[0].successes_before_passing: "
                     "expected an integer from 0 to 1000, got a number")

    def test_cache_on_a_background_check(self):
        self.refused({"interval_ms": 1000, "cache_ms": 500},
                     "checks[0].cache_ms: a background check (interval_ms) always answers "
                     "from its last run; drop cache_ms")

    def test_check_config_shows_the_schedule(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump({"checks": [{"name": "x", "plugin": "dummy", "interval_ms": 5000,
                                       "failures_before_critical": 3}]}, f)
            rc, out, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                        "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)
            self.assertIn("check x: plugin dummy, in defaults, timeout 2000 ms, cache 0 ms, "
                          "every 5000 ms in the background, critical after 3 failure(s), "
                          "passing after 1 success(es)", out)


    def test_run_check_runs_a_background_check_on_the_spot(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump({"checks": [{"name": "x", "plugin": "dummy", "interval_ms": 60000,
                                       "result": "warning"}]}, f)
            rc, out, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                        "--run-check", "x"])
            self.assertEqual(rc, 1, err)  # WARNING, from a run, not "no result yet"
            self.assertTrue(out.startswith("WARNING - "), out)


if __name__ == "__main__":
    main()
