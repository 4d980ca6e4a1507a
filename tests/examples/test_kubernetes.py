"""examples/kubernetes/healthd-sidecar.yaml and its HTTPS variant
healthd-https.yaml hold together: their probes, ports, scrape annotations and
secret agree with the healthd configuration in the ConfigMap, and a real
healthd started with that configuration answers the probes' requests as the
kubelet would send them. For HTTPS also: the tls files are the ones
cert-manager writes into the mounted Secret, and the client-certificate
policy lets the kubelet's probes (no client certificate, no verification)
through while a certificate from another CA is refused, which
RequireAndVerifyClientCert would not.

Needs python3-yaml and openssl (`.ci/bootstrap --test`); skipped without
them, except in CI (CI=true), where it fails.
"""

import http.client
import json
import os
import shutil
import ssl
import tempfile
import unittest

from healthd_fixture import Healthd, run_healthd
from pki import make_pki

try:
    import yaml
except ImportError:
    yaml = None

MANIFESTS = os.path.join(os.environ["HEALTHD_SOURCE_ROOT"], "examples", "kubernetes")


def setUpModule():
    missing = [p for p, ok in (("python3-yaml", yaml), ("openssl", shutil.which("openssl")))
               if not ok]
    if missing:
        msg = f"needs {', '.join(missing)} (.ci/bootstrap --test installs them)"
        if os.environ.get("CI") == "true":
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


class Sidecar(unittest.TestCase):
    MANIFEST = "healthd-sidecar.yaml"

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(MANIFESTS, cls.MANIFEST)) as f:
            docs = {d["kind"]: d for d in yaml.safe_load_all(f)}
        cls.docs = docs
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

    def real_config(self, tmp):
        """The ConfigMap's configuration with its files in tmp."""
        secret_file = os.path.join(tmp, "url_secret")
        with open(secret_file, "w") as f:
            f.write(self.secret_value + "\n")  # as a mounted Secret file may end
        return dict(self.config, url_secret_file=secret_file)

    def fetch(self, h, path, headers=None):
        """A request as the kubelet sends it: (status, body bytes)."""
        status, _, body = h.get(path, headers)
        return status, body

    def test_real_healthd_answers_the_probes(self):
        tmp = tempfile.TemporaryDirectory(prefix="healthd-k8s-")
        self.addCleanup(tmp.cleanup)
        config = self.real_config(tmp.name)
        cfg_path = os.path.join(tmp.name, "healthd.json")
        with open(cfg_path, "w") as f:
            json.dump(config, f)
        rc, out, err = run_healthd(["--config", cfg_path, "--check-config"])
        self.assertEqual(rc, 0, out + err)

        with Healthd(config=config, secret=False) as h:  # --listen 127.0.0.1:0 overrides
            for probe, names in (("livenessProbe", {"app"}), ("readinessProbe", {"app", "db"})):
                get = self.c[probe]["httpGet"]
                headers = {x["name"]: x["value"] for x in get["httpHeaders"]}
                status, body = self.fetch(h, get["path"], headers)
                # app and db are not there: 503, but authorised and the group's checks run
                self.assertEqual(status, 503, probe)
                self.assertEqual(set(json.loads(body)["checks"]), names, probe)
                self.assertEqual(self.fetch(h, get["path"])[0], 401, "without the header")
            status, _ = self.fetch(h, self.pod["metadata"]["annotations"]["prometheus.io/path"])
            self.assertEqual(status, 200)


class HttpsSidecar(Sidecar):
    MANIFEST = "healthd-https.yaml"

    def real_config(self, tmp):
        self.pki = make_pki(tmp)
        config = super().real_config(tmp)
        config["tls"] = dict(config["tls"], cert_file=self.pki["server.pem"],
                             key_file=self.pki["server.key"], client_ca_file=self.pki["ca.pem"])
        return config

    def fetch(self, h, path, headers=None, cert=None):
        # the kubelet verifies nothing and shows no certificate of its own
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert is not None:
            ctx.load_cert_chain(*cert)
        conn = http.client.HTTPSConnection(h.host, h.port, timeout=10, context=ctx)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def refused(self, h, path, cert=None):
        """Whether a request fails at the TLS layer (TLS 1.3 may report the
        server's refusal only on the first read)."""
        try:
            self.fetch(h, path, cert=cert)
        except (OSError, http.client.HTTPException):
            return True
        return False

    def test_tls_files_are_the_certificate_secret_mounted(self):
        cert = self.docs["Certificate"]
        mount = self.mount_of("secret", cert["spec"]["secretName"])
        tls = self.config["tls"]
        # the file names cert-manager writes into the Secret
        self.assertEqual((tls["cert_file"], tls["key_file"], tls["client_ca_file"]),
                         (mount + "/tls.crt", mount + "/tls.key", mount + "/ca.crt"))
        self.assertIn("server auth", cert["spec"]["usages"])
        # a subPath mount never sees the renewed files
        self.assertFalse([m for m in self.c["volumeMounts"] if "subPath" in m])

    def test_probes_are_https_without_client_certificates(self):
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertEqual(self.c[probe]["httpGet"]["scheme"], "HTTPS", probe)
        self.assertIn(self.config["tls"]["client_auth_type"],
                      ("NoClientCert", "VerifyClientCertIfGiven"))
        self.assertEqual(self.pod["metadata"]["annotations"]["prometheus.io/scheme"], "https")

    def test_client_certificates(self):
        tmp = tempfile.TemporaryDirectory(prefix="healthd-k8s-tls-")
        self.addCleanup(tmp.cleanup)
        config = self.real_config(tmp.name)
        with Healthd(config=config, secret=False) as h:
            self.assertEqual(self.fetch(h, "/health/ping")[0], 200)
            foreign = (self.pki["foreign.pem"], self.pki["foreign.key"])
            self.assertTrue(self.refused(h, "/health/ping", cert=foreign),
                            "a certificate from another CA")
            ok = (self.pki["client.pem"], self.pki["client.key"])
            self.assertEqual(self.fetch(h, "/health/ping", cert=ok)[0], 200)  # still serving
        # what the comment in the manifest warns of: the kubelet's probes fail
        config["tls"]["client_auth_type"] = "RequireAndVerifyClientCert"
        with Healthd(config=config, secret=False) as h:
            self.assertTrue(self.refused(h, "/health/ping"), "no client certificate")
            self.assertEqual(self.fetch(h, "/health/ping", cert=ok)[0], 200)

if __name__ == "__main__":
    unittest.main(verbosity=2)
