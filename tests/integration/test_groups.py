"""Groups (P/<group>), ?exclude= and a group's timeout_ms, against the real binary
(issue 13). A group answers exactly like P/ over its checks: same body, codes,
auth, HEAD, ?verbose=1 and health+json."""

import json
import os
import tempfile
import threading
import time
import unittest

from healthd_fixture import PLUGIN_DIR, TIME_SCALE, Healthd, ServerTest, run_healthd

SECRET = "gr0up-secret"
AUTH = {"Authorization": "Bearer " + SECRET}
CONFIG = {
    "checks": [
        {"name": "app", "plugin": "dummy"},
        {"name": "db", "plugin": "dummy", "result": "critical"},
        {"name": "cache", "plugin": "dummy", "result": "warning", "defaults": False},
    ],
    "groups": {
        "live": ["app"],
        "ready": ["app", "db"],
        "warm": {"checks": ["cache", "app"]},
    },
}


def runs(h, name):
    return h.metrics().get(("healthd_check_runs_total", frozenset({("check", name)})), 0)


def requests_counted(h, route, code):
    return h.metrics().get(("healthd_http_requests_total",
                            frozenset({("route", route), ("code", str(code))})), 0)


class Groups(ServerTest):
    CONFIG = CONFIG
    SECRET = SECRET

    def get(self, path, headers=None):
        return self.h.get(path, headers=dict(AUTH, **(headers or {})))

    def assert_same_as(self, group_path, p_path, status):
        g = self.get(group_path)
        p = self.get(p_path)
        self.assertEqual(g[0], status, g)
        self.assertEqual((g[0], g[2]), (p[0], p[2]), f"{group_path} vs {p_path}")
        for header in ("content-type", "cache-control", "vary"):
            self.assertEqual(g[1].get(header), p[1].get(header), header)
        return json.loads(g[2])

    def test_group_answers_like_p_with_its_checks(self):
        doc = self.assert_same_as("/health/live", "/health/?checks=app", 200)
        self.assertEqual(doc, {"available_checks": ["true", "false", "app", "db", "cache"],
                               "checks": {"app": True}, "health": "running"})
        doc = self.assert_same_as("/health/warm", "/health/?checks=app,cache", 200)
        self.assertEqual(doc["checks"], {"app": True, "cache": True})  # WARNING passes

    def test_group_fails_with_503(self):
        doc = self.assert_same_as("/health/ready", "/health/?checks=app,db", 503)
        self.assertEqual(doc["checks"], {"app": True, "db": False})
        self.assertEqual(doc["health"], "degraded")

    def test_group_verbose(self):
        st, _, data = self.get("/health/ready?verbose=1")
        self.assertEqual(st, 503)
        details = json.loads(data)["details"]
        self.assertEqual(set(details), {"app", "db"})
        self.assertEqual(details["db"]["status"], "fail")
        self.assertEqual(details["app"]["status"], "pass")

    def test_group_health_json(self):
        st, hdrs, data = self.get("/health/ready", {"Accept": "application/health+json"})
        self.assertEqual(st, 503)
        self.assertEqual(hdrs["content-type"], "application/health+json")
        self.assertEqual(hdrs["vary"], "Accept")
        doc = json.loads(data)
        self.assertEqual(doc["status"], "fail")
        self.assertEqual(set(doc["checks"]), {"app:responseTime", "db:responseTime"})

    def test_head_on_a_group(self):
        get = self.get("/health/ready")
        st, hdrs, data = self.h.request("HEAD", "/health/ready", headers=AUTH)
        self.assertEqual((st, data), (503, b""))
        self.assertEqual(hdrs["content-length"], str(len(get[2])))
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(hdrs["vary"], "Accept")

    def test_auth_on_groups_and_no_check_runs_without_it(self):
        before = runs(self.h, "app")
        for path in ("/health/live", "/health/live?auth=wrong", "/health/live?auth=" + SECRET[:-1]):
            st, hdrs, data = self.h.get(path)
            self.assertEqual(st, 401, path)
            self.assertEqual(hdrs["www-authenticate"], 'Bearer realm="healthd"')
            self.assertNotIn(b"app", data)
        st, _, _ = self.h.get("/health/live", headers={"Authorization": "Bearer wrong"})
        self.assertEqual(st, 401)
        self.assertEqual(runs(self.h, "app"), before)
        self.assertEqual(self.h.get("/health/live?auth=" + SECRET)[0], 200)
        self.assertEqual(self.get("/health/live")[0], 200)
        self.assertEqual(runs(self.h, "app"), before + 2)

    def test_checks_on_a_group_is_refused(self):
        st, _, data = self.get("/health/live?checks=db")
        self.assertEqual(st, 400)
        self.assertIn(b"checks= does not apply to a group", data)
        # auth first: without the secret it is a 401, as for P/
        self.assertEqual(self.h.get("/health/live?checks=db")[0], 401)

    def test_exclude_on_a_group(self):
        st, _, data = self.get("/health/ready?exclude=db")
        self.assertEqual((st, json.loads(data)["checks"]), (200, {"app": True}))
        st, _, data = self.get("/health/ready?exclude=+db+,nope,,app")
        self.assertEqual((st, json.loads(data)["checks"]), (200, {}))

    def test_exclude_on_p(self):
        # after the defaults (app, db) and after ?checks=
        st, _, data = self.get("/health/?exclude=db")
        self.assertEqual((st, json.loads(data)["checks"]), (200, {"app": True}))
        st, _, data = self.get("/health/?checks=app,cache,db&exclude=db%2Capp")
        self.assertEqual((st, json.loads(data)["checks"]), (200, {"cache": True}))
        st, _, data = self.get("/health/?checks=_defaults,cache&exclude=_defaults")
        self.assertEqual(json.loads(data)["checks"], {"cache": True})
        st, _, data = self.get("/health/?exclude=db&exclude=app")  # the first counts
        self.assertEqual(json.loads(data)["checks"], {"app": True})

    def test_exclude_runs_nothing_it_removes(self):
        before = runs(self.h, "db")
        self.assertEqual(self.get("/health/ready?exclude=db")[0], 200)
        self.assertEqual(runs(self.h, "db"), before)

    def test_too_many_names_in_exclude(self):
        st, _, data = self.get("/health/?exclude=" + ",".join(["x"] * 1001))
        self.assertEqual(st, 400)
        self.assertIn(b"exclude=", data)

    def test_other_paths_and_methods(self):
        for path in ("/health/nope", "/health/live/", "/health/Live", "/health/live%00",
                     "/health//live", "/live"):
            self.assertEqual(self.get(path)[0], 404, path)
        st, hdrs, _ = self.h.request("POST", "/health/live", headers=AUTH)
        self.assertEqual(st, 405)
        self.assertEqual(hdrs["allow"], "GET, HEAD, OPTIONS")
        self.assertEqual(self.h.request("OPTIONS", "/health/ready")[0], 204)

    def test_requests_counted_under_route_group(self):
        before = requests_counted(self.h, "group", 503)
        before_health = requests_counted(self.h, "health", 503)
        self.get("/health/ready")
        self.assertEqual(requests_counted(self.h, "group", 503), before + 1)
        self.assertEqual(requests_counted(self.h, "health", 503), before_health)


