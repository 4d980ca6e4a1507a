"""How log lines start: sd-daemon priorities when stderr is the journal, RFC
3339 time stamps otherwise, bare lines in the one-shot modes (core/log.c)."""

import json
import os
import re
import subprocess
import tempfile
import time
import unittest

from healthd_fixture import (BIN, PLUGIN_DIR, STAMP, TIME_SCALE, WRAPPER, Healthd,
                             run_healthd)


class Stamped(unittest.TestCase):
    def test_every_server_line_is_stamped(self):
        # an isolated plugin's executor logs too: its lines are stamped alike
        config = {"checks": [{"name": "up", "plugin": "tcp", "host": "127.0.0.1",
                              "port": "1"}]}
        with Healthd(config=config) as h:
            h.get("/health/ping")
        lines = [l for l in h.log.splitlines() if "healthd:" in l]
        self.assertGreater(len(lines), 3, h.log)
        for line in lines:
            self.assertRegex(line, STAMP.pattern + "healthd: ", h.log)
        stamp = STAMP.match(lines[0]).group(0).strip()
        # a real time: parsed back, within a day of now
        t = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        self.assertLess(abs(t - time.time()), 86400, stamp)

    def test_one_shot_modes_print_bare_lines(self):
        rc, out, err = run_healthd(["--check-config", "--no-url-secret", "--config",
                                    "/nonexistent/healthd.json"])
        self.assertEqual(rc, 1, out)
        self.assertRegex(err, r"^healthd: error: /nonexistent/healthd.json: ")

    def test_unknown_format_is_named_then_auto(self):
        with Healthd(env={"HEALTHD_LOG_FORMAT": "fancy"}) as h:
            pass
        first = h.messages[0]
        self.assertEqual(first, "healthd: warning: HEALTHD_LOG_FORMAT=fancy: not auto, journal, "
                         "timestamp or plain; using auto", h.log)

    def test_plain_on_request(self):
        with Healthd(env={"HEALTHD_LOG_FORMAT": "plain"}) as h:
            pass
        lines = [l for l in h.log.splitlines() if "healthd:" in l]
        self.assertTrue(lines)
        for line in lines:
            self.assertTrue(line.startswith("healthd: "), line)


class Journal(unittest.TestCase):
    """systemd connects stderr to the journal and names that stream in
    JOURNAL_STREAM (DEV:INODE); a file stands in for the journal's socket."""

    def serve(self, journal_stream, config):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump(config, f)
            log = os.path.join(d, "stderr")
            with open(log, "wb") as out:
                st = os.fstat(out.fileno())
                env = dict(os.environ, JOURNAL_STREAM=journal_stream(st))
                env.pop("HEALTHD_LOG_FORMAT", None)
                p = subprocess.Popen(WRAPPER + [BIN, "--config", path, "--plugin-dir", PLUGIN_DIR,
                                                "--listen", "127.0.0.1:0", "--no-url-secret"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=out, env=env)
                try:
                    deadline = time.monotonic() + 15 * TIME_SCALE
                    while time.monotonic() < deadline and p.poll() is None:
                        with open(log) as f:
                            if "ready:" in f.read():
                                break
                        time.sleep(0.05)
                finally:
                    if p.poll() is None:
                        p.terminate()
                    p.wait(30 * TIME_SCALE)
            with open(log) as f:
                return p.returncode, f.read()

    def test_priorities_when_stderr_is_the_journal(self):
        rc, log = self.serve(lambda st: f"{st.st_dev}:{st.st_ino}",
                             {"checks": [{"name": "a", "plugin": "dummy"}]})
        self.assertEqual(rc, 0, log)
        lines = [l for l in log.splitlines() if "healthd:" in l]
        # info lines <6>, the auth warning <4>; no time stamp: the journal keeps its own
        self.assertIn("<4>healthd: warning: auth is off", log)
        self.assertTrue(any(l.startswith("<6>healthd: listening on ") for l in lines), log)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>healthd: ", log)

    def test_error_priority(self):
        rc, log = self.serve(lambda st: f"{st.st_dev}:{st.st_ino}",
                             {"checks": [{"name": "a", "plugin": "nosuchplugin"}]})
        self.assertEqual(rc, 1, log)
        self.assertRegex(log, r"(?m)^<3>healthd: error: .*nosuchplugin")

    def test_a_stale_journal_stream_is_not_the_journal(self):
        # inherited from a parent whose stderr was the journal; ours is not
        rc, log = self.serve(lambda st: f"{st.st_dev}:{st.st_ino + 1}",
                             {"checks": [{"name": "a", "plugin": "dummy"}]})
        self.assertEqual(rc, 0, log)
        self.assertNotIn("<6>", log)
        self.assertRegex(log, STAMP.pattern + "healthd: listening on ")


if __name__ == "__main__":
    unittest.main()
