"""Issue 23: one log line per check state change, summarised while a check
flaps (core/transitions.c), for request-driven and background checks alike.

The http plugin (in its executor) asks a loopback server's /switch route,
whose status the test sets; a request-driven check runs once per request, so
the test drives each change. Lines are read after healthd stopped (its log is
then complete) or waited for, bounded by WAIT (scaled by HEALTHD_TIME_SCALE).
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))

from healthd_fixture import TIME_SCALE, Healthd, main  # noqa: E402
from loopback import LoopbackTestCase  # noqa: E402

WAIT = 20.0 * TIME_SCALE
SPAN = r"(\d+ms|\d+\.\ds|\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh)"
MAX_LINES = 5  # TRANSITIONS_MAX_LINES


def changes(messages, name):
    return [m for m in messages if f": check {name}: " in m]


class StateChanges(LoopbackTestCase):
    def wait(self, fn, h):
        deadline = time.monotonic() + WAIT
        while not fn():
            self.assertLess(time.monotonic(), deadline, h.log)
            time.sleep(0.02)

    def probe(self, h, name, status):
        self.srv.switch_status = status
        code, _, _ = h.get(f"/health/?checks={name}")
        self.assertEqual(code, 200 if status == 200 else 503)

    def test_a_line_per_change_with_the_time_in_the_old_state(self):
        config = {"checks": [{"name": "api", "plugin": "http", "url": self.srv.url("/switch")}]}
        with Healthd(config=config) as h:
            self.probe(h, "api", 200)   # first result OK: no line
            self.probe(h, "api", 200)
            self.probe(h, "api", 503)
            self.probe(h, "api", 503)   # no change, no line
            self.probe(h, "api", 200)
        lines = changes(h.messages, "api")
        self.assertEqual(len(lines), 2, h.log)
        self.assertRegex(lines[0], r"^healthd: warning: check api: OK -> CRITICAL after "
                         + SPAN + r" in OK: expected 200, got 503$")
        self.assertRegex(lines[1], r"^healthd: check api: CRITICAL -> OK after " + SPAN
                         + r" in CRITICAL: 200 in ")

    def test_a_first_result_that_is_not_ok(self):
        self.srv.switch_status = 500
        config = {"checks": [{"name": "api", "plugin": "http", "url": self.srv.url("/switch")}]}
        with Healthd(config=config) as h:
            self.probe(h, "api", 500)
        lines = changes(h.messages, "api")
        self.assertEqual(len(lines), 1, h.log)
        self.assertRegex(lines[0], r"^healthd: warning: check api: CRITICAL at its first "
                         r"result: expected 200, got 500")

    def test_flapping_is_rate_limited(self):
        config = {"checks": [{"name": "api", "plugin": "http", "url": self.srv.url("/switch")}]}
        with Healthd(config=config) as h:
            self.probe(h, "api", 200)
            for i in range(3 * MAX_LINES):  # well within the 60 s window
                self.probe(h, "api", 503 if i % 2 == 0 else 200)
        # the state-change lines; beside them the history's flap detection
        # says once that the check flaps (tests/integration/test_history.py)
        lines = [m for m in changes(h.messages, "api") if " -> " in m]
        self.assertEqual(len(lines), MAX_LINES, h.log)
        self.assertRegex(lines[-1], r"\(flapping: 5 state changes within 60 s; further ones "
                         r"are summarised\)$")
        self.assertEqual(len(changes(h.messages, "api")), MAX_LINES + 1, h.log)
        # the summary comes at the window's end (tests/unit/test_transitions.c)

    def test_background_checks_log_their_changes_too(self):
        config = {"checks": [{"name": "bg", "plugin": "http", "url": self.srv.url("/switch"),
                              "interval_ms": 100}]}
        with Healthd(config=config) as h:
            self.wait(lambda: h.get("/health/?checks=bg")[0] == 200, h)  # its first result
            self.srv.switch_status = 503
            self.wait(lambda: changes(h.messages, "bg"), h)
        self.assertRegex(changes(h.messages, "bg")[0],
                         r"^healthd: warning: check bg: OK -> CRITICAL after " + SPAN)


if __name__ == "__main__":
    main()
