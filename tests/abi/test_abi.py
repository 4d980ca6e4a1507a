"""ABI stability through the real binary: a plugin built against the frozen
1.0 header loads and runs in this host, using every 1.0 host function and
lifecycle hook; one built against the frozen 1.1 header uses what 1.1 added.

A plugin built for a newer minor is refused: tests/integration/test_plugins.py
(Refusals.test_newer_minor) covers that. A plugin built for an older minor
loading in a newer host is what this file proves for 1.0 against the current
host; it says something new from the first 1.1 host on.

Environment (set by tests/abi/meson.build):
  HEALTHD_ABI_DIR  build directory holding plugin_1_0.so and plugin_1_1.so
  HEALTHD_ABI_SRC  source directory holding healthd-plugin-1.0.h and -1.1.h
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from healthd_fixture import Healthd, run_healthd

ABI_DIR = os.environ["HEALTHD_ABI_DIR"]
ABI_SRC = os.environ["HEALTHD_ABI_SRC"]

# The 1.0 header as released. Changing it is never right: a new minor gets a
# new frozen file (healthd-plugin-1.1.h) next to this one.
FROZEN_1_0_SHA256 = "c4881dfdbb595d538d5214df3ef63ba4a130c61d12a67d39e924be6da49b4a03"
# The 1.1 header as released (include/healthd/plugin.h at 8d5bcc5).
FROZEN_1_1_SHA256 = "2f3b4aba55644a30047983e24965753524c6be71fb3f8af9aa974e0ce6252f4a"

INSTANCE = {"name": "legacy", "plugin": "abi10", "greeting": "hello", "count": 3,
            "loud": True, "timeout_ms": 1500}


class PluginDir:
    """A temporary plugin directory holding only one frozen-header fixture."""

    def __init__(self, fixture="plugin_1_0.so", name="abi10.so"):
        self.fixture, self.name = fixture, name

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="healthd-abi-")
        shutil.copy(os.path.join(ABI_DIR, self.fixture), os.path.join(self.dir, self.name))
        return self.dir

    def __exit__(self, *exc):
        shutil.rmtree(self.dir)


class FrozenHeader(unittest.TestCase):
    def test_frozen_header_is_untouched(self):
        with open(os.path.join(ABI_SRC, "healthd-plugin-1.0.h"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), FROZEN_1_0_SHA256,
                             "healthd-plugin-1.0.h changed; it must stay the released 1.0 "
                             "header byte for byte")

    def test_frozen_1_1_header_is_untouched(self):
        with open(os.path.join(ABI_SRC, "healthd-plugin-1.1.h"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), FROZEN_1_1_SHA256,
                             "healthd-plugin-1.1.h changed; it must stay the released 1.1 "
                             "header byte for byte")

    def test_fixture_is_built_for_1_0(self):
        with PluginDir() as d:
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)
            self.assertIn(f"plugin abi10 1.0.0 (ABI 1.0) from {d}/abi10.so: 1 check", out)
            self.assertIn("check abi10-fixed: plugin abi10, in defaults, timeout 2000 ms", out)

    def test_fixture_exports_only_the_descriptor(self):
        out = subprocess.run(["nm", "-D", "--defined-only",
                              os.path.join(ABI_DIR, "plugin_1_0.so")],
                             capture_output=True, text=True, check=True).stdout
        symbols = {line.split()[-1] for line in out.splitlines() if line.strip()}
        symbols -= {"_init", "_fini", "__bss_start", "_edata", "_end"}
        # an ASan build adds an ODR indicator per global; not the plugin's doing
        symbols = {s for s in symbols if not s.startswith("__odr_asan.")}
        self.assertEqual(symbols, {"healthd_plugin_v1"})


class Plugin10InCurrentHost(unittest.TestCase):
    def test_loads_runs_and_unloads(self):
        with PluginDir() as d:
            h = Healthd(config={"checks": [INSTANCE]}, plugin_dir=d)
            with h:
                # defaults: the fixed check only; the instance is in too
                status, body = h.get_json("/health/")
                self.assertEqual(status, 200)
                self.assertEqual(body["available_checks"], ["abi10-fixed", "legacy"])
                self.assertEqual(body["checks"], {"abi10-fixed": True, "legacy": True})

                status, body = h.get_json("/health/?checks=abi10-fixed,legacy&verbose=1")
                self.assertEqual(status, 200)
                fixed, legacy = body["details"]["abi10-fixed"], body["details"]["legacy"]
                self.assertEqual(fixed["status"], "pass")
                m = re.fullmatch(r"built against ABI 1\.0; (-?\d+) ms to the deadline",
                                 fixed["output"])
                self.assertIsNotNone(m, fixed["output"])
                self.assertTrue(0 < int(m.group(1)) <= 2000, fixed["output"])
                # HEALTHD_WARNING from a 1.0 plugin still means "warn", and healthy
                self.assertEqual(legacy["status"], "warn")
                m = re.fullmatch(r"greeting=hello count=3 loud=true options=3 left_ms=(-?\d+)",
                                 legacy["output"])
                self.assertIsNotNone(m, legacy["output"])
                self.assertTrue(0 < int(m.group(1)) <= 1500, legacy["output"])
            self.assertEqual(h.proc.returncode, 0, h.log)
            lines = [l for l in h.messages if l.startswith("healthd: abi10: ")]
            m = re.fullmatch(r"healthd: abi10: loaded into a host table of (\d+) bytes", lines[0])
            self.assertIsNotNone(m, h.log)
            self.assertGreaterEqual(int(m.group(1)), 80)  # the 1.0 table, or a grown one
            # every destroy() before the one unload(), which comes last
            self.assertEqual(sorted(lines[1:-1]), ["healthd: abi10: destroy fixed "
                                                   "(built against ABI 1.0)",
                                                   "healthd: abi10: destroy legacy"], h.log)
            self.assertEqual(lines[-1], "healthd: abi10: unload", h.log)

    def test_option_errors_are_reported_by_the_host(self):
        with PluginDir() as d:
            bad = dict(INSTANCE, count="lots")
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config",
                                        "--config", self._write(bad)])
            self.assertEqual(rc, 1)
            self.assertIn('(plugin abi10): count: expected an integer from 0 to 100, got "lots"',
                          err)

    def _write(self, check):
        fd, path = tempfile.mkstemp(prefix="healthd-abi-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"checks": [check]}, f)
        self.addCleanup(os.unlink, path)
        return path


class Plugin11InCurrentHost(unittest.TestCase):
    def test_fixture_is_built_for_1_1(self):
        with PluginDir("plugin_1_1.so", "abi11.so") as d:
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)
            self.assertIn(f"plugin abi11 1.1.0 (ABI 1.1) from {d}/abi11.so: 0 checks", out)

    def test_loads_and_uses_the_1_1_functions(self):
        checks = [{"name": "fine", "plugin": "abi11", "mode": "ok", "timeout_ms": 1234},
                  {"name": "gives-up", "plugin": "abi11", "mode": "timeout", "timeout_ms": 777}]
        with PluginDir("plugin_1_1.so", "abi11.so") as d:
            h = Healthd(config={"checks": checks}, plugin_dir=d)
            with h:
                status, body = h.get_json("/health/?checks=fine,gives-up&verbose=1")
                self.assertEqual(status, 503)
                fine, gave_up = body["details"]["fine"], body["details"]["gives-up"]
                self.assertEqual(fine["status"], "pass")
                m = re.fullmatch(r"timeout_ms=1234 cancelled=false table=(\d+)", fine["output"])
                self.assertIsNotNone(m, fine["output"])
                self.assertGreaterEqual(int(m.group(1)), 104)  # the 1.1 table, or a grown one
                self.assertEqual(gave_up["status"], "fail")
                self.assertEqual(gave_up["output"], "gave up after 777 ms")
                # timed_out() from a 1.1 plugin counts as a timeout, as in a 1.1 host
                samples = h.metrics()
                self.assertEqual(samples[("healthd_check_timeouts_total",
                                          frozenset({"check": "gives-up"}.items()))], 1)
                self.assertEqual(samples[("healthd_check_timeouts_total",
                                          frozenset({"check": "fine"}.items()))], 0)
            self.assertEqual(h.proc.returncode, 0, h.log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
