"""examples/kubernetes/healthd-sidecar.yaml holds together: its probes, ports,
scrape annotations and secret agree with the healthd configuration in its
ConfigMap, and a real healthd started with that configuration answers the
probes' requests as the kubelet would send them.

Needs python3-yaml (`.ci/bootstrap --test`); skipped without it, except in
CI (CI=true), where it fails.
"""

import json
import os
import tempfile
import unittest
import urllib.parse

from healthd_fixture import Healthd, run_healthd

try:
    import yaml
except ImportError:
    yaml = None

MANIFEST = os.path.join(os.environ["HEALTHD_SOURCE_ROOT"], "examples", "kubernetes",
                        "healthd-sidecar.yaml")


def setUpModule():
    if yaml is None:
        msg = "needs python3-yaml (.ci/bootstrap --test installs it)"
        if os.environ.get("CI") == "true":
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


class Sidecar(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(MANIFEST) as f:
            docs = {d["kind"]: d for d in yaml.safe_load_all(f)}
        cls.configmap, cls.secret, cls.deploy = docs["ConfigMap"], docs["Secret"], docs["Deployment"]
        cls.pod = cls.deploy["spec"]["template"]
        cls.c = next(c for c in cls.pod["spec"]["containers"] if c["name"] == "healthd")
        cls.config = json.loads(cls.configmap["data"]["healthd.json"])
        cls.prefix = cls.config.get("url_prefix", "/health")
        cls.port = int(cls.config["listen"].rsplit(":", 1)[1])
        cls.secret_value = cls.secret["stringData"]["url_secret"]

    def probe_port(self, probe):
        port = probe["httpGet"]["port"]
        if isinstance(port, str):  # a named container port
            port = next(p["containerPort"] for p in self.c["ports"] if p["name"] == port)
        return port

    def mount_of(self, volume_kind, name):
        vol = next(v for v in self.pod["spec"]["volumes"]
                   if v.get(volume_kind, {}).get("name" if volume_kind == "configMap"
                                                 else "secretName") == name)
        return next(m["mountPath"] for m in self.c["volumeMounts"] if m["name"] == vol["name"])

    def test_config_file_and_secret_are_mounted_where_healthd_reads_them(self):
        args = self.c["args"]
        config_path = args[args.index("--config") + 1]
        self.assertEqual(config_path, self.mount_of("configMap", self.configmap["metadata"]["name"])
                         + "/healthd.json")
        self.assertEqual(self.config["url_secret_file"],
                         self.mount_of("secret", self.secret["metadata"]["name"]) + "/url_secret")
        # all addresses: the kubelet probes the pod's IP, not loopback
        self.assertEqual(self.config["listen"].rsplit(":", 1)[0], "*")

    def group_probe(self, probe, group):
        """A probe on group: its path, port, secret, and the group answering
        within the probe's timeout. Returns the group's check names."""
        self.assertEqual(self.probe_port(probe), self.port)
        self.assertEqual(probe["httpGet"]["path"], f"{self.prefix}/{group}")
        headers = {h["name"]: h["value"] for h in probe["httpGet"]["httpHeaders"]}
        self.assertEqual(headers["Authorization"], "Bearer " + self.secret_value)
        g = self.config["groups"][group]
        checks = g["checks"] if isinstance(g, dict) else g
        declared = {c["name"]: c for c in self.config["checks"]}
        self.assertLessEqual(set(checks), set(declared))
        # the group's budget is below the kubelet's timeout: a slow check
        # gives a 503 that names it, never a probe timeout
        self.assertIn("timeout_ms", g)
        self.assertLess(g["timeout_ms"], probe["timeoutSeconds"] * 1000)
        return checks, declared

    def test_liveness_is_the_live_group_without_dependencies(self):
        checks, declared = self.group_probe(self.c["livenessProbe"], "live")
        # a database in liveness restarts healthy pods in a cascade
        self.assertNotIn("postgres", {declared[n]["plugin"] for n in checks})

    def test_readiness_is_the_ready_group(self):
        checks, _ = self.group_probe(self.c["readinessProbe"], "ready")
        self.assertEqual(set(checks), {c["name"] for c in self.config["checks"]})

    def test_prometheus_annotations(self):
        ann = self.pod["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(int(ann["prometheus.io/port"]), self.port)
        self.assertEqual(ann["prometheus.io/path"], self.config["metrics_path"])
        self.assertFalse(self.config.get("metrics_auth", False),
                         "Prometheus' pod annotations carry no credentials")

    def test_real_healthd_answers_the_probes(self):
        tmp = tempfile.TemporaryDirectory(prefix="healthd-k8s-")
        self.addCleanup(tmp.cleanup)
        secret_file = os.path.join(tmp.name, "url_secret")
        with open(secret_file, "w") as f:
            f.write(self.secret_value + "\n")  # as a mounted Secret file may end
        config = dict(self.config, url_secret_file=secret_file)
        cfg_path = os.path.join(tmp.name, "healthd.json")
        with open(cfg_path, "w") as f:
            json.dump(config, f)
        rc, out, err = run_healthd(["--config", cfg_path, "--check-config"])
        self.assertEqual(rc, 0, out + err)

        with Healthd(config=config, secret=False) as h:  # --listen 127.0.0.1:0 overrides
            for probe, names in (("livenessProbe", {"app"}), ("readinessProbe", {"app", "db"})):
                get = self.c[probe]["httpGet"]
                headers = {x["name"]: x["value"] for x in get["httpHeaders"]}
                status, body = h.get_json(get["path"], headers)
                # app and db are not there: 503, but authorised and the group's checks run
                self.assertEqual(status, 503, probe)
                self.assertEqual(set(body["checks"]), names, probe)
                self.assertEqual(h.get(get["path"])[0], 401, "without the header")
            status, _, _ = h.get(self.pod["metadata"]["annotations"]["prometheus.io/path"])
            self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
