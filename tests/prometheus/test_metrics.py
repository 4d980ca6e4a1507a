"""/metrics beyond the per-check series (issue 23): healthd_build_info, the
process_* series every Prometheus client library exports, and perfdata in
base units with its thresholds and counters; `promtool check metrics` clean.

promtool (package prometheus) is needed for the lint only; without it that
test is skipped, except in CI (CI=true), where it fails.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from healthd_fixture import Healthd, abi_version, main, parse_prometheus


def help_and_type(body):
    """{metric: (help, type)} from the # HELP and # TYPE lines."""
    out = {}
    for line in body.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
        if m:
            h, t = out.get(m.group(2), (None, None))
            out[m.group(2)] = (m.group(3), t) if m.group(1) == "HELP" else (h, m.group(3))
    return out


def promtool_lint(test, body):
    if shutil.which("promtool") is None:
        if os.environ.get("CI") == "true":
            test.fail("needs promtool (package prometheus)")
        test.skipTest("needs promtool (package prometheus)")
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    test.assertEqual(p.returncode, 0, p.stdout + p.stderr)
    test.assertEqual(p.stdout + p.stderr, b"")


class ProcessSeries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Healthd(config={"checks": []})
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()

    def test_build_info(self):
        version = subprocess.run([os.environ.get("HEALTHD_BIN", "healthd"), "--version"],
                                 capture_output=True, text=True).stdout.split()[1]
        m = self.h.metrics()
        self.assertEqual(m[("healthd_build_info",
                            frozenset({("version", version), ("abi", abi_version())}))], 1)

    def test_process_series_as_client_libraries_name_them(self):
        body = self.h.get("/metrics")[2].decode()
        ht = help_and_type(body)
        # HELP and TYPE word for word as client_golang and client_python
        expected = {
            "process_cpu_seconds_total": ("Total user and system CPU time spent in seconds.",
                                          "counter"),
            "process_virtual_memory_bytes": ("Virtual memory size in bytes.", "gauge"),
            "process_resident_memory_bytes": ("Resident memory size in bytes.", "gauge"),
            "process_start_time_seconds": ("Start time of the process since unix epoch in "
                                           "seconds.", "gauge"),
            "process_open_fds": ("Number of open file descriptors.", "gauge"),
            "process_max_fds": ("Maximum number of open file descriptors.", "gauge"),
        }
        for name, want in expected.items():
            self.assertEqual(ht.get(name), want, name)

    def test_process_values_are_this_process(self):
        pid = self.h.proc.pid
        m = {k[0]: v for k, v in self.h.metrics().items() if not k[1]}
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            btime = next(int(l.split()[1]) for l in f if l.startswith("btime "))
        # unix seconds, as the client libraries: boot time plus start ticks
        start = btime + int(fields[19]) / ticks
        self.assertAlmostEqual(m["process_start_time_seconds"], start, delta=0.02)
        self.assertLessEqual(m["process_start_time_seconds"], time.time())
        self.assertEqual(m["process_virtual_memory_bytes"], int(fields[20]))
        rss = m["process_resident_memory_bytes"]
        self.assertGreater(rss, 1 << 20)
        self.assertEqual(rss % os.sysconf("SC_PAGE_SIZE"), 0)
        self.assertGreaterEqual(m["process_cpu_seconds_total"], 0)
        with open(f"/proc/{pid}/limits") as f:
            soft = int(next(l for l in f if l.startswith("Max open files")).split()[3])
        self.assertEqual(m["process_max_fds"], soft)
        # the listening socket at least; not the directory the count reads
        self.assertGreaterEqual(m["process_open_fds"], 3)
        if os.getuid() == 0:  # healthd is not dumpable: only root may list its fds
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            self.assertLessEqual(m["process_open_fds"], fds + 2)
        else:
            with self.assertRaises(PermissionError):
                os.listdir(f"/proc/{pid}/fd")

    def test_promtool_clean(self):
        promtool_lint(self, self.h.get("/metrics")[2])


class PerfdataSeries(unittest.TestCase):
    """A monitoring-plugins command's perfdata through the exec plugin."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="healthd-metrics-")
        script = os.path.join(cls.tmp.name, "ping")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    "echo \"PING OK - rta 12.5ms | rta=12.5ms;100;500;0; pl=5%;20;60;0;100 "
                    "used=3MB;;;0;8 'rx packets'=1234c;;5000 load=0.5;1:2\"\n")
        os.chmod(script, 0o755)
        cls.h = Healthd(config={"checks": [{"name": "ping", "plugin": "exec",
                                            "command": [script]}]})
        cls.h.start()
        st, _, _ = cls.h.get("/health/?checks=ping", timeout=30)
        assert st == 200, st

    @classmethod
    def tearDownClass(cls):
        cls.h.stop()
        cls.tmp.cleanup()

    def series(self, metric):
        return {dict(k[1])["name"]: (dict(k[1]).get("unit"), v)
                for k, v in self.h.metrics().items()
                if k[0] == metric and dict(k[1]).get("check") == "ping"}

    def test_values_in_base_units(self):
        self.assertEqual(self.series("healthd_check_value"),
                         {"rta": ("seconds", 0.0125), "pl": ("ratio", 0.05),
                          "used": ("bytes", 3 * 1024 * 1024), "load": (None, 0.5)})

    def test_nagios_counter_is_a_counter(self):
        body = self.h.get("/metrics")[2].decode()
        self.assertEqual(help_and_type(body)["healthd_check_perfdata_total"][1], "counter")
        self.assertEqual(self.series("healthd_check_perfdata_total"),
                         {"rx packets": (None, 1234)})

    def test_thresholds_and_bounds_as_their_own_series(self):
        self.assertEqual(self.series("healthd_check_value_warning"),
                         {"rta": ("seconds", 0.1), "pl": ("ratio", 0.2)})
        self.assertEqual(self.series("healthd_check_value_critical"),
                         {"rta": ("seconds", 0.5), "pl": ("ratio", 0.6),
                          "rx packets": (None, 5000)})
        self.assertEqual(self.series("healthd_check_value_min"),
                         {"rta": ("seconds", 0), "pl": ("ratio", 0), "used": ("bytes", 0)})
        self.assertEqual(self.series("healthd_check_value_max"),
                         {"pl": ("ratio", 1), "used": ("bytes", 8 * 1024 * 1024)})

    def test_promtool_clean(self):
        promtool_lint(self, self.h.get("/metrics")[2])


if __name__ == "__main__":
    main()
