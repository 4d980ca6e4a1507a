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

    def test_liveness_is_ping(self):
        probe = self.c["livenessProbe"]
        self.assertEqual(probe["httpGet"]["path"], self.prefix + "/ping")
        self.assertEqual(self.probe_port(probe), self.port)
        self.assertNotIn("httpHeaders", probe["httpGet"])

    def test_readiness_selects_configured_checks_with_the_secret(self):
        probe = self.c["readinessProbe"]
        self.assertEqual(self.probe_port(probe), self.port)
        url = urllib.parse.urlsplit(probe["httpGet"]["path"])
        self.assertEqual(url.path, self.prefix + "/")
        names = urllib.parse.parse_qs(url.query)["checks"][0].split(",")
        self.assertEqual(set(names), {c["name"] for c in self.config["checks"]})
        headers = {h["name"]: h["value"] for h in probe["httpGet"]["httpHeaders"]}
        self.assertEqual(headers["Authorization"], "Bearer " + self.secret_value)
        # the probe waits longer than the slowest selected check may take
        slowest = max(c.get("timeout_ms", 2000) for c in self.config["checks"]
                      if c["name"] in names)
        self.assertGreater(probe["timeoutSeconds"] * 1000, slowest)

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
            status, _, body = h.get(self.c["livenessProbe"]["httpGet"]["path"])
            self.assertEqual((status, body), (200, b"pong"))
            get = self.c["readinessProbe"]["httpGet"]
            headers = {x["name"]: x["value"] for x in get["httpHeaders"]}
            status, body = h.get_json(get["path"], headers)
            # app and db are not there: 503, but authorised and both selected
            self.assertEqual(status, 503)
            self.assertEqual(set(body["checks"]), {"app", "db"})
            self.assertEqual(h.get(get["path"])[0], 401, "without the header")
            status, _, _ = h.get(self.pod["metadata"]["annotations"]["prometheus.io/path"])
            self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
