"""Issue 23: a group's verdict does not depend on how often a prober asks.

A check that takes 1.5 s behind a group with timeout_ms 900: when the budget
runs out before the check's run ends, the group answers the check's last
completed result if it is at most max_result_age_ms old (verbose: "cached"
true and its "age_ms"), else fails. Probing "every 1 s" (each second probe
joins the run the one before started) and "every 2 s" (each probe starts a
run) must give the same verdicts. The periods are driven by events, not
sleeps: "1 s" sends the next probe as soon as the last answered, while the
run is still going; "2 s" waits until the run's result is in /metrics.
"""

import json
import os
import tempfile
import time
import unittest

from healthd_fixture import PLUGIN_DIR, TIME_SCALE, Healthd, main, run_healthd

WAIT = 20.0 * TIME_SCALE
SLOW_MS = int(1500 * TIME_SCALE)
BUDGET_MS = int(900 * TIME_SCALE)
PROBES = 4
LAST_RUN = ("healthd_check_last_run_timestamp_seconds", frozenset({("check", "slow")}))


def config(**group):
    return {"checks": [{"name": "slow", "plugin": "dummy", "delay_ms": SLOW_MS,
                        "timeout_ms": 4 * SLOW_MS}],
            "groups": {"ready": dict({"checks": ["slow"], "timeout_ms": BUDGET_MS}, **group)}}


class ProbePeriod(unittest.TestCase):
    def probe(self, h):
        st, _, data = h.get("/health/ready?verbose=1", timeout=WAIT)
        return st, json.loads(data)["details"]["slow"]

    def result_after(self, h, before):
        """Waits for a run's result newer than before (a last-run stamp or None)."""
        deadline = time.monotonic() + WAIT
        while True:
            stamp = h.metrics().get(LAST_RUN)
            if stamp is not None and stamp != before:
                return stamp
            self.assertLess(time.monotonic(), deadline, "no new result in /metrics")
            time.sleep(0.02)

    def every_1s(self, h):
        """Probe, probe again at once (joining the run), let the run end; repeat."""
        answers, stamp = [], None
        while len(answers) < PROBES:
            answers.append(self.probe(h))
            answers.append(self.probe(h))
            stamp = self.result_after(h, stamp)
        return answers

    def every_2s(self, h):
        """Probe, then let its run end before the next."""
        answers, stamp = [], None
        while len(answers) < PROBES:
            answers.append(self.probe(h))
            stamp = self.result_after(h, stamp)
        return answers

    def verdicts(self, answers):
        return [st for st, _ in answers]

    def test_same_verdicts_at_either_period(self):
        with Healthd(config=config()) as h:
            fast = self.every_1s(h)
        with Healthd(config=config()) as h:
            slow = self.every_2s(h)
        # the first probe has no earlier result; every later one has one
        expect = [503] + [200] * (PROBES - 1)
        self.assertEqual(self.verdicts(fast), expect, fast)
        self.assertEqual(self.verdicts(slow), expect, slow)
        self.assertEqual(fast[0][1]["output"], f"timeout after {BUDGET_MS} ms (group timeout_ms)")
        # at "2 s" each run outlasts its probe's budget: the answer is the last
        # run's, marked as such
        for st, d in slow[1:]:
            self.assertTrue(d["cached"], d)
            self.assertGreaterEqual(d["age_ms"], 0, d)
            self.assertEqual(d["output"], f"ok after {SLOW_MS} ms")
        self.assertNotIn("age_ms", slow[0][1])

    def test_a_result_older_than_max_result_age_ms_is_not_used(self):
        # the last result came in before the probe was sent, so at the budget's
        # end it is at least BUDGET_MS old: above this age, at either period
        cfg = config(max_result_age_ms=BUDGET_MS // 2)
        with Healthd(config=cfg) as h:
            fast = self.every_1s(h)
        with Healthd(config=cfg) as h:
            slow = self.every_2s(h)
        self.assertEqual(self.verdicts(slow), [503] * PROBES, slow)
        for st, d in slow:
            self.assertFalse(d["cached"], d)
            self.assertEqual(d["output"], f"timeout after {BUDGET_MS} ms (group timeout_ms)")
        # "1 s": a probe that joins a run in time gets its fresh result
        self.assertEqual(self.verdicts(fast)[0::2], [503] * (PROBES // 2), fast)

    def test_zero_turns_earlier_results_off(self):
        with Healthd(config=config(max_result_age_ms=0)) as h:
            slow = self.every_2s(h)
        self.assertEqual(self.verdicts(slow), [503] * PROBES, slow)


class BadMaxResultAge(unittest.TestCase):
    def test_refused_in_one_line(self):
        for value, got in ((-1, "-1"), (86400001, "86400001"), ("60000", "a string")):
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "healthd.json")
                with open(path, "w") as f:
                    json.dump(config(max_result_age_ms=value), f)
                rc, out, err = run_healthd(["--config", path, "--plugin-dir", PLUGIN_DIR,
                                            "--check-config", "--no-url-secret"])
            self.assertEqual(rc, 1, out + err)
            self.assertEqual(err.replace(path, "CONFIG").strip(),
                             "healthd: error: CONFIG: groups.ready.max_result_age_ms: expected "
                             f"an integer from 0 to 86400000, got {got}")


if __name__ == "__main__":
    main()
