"""http plugin against a real loopback HTTP server, through the real healthd binary.

Each test starts healthd with the checks it needs, asks GET /health/?verbose=1,
and checks both the answer and what the loopback server saw.
"""

import contextlib
import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from healthd_fixture import TIME_SCALE, Healthd, main  # noqa: E402
from loopback import LoopbackTestCase, closed_port  # noqa: E402

SECRET_PASSWORD = "s3cret-pw-4711"
SECRET_TOKEN = "tok-0815-do-not-log"
DEADLINE_GRACE_MS = 50  # HEALTHD_DEADLINE_GRACE_MS: how long the host still takes a result
# what the host logs when it had to time a run out itself (in process, isolated)
HOST_CUT = ("no answer after", "past its", "after its deadline")


class HttpPluginTest(LoopbackTestCase):
    @contextlib.contextmanager
    def healthd(self, *checks, env=None, workers=None):
        """healthd with these http checks; asserts a clean exit and no secret in its log."""
        config = {"checks": [dict({"plugin": "http"}, **c) for c in checks]}
        if workers is not None:
            config["workers"] = workers
        with Healthd(config=config, env=env) as h:
            yield h
            self.assertEqual(h.stop(), 0, h.log)
            for secret in (SECRET_PASSWORD, SECRET_TOKEN):
                self.assertNotIn(secret, h.log)

    def probe(self, h, *names):
        """One GET /health/?checks=NAMES&verbose=1: (http status, checks, details).
        The request's own timeout is only a hang guard: how long runs took is
        read from what the server reports, never from the client's stopwatch."""
        status, body = h.get_json("/health/?checks=" + ",".join(names) + "&verbose=1",
                                  timeout=10 * TIME_SCALE)
        self.assertEqual(status, 200 if all(body["checks"].values()) else 503, body)
        for name in names:
            self.assertNotIn(SECRET_PASSWORD, body["details"][name]["output"])
            self.assertNotIn(SECRET_TOKEN, body["details"][name]["output"])
        return status, body["checks"], body["details"]

    def probe_one(self, h, name="api"):
        """(passed, output) of one fresh run of check `name`."""
        _, checks, details = self.probe(h, name)
        self.assertFalse(details[name]["cached"])
        return checks[name], details[name]["output"]

    def assertTimeout(self, output, timeout_ms):
        """output is "timeout after N ms", N the run's budget: the deadline minus
        the run's start. The host sets the deadline when it queues the run, so N
        is the configured timeout less the (small, unloaded) queueing time."""
        m = re.fullmatch(r"timeout after (\d+) ms", output)
        self.assertIsNotNone(m, output)
        self.assertGreaterEqual(int(m.group(1)), timeout_ms - 20 * TIME_SCALE, output)
        self.assertLessEqual(int(m.group(1)), timeout_ms, output)

    def assertCutAtDeadline(self, detail, timeout_ms):
        """The run, as the server measured it, lasted about its timeout: not
        cut short (its budget less a little queueing), and over by the deadline
        plus the grace in which the host still takes a result."""
        self.assertFalse(detail["cached"], detail)
        self.assertGreaterEqual(detail["duration_ms"], timeout_ms - 50 * TIME_SCALE, detail)
        self.assertLessEqual(detail["duration_ms"], timeout_ms + DEADLINE_GRACE_MS, detail)

    def assertNotCutByTheHost(self, h):
        """The plugin returned by its deadline: the host never had to time a
        run out (in process or isolated, it logs a line when it does)."""
        for line in HOST_CUT:
            self.assertNotIn(line, h.log)

    def requests_to(self, path):
        return [r for r in self.srv.snapshot()[1] if r.path == path]

    def requests_to_locked(self, path):
        """requests_to() for wait_for(), which already holds the server's lock."""
        return [r for r in self.srv.requests if r.path == path]

    # -- status ------------------------------------------------------------

    def test_200_expected_passes(self):
        with self.healthd({"name": "api", "url": self.srv.url("/ok")}) as h:
            status, checks, details = self.probe(h, "api")
            self.assertEqual(status, 200)
            self.assertEqual(checks, {"api": True})
            self.assertEqual(details["api"]["status"], "pass")
            self.assertRegex(details["api"]["output"], r"^200 in \d+ ms$")
            self.assertEqual(len(self.requests_to("/ok")), 1)

    def test_204_when_200_expected_fails(self):
        with self.healthd({"name": "api", "url": self.srv.url("/no-content")}) as h:
            status, checks, details = self.probe(h, "api")
            self.assertEqual(status, 503)
            self.assertEqual(checks, {"api": False})
            self.assertEqual(details["api"]["status"], "fail")
            self.assertEqual(details["api"]["output"], "expected 200, got 204")

    def test_expect_status_204_passes_on_204(self):
        with self.healthd({"name": "api", "url": self.srv.url("/no-content"),
                           "expect_status": 204}) as h:
            self.assertEqual(self.probe_one(h)[0], True)

    def test_expect_status_is_exact(self):
        # 200 is not "good enough" when 204 is expected.
        with self.healthd({"name": "api", "url": self.srv.url("/ok"),
                           "expect_status": 204}) as h:
            self.assertEqual(self.probe_one(h), (False, "expected 204, got 200"))

    def test_500_fails(self):
        with self.healthd({"name": "api", "url": self.srv.url("/error")}) as h:
            self.assertEqual(self.probe_one(h), (False, "expected 200, got 500"))

    def test_big_body_is_not_buffered_and_passes(self):
        with self.healthd({"name": "api", "url": self.srv.url("/big"),
                           "timeout_ms": 5000}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)
            self.assertRegex(output, r"^200 in \d+ ms$")

    def test_endless_body_is_cut_off(self):
        # The body is counted and dropped after 1 MiB: the plugin hangs up
        # instead of reading 256 MiB it does not need.
        with self.healthd({"name": "api", "url": self.srv.url("/endless"),
                           "timeout_ms": 10000}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)
            sends = self.srv.wait_for(lambda: list(self.srv.endless_sends), timeout=10)
            self.assertEqual(len(sends), 1, sends)
            sent, completed = sends[0]
            self.assertFalse(completed, f"the client read all {sent} bytes")
            self.assertLess(sent, 64 * 1024 * 1024)

    # -- redirects ---------------------------------------------------------

    def test_redirect_is_followed(self):
        with self.healthd({"name": "api", "url": self.srv.url("/redirect")}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)
            self.assertIn("after 1 redirect", output)
            self.assertEqual([r.path for r in self.srv.snapshot()[1]], ["/redirect", "/ok"])

    def test_max_redirects_0_takes_the_first_answer(self):
        with self.healthd({"name": "api", "url": self.srv.url("/redirect"),
                           "max_redirects": 0, "expect_status": 302}) as h:
            self.assertTrue(self.probe_one(h)[0])
            self.assertEqual([r.path for r in self.srv.snapshot()[1]], ["/redirect"])

    def test_redirect_loop_stops_at_the_cap(self):
        with self.healthd({"name": "api", "url": self.srv.url("/redirect-loop"),
                           "max_redirects": 3}) as h:
            passed, output = self.probe_one(h)
            self.assertFalse(passed)
            self.assertEqual(output, "too many redirects (more than 3)")
            # the first request and 3 redirects; never a 5th
            self.assertEqual(len(self.requests_to("/redirect-loop")), 4)

    def test_redirect_to_another_protocol_is_refused(self):
        with self.healthd({"name": "api", "url": self.srv.url("/redirect-ftp")}) as h:
            passed, output = self.probe_one(h)
            self.assertFalse(passed)
            self.assertTrue(output.startswith("redirect refused:"), output)
            self.assertIn("ftp", output)
            self.assertEqual([r.path for r in self.srv.snapshot()[1]], ["/redirect-ftp"])

    # -- transport failures ------------------------------------------------

    def test_slow_answer_fails_at_the_timeout(self):
        with self.healthd({"name": "api", "url": self.srv.url("/slow"),
                           "timeout_ms": 500}) as h:
            _, checks, details = self.probe(h, "api")
            self.assertEqual(checks, {"api": False})
            self.assertTimeout(details["api"]["output"], 500)
            # cut at 500 ms by the server's own measure; /slow lasts 10 s
            self.assertCutAtDeadline(details["api"], 500)
            # The plugin itself gave up (curl hung up), not just the host: the
            # server saw the client leave long before /slow ends (the hang
            # guard below), and the host never timed the run out itself.
            hangups = self.srv.wait_for(lambda: list(self.srv.slow_hangups),
                                        timeout=3 * TIME_SCALE)
            self.assertEqual(len(hangups), 1, hangups)
            self.assertIsNotNone(hangups[0], "the client never hung up")
            print(f"timeout_ms 500: run took {details['api']['duration_ms']} ms, "
                  f"server saw the client leave after {hangups[0] * 1000:.0f} ms",
                  file=sys.stderr)
        self.assertNotCutByTheHost(h)  # read after stop: a late result is logged by then

    def test_check_works_again_after_a_timeout(self):
        # A timed-out run leaves the handle usable, for the next run of the same
        # check and for the other checks.
        with self.healthd({"name": "slow", "url": self.srv.url("/slow"), "timeout_ms": 500},
                          {"name": "api", "url": self.srv.url("/ok")}) as h:
            for _ in range(3):
                passed, output = self.probe_one(h, "slow")
                self.assertFalse(passed)
                self.assertTimeout(output, 500)
            self.assertTrue(self.probe_one(h, "api")[0])
            hangups = self.srv.wait_for(lambda: len(self.srv.slow_hangups) == 3,
                                        timeout=3 * TIME_SCALE)
            self.assertTrue(hangups, self.srv.slow_hangups)

    @unittest.skipIf(TIME_SCALE > 1, "run under a slow wrapper: the plugin's 25 ms margin "
                     "before the deadline is not a bound valgrind can keep")
    def test_run_returns_by_its_deadline(self):
        # The plugin gives up a little before the deadline, so the host takes its
        # result instead of timing it out (and the worker is free at once).
        with self.healthd({"name": "slow", "url": self.srv.url("/slow"),
                           "timeout_ms": 500}) as h:
            for _ in range(3):
                passed, output = self.probe_one(h, "slow")
                self.assertFalse(passed)
                self.assertTimeout(output, 500)
            self.assertTrue(self.srv.wait_for(lambda: len(self.srv.slow_hangups) == 3))
            m = h.metrics()
            label = frozenset({"check": "slow"}.items())
            self.assertEqual(m[("healthd_check_runs_total", label)], 3)
            self.assertEqual(m[("healthd_check_failures_total", label)], 3)
            # counted as timeouts (the plugin says so, ABI 1.1), yet the host
            # never had to expire a run itself
            self.assertEqual(m[("healthd_check_timeouts_total", label)], 3)
        self.assertNotCutByTheHost(h)

    @unittest.skipIf(TIME_SCALE > 1, "LD_PRELOAD shim and valgrind do not mix")
    def test_slow_dns_keeps_the_deadline(self):
        # a name lookup that takes 2 s must not hold a 300 ms check: libcurl
        # leaves its resolver thread behind (CURLOPT_QUICK_EXIT), and the clean
        # exit after it (asserted by healthd()) shows the plugin stays mapped
        shim = os.path.join(os.environ["HEALTHD_FIXTURE_DIR"], "slowdns.so")
        env = {"LD_PRELOAD": shim}
        if os.environ.get("HEALTHD_SANITIZED"):
            # ASan wants its runtime first; the shim allocates nothing
            env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        with self.healthd({"name": "dns", "url": "http://slow.invalid:1/", "timeout_ms": 300},
                          env=env) as h:
            _, checks, details = self.probe(h, "dns")
            self.assertEqual(checks, {"dns": False})
            self.assertEqual(details["dns"]["output"], "timeout after 300 ms")
            # cut at 300 ms by the server's own measure, not after the 2 s lookup
            self.assertCutAtDeadline(details["dns"], 300)
        self.assertNotCutByTheHost(h)  # the plugin returned in time

    def test_closed_port_is_connection_refused(self):
        url = f"http://127.0.0.1:{closed_port()}/ok"
        with self.healthd({"name": "api", "url": url}) as h:
            passed, output = self.probe_one(h)
            self.assertFalse(passed)
            self.assertEqual(output, "connection refused")

    def test_dropped_connection_fails(self):
        with self.healthd({"name": "api", "url": self.srv.url("/drop")}) as h:
            self.assertEqual(self.probe_one(h), (False, "connection closed without a response"))
            self.assertGreaterEqual(len(self.requests_to("/drop")), 1)

    def test_sigterm_during_a_run_exits_cleanly(self):
        # destroy() frees the curl handle: the host must not call it while
        # curl_easy_perform() still runs. Under ASan a use-after-free or leak
        # here turns the exit code non-zero.
        with self.healthd({"name": "api", "url": self.srv.url("/slow"),
                           "timeout_ms": 10000}) as h:
            answers = []
            t = threading.Thread(target=lambda: answers.append(
                h.get_json("/health/?checks=api", timeout=20)))
            t.start()
            self.assertTrue(self.srv.wait_for(lambda: len(self.requests_to_locked("/slow")) == 1))
            self.assertEqual(h.stop(), 0, h.log)
            t.join(20)
            self.assertFalse(t.is_alive())
            self.assertEqual(answers[0][0], 503)
            self.assertEqual(answers[0][1]["checks"], {"api": False})

    # -- requests as configured --------------------------------------------

    def test_custom_headers_reach_the_server(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"),
                           "header": {"X-Probe": "abc 123", "X-Empty": ""},
                           "header:X-Flat": "flat"}) as h:
            self.assertTrue(self.probe_one(h)[0])
            (req,) = self.requests_to("/echo")
            self.assertEqual(req.method, "GET")
            self.assertEqual(req.headers.get("x-probe"), "abc 123")
            self.assertEqual(req.headers.get("x-empty"), "")
            self.assertEqual(req.headers.get("x-flat"), "flat")
            self.assertEqual(req.headers.get("user-agent"), "healthd-http/1.0")

    def test_header_overrides_user_agent(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"),
                           "header": {"User-Agent": "probe/2"}}) as h:
            self.assertTrue(self.probe_one(h)[0])
            (req,) = self.requests_to("/echo")
            self.assertEqual(req.headers.get("user-agent"), "probe/2")

    def test_head_is_a_head_request(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"), "method": "HEAD"}) as h:
            self.assertTrue(self.probe_one(h)[0])
            self.assertTrue(self.probe_one(h)[0])  # and the kept-alive connection survives it
            self.assertEqual([r.method for r in self.requests_to("/echo")], ["HEAD", "HEAD"])
            self.assertEqual(self.srv.snapshot()[0], 1)

    def test_method_is_case_insensitive(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"), "method": "head"}) as h:
            self.assertTrue(self.probe_one(h)[0])
            self.assertEqual([r.method for r in self.requests_to("/echo")], ["HEAD"])

    def test_post_sends_an_empty_body(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"), "method": "POST"}) as h:
            self.assertTrue(self.probe_one(h)[0])
            (req,) = self.requests_to("/echo")
            self.assertEqual(req.method, "POST")
            self.assertEqual(req.headers.get("content-length"), "0")
            self.assertNotIn("content-type", req.headers)

    def test_post_redirect_becomes_get_as_in_requests(self):
        with self.healthd({"name": "api", "url": self.srv.url("/redirect"),
                           "method": "POST"}) as h:
            self.assertTrue(self.probe_one(h)[0])
            self.assertEqual([(r.method, r.path) for r in self.srv.snapshot()[1]],
                             [("POST", "/redirect"), ("GET", "/ok")])

    def test_put_sends_content_length_0(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"), "method": "PUT"}) as h:
            self.assertTrue(self.probe_one(h)[0])
            (req,) = self.requests_to("/echo")
            self.assertEqual(req.method, "PUT")
            self.assertEqual(req.headers.get("content-length"), "0")

    # -- connections ---------------------------------------------------------

    def test_runs_reuse_one_connection(self):
        with self.healthd({"name": "api", "url": self.srv.url("/ok")}) as h:
            # instantiate() does not touch the network
            self.assertEqual(self.srv.snapshot()[0], 0)
            for _ in range(10):
                passed, output = self.probe_one(h)
                self.assertTrue(passed, output)
            connections, reqs = self.srv.snapshot()
            self.assertEqual(len([r for r in reqs if r.path == "/ok"]), 10)
            self.assertEqual(connections, 1)
            print(f"10 runs: {len(reqs)} requests over {connections} TCP connection(s)",
                  file=sys.stderr)

    def test_checks_run_concurrently(self):
        # 4 checks of 400 ms each run at the same time, not one after the other:
        # read from the server's own stamps, each run's end (/metrics) and
        # duration (details), there is a moment when all four were running.
        names = [f"d{i}" for i in range(4)]
        checks = [{"name": n, "url": self.srv.url("/delay?ms=400"), "timeout_ms": 3000}
                  for n in names]
        with self.healthd(*checks, workers=8) as h:
            _, result, details = self.probe(h, *names)
            self.assertEqual(result, {n: True for n in names})
            m = h.metrics()
            ends, starts = [], []
            for n in names:
                self.assertFalse(details[n]["cached"], details)
                self.assertGreaterEqual(details[n]["duration_ms"], 400, details)
                end_ms = 1000 * m[("healthd_check_last_run_timestamp_seconds",
                                   frozenset({"check": n}.items()))]
                ends.append(end_ms)
                starts.append(end_ms - details[n]["duration_ms"])
            # one after the other, the last would start after the first ended
            self.assertLess(max(starts), min(ends), (starts, ends, details))

    # -- proxies -------------------------------------------------------------

    def test_proxy_option_is_used(self):
        with self.healthd({"name": "api", "url": "http://health.invalid/ok",
                           "proxy": self.srv.url("")}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)
            (req,) = self.srv.snapshot()[1]
            self.assertTrue(req.proxied)
            self.assertEqual(req.path, "http://health.invalid/ok")

    def test_proxy_environment_is_ignored(self):
        proxy = self.srv.url("")
        env = {k: proxy for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                  "all_proxy", "ALL_PROXY")}
        url = f"http://127.0.0.1:{closed_port()}/ok"
        with self.healthd({"name": "api", "url": url}, env=env) as h:
            self.assertEqual(self.probe_one(h), (False, "connection refused"))
            self.assertEqual(self.srv.snapshot(), (0, []))

    # -- credentials ---------------------------------------------------------

    def test_url_credentials_are_sent_but_never_shown(self):
        url = f"http://probe:{SECRET_PASSWORD}@127.0.0.1:{self.srv.port}/basic"
        bad = f"http://probe:{SECRET_PASSWORD}@127.0.0.1:{closed_port()}/basic"
        with self.healthd({"name": "api", "url": url}, {"name": "bad", "url": bad}) as h:
            # probe() and healthd() assert the password is in no output and no log line
            self.assertTrue(self.probe_one(h, "api")[0])
            self.assertEqual(self.probe_one(h, "bad"), (False, "connection refused"))

    def test_authorization_header_is_sent_but_never_shown(self):
        with self.healthd({"name": "api", "url": self.srv.url("/echo"),
                           "header": {"Authorization": f"Bearer {SECRET_TOKEN}"},
                           "expect_status": 204}) as h:
            self.assertEqual(self.probe_one(h), (False, "expected 204, got 200"))
            (req,) = self.requests_to("/echo")
            self.assertEqual(req.headers.get("authorization"), f"Bearer {SECRET_TOKEN}")

    def test_credential_header_turns_redirects_off(self):
        # curl passes custom headers on to whatever host a redirect names; with
        # one that looks like a credential, the redirect is not followed
        with self.healthd({"name": "api", "url": self.srv.url("/redirect"),
                           "header": {"X-Api-Key": SECRET_TOKEN}}) as h:
            self.assertEqual(self.probe_one(h), (False, "expected 200, got 302"))
            self.assertEqual(self.requests_to("/ok"), [])


if __name__ == "__main__":
    main()
