"""`healthd --run-check NAME` as a monitoring plugin (issue 23): one status
word per line in monitoring-plugins' form (`SERVICE STATUS: message |
perfdata`), the wrapped plugin's thresholds kept in its perfdata, and the
check's deadline kept."""

import json
import os
import re
import tempfile
import unittest

from healthd_fixture import main, run_healthd


class RunCheck(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="healthd-run-check-")
        self.addCleanup(self.tmp.cleanup)

    def script(self, out, code=0):
        path = os.path.join(self.tmp.name, f"s{len(os.listdir(self.tmp.name))}")
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nprintf '%s\\n' {json.dumps(out)}\nexit {code}\n")
        os.chmod(path, 0o755)
        return path

    def run_check(self, *checks, name="c"):
        path = os.path.join(self.tmp.name, "healthd.json")
        with open(path, "w") as f:
            json.dump({"checks": [dict({"name": "c", "plugin": "exec"}, **c)
                                  for c in checks]}, f)
        rc, out, err = run_healthd(["--config", path, "--run-check", name])
        self.assertEqual(out.count("\n"), 1, out + err)
        return rc, out.rstrip("\n")

    def status_line(self, out, code=0):
        rc, line = self.run_check({"command": [self.script(out, code)]})
        self.assertEqual(rc, code, line)
        return line.split(" |")[0]

    def test_one_status_word(self):
        # the message's own word is not repeated
        self.assertEqual(self.status_line("OK: all good"), "OK: all good")
        self.assertEqual(self.status_line("DISK OK - free space: / 3 MiB"),
                         "DISK OK - free space: / 3 MiB")
        self.assertEqual(self.status_line("HTTP WARNING: slow", 1), "HTTP WARNING: slow")
        # a message without one gets ours
        self.assertEqual(self.status_line("all good"), "OK - all good")
        self.assertEqual(self.status_line("db is down", 2), "CRITICAL - db is down")
        self.assertEqual(self.status_line("Everything OK"), "OK - Everything OK")
        # the exit code is the status: a contradicting word is made ours
        self.assertEqual(self.status_line("DISK OK - but exit 2", 2), "DISK CRITICAL - but exit 2")

    def test_thresholds_kept_in_perfdata(self):
        out = ("PING OK - rta 0.5ms | rta=0.5ms;100;500;0; pl=0%;20;60;0;100 "
               "'it''s'=3 users=2;;5")
        rc, line = self.run_check({"command": [self.script(out)]})
        self.assertEqual(rc, 0, line)
        text, perf = line.split(" | ")
        self.assertEqual(text, "PING OK - rta 0.5ms")
        items = perf.split(" ")
        self.assertRegex(items[0], r"^time=\d+\.\d{3}s;;;0$")
        self.assertEqual(items[1:], ["'rta'=0.5ms;100;500;0", "'pl'=0%;20;60;0;100",
                                     "'it''s'=3", "'users'=2;;5"])

    def test_the_plugins_own_time_is_not_repeated(self):
        rc, line = self.run_check({"command": [self.script("TCP OK | time=0.004s;1;2;0;10")]})
        self.assertEqual(line, "TCP OK | 'time'=0.004s;1;2;0;10")

    def test_deadline_kept(self):
        rc, line = self.run_check({"command": ["/bin/sleep", "30"], "timeout_ms": 300})
        self.assertEqual(rc, 2, line)
        self.assertRegex(line, r"^CRITICAL - .*\b300 ms\b.* \| time=0\.\d{3}s;;;0$")


if __name__ == "__main__":
    main()
