"""SPEC section 3 through HTTP: concurrency, timeouts, single flight, cache,
metrics, shutdown. Bounds are generous for a shared 2-core machine, but each
still fails if the runner falls back to one check after another."""

import json
import re
import threading
import time
import unittest

from healthd_fixture import TIME_SCALE, Healthd

CONFIG = {"workers": 4, "checks": [
    {"name": "s1", "plugin": "dummy", "delay_ms": 300},
    {"name": "s2", "plugin": "dummy", "delay_ms": 300},
    {"name": "s3", "plugin": "dummy", "delay_ms": 300},
    {"name": "stuck", "plugin": "dummy", "delay_ms": 5000, "timeout_ms": 300, "defaults": False},
    {"name": "slow", "plugin": "dummy", "delay_ms": 1000, "defaults": False},
    {"name": "cached", "plugin": "dummy", "delay_ms": 50, "cache_ms": 1000, "defaults": False},
]}
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9.]+(e[+-]?[0-9]+)?$')


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    result = fn(*args, **kw)
    return result, time.monotonic() - t0


class Runner(unittest.TestCase):
    def setUp(self):
        self.h = Healthd(config=CONFIG).start()

    def tearDown(self):
        self.h.stop()

    def runs(self, name):
        return self.h.metrics()[("healthd_check_runs_total", frozenset({("check", name)}))]

    def test_checks_run_concurrently(self):
        (st, doc), took = timed(self.h.get_json, "/health/")
        self.assertEqual(st, 200)
        self.assertEqual(doc["checks"], {"s1": True, "s2": True, "s3": True})
        self.assertGreater(took, 0.29)
        self.assertLess(took, 0.7 * TIME_SCALE)

    def test_stuck_check_times_out_and_ping_answers(self):
        (st, doc), took = timed(self.h.get_json, "/health/?checks=stuck&verbose=1")
        self.assertEqual(st, 503)
        self.assertEqual(doc["checks"], {"stuck": False})
        self.assertEqual(doc["details"]["stuck"]["output"], "timeout after 300 ms")
        self.assertEqual(doc["details"]["stuck"]["status"], "fail")
        self.assertLess(took, 1.5 * TIME_SCALE)
        # its run still sleeps inside the plugin; ping and other checks don't care
        (st, _, data), took = timed(self.h.get, "/health/ping")
        self.assertEqual((st, data), (200, b"pong"))
        self.assertLess(took, 0.5 * TIME_SCALE)
        (st, doc), took = timed(self.h.get_json, "/health/?checks=true,s1")
        self.assertEqual((st, doc["checks"]), (200, {"s1": True, "true": True}))
        self.assertLess(took, 1.0 * TIME_SCALE)
        m = self.h.metrics()
        self.assertEqual(m[("healthd_check_timeouts_total", frozenset({("check", "stuck")}))], 1)
        self.assertEqual(m[("healthd_check_up", frozenset({("check", "stuck")}))], 0)
        self.assertIn("check stuck: no answer after 300 ms", self.h.log)

    def test_ping_fast_while_checks_run(self):
        t = threading.Thread(target=self.h.get, args=("/health/?checks=slow",))
        t.start()
        time.sleep(0.1)
        (st, _, _), took = timed(self.h.get, "/health/ping")
        self.assertEqual(st, 200)
        self.assertLess(took, 0.5 * TIME_SCALE)
        t.join()

    def test_single_flight(self):
        results = []

        def one():
            results.append(self.h.get("/health/?checks=slow", timeout=10)[0])

        threads = [threading.Thread(target=one) for _ in range(64)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        self.assertEqual(results, [200] * 64)
        self.assertEqual(self.runs("slow"), 1)
        self.assertLess(took, 3.0 * TIME_SCALE)

    def test_cache(self):
        st, doc = self.h.get_json("/health/?checks=cached&verbose=1")
        self.assertIs(doc["details"]["cached"]["cached"], False)
        st, doc = self.h.get_json("/health/?checks=cached&verbose=1")
        self.assertIs(doc["details"]["cached"]["cached"], True)
        self.assertEqual(self.runs("cached"), 1)
        time.sleep(1.1)
        st, doc = self.h.get_json("/health/?checks=cached&verbose=1")
        self.assertIs(doc["details"]["cached"]["cached"], False)
        self.assertEqual(self.runs("cached"), 2)

    def test_no_cache_by_default(self):
        for _ in range(3):
            self.h.get("/health/?checks=true")
        self.assertEqual(self.runs("true"), 3)

    def test_verbose_leaves_default_body_alone(self):
        st, _, data = self.h.get("/health/?checks=true")
        self.assertEqual(data, b'{"available_checks":["true","false","s1","s2","s3","stuck",'
                               b'"slow","cached"],"checks":{"true":true},"health":"running"}\n')
        st, _, data = self.h.get("/health/?checks=true&verbose=0")
        self.assertNotIn(b"details", data)

    def test_metrics_format(self):
        self.h.get("/health/?checks=true,false")
        st, hdrs, data = self.h.get("/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/plain; version=0.0.4"))
        lines = data.decode().splitlines()
        for line in lines:
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                continue
            self.assertRegex(line, SAMPLE)
        m = self.h.metrics()
        self.assertEqual(m[("healthd_check_failures_total", frozenset({("check", "false")}))], 1)
        self.assertEqual(m[("healthd_check_status", frozenset({("check", "false")}))], 2)
        self.assertGreaterEqual(m[("healthd_http_requests_total",
                                   frozenset({("route", "health"), ("code", "503")}))], 1)

    def test_sigterm_while_checks_run(self):
        box = {}

        def slow():
            box["status"] = self.h.get("/health/?checks=slow", timeout=10)[0]

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.2)
        rc, took = timed(self.h.stop)
        t.join()
        self.assertEqual(rc, 0, self.h.log)
        self.assertLess(took, 3.0 * TIME_SCALE)
        self.assertIn(box.get("status"), (200, 503))  # answered, not dropped


if __name__ == "__main__":
    unittest.main(verbosity=2)
