"""Issue 24: the history every result goes into (core/runner.c record()),
GET P/history and P/status, flap detection and depends_on, and the history
kept in a state_dir across a restart.

The http plugin asks a loopback server's /switch route, whose status the test
sets; a request-driven check runs once per request, so the test drives each
change. Log lines are read after healthd stopped (its log is then complete).
"""

import json
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))

from healthd_fixture import Healthd, main, running  # noqa: E402
from loopback import LoopbackTestCase  # noqa: E402

SECRET = "s3cret-history"
AUTH = {"Authorization": f"Bearer {SECRET}"}
HEALTH_JSON = {"Accept": "application/health+json", **AUTH}


def lines_of(h, name):
    return [m for m in h.messages if f": check {name}: " in m]


class HistoryTest(LoopbackTestCase):
    def probe(self, h, name, status):
        self.srv.switch_status = status
        code, _, _ = h.get(f"/health/?checks={name}", AUTH)
        self.assertEqual(code, 200 if status == 200 else 503, h.log)

    def api(self, **extra):
        return {"name": "api", "plugin": "http", "url": self.srv.url("/switch"), **extra}

    def test_history_route(self):
        config = {"checks": [self.api()]}
        with running(self, config, secret=SECRET) as h:
            for st in (200, 200, 503, 503, 200):
                self.probe(h, "api", st)
            code, _, body = h.get("/health/history?check=api")
            self.assertEqual(code, 401)  # same auth as P/
            self.assertEqual(h.get("/health/history", AUTH)[0], 400)
            code, _, body = h.get("/health/history?check=nope", AUTH)
            self.assertEqual(code, 404)
            code, hdrs, body = h.get("/health/history?check=api", AUTH)
            self.assertEqual(code, 200, body)
            self.assertEqual(hdrs["content-type"], "application/json")
            doc = json.loads(body)
            self.assertEqual(doc["check"], "api")
            self.assertEqual([(t["from"], t["to"]) for t in doc["transitions"]],
                             [(None, "pass"), ("pass", "fail"), ("fail", "pass")])
            self.assertEqual(doc["transitions"][1]["message"], "expected 200, got 503")
            self.assertEqual([r["status"] for r in doc["results"]],
                             ["pass", "pass", "fail", "fail", "pass"])
            self.assertFalse(doc["flapping"])
            self.assertIsNotNone(doc["availability"]["1h"])
            # ?auth= works as for P/
            self.assertEqual(h.get(f"/health/history?check=api&auth={SECRET}")[0], 200)

    def test_flapping(self):
        # low thresholds, so that flap detection (not transitions' own limit
        # of 5 lines a minute) is what summarises the lines
        config = {"history": {"flap_low_percent": 5, "flap_high_percent": 10},
                  "checks": [self.api()]}
        with running(self, config, secret=SECRET) as h:
            self.probe(h, "api", 200)
            self.probe(h, "api", 503)
            code, doc = h.get_json("/health/?checks=api&verbose=1", AUTH)
            self.assertNotIn("flapping", doc["details"]["api"])  # one change: 6%
            m = h.metrics()
            self.assertEqual(m[("healthd_check_flapping", frozenset({("check", "api")}))], 0)
            self.srv.switch_status = 200
            code, doc = h.get_json("/health/?checks=api&verbose=1", AUTH)
            self.assertEqual(code, 200)
            self.assertIs(doc["details"]["api"]["flapping"], True)  # two: 12.4%
            self.probe(h, "api", 503)
            self.srv.switch_status = 503
            code, doc = h.get_json("/health/?checks=api", HEALTH_JSON)
            self.assertEqual(code, 503)
            self.assertIs(doc["checks"]["api:responseTime"][0]["flapping"], True)
            m = h.metrics()
            self.assertEqual(m[("healthd_check_flapping", frozenset({("check", "api")}))], 1)
            _, doc = h.get_json("/health/history?check=api", AUTH)
            self.assertTrue(doc["flapping"])
            self.assertGreaterEqual(doc["flap_percent"], 10)
        lines = lines_of(h, "api")
        # OK -> CRITICAL, then CRITICAL -> OK saying it flaps, and no more
        self.assertRegex(lines[0], r"check api: OK -> CRITICAL after .*: expected 200, got 503$")
        self.assertRegex(lines[1], r"check api: flapping: 12% state change over its last 21 "
                         r"results \(flapping from 10%, until below 5%\)")
        self.assertRegex(lines[2], r"check api: CRITICAL -> OK after .* \(flapping; further "
                         r"ones are summarised\)$")
        self.assertEqual(len(lines), 3, h.log)

    def test_depends_on(self):
        config = {"checks": [
            {"name": "gateway", "plugin": "http", "url": self.srv.url("/switch")},
            {"name": "orders", "plugin": "dummy", "result": "critical", "depends_on": ["gateway"]},
            {"name": "books", "plugin": "dummy", "result": "ok", "depends_on": ["gateway"]},
        ]}
        with running(self, config, secret=SECRET) as h:
            # gateway passes: orders' failure is its own
            self.probe(h, "gateway", 200)
            code, doc = h.get_json("/health/?checks=orders&verbose=1", AUTH)
            self.assertEqual(code, 503)
            self.assertNotIn("suppressed_by", doc["details"]["orders"])
            self.probe(h, "gateway", 503)
            code, doc = h.get_json("/health/?checks=orders,books,gateway&verbose=1", AUTH)
            self.assertEqual(code, 503)  # the status stays the truth
            self.assertEqual(doc["checks"], {"books": True, "gateway": False, "orders": False})
            self.assertEqual(doc["details"]["orders"]["suppressed_by"], "gateway")
            self.assertNotIn("suppressed_by", doc["details"]["books"])  # it passes
            self.assertNotIn("suppressed_by", doc["details"]["gateway"])
            code, doc = h.get_json("/health/?checks=orders", HEALTH_JSON)
            self.assertEqual(doc["checks"]["orders:responseTime"][0]["suppressed_by"], "gateway")
            m = h.metrics()
            sup = {c: m[("healthd_check_suppressed", frozenset({("check", c)}))]
                   for c in ("orders", "books", "gateway")}
            self.assertEqual(sup, {"orders": 1, "books": 0, "gateway": 0})
            # gateway recovers: orders fails on its own again
            self.probe(h, "gateway", 200)
            code, doc = h.get_json("/health/?checks=orders&verbose=1", AUTH)
            self.assertNotIn("suppressed_by", doc["details"]["orders"])
            m = h.metrics()
            self.assertEqual(m[("healthd_check_suppressed", frozenset({("check", "orders")}))], 0)
        # orders' first result came while gateway passed: a warning of its own
        lines = lines_of(h, "orders")
        self.assertEqual(len(lines), 1, h.log)
        self.assertRegex(lines[0], r"warning: check orders: CRITICAL at its first result")

    def test_suppressed_state_change_is_noted(self):
        config = {"checks": [
            {"name": "gateway", "plugin": "http", "url": self.srv.url("/switch")},
            {"name": "orders", "plugin": "http", "url": self.srv.url("/switch"),
             "depends_on": ["gateway"]},
        ]}
        with running(self, config, secret=SECRET) as h:
            self.probe(h, "gateway", 200)
            self.probe(h, "orders", 200)
            self.probe(h, "gateway", 503)
            self.probe(h, "orders", 503)
            self.probe(h, "gateway", 200)
            self.probe(h, "orders", 200)
        orders = lines_of(h, "orders")
        self.assertEqual(len(orders), 2, h.log)
        self.assertRegex(orders[0], r"^healthd: check orders: OK -> CRITICAL after .*: "
                         r"expected 200, got 503 \(suppressed by gateway\)$")  # info, not warning
        self.assertRegex(orders[1], r"^healthd: check orders: CRITICAL -> OK after .*: 200 in ")
        self.assertNotIn("suppressed", orders[1])  # recovery never is
        self.assertRegex(lines_of(h, "gateway")[0], r"warning: check gateway: OK -> CRITICAL")

    def test_depends_on_refused_in_one_line(self):
        for checks, want in (
            ([{"name": "gateway", "plugin": "dummy", "depends_on": ["orders"]},
              {"name": "orders", "plugin": "dummy", "depends_on": ["gateway"]}],
             r"healthd\.json: checks\[1\]\.depends_on: cycle orders -> gateway -> orders$"),
            ([{"name": "orders", "plugin": "dummy", "depends_on": ["gatewya"]}],
             r"healthd\.json: checks\[0\]\.depends_on: unknown check \"gatewya\""),
        ):
            h = Healthd(config={"checks": checks}, args=["--check-config"])
            with self.subTest(want=want):
                with self.assertRaises(Exception):
                    h.start()
                errors = [m for m in h.messages if "depends_on" in m]
                self.assertEqual(len(errors), 1, h.log)
                self.assertRegex(errors[0], want)
        # a plugin's own check may be depended on
        h = Healthd(config={"checks": [{"name": "o", "plugin": "dummy", "depends_on": ["true"]}]})
        with h:
            self.assertEqual(h.get("/health/?checks=o")[0], 200)

    def test_status_page_auth(self):
        config = {"checks": [self.api()]}
        with running(self, config, secret=SECRET) as h:
            self.probe(h, "api", 503)
            self.assertEqual(h.get("/health/status")[0], 401)
            code, hdrs, body = h.get("/health/status", AUTH)
            self.assertEqual(code, 200)
            self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
            self.assertIn("default-src 'none'", hdrs["content-security-policy"])
            page = body.decode()
            self.assertIn("api", page)
            self.assertIn("CRITICAL", page)
            self.assertIn("expected 200, got 503", page)
        config["status_public"] = True
        with running(self, config, secret=SECRET) as h:
            self.probe(h, "api", 503)
            code, _, body = h.get("/health/status")
            self.assertEqual(code, 200)  # states, without the plugin's text
            self.assertIn("CRITICAL", body.decode())
            self.assertNotIn("expected 200, got 503", body.decode())
            code, _, body = h.get("/health/status", AUTH)
            self.assertIn("expected 200, got 503", body.decode())
            self.assertEqual(h.get("/health/history?check=api")[0], 401)  # not public

    def test_state_dir_keeps_the_history_across_a_restart(self):
        state = self.enterContext(tempfile.TemporaryDirectory())
        config = {"state_dir": state, "checks": [self.api()]}
        with running(self, config, secret=SECRET) as h:
            for st in (200, 503, 200):
                self.probe(h, "api", st)
        self.assertTrue(any(re.search(r"history: .*: 0 records loaded", m) for m in h.messages),
                        h.log)
        self.assertGreater(os.path.getsize(os.path.join(state, "history.log")), 0)
        with running(self, config, secret=SECRET) as h:
            _, doc = h.get_json("/health/history?check=api", AUTH)
            self.assertEqual([t["to"] for t in doc["transitions"]], ["pass", "fail", "pass"])
            self.assertEqual(len(doc["results"]), 3)
            self.probe(h, "api", 503)  # and it goes on from there
            _, doc = h.get_json("/health/history?check=api", AUTH)
            self.assertEqual([t["to"] for t in doc["transitions"]],
                             ["pass", "fail", "pass", "fail"])
        self.assertTrue(any(re.search(r"history: .*: 6 records loaded", m) for m in h.messages),
                        h.log)

    def test_unusable_state_dir_is_not_fatal(self):
        config = {"state_dir": "/nonexistent/healthd-state", "checks": [self.api()]}
        with running(self, config, secret=SECRET) as h:
            self.probe(h, "api", 200)
            _, doc = h.get_json("/health/history?check=api", AUTH)
            self.assertEqual(len(doc["results"]), 1)
        self.assertTrue(any("history: state_dir: /nonexistent/healthd-state" in m and
                            "kept in memory only" in m for m in h.messages), h.log)


if __name__ == "__main__":
    main()
