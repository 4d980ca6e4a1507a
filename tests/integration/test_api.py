"""SPEC section 1 against the running binary, case by case."""

import json
import unittest

from healthd_fixture import ServerTest, Healthd

CONFIG = {"checks": [
    {"name": "foo", "plugin": "dummy"},
    {"name": "bar", "plugin": "dummy", "result": "warning"},
    {"name": "off", "plugin": "dummy", "defaults": False},
]}
AVAILABLE = '"available_checks":["true","false","foo","bar","off"]'


def body(checks, health="running"):
    inner = ",".join(f'"{k}":{"true" if v else "false"}' for k, v in sorted(checks.items()))
    return ('{' + AVAILABLE + ',"checks":{' + inner + '},"health":"' + health + '"}\n').encode()


class Api(ServerTest):
    CONFIG = CONFIG

    def get(self, path, **kw):
        return self.h.get(path, **kw)

    def assert_health(self, path, checks, status=200, health="running"):
        st, hdrs, data = self.get(path)
        self.assertEqual((st, data), (status, body(checks, health)), path)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(hdrs["cache-control"], "no-cache")

    # ping
    def test_ping(self):
        st, hdrs, data = self.get("/health/ping")
        self.assertEqual((st, data), (200, b"pong"))
        self.assertEqual(hdrs["content-type"], "text/plain")
        self.assertEqual(hdrs["cache-control"], "no-cache")

    def test_ping_runs_no_check(self):
        before = self.h.metrics()
        for _ in range(5):
            self.get("/health/ping")
        after = self.h.metrics()
        runs = lambda m: sum(v for (n, _), v in m.items() if n == "healthd_check_runs_total")
        self.assertEqual(runs(before), runs(after))

    def test_head_ping(self):
        st, hdrs, data = self.h.request("HEAD", "/health/ping")
        self.assertEqual((st, data), (200, b""))
        self.assertEqual(hdrs["content-length"], "4")
        self.assertEqual(hdrs["content-type"], "text/plain")

    # redirect
    def test_redirect_without_slash(self):
        st, hdrs, _ = self.get("/health")
        self.assertEqual(st, 308)
        self.assertEqual(hdrs["location"], "/health/")

    def test_redirect_keeps_query(self):
        st, hdrs, _ = self.get("/health?checks=foo,%20bar&verbose=1")
        self.assertEqual(st, 308)
        self.assertEqual(hdrs["location"], "/health/?checks=foo,%20bar&verbose=1")

    # selection
    def test_default_selection(self):
        self.assert_health("/health/", {"foo": True, "bar": True})

    def test_defaults_keyword(self):
        self.assert_health("/health/?checks=_defaults", {"foo": True, "bar": True})
        self.assert_health("/health/?checks=_defaults,true", {"foo": True, "bar": True, "true": True})

    def test_named_checks(self):
        self.assert_health("/health/?checks=true,off", {"true": True, "off": True})

    def test_unknown_names_ignored(self):
        self.assert_health("/health/?checks=true,nope,_nope", {"true": True})

    def test_empty_value_selects_nothing(self):
        self.assert_health("/health/?checks=", {})
        self.assert_health("/health/?checks", {})
        self.assert_health("/health/?checks=,,", {})

    def test_white_space_trimmed(self):
        self.assert_health("/health/?checks=+true+,%20foo%09,%0Aoff", {"true": True, "foo": True, "off": True})

    def test_percent_encoded_names_and_commas(self):
        self.assert_health("/health/?checks=true%2Cfoo", {"true": True, "foo": True})
        self.assert_health("/health/?checks=%74%72%75%65", {"true": True})

    def test_duplicates_collapse(self):
        self.assert_health("/health/?checks=true,true,+true", {"true": True})

    def test_first_checks_counts(self):
        self.assert_health("/health/?checks=true&checks=false", {"true": True})

    def test_degraded(self):
        self.assert_health("/health/?checks=false,true", {"false": False, "true": True},
                           503, "degraded")

    def test_warning_passes(self):
        self.assert_health("/health/?checks=bar", {"bar": True})

    def test_odd_bytes_ignored(self):
        self.assert_health("/health/?checks=%FF%FE,tru%00e,%zz,%", {})

    def test_head_health(self):
        st, hdrs, data = self.h.request("HEAD", "/health/?checks=false")
        self.assertEqual((st, data), (503, b""))
        self.assertEqual(hdrs["content-length"], str(len(body({"false": False}, "degraded"))))
        self.assertEqual(hdrs["content-type"], "application/json")

    # methods and paths
    def test_other_methods_405(self):
        for path in ("/health/", "/health/ping", "/health"):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                st, hdrs, _ = self.h.request(method, path, body=b"x=1")
                self.assertEqual(st, 405, (method, path))
                self.assertEqual(hdrs["allow"], "GET, HEAD, OPTIONS")

    def test_options(self):
        st, hdrs, _ = self.h.request("OPTIONS", "/health/")
        self.assertEqual(st, 204)
        self.assertEqual(hdrs["allow"], "GET, HEAD, OPTIONS")

    def test_unknown_paths_404(self):
        for path in ("/", "/healthz", "/health/pingx", "/health/x", "/health//", "/other/health/"):
            st, _, _ = self.get(path)
            self.assertEqual(st, 404, path)
        st, _, _ = self.h.request("POST", "/nope")
        self.assertEqual(st, 404)

    def test_nul_in_path_names_nothing(self):
        # decoded, "/health/ping%00x" would read as "/health/ping" to strcmp
        self.assertEqual(self.get("/health/ping%00x")[0], 404)
        self.assertEqual(self.get("/health/%00")[0], 404)

    def test_http11_without_host_is_refused(self):
        reply = self.h.raw(b"GET /health/ping HTTP/1.1\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply[:80])
        reply = self.h.raw(b"GET /health/ping HTTP/1.0\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:80])

    def test_small_body_on_get_is_ignored(self):
        st, _, data = self.h.request("GET", "/health/ping", body=b"a" * 2000)
        self.assertEqual((st, data), (200, b"pong"))

    def test_keep_alive(self):
        conn = self.h.connection()
        try:
            for _ in range(3):
                conn.request("GET", "/health/?checks=true")
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
                self.assertNotEqual((resp.getheader("connection") or "").lower(), "close")
            self.assertIsNotNone(conn.sock)  # still the same, open connection
        finally:
            conn.close()

    def test_repeated_answers_follow_their_bodies(self):
        # an HTTP thread queues its last GET P/ answer again while the bytes
        # are the same: every change of body, type or keep-alive must show
        hj = {"Accept": "application/health+json"}
        conn = self.h.connection()
        try:
            for path, headers, status, want in [
                    ("/health/?checks=true", {}, 200, body({"true": True})),
                    ("/health/?checks=true", {}, 200, body({"true": True})),
                    ("/health/?checks=false", {}, 503, body({"false": False}, "degraded")),
                    ("/health/?checks=true", {}, 200, body({"true": True})),
                    ("/health/?checks=true", hj, 200, None),
                    ("/health/?checks=true", {}, 200, body({"true": True})),
                    ("/health/?checks=foo", {}, 200, body({"foo": True}))]:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.assertEqual(resp.status, status, path)
                if want is None:
                    self.assertEqual(resp.getheader("content-type"), "application/health+json")
                    self.assertEqual(json.loads(data)["status"], "pass")
                else:
                    self.assertEqual(resp.getheader("content-type"), "application/json")
                    self.assertEqual(data, want, path)
                self.assertTrue(resp.getheader("keep-alive", "").startswith("timeout="), path)
        finally:
            conn.close()
        # the closing variant of the same bytes, then the keep-alive one again
        st, hdrs, data = self.get("/health/?checks=true", headers={"Connection": "close"})
        self.assertEqual((st, data), (200, body({"true": True})))
        self.assertIsNone(hdrs.get("keep-alive"))
        st, hdrs, data = self.get("/health/?checks=true")
        self.assertEqual((st, data), (200, body({"true": True})))

    # beyond the seed
    def test_verbose_details(self):
        st, _, data = self.get("/health/?checks=false,bar&verbose=1")
        self.assertEqual(st, 503)
        doc = json.loads(data)
        self.assertEqual(list(doc), ["available_checks", "checks", "details", "health"])
        self.assertEqual(doc["details"]["false"]["status"], "fail")
        self.assertEqual(doc["details"]["false"]["output"], "always fails")
        self.assertEqual(doc["details"]["bar"]["status"], "warn")
        self.assertEqual(doc["details"]["bar"]["output"], "warning after 0 ms")
        self.assertEqual(set(doc["details"]["bar"]), {"status", "duration_ms", "output", "cached"})
        self.assertIs(doc["details"]["bar"]["cached"], False)

    def test_health_json(self):
        st, hdrs, data = self.get("/health/?checks=bar,true",
                                  headers={"Accept": "application/health+json"})
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], "application/health+json")
        doc = json.loads(data)
        self.assertEqual(doc["status"], "warn")
        self.assertEqual(doc["checks"]["bar:responseTime"][0]["status"], "warn")
        self.assertEqual(doc["checks"]["true:responseTime"][0]["status"], "pass")
        self.assertIn("time", doc["checks"]["true:responseTime"][0])
        st, _, data = self.get("/health/?checks=false", headers={"Accept": "application/health+json"})
        self.assertEqual((st, json.loads(data)["status"]), (503, "fail"))


class Prefix(unittest.TestCase):
    def test_custom_prefix(self):
        with Healthd(args=["--url-prefix", "/status/"]) as h:
            self.assertEqual(h.get("/status/ping")[2], b"pong")
            self.assertEqual(h.get("/status/?checks=true")[0], 200)
            self.assertEqual(h.get("/status")[1]["location"], "/status/")
            self.assertEqual(h.get("/health/ping")[0], 404)

    def test_root_prefix(self):
        with Healthd(args=["--url-prefix", "/"]) as h:
            self.assertEqual(h.get("/ping")[2], b"pong")
            self.assertEqual(h.get("/?checks=true")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
