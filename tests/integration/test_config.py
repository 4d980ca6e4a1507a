"""SPEC section 6: the config file, the command line, startup refusals, signals."""

import json
import os
import signal
import socket
import tempfile
import unittest

from healthd_fixture import PLUGIN_DIR, Healthd, StartupError, run_healthd


def check_config(config, *extra, env=None):
    """--check-config on config (a dict or raw text): (rc, stdout, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "healthd.json")
        with open(path, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))
        rc, out, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                    "--check-config", *extra], env=env)
        return rc, out.replace(path, "CONFIG"), err.replace(path, "CONFIG")


class BadConfig(unittest.TestCase):
    def refused(self, config, message):
        rc, out, err = check_config(config, "--no-url-secret")
        self.assertEqual(rc, 1, out)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)  # one clear line
        self.assertEqual(lines[0], "healthd: error: " + message)

    def test_unknown_key(self):
        rc, _, err = check_config({"listen": "127.0.0.1:0", "workerz": 3}, "--no-url-secret")
        self.assertEqual(rc, 1)
        self.assertIn("healthd: error: CONFIG: workerz: unknown key (known: listen,", err)

    def test_invalid_json(self):
        self.refused('{"workers": 4,\n "listen": }', "CONFIG:2:12: invalid JSON: unexpected character")

    def test_wrong_type(self):
        self.refused({"workers": "many"},
                     'CONFIG: workers: expected an integer from 1 to 1024, got a string')

    def test_unknown_plugin(self):
        # every plugin found, in process and isolated, and the near name
        installed = "(plugins in process: dummy; isolated: exec, http, postgres, tcp)"
        self.refused({"checks": [{"name": "x", "plugin": "htp"}]},
                     'CONFIG: checks[0].plugin: unknown plugin "htp": did you mean "http"? '
                     + installed)
        self.refused({"checks": [{"name": "x", "plugin": "mysql"}]},
                     'CONFIG: checks[0].plugin: unknown plugin "mysql" ' + installed)
        self.refused({"in_process": ["dummy", "tcp"], "checks": [{"name": "x", "plugin": "tpc"}]},
                     'CONFIG: checks[0].plugin: unknown plugin "tpc": did you mean "tcp"? '
                     "(plugins in process: dummy, tcp; isolated: exec, http, postgres)")

    def test_duplicate_name(self):
        self.refused({"checks": [{"name": "x", "plugin": "dummy"}, {"name": "x", "plugin": "dummy"}]},
                     'CONFIG: checks[1] (plugin dummy): check name "x" is already taken '
                     '(by CONFIG: checks[0])')

    def test_name_taken_by_a_plugin(self):
        rc, _, err = check_config({"checks": [{"name": "true", "plugin": "dummy"}]}, "--no-url-secret")
        self.assertEqual(rc, 1)
        self.assertIn('check name "true" is already taken (by ', err)
        self.assertIn("dummy.so", err)

    def test_invalid_name(self):
        self.refused({"checks": [{"name": "a,b", "plugin": "dummy"}]},
                     'CONFIG: checks[0].name: invalid check name "a,b": a check name may only '
                     'contain letters, digits and _ . : -')

    def test_unknown_option(self):
        self.refused({"checks": [{"name": "x", "plugin": "dummy", "reslt": "ok"}]},
                     "CONFIG: checks[0].reslt: unknown option for plugin dummy")

    def test_bad_option_value(self):
        self.refused({"checks": [{"name": "x", "plugin": "dummy", "result": "fine"}]},
                     'CONFIG: checks[0] (plugin dummy): result: expected ok, warning, critical '
                     'or unknown, got "fine"')
        self.refused({"checks": [{"name": "x", "plugin": "dummy", "delay_ms": "soon"}]},
                     'CONFIG: checks[0] (plugin dummy): delay_ms: expected an integer from 0 to '
                     '3600000, got "soon"')


class GoodConfig(unittest.TestCase):
    def test_check_config_lists_plugins_and_checks(self):
        rc, out, err = check_config({"checks": [{"name": "foo", "plugin": "dummy", "defaults": False,
                                                 "timeout_ms": 500, "cache_ms": 100}]},
                                    env={"HEALTH_URL_SECRET": "x"})
        self.assertEqual(rc, 0, err)
        self.assertIn("plugin dummy 1.0 (ABI 1.2) from " + PLUGIN_DIR + "/dummy.so: 3 checks", out)
        self.assertIn("check true: plugin dummy, not in defaults", out)
        self.assertIn("check foo: plugin dummy, not in defaults, timeout 500 ms, cache 100 ms "
                      "(CONFIG: checks[0])", out)
        self.assertIn("auth: on", out)
        self.assertTrue(out.rstrip().endswith("configuration OK"))

    def test_check_config_reports_missing_secret(self):
        rc, _, err = check_config({})
        self.assertEqual(rc, 1)
        self.assertIn("no URL secret is set", err)

    def test_version_and_help(self):
        rc, out, _ = run_healthd(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^healthd \d+\.\d+\.\d+ \(plugin ABI 1\.2\)\n$")
        rc, out, _ = run_healthd(["--help"])
        self.assertEqual(rc, 0)
        for flag in ("--config", "--listen", "--plugin-dir", "--url-prefix", "--no-url-secret",
                     "--check-config", "--version", "--help"):
            self.assertIn(flag, out)

    def test_bad_flag(self):
        rc, _, err = run_healthd(["--no-such-flag"])
        self.assertEqual(rc, 2)
        self.assertIn("--help", err)
        rc, _, err = run_healthd(["--listen", "nowhere", "--no-url-secret", "--check-config"])
        self.assertEqual(rc, 1)
        self.assertIn("--listen: expected ADDRESS:PORT", err)

    def test_command_line_overrides_file(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            port = taken.getsockname()[1]
            # the file's listen address is in use; --listen (from the fixture) wins
            with Healthd(config={"listen": f"127.0.0.1:{port}", "url_prefix": "/file"},
                         args=["--url-prefix", "/cli"]) as h:
                self.assertNotEqual(h.port, port)
                self.assertEqual(h.get("/cli/ping")[0], 200)
                self.assertEqual(h.get("/file/ping")[0], 404)
        finally:
            taken.close()

    def test_listen_in_use_is_refused(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            with self.assertRaises(StartupError) as cm:
                Healthd(listen=f"127.0.0.1:{taken.getsockname()[1]}").start()
            self.assertIn("cannot listen there", cm.exception.log)
        finally:
            taken.close()

    def test_ipv6_and_several_addresses(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            with socket.socket(socket.AF_INET6) as s6:
                s6.bind(("::1", 0))
        except OSError:
            self.skipTest("no ::1 on this machine")
        with Healthd(listen="[::1]:0") as h:
            self.assertEqual(h.host, "::1")
            self.assertEqual(h.get("/health/ping")[2], b"pong")

    def test_http_threads_up_to_the_documented_64(self):
        # as many HTTP threads as configured, to 64 (the connection layer
        # stopped at 16 without a word)
        def threads(n):
            with Healthd(config={"http_threads": n}) as h:
                self.assertEqual(h.get("/health/ping")[0], 200)
                with open(f"/proc/{h.proc.pid}/status") as f:
                    return int(next(line.split()[1] for line in f
                                    if line.startswith("Threads:")))
        one = threads(1)
        self.assertEqual(threads(40) - one, 39)
        self.assertEqual(threads(64) - one, 63)

    def test_checks_dir_drop_in(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "checks.d"))
            with open(os.path.join(d, "checks.d", "10-app.json"), "w") as f:
                json.dump([{"name": "app", "plugin": "dummy"}], f)
            with Healthd(config={"checks_dir": os.path.join(d, "checks.d"),
                                 "checks": [{"name": "main", "plugin": "dummy"}]}) as h:
                st, doc = h.get_json("/health/")
                self.assertEqual(doc["available_checks"], ["true", "false", "main", "app"])
                self.assertEqual(doc["checks"], {"app": True, "main": True})

    def test_embedded_default(self):
        rc, out, err = run_healthd(["--no-url-secret", "--check-config"])
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration: (embedded default)", out)
        # the build tree's binary finds the build tree's plugins on its own
        self.assertIn("plugin dummy 1.0", out)
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            self.skipTest("127.0.0.1:8080 is in use here; the default could not be started")
        finally:
            probe.close()
        h = Healthd(listen="127.0.0.1:8080", plugin_dir="")
        with h:
            self.assertEqual((h.host, h.port), ("127.0.0.1", 8080))
            self.assertEqual(h.get("/health/ping")[2], b"pong")


class CredentialOutsideSystemd(unittest.TestCase):
    """The packaged config names the unit's credential; run by hand, where that
    file does not exist, HEALTH_URL_SECRET or --no-url-secret must be enough."""

    CONFIG = {"url_secret_file": "/run/credentials/healthd.service/no-such-secret",
              "checks": [{"name": "a", "plugin": "dummy"}]}

    def env(self, **extra):
        env = dict(os.environ, **extra)
        if "HEALTH_URL_SECRET" not in extra:
            env.pop("HEALTH_URL_SECRET", None)
        return env

    def test_environment_secret_wins_without_reading_the_file(self):
        rc, out, err = check_config(self.CONFIG, env=self.env(HEALTH_URL_SECRET="s3cret"))
        self.assertEqual(rc, 0, err)
        self.assertIn("auth: on", out)

    def test_no_url_secret_wins_without_reading_the_file(self):
        rc, out, err = check_config(self.CONFIG, "--no-url-secret", env=self.env())
        self.assertEqual(rc, 0, err)
        self.assertIn("auth: off", out)

    def test_otherwise_the_missing_file_is_one_line(self):
        rc, out, err = check_config(self.CONFIG, env=self.env())
        self.assertEqual(rc, 1, out)
        self.assertEqual(err.strip().splitlines(),
                         ["healthd: error: CONFIG: url_secret_file: cannot read "
                          "/run/credentials/healthd.service/no-such-secret: No such file or "
                          "directory"])


class Signals(unittest.TestCase):
    def test_sigterm_and_sigint_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            h = Healthd().start()
            self.assertEqual(h.get("/health/ping")[0], 200)
            self.assertEqual(h.stop(sig), 0, h.log)
            self.assertIn("shutting down", h.log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
