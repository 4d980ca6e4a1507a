"""examples/prometheus against Debian's Prometheus (package prometheus, which
has both promtool and the server).

- promtool check rules / check config on the shipped files, and promtool
  test rules on the shipped unit tests; the unit tests must also fail when a
  rule is broken (a copy with each threshold changed), so they can fail.
- A real Prometheus server on loopback (temporary storage, 1 s scrape and
  evaluation) scrapes a real healthd with the shipped scrape job and rules:
  the series are there through its HTTP API, a failing check fires
  HealthdCheckFailing and a stopped healthd fires HealthdDown. The rules are
  the shipped ones with every `for:` cut to 1 s (the durations themselves are
  what the promtool unit tests cover); the expressions are unchanged.
- The shipped HTTPS job (prometheus-https.yml) against a healthd serving
  HTTPS with RequireAndVerifyClientCert (a CA and certificates the test makes
  with openssl): with its client certificate the target is up and healthd's
  series arrive; without one, or with one from another CA, the target is
  down with a TLS error.

Needs promtool and prometheus (package prometheus), openssl and python3-yaml
(`.ci/bootstrap --test`); without them the tests are skipped, except in CI
(CI=true), where they fail.
"""

import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from healthd_fixture import TIME_SCALE, Healthd, free_port
from pki import make_pki

try:
    import yaml
except ImportError:  # reported by setUpModule
    yaml = None

EXAMPLES = os.path.join(os.environ["HEALTHD_SOURCE_ROOT"], "examples", "prometheus")
RULES = os.path.join(EXAMPLES, "healthd-alerts.yml")
RULE_TESTS = os.path.join(EXAMPLES, "healthd-alerts.test.yml")
SCRAPE = os.path.join(EXAMPLES, "prometheus.yml")
SCRAPE_HTTPS = os.path.join(EXAMPLES, "prometheus-https.yml")
WAIT = 60.0 * TIME_SCALE


def setUpModule():
    missing = [p for p, ok in (("promtool (package prometheus)", shutil.which("promtool")),
                               ("prometheus", shutil.which("prometheus")),
                               ("openssl", shutil.which("openssl")),
                               ("python3-yaml", yaml)) if not ok]
    if missing:
        msg = f"needs {', '.join(missing)} (.ci/bootstrap --test installs them)"
        if os.environ.get("CI") == "true":
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


def promtool(*args, cwd=EXAMPLES):
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def load_rules():
    with open(RULES) as f:
        return yaml.safe_load(f)


