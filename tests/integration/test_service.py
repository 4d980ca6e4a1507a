"""health+json, issue 23: the service's identity from the config's "service"
object (serviceId, version, releaseId, description, as
draft-inadarei-api-health-check names them), and no made-up observedValue
before a check's first result."""

import json
import os
import tempfile
import unittest

from healthd_fixture import PLUGIN_DIR, main, run_healthd, running

HJ = {"Accept": "application/health+json"}
SERVICE = {"id": "shop-api", "version": "2.4.1", "release_id": "2.4.1-7",
           "description": "the shop's \"API\""}


class Identity(unittest.TestCase):
    def test_service_keys_in_the_drafts_names(self):
        config = {"service": SERVICE, "checks": [{"name": "a", "plugin": "dummy"}]}
        with running(self, config) as h:
            st, _, data = h.get("/health/?checks=a", headers=HJ)
            self.assertEqual(st, 200)
            doc = json.loads(data)
            self.assertEqual({k: doc.get(k) for k in ("serviceId", "version", "releaseId",
                                                      "description")},
                             {"serviceId": "shop-api", "version": "2.4.1",
                              "releaseId": "2.4.1-7", "description": 'the shop\'s "API"'})
            self.assertEqual(doc["status"], "pass")
            # keys stay sorted, as in every body healthd writes
            self.assertEqual(list(doc), sorted(doc))
            # the seed's body is unchanged
            st, _, data = h.get("/health/?checks=a")
            self.assertEqual(json.loads(data), {"available_checks": ["true", "false", "a"],
                                                "checks": {"a": True}, "health": "running"})

    def test_each_key_optional(self):
        config = {"service": {"version": "9"}, "checks": []}
        with running(self, config) as h:
            doc = json.loads(h.get("/health/", headers=HJ)[2])
            self.assertEqual(doc["version"], "9")
            for k in ("serviceId", "releaseId", "description"):
                self.assertNotIn(k, doc)
        with running(self, {"checks": []}) as h:
            doc = json.loads(h.get("/health/", headers=HJ)[2])
            self.assertEqual(set(doc), {"checks", "status"})


class Refused(unittest.TestCase):
    def refused(self, config, message):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump(config, f)
            rc, _, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                      "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 1, err)
            self.assertEqual(err.replace(path, "CONFIG").strip().splitlines(),
                             ["healthd: error: CONFIG: " + message])

    def test_unknown_key_inside_service(self):
        self.refused({"service": {"id": "x", "releaseId": "1"}},
                     "service.releaseId: unknown key (known: id, version, release_id, "
                     "description)")

    def test_wrong_types(self):
        self.refused({"service": "shop"}, "service: expected an object, got a string")
        self.refused({"service": {"version": 2}}, "service.version: expected a string, "
                     "got an integer")

    def test_service_is_a_known_top_level_key(self):
        self.refused({"servic": {}}, "servic: unknown key (known: listen, url_prefix, "
                     "url_secret, url_secret_file, plugin_dir, workers, http_threads, "
                     "checks_dir, checks, groups, metrics_path, metrics_auth, limits, "
                     "isolation, in_process, service, state_dir, history, status_public, tls)")


class NoResultYet(unittest.TestCase):
    def test_no_observed_value_or_time_before_the_first_result(self):
        # a background check whose first run outlasts the test
        config = {"checks": [{"name": "bg", "plugin": "exec", "interval_ms": 600000,
                              "timeout_ms": 60000, "command": ["/bin/sleep", "120"]}]}
        with running(self, config) as h:
            st, _, data = h.get("/health/?checks=bg", headers=HJ)
            self.assertEqual(st, 503)
            doc = json.loads(data)
            self.assertEqual(doc["checks"], {"bg:responseTime": [{
                "componentId": "bg", "componentType": "component",
                "output": "no result yet", "status": "fail"}]})


if __name__ == "__main__":
    main()
