"""application/health+json against draft-inadarei-api-health-check-06, one
test per point of issue 13; and the seed's body untouched beside it."""

import datetime
import json
import re
import time
import unittest

from healthd_fixture import ServerTest

HJ = {"Accept": "application/health+json"}
CONFIG = {"checks": [
    {"name": "db:primary", "plugin": "dummy"},
    {"name": "ok", "plugin": "dummy", "delay_ms": 30},
    {"name": "warns", "plugin": "dummy", "result": "warning"},
    {"name": "fails", "plugin": "dummy", "result": "critical", "defaults": False},
    {"name": "kept", "plugin": "dummy", "cache_ms": 600000, "defaults": False},
], "groups": {"ready": ["ok", "fails"]}}
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


class HealthJson(ServerTest):
    CONFIG = CONFIG

    def doc(self, path, headers=HJ):
        st, hdrs, data = self.h.get(path, headers=headers)
        self.assertEqual(hdrs["content-type"], "application/health+json", path)
        return st, json.loads(data)

    def entry(self, doc, key):
        self.assertIn(key, doc["checks"])
        self.assertEqual(len(doc["checks"][key]), 1)
        return doc["checks"][key][0]

    def test_component_name_holds_no_colon(self):
        st, doc = self.doc("/health/?checks=db:primary,ok")
        self.assertEqual(st, 200)
        for key in doc["checks"]:
            component, _, measurement = key.partition(":")
            self.assertNotIn(":", measurement, key)
            self.assertTrue(component and measurement, key)
        e = self.entry(doc, "db%3Aprimary:responseTime")
        self.assertEqual(e["componentId"], "db:primary")  # the exact name

    def test_measurement_is_response_time_in_ms(self):
        st, doc = self.doc("/health/?checks=ok,warns")
        self.assertEqual(set(doc["checks"]), {"ok:responseTime", "warns:responseTime"})
        e = self.entry(doc, "ok:responseTime")
        self.assertEqual(e["observedUnit"], "ms")
        self.assertIsInstance(e["observedValue"], int)
        self.assertGreaterEqual(e["observedValue"], 30)  # its delay_ms
        self.assertFalse(any(k.endswith(":status") for k in doc["checks"]))

    def test_output_only_on_warn_and_fail(self):
        st, doc = self.doc("/health/?checks=ok,warns,fails")
        self.assertEqual((st, doc["status"]), (503, "fail"))
        ok = self.entry(doc, "ok:responseTime")
        self.assertEqual(ok["status"], "pass")
        self.assertNotIn("output", ok)
        warn = self.entry(doc, "warns:responseTime")
        self.assertEqual((warn["status"], warn["output"]), ("warn", "warning after 0 ms"))
        fail = self.entry(doc, "fails:responseTime")
        self.assertEqual((fail["status"], fail["output"]), ("fail", "critical after 0 ms"))

    def test_component_type_on_every_entry(self):
        st, doc = self.doc("/health/?checks=db:primary,ok,warns,fails")
        for key, entries in doc["checks"].items():
            for e in entries:
                self.assertEqual(e["componentType"], "component", key)

    def test_time_is_when_measured_not_served(self):
        _, first = self.doc("/health/?checks=kept,ok")
        measured = self.entry(first, "kept:responseTime")["time"]
        fresh = self.entry(first, "ok:responseTime")["time"]
        self.assertRegex(measured, RFC3339_MS)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - parse_time(measured)).total_seconds()), 60)
        # let the wall clock pass the first answer's millisecond
        while datetime.datetime.now(datetime.timezone.utc) <= parse_time(fresh) + \
                datetime.timedelta(milliseconds=5):
            time.sleep(0.005)
        _, second = self.doc("/health/?checks=kept,ok")
        self.assertEqual(self.entry(second, "kept:responseTime")["time"], measured)  # cached
        self.assertGreater(parse_time(self.entry(second, "ok:responseTime")["time"]),
                           parse_time(fresh))  # ran again: measured again
        st, _, data = self.h.get("/health/?checks=kept&verbose=1")
        self.assertTrue(json.loads(data)["details"]["kept"]["cached"])

    def test_vary_accept_on_both_types_codes_and_routes(self):
        for path in ("/health/", "/health/?checks=fails", "/health/ready",
                     "/health/?checks=ok&verbose=1"):
            for headers in ({}, HJ):
                for method in ("GET", "HEAD"):
                    st, hdrs, _ = self.h.request(method, path, headers=headers)
                    self.assertIn(st, (200, 503))
                    self.assertEqual(hdrs.get("vary"), "Accept", (method, path, headers))

    def test_accept_is_negotiated(self):
        cases = {
            "application/health+json": True,
            "APPLICATION/HEALTH+JSON": True,
            "Application/Health+Json; charset=utf-8": True,
            "application/health+json;q=0": False,
            "application/health+json; q=0.000": False,
            "application/health+json;q=0.5, application/json": False,
            "application/json;q=0.5, application/health+json": True,
            "application/json, application/health+json": True,
            "text/html, application/health+json;q=0.9": True,
            "*/*;q=0.1, application/health+json": True,
            "*/*": False,
            "application/*": False,
            "text/plain": False,
            "application/health+jsonx": False,
            "application/health+json;q=2": False,  # malformed: ignored
        }
        for accept, health_json in cases.items():
            st, hdrs, data = self.h.get("/health/?checks=ok", headers={"Accept": accept})
            self.assertEqual(st, 200)
            want = "application/health+json" if health_json else "application/json"
            self.assertEqual(hdrs["content-type"], want, accept)
            self.assertEqual("available_checks" not in json.loads(data), health_json, accept)

    def test_values_on_a_group(self):
        st, doc = self.doc("/health/ready")
        self.assertEqual((st, doc["status"]), (503, "fail"))
        self.assertEqual(set(doc["checks"]), {"ok:responseTime", "fails:responseTime"})

    def test_seed_body_unchanged_without_accept(self):
        st, hdrs, data = self.h.get("/health/")
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(data, b'{"available_checks":["true","false","db:primary","ok","warns",'
                               b'"fails","kept"],"checks":{"db:primary":true,"ok":true,'
                               b'"warns":true},"health":"running"}\n')


if __name__ == "__main__":
    unittest.main(verbosity=2)