class Promtool(unittest.TestCase):
    def test_check_rules(self):
        p = promtool("check", "rules", RULES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        n = sum(len(g["rules"]) for g in load_rules()["groups"])
        self.assertIn(f"SUCCESS: {n} rules found", p.stdout)

    def test_check_config(self):
        p = promtool("check", "config", SCRAPE)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS: 1 rule files found", p.stdout)

    def test_check_https_config(self):
        # the shipped file as it stands (its certificate files are the
        # reader's), then a copy naming certificates that exist
        p = promtool("check", "config", "--syntax-only", SCRAPE_HTTPS)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(SCRAPE_HTTPS) as f:
            conf = yaml.safe_load(f)
        job = conf["scrape_configs"][0]
        self.assertEqual(job["scheme"], "https")
        self.assertEqual(set(job["tls_config"]), {"ca_file", "cert_file", "key_file"})
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(tmp)
            job["tls_config"].update(ca_file=pki["ca.pem"], cert_file=pki["client.pem"],
                                     key_file=pki["client.key"])
            with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
                yaml.safe_dump(conf, f)
            shutil.copy(RULES, tmp)
            p = promtool("check", "config", "prometheus.yml", cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("SUCCESS: 1 rule files found", p.stdout)
            os.remove(pki["client.key"])  # so that the check can fail
            p = promtool("check", "config", "prometheus.yml", cwd=tmp)
            self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_unit_tests_pass(self):
        p = promtool("test", "rules", RULE_TESTS)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_every_alert_has_a_unit_test(self):
        alerts = {r["alert"] for g in load_rules()["groups"] for r in g["rules"]}
        self.assertEqual(alerts, {"HealthdDown", "HealthdCheckFailing", "HealthdCheckStale",
                                  "HealthdCheckTimeouts", "HealthdPluginDown",
                                  "HealthdPluginRestarting", "HealthdCheckFlapping"})
        with open(RULE_TESTS) as f:
            tests = yaml.safe_load(f)["tests"]
        for alert in alerts:
            cases = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == alert]
            self.assertTrue(any(c["exp_alerts"] for c in cases), f"{alert}: no firing case")
            self.assertTrue(any(not c["exp_alerts"] for c in cases), f"{alert}: no quiet case")

    def test_unit_tests_catch_a_broken_rule(self):
        # Each rule's expression made wrong in turn (its comparison loosened or
        # turned around): promtool test rules must then fail.
        breaks = [("HealthdDown", "== 0", "== 1"),
                  ("HealthdCheckFailing", "== 0", "< 2"),
                  ("HealthdCheckFailing", "suppressed == 1", "suppressed == 2"),
                  ("HealthdCheckFlapping", "== 1", ">= 0"),
                  ("HealthdCheckStale", "> 1800", "> -1"),
                  ("HealthdCheckTimeouts", ">= 3", ">= 1"),
                  ("HealthdPluginDown", "== 0", "< 2"),
                  ("HealthdPluginRestarting", ">= 3", ">= 1")]
        for alert, old, new in breaks:
            with self.subTest(alert=alert, old=old), tempfile.TemporaryDirectory() as tmp:
                rules = load_rules()
                for g in rules["groups"]:
                    for r in g["rules"]:
                        if r["alert"] == alert:
                            self.assertIn(old, r["expr"])
                            r["expr"] = r["expr"].replace(old, new)
                with open(os.path.join(tmp, "healthd-alerts.yml"), "w") as f:
                    yaml.safe_dump(rules, f)
                shutil.copy(RULE_TESTS, tmp)
                p = promtool("test", "rules", "healthd-alerts.test.yml", cwd=tmp)
                self.assertNotEqual(p.returncode, 0, f"{alert} broken, yet:\n{p.stdout}")
                self.assertIn(alert, p.stdout + p.stderr)


class Prometheus:
    """A real Prometheus on a loopback port with storage in a temp dir."""

    def __init__(self, tmp, target, scrape=SCRAPE, jobs=None):
        """scrape: the shipped file whose first job scrapes target; jobs: a
        function of that job returning the jobs to scrape instead."""
        self.tmp = tmp
        rules = load_rules()
        for g in rules["groups"]:
            for r in g["rules"]:
                if "for" in r:
                    r["for"] = "1s"
        with open(os.path.join(tmp, "healthd-alerts.yml"), "w") as f:
            yaml.safe_dump(rules, f)
        with open(scrape) as f:
            conf = yaml.safe_load(f)
        conf["global"].update(scrape_interval="1s", evaluation_interval="1s")
        job = conf["scrape_configs"][0]
        self.job = job["job_name"]
        job["static_configs"][0]["targets"] = [target]
        if jobs is not None:
            conf["scrape_configs"] = jobs(job)
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            yaml.safe_dump(conf, f)
        self.proc = None

    def start(self):
        for _ in range(5):  # the free port may be taken before prometheus binds it
            self.port = free_port()
            self.log = open(os.path.join(self.tmp, "prometheus.log"), "w+")
            self.proc = subprocess.Popen(
                ["prometheus", "--config.file", os.path.join(self.tmp, "prometheus.yml"),
                 "--storage.tsdb.path", os.path.join(self.tmp, "data"),
                 "--web.listen-address", f"127.0.0.1:{self.port}"],
                cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                                timeout=2) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    pass
                time.sleep(0.2)  # polling an HTTP endpoint for readiness, bounded above
            self.stop()
        raise AssertionError(f"prometheus did not become ready:\n{self.output()}")

    def output(self):
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        """Ends the process this object started, by its PID."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None:
            self.log.close()

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise AssertionError(f"{url}: {body}")
        return body["data"]

    def query(self, expr):
        """{frozenset(labels without __name__): float value}"""
        out = {}
        for s in self.api("query", query=expr)["result"]:
            labels = {k: v for k, v in s["metric"].items() if k != "__name__"}
            out[frozenset(labels.items())] = float(s["value"][1])
        return out

    def targets(self):
        """{job: (health, lastError)} of the active targets"""
        return {t["labels"]["job"]: (t["health"], t["lastError"])
                for t in self.api("targets", state="active")["activeTargets"]}

    def wait(self, what, fn):
        """Calls fn until it returns something true (bounded by WAIT)."""
        deadline = time.monotonic() + WAIT
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(0.5)  # Prometheus scrapes and evaluates each second
        raise AssertionError(f"{what}: not within {WAIT}s (last: {last})\n{self.output()}")


class RealPrometheus(unittest.TestCase):
    def test_scrape_series_and_alerts(self):
        tmp = tempfile.TemporaryDirectory(prefix="healthd-prometheus-")
        self.addCleanup(tmp.cleanup)
        config = {"checks": [
            {"name": "db", "plugin": "dummy", "result": "critical"},
            {"name": "slow", "plugin": "dummy", "delay_ms": 400, "timeout_ms": 50},
            # fails while db does: suppressed, so its own alert stays quiet
            {"name": "orders", "plugin": "dummy", "result": "critical", "depends_on": ["db"]},
        ]}
        h = Healthd(config=config)
        h.start()
        self.addCleanup(h.stop)
        # one run of each check, so that every per-check series has a sample
        self.assertEqual(h.get("/health/?checks=true,false,db,slow")[0], 503)
        self.assertEqual(h.get("/health/?checks=orders")[0], 503)  # after db's result
        target = f"{h.host}:{h.port}"

        prom = Prometheus(tmp.name, target).start()
        self.addCleanup(prom.stop)
        inst = ("instance", target)
        job = ("job", prom.job)

        def key(**labels):
            return frozenset([inst, job, *labels.items()])

        up = prom.wait("up == 1", lambda: prom.query("up").get(key()) == 1)
        self.assertTrue(up)
        # every series the scrape brings, with healthd's values
        check_up = prom.wait("healthd_check_up", lambda: prom.query("healthd_check_up"))
        self.assertEqual(check_up, {key(check="true"): 1, key(check="false"): 0,
                                    key(check="db"): 0, key(check="slow"): 0,
                                    key(check="orders"): 0})
        self.assertEqual(prom.query("healthd_check_status"),
                         {key(check="true"): 0, key(check="false"): 2,
                          key(check="db"): 2, key(check="slow"): 2, key(check="orders"): 2})
        self.assertEqual(prom.query("healthd_check_runs_total"),
                         {key(check=c): 1 for c in ("true", "false", "db", "slow", "orders")})
        self.assertEqual(prom.query("healthd_check_timeouts_total"),
                         {key(check="true"): 0, key(check="false"): 0,
                          key(check="db"): 0, key(check="slow"): 1, key(check="orders"): 0})
        self.assertEqual(prom.query("healthd_check_failures_total"),
                         {key(check="true"): 0, key(check="false"): 1,
                          key(check="db"): 1, key(check="slow"): 1, key(check="orders"): 1})
        self.assertEqual(set(prom.query("healthd_check_duration_seconds")),
                         {key(check=c) for c in ("true", "false", "db", "slow", "orders")})
        self.assertEqual(prom.query("healthd_check_suppressed"),
                         {key(check="true"): 0, key(check="false"): 0,
                          key(check="db"): 0, key(check="slow"): 0, key(check="orders"): 1})
        self.assertEqual(prom.query("healthd_check_flapping"),
                         {key(check=c): 0 for c in ("true", "false", "db", "slow", "orders")})
        requests = prom.query("healthd_http_requests_total")
        self.assertEqual(requests.get(key(route="health", code="503")), 2, requests)
        self.assertGreaterEqual(requests.get(key(route="metrics", code="200"), 0), 1, requests)

        def firing(alert):
            return {frozenset((k, v) for k, v in a["labels"].items()
                              if k in ("check", "instance"))
                    for a in prom.api("alerts")["alerts"]
                    if a["labels"]["alertname"] == alert and a["state"] == "firing"}

        # the three failing checks fire, the passing and the suppressed one do not
        failing = prom.wait("HealthdCheckFailing firing for db, false and slow",
                            lambda: (lambda s: s if len(s) >= 3 else None)(
                                firing("HealthdCheckFailing")))
        self.assertEqual(failing, {frozenset([inst, ("check", c)])
                                   for c in ("false", "db", "slow")})
        self.assertEqual(firing("HealthdDown"), set())

        # healthd stops: the scrape fails and HealthdDown fires
        self.assertEqual(h.stop(), 0)
        prom.wait("up == 0", lambda: prom.query("up").get(key()) == 0)
        down = prom.wait("HealthdDown firing", lambda: firing("HealthdDown"))
        self.assertEqual(down, {frozenset([inst])})


class HttpsScrape(unittest.TestCase):
    def test_client_certificate_required(self):
        tmp = tempfile.TemporaryDirectory(prefix="healthd-prometheus-tls-")
        self.addCleanup(tmp.cleanup)
        pki = make_pki(tmp.name)
        config = {
            "tls": {"cert_file": pki["server.pem"], "key_file": pki["server.key"],
                    "client_ca_file": pki["ca.pem"],
                    "client_auth_type": "RequireAndVerifyClientCert"},
            # a background check, so that a series exists without a request
            "checks": [{"name": "db", "plugin": "dummy", "result": "critical",
                        "interval_ms": 500}],
        }
        h = Healthd(config=config)
        h.start()
        self.addCleanup(h.stop)
        target = f"127.0.0.1:{h.port}"  # the address in the server certificate

        def jobs(job):
            """The shipped job with the test's files; the same without a
            client certificate, and with one from a CA healthd does not trust."""
            job["tls_config"].update(ca_file=pki["ca.pem"], cert_file=pki["client.pem"],
                                     key_file=pki["client.key"])
            nocert = copy.deepcopy(job)
            nocert["job_name"] += "-nocert"
            del nocert["tls_config"]["cert_file"], nocert["tls_config"]["key_file"]
            foreign = copy.deepcopy(job)
            foreign["job_name"] += "-foreign"
            foreign["tls_config"].update(cert_file=pki["foreign.pem"],
                                         key_file=pki["foreign.key"])
            return [job, nocert, foreign]

        prom = Prometheus(tmp.name, target, scrape=SCRAPE_HTTPS, jobs=jobs).start()
        self.addCleanup(prom.stop)
        nocert, foreign = prom.job + "-nocert", prom.job + "-foreign"

        def up(job):
            return prom.query(f'up{{job="{job}"}}').get(
                frozenset([("instance", target), ("job", job)]))

        prom.wait("up == 1 over https", lambda: up(prom.job) == 1)
        key = frozenset([("instance", target), ("job", prom.job), ("check", "db")])
        check_up = prom.wait("healthd_check_up of db over https",
                             lambda: (lambda q: q if key in q else None)(
                                 prom.query(f'healthd_check_up{{job="{prom.job}"}}')))
        self.assertEqual(check_up[key], 0)  # its background runs fail
        self.assertEqual(len(prom.query(f'healthd_build_info{{job="{prom.job}"}}')), 1)
        # refused at the handshake: down, with the TLS error, and no series
        for job in (nocert, foreign):
            with self.subTest(job=job):
                prom.wait(f"{job}: up == 0", lambda: up(job) == 0)
                health, error = prom.targets()[job]
                self.assertEqual(health, "down")
                self.assertIn("tls", error.lower(), error)
                self.assertEqual(prom.query(f'healthd_check_up{{job="{job}"}}'), {})
        self.assertEqual(prom.targets()[prom.job], ("up", ""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
