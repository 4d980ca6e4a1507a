"""Issue 24: GET P/status in a real browser (Debian's chromium, headless,
driven by chromium-driver through python3-selenium) from a running healthd.

- the page loads with no console errors (nothing blocked by its CSP, no
  missing asset), with a row per check in the right state and a text word
  beside every colour;
- the 24 h timeline shows the transitions the test caused, one rect per span
  of one state whose tooltip counts its results;
- the page updates itself (?refresh=1, a meta refresh, no script) after a
  check flips;
- a screenshot is saved as an artifact (HEALTHD_ARTIFACT_DIR, the build's
  meson-logs) for a person to look at; doc/status-page.png is one of them.

Skipped, with the reason, only when chromium or its driver or selenium is
missing; CI installs them (.ci/bootstrap --test), and there (CI=true) their
absence fails. Time bounds scale with HEALTHD_TIME_SCALE.
"""

import datetime
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))

from healthd_fixture import TIME_SCALE, main, running  # noqa: E402
from loopback import LoopbackTestCase  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # reported by setUpModule
    webdriver = None

# The page's rows as one script reads them: one document, even while the
# page refreshes itself.
ROWS_JS = """
return Array.from(document.querySelectorAll('tr[data-check]')).map(tr => ({
    name: tr.dataset.check, state: tr.dataset.state, text: tr.innerText,
    word: tr.querySelector('.st').textContent,
    spans: Array.from(tr.querySelectorAll('svg.tl rect')).map(r => ({
        x: parseFloat(r.getAttribute('x')),
        title: r.querySelector('title').textContent}))}));
"""

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SECRET = "s3cret-status"
WAIT = 30.0 * TIME_SCALE
ARTIFACTS = os.environ.get("HEALTHD_ARTIFACT_DIR", os.getcwd())


def setUpModule():
    missing = [p for p, ok in (("chromium", CHROMIUM), ("chromium-driver", DRIVER),
                               ("python3-selenium", webdriver)) if not ok]
    if missing:
        msg = f"needs {', '.join(missing)} (.ci/bootstrap --test installs them)"
        if os.environ.get("CI") == "true":
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


def store_record(name, kind, status, time_ms, duration_ms=0, msg="", frm=0xFF):
    """One record of STATE_DIR/history.log, as core/history_store.c writes it
    (host byte order: this machine's)."""
    rec = bytearray(224)
    struct.pack_into("=IBBB", rec, 0, 0x31484448, kind, status, frm)
    struct.pack_into("=qI", rec, 8, time_ms, duration_ms)
    rec[20:20 + len(name)] = name.encode()
    rec[85:85 + len(msg)] = msg.encode()[:127]
    struct.pack_into("=I", rec, 220, zlib.crc32(bytes(rec[:220])))
    return bytes(rec)


def day_of_history(path, now_ms):
    """A day of transitions and an hour of results for four checks."""
    hour = 3600 * 1000
    days = {  # check: [(hours ago, status, message)], oldest first
        "gateway": [(30, 0, "200 in 12 ms"), (9, 2, "connection refused"),
                    (7, 0, "200 in 14 ms")],
        "orders": [(30, 0, "200 in 40 ms"), (9.1, 2, "502 from gateway"),
                   (6.9, 0, "200 in 38 ms"), (1.5, 1, "slow: 900 ms")],
        "db": [(30, 0, "SELECT 1 in 2 ms")],
        "queue": [(20, 0, "depth 3"), (16, 2, "depth 12000"), (15.5, 0, "depth 40"),
                  (4, 2, "depth 9000"), (3.8, 0, "depth 12"), (3.6, 2, "depth 9500"),
                  (3.4, 0, "depth 8")],
    }
    with open(path, "wb") as f:
        for name, changes in days.items():
            prev = 0xFF
            for ago, st, msg in changes:
                f.write(store_record(name, 2, st, now_ms - int(ago * hour), msg=msg, frm=prev))
                prev = st
            for k in range(60):  # a result a minute for the last hour
                t = now_ms - hour + k * 60000
                st = [c for c in changes if now_ms - c[0] * hour <= t][-1]
                f.write(store_record(name, 1, st[1], t, 5 + (k * 7 + len(name)) % 30, st[2]))
    return days


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--disable-gpu", "--window-size=1280,800",
                "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(arg)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")  # chromium refuses to run as root otherwise
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