class GroupAtRootPrefix(unittest.TestCase):
    def test_root_prefix(self):
        config = dict(CONFIG, url_prefix="/", url_secret=None)
        with Healthd(config=config, secret=False) as h:
            st, _, data = h.get("/live")
            self.assertEqual((st, json.loads(data)["checks"]), (200, {"app": True}))
            self.assertEqual(h.get("/ping")[2], b"pong")


class GroupTimeout(unittest.TestCase):
    """A group's timeout_ms bounds its whole answer; the flight it leaves goes on."""

    SLOW_MS = int(2500 * TIME_SCALE)
    BUDGET_MS = 300

    def config(self):
        return {"workers": 4, "checks": [
            {"name": "fast", "plugin": "dummy"},
            {"name": "slow", "plugin": "dummy", "delay_ms": self.SLOW_MS,
             "timeout_ms": 4 * self.SLOW_MS},
        ], "groups": {"ready": {"checks": ["fast", "slow"], "timeout_ms": self.BUDGET_MS}}}

    def wait_for(self, cond, what, bound=10.0):
        deadline = time.monotonic() + bound * TIME_SCALE
        while not cond():
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.01)

    def test_budget_answers_at_once_and_leaves_the_flight(self):
        with Healthd(config=self.config()) as h:
            plain = {}

            def direct():
                plain["answer"] = h.get("/health/?checks=slow&verbose=1",
                                        timeout=30 * TIME_SCALE)

            t = threading.Thread(target=direct)
            t.start()
            # the slow run is in flight before the group asks for it
            self.wait_for(lambda: runs(h, "slow") == 1, "the slow check's run to start")
            t0 = time.monotonic()
            st, _, data = h.get("/health/ready?verbose=1", timeout=30 * TIME_SCALE)
            took = time.monotonic() - t0
            t.join(30 * TIME_SCALE)
            self.assertFalse(t.is_alive())

            self.assertEqual(st, 503)
            doc = json.loads(data)
            self.assertEqual(doc["checks"], {"fast": True, "slow": False})
            self.assertEqual(doc["details"]["slow"]["output"],
                             f"timeout after {self.BUDGET_MS} ms (group timeout_ms)")
            self.assertEqual(doc["details"]["fast"]["status"], "pass")
            # answered on the budget, not when the slow check ended
            self.assertFalse(plain["answer"] is None)
            self.assertLess(took, self.SLOW_MS / 1000.0)
            # the request that started the flight got the check's real result
            st, _, data = plain["answer"]
            self.assertEqual(st, 200)
            details = json.loads(data)["details"]["slow"]
            self.assertEqual(details["output"], f"ok after {self.SLOW_MS} ms")
            m = h.metrics()
            self.assertEqual(runs(h, "slow"), 1)  # one run, shared
            self.assertEqual(m[("healthd_check_timeouts_total",
                                frozenset({("check", "slow")}))], 0)

    def test_budget_in_health_json_and_head(self):
        with Healthd(config=self.config()) as h:
            st, hdrs, data = h.get("/health/ready",
                                   headers={"Accept": "application/health+json"},
                                   timeout=30 * TIME_SCALE)
            self.assertEqual(st, 503)
            slow = json.loads(data)["checks"]["slow:responseTime"][0]
            self.assertEqual(slow["status"], "fail")
            self.assertEqual(slow["output"], f"timeout after {self.BUDGET_MS} ms (group timeout_ms)")
            self.assertGreaterEqual(slow["observedValue"], self.BUDGET_MS)
            st, _, body = h.request("HEAD", "/health/ready", timeout=30 * TIME_SCALE)
            self.assertEqual((st, body), (503, b""))