class StatusPageInChromium(LoopbackTestCase):
    def setUp(self):
        super().setUp()
        self.driver = browser()
        self.addCleanup(self.driver.quit)

    def probe(self, h, name, status):
        self.srv.switch_status = status
        code, _, _ = h.get(f"/health/?checks={name}&auth={SECRET}")
        self.assertEqual(code, 200 if status == 200 else 503, h.log)

    def hold(self, h, name, ms=50):
        """Until the check's last transition (as P/history stamps it) is ms
        old: runs a millisecond apart would make spans too short to draw."""
        _, _, body = h.get(f"/health/history?check={name}&auth={SECRET}")
        t = json.loads(body)["transitions"][-1]["time"]
        at = datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() + ms / 1000
        self.wait("the wall clock", lambda: time.time() >= at)

    def wait(self, what, fn):
        deadline = time.monotonic() + WAIT
        while True:
            got = fn()
            if got:
                return got
            self.assertLess(time.monotonic(), deadline, f"{what}: not within {WAIT}s")
            time.sleep(0.1)

    def rows(self):
        """{check: {state, text, word, spans: [{x, title}]}}, or None while a
        refresh replaces the document."""
        try:
            rows = self.driver.execute_script(ROWS_JS)
        except WebDriverException:
            return None
        return {r["name"]: r for r in rows} or None

    def errors(self):
        return [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]

    def test_page_rows_timeline_and_refresh(self):
        config = {
            "checks": [
                {"name": "api", "plugin": "http", "url": self.srv.url("/switch")},
                {"name": "db", "plugin": "dummy", "result": "ok"},
                {"name": "queue", "plugin": "dummy", "result": "warning"},
                {"name": "orders", "plugin": "dummy", "result": "critical",
                 "depends_on": ["api"]},
            ],
            "groups": {"web": ["api", "orders"]},
        }
        with running(self, config, secret=SECRET) as h:
            for st in (200, 503, 200, 503):  # four states in a row
                self.probe(h, "api", st)
                self.hold(h, "api")
            self.assertEqual(h.get(f"/health/?checks=db,queue,orders&auth={SECRET}")[0], 503)
            base = f"http://{h.host}:{h.port}/health/status"
            self.driver.get(f"{base}?auth={SECRET}&refresh=1")

            rows = self.wait("the rows", self.rows)
            self.assertEqual(set(rows), {"api", "db", "queue", "orders", "true", "false"})
            states = {name: r["state"] for name, r in rows.items()}
            self.assertEqual({k: states[k] for k in ("api", "db", "queue", "orders")},
                             {"api": "fail", "db": "ok", "queue": "warn", "orders": "fail"})
            self.assertEqual(states["true"], "none")  # never ran: no state yet
            self.assertEqual(rows["api"]["word"], "CRITICAL")  # a word beside every colour
            self.assertEqual(rows["queue"]["word"], "WARNING")
            self.assertEqual(rows["true"]["word"], "PENDING")
            self.assertIn("suppressed by api", rows["orders"]["text"])
            self.assertIn("expected 200, got 503", rows["api"]["text"])
            # the timeline: a bar per span the test caused, oldest first
            spans = [r["title"] for r in rows["api"]["spans"]]
            self.assertEqual([t.split()[0] for t in spans],
                             ["OK", "CRITICAL", "OK", "CRITICAL"], spans)
            self.assertEqual(len(rows["db"]["spans"]), 1)
            self.assertEqual(self.errors(), [])
            self.driver.save_screenshot(os.path.join(ARTIFACTS, "status-page.png"))

            # api recovers: the page refreshes itself and shows it
            self.probe(h, "api", 200)
            rows = self.wait("api OK on the refreshed page",
                             lambda: (lambda r: r if r and r["api"]["state"] == "ok" else None)(
                                 self.rows()))
            self.assertNotIn("suppressed", rows["orders"]["text"])  # its own failure now
            self.assertEqual([t["title"].split()[0] for t in rows["api"]["spans"]],
                             ["OK", "CRITICAL", "OK", "CRITICAL", "OK"])
            self.assertEqual(self.errors(), [])
            self.driver.save_screenshot(os.path.join(ARTIFACTS, "status-page-recovered.png"))

    def test_results_merge_into_spans(self):
        """10 OK results, then 3 CRITICAL: two rects, each with one tooltip
        that names the state and counts the results it covers."""
        config = {"checks": [{"name": "api", "plugin": "http", "url": self.srv.url("/switch")}]}
        with running(self, config, secret=SECRET) as h:
            for st in [200] * 10 + [503] * 3:
                self.probe(h, "api", st)
            self.driver.get(f"http://{h.host}:{h.port}/health/status?auth={SECRET}")
            rows = self.wait("the rows", self.rows)
            spans = rows["api"]["spans"]
            self.assertEqual([(s["title"].split()[0], s["title"].split(", ")[-1]) for s in spans],
                             [("OK", "10 results"), ("CRITICAL", "3 results")], spans)
            self.assertLessEqual(spans[0]["x"], spans[1]["x"])
            self.assertEqual(self.errors(), [])

    def test_a_day_from_state_dir(self):
        """A day of history saved in a state_dir, as after a restart: the
        timeline draws each span where it was, one unit per minute."""
        state = self.enterContext(tempfile.TemporaryDirectory())
        now = int(time.time() * 1000)
        days = day_of_history(os.path.join(state, "history.log"), now)
        config = {"state_dir": state, "checks": [
            {"name": "gateway", "plugin": "dummy", "result": "ok"},
            {"name": "orders", "plugin": "dummy", "result": "warning", "depends_on": ["gateway"]},
            {"name": "db", "plugin": "dummy", "result": "ok"},
            {"name": "queue", "plugin": "dummy", "result": "ok"},
        ], "groups": {"shop": ["gateway", "orders"], "backend": ["db", "queue"]}}
        with running(self, config, secret=SECRET) as h:
            self.assertEqual(h.get(f"/health/?auth={SECRET}")[0], 200)
            self.driver.set_window_size(1280, 900)
            self.driver.get(f"http://{h.host}:{h.port}/health/status?auth={SECRET}")
            rows = self.wait("the rows", self.rows)
            self.assertEqual(rows["orders"]["state"], "warn")
            for name, changes in days.items():
                rects = rows[name]["spans"]
                inside = [c for c in changes if c[0] < 24]
                # a span that began before the window starts the bar at 0
                before = any(c[0] >= 24 for c in changes)
                self.assertEqual(len(rects), len(inside) + before, (name, rects))
                if before:
                    self.assertEqual(rects[0]["x"], 0)
                for rect, (ago, _, _) in zip(rects[before:], inside):
                    self.assertAlmostEqual(rect["x"], (24 - ago) * 60, delta=2, msg=name)
            self.assertEqual(self.errors(), [])
            self.driver.save_screenshot(os.path.join(ARTIFACTS, "status-page-day.png"))

    def test_public_page_has_no_messages(self):
        config = {"status_public": True,
                  "checks": [{"name": "api", "plugin": "http", "url": self.srv.url("/switch")}]}
        with running(self, config, secret=SECRET) as h:
            self.probe(h, "api", 503)
            self.driver.get(f"http://{h.host}:{h.port}/health/status")
            rows = self.wait("the rows", self.rows)
            self.assertEqual(rows["api"]["state"], "fail")
            self.assertNotIn("got 503", self.driver.page_source)
            headers = [th.text for th in self.driver.find_elements(By.CSS_SELECTOR, "thead th")]
            self.assertNotIn("Last message", headers)
            self.assertEqual(self.errors(), [])
            self.assertTrue(re.search(r"\d+ checks: \d+ passing", self.driver.page_source))


if __name__ == "__main__":
    main()