def check_config(config, *extra):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "healthd.json")
        with open(path, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))
        rc, out, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                    "--check-config", "--no-url-secret", *extra])
        return rc, out.replace(path, "CONFIG"), err.replace(path, "CONFIG")


class BadGroups(unittest.TestCase):
    CHECKS = [{"name": "app", "plugin": "dummy"}]

    def refused(self, groups, message, *extra, **top):
        rc, out, err = check_config(dict({"checks": self.CHECKS, "groups": groups}, **top),
                                    *extra)
        self.assertEqual(rc, 1, out + err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)  # one clear line
        self.assertEqual(lines[0], "healthd: error: " + message)

    def test_unknown_check(self):
        self.refused({"ready": ["app", "dbx"]},
                     'CONFIG: groups.ready: unknown check "dbx" (neither declared in checks '
                     'nor registered by a plugin)')

    def test_plugin_checks_count_as_known(self):
        rc, out, err = check_config({"checks": self.CHECKS,
                                     "groups": {"ready": ["app", "true"]}})
        self.assertEqual(rc, 0, err)
        self.assertIn("group ready: /health/ready over app,true\n", out)

    def test_clash_with_ping(self):
        self.refused({"ping": ["app"]}, "CONFIG: groups.ping: clashes with P/ping, which is "
                     "never a group")

    def test_clash_with_metrics_path(self):
        self.refused({"metrics": ["app"]}, "CONFIG: groups.metrics: /health/metrics is the "
                     "metrics_path: rename the group or move metrics_path",
                     metrics_path="/health/metrics")
        # the command line's prefix counts, too
        self.refused({"ready": ["app"]}, "CONFIG: groups.ready: /status/ready is the "
                     "metrics_path: rename the group or move metrics_path",
                     "--url-prefix", "/status", metrics_path="/status/ready")

    def test_bad_names(self):
        why = ("a group name is 1 to 64 of letters, digits and _ . : - and does not start "
               "with _ (as a check name)")
        for name in ("a/b", "", "_x", "x" * 65, "a b", "caf\u00e9"):
            self.refused({name: ["app"]}, f"CONFIG: groups.{name}: {why}")
        self.refused({"..": ["app"]}, 'CONFIG: groups...: clients resolve "." and ".." in a '
                     'path: not a group name')

    def test_empty_and_malformed_groups(self):
        self.refused({"live": []}, "CONFIG: groups.live: an empty group: name at least one check")
        self.refused({"live": {"checks": []}},
                     "CONFIG: groups.live.checks: an empty group: name at least one check")
        self.refused({"live": {"timeout_ms": 500}},
                     'CONFIG: groups.live: missing "checks" (the group\'s check names)')
        self.refused({"live": "app"},
                     "CONFIG: groups.live: expected an array of check names, got a string")
        self.refused({"live": ["app", 3]}, "CONFIG: groups.live[1]: expected a string, got an integer")
        self.refused({"live": ["app", "app"]}, 'CONFIG: groups.live[1]: "app" is in the group twice')
        self.refused({"live": ["a,b"]}, 'CONFIG: groups.live[0]: "a,b" is not a check name: a '
                     'check name may only contain letters, digits and _ . : -')
        self.refused({"live": {"checks": ["app"], "timout_ms": 5}},
                     "CONFIG: groups.live.timout_ms: unknown key (known: checks, timeout_ms, "
                     "max_result_age_ms)")
        self.refused(["live"], 'CONFIG: groups: expected an object of groups {"NAME": [checks], '
                     '...}, got an array')

    def test_bad_timeout(self):
        for value, got in ((0, "0"), (-5, "-5"), (3600001, "3600001"), ("900", "a string"),
                           (1.5, "a number")):
            self.refused({"ready": {"checks": ["app"], "timeout_ms": value}},
                         "CONFIG: groups.ready.timeout_ms: expected an integer from 1 to "
                         f"3600000, got {got}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
