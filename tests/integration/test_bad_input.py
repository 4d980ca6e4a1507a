"""SPEC section 7: whatever a client sends, healthd answers 4xx or closes the
connection, keeps serving, does not grow, and never logs the secret.

One server for the whole corpus, so that what one request breaks, the next
one (and the final checks) would see."""

import os
import socket
import threading
import time
import unittest

from healthd_fixture import ServerTest, TIME_SCALE, Healthd, read_until_closed, running

SECRET = "corpus-s3cret"
LIMITS = {"max_connections": 256, "idle_timeout_s": 2, "max_request_bytes": 32768,
          "max_names": 1000}
CONFIG = {"limits": LIMITS, "checks": [{"name": "foo", "plugin": "dummy"}]}


def status_of(reply):
    """The status code of the first response in reply, or None if there was none."""
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class BadInput(ServerTest):
    CONFIG = CONFIG
    SECRET = SECRET

    def send(self, data, timeout=3):
        return self.h.raw(data, timeout=timeout * TIME_SCALE)

    def assert_4xx_or_closed(self, data, allowed=None):
        """A 4xx (one of `allowed`, if given) or a closed connection."""
        reply = self.send(data)
        code = status_of(reply)
        if code is not None:
            if allowed:
                self.assertIn(code, allowed, reply[:200])
            else:
                self.assertGreaterEqual(code, 400, reply[:200])
                self.assertLess(code, 500, reply[:200])
        self.assert_ping()
        return code

    def assert_ping(self):
        t0 = time.monotonic()
        st, _, body = self.h.get("/health/ping", timeout=5 * TIME_SCALE)
        self.assertEqual((st, body), (200, b"pong"))
        self.assertLess(time.monotonic() - t0, 1.0 * TIME_SCALE)

    def request(self, target, extra=b""):
        return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"

    # too large
    def test_100kb_url(self):
        self.assert_4xx_or_closed(self.request(b"/health/?checks=" + b"a" * 100000), {414})

    def test_64kb_header(self):
        self.assert_4xx_or_closed(self.request(b"/health/ping", b"X-Big: " + b"a" * 65536 + b"\r\n"),
                                  {431})

    def test_10000_names(self):
        names = b",".join(b"n%d" % (i % 10) for i in range(10000))
        self.assert_4xx_or_closed(self.request(b"/health/?auth=" + SECRET.encode() +
                                               b"&checks=" + names), {400})

    def test_huge_body(self):
        self.assert_4xx_or_closed(b"POST /health/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000"
                                  b"\r\n\r\n" + b"a" * 100000)

    # malformed
    def test_garbage_request_line(self):
        self.assert_4xx_or_closed(b"\x00\x01\x02 garbage \xff\r\n\r\n")

    def test_http_0_9(self):
        self.assert_4xx_or_closed(b"GET /health/ping\r\n\r\n")

    def test_missing_host(self):
        self.assert_4xx_or_closed(b"GET /health/ping HTTP/1.1\r\n\r\n", {400})

    def test_unknown_version(self):
        # 505 HTTP Version Not Supported is the one 5xx RFC 9110 has for this
        self.assert_4xx_or_closed(b"GET /health/ping HTTP/7.1\r\nHost: x\r\n\r\n", {400, 505})

    def test_truncated_request(self):
        self.assert_4xx_or_closed(b"GET /health/ping HTTP/1.1\r\nHost:")

    # odd but well-formed: answered, and selects nothing that is not registered
    def test_odd_percent_encoding_selects_nothing(self):
        for q in (b"%zz", b"%4", b"%", b"%%", b"foo%", b"%00", b"foo%00", b"%ff%fe", b"\xff\xfe",
                  b"%C0%AF", b"fo%6f%00"):
            reply = self.send(self.request(b"/health/?auth=" + SECRET.encode() + b"&checks=" + q))
            self.assertEqual(status_of(reply), 200, q)
            self.assertIn(b'"checks":{}', reply, q)
        self.assert_ping()

    def test_body_on_get(self):
        reply = self.send(self.request(b"/health/ping", b"Content-Length: 5\r\n") + b"hello")
        self.assertEqual(status_of(reply), 200)

    def test_pipelined(self):
        reply = self.send(self.request(b"/health/ping") +
                          self.request(b"/health/?checks=foo&auth=" + SECRET.encode(),
                                       b"Connection: close\r\n"))
        self.assertEqual(reply.count(b"HTTP/1.1 200 OK"), 2, reply)
        self.assertLess(reply.index(b"pong"), reply.index(b'"foo":true'))

    # slow and many
    def test_slowloris_is_closed_and_starves_nothing(self):
        s = socket.create_connection((self.h.host, self.h.port))
        s.settimeout(0.2)
        closed = False
        t0 = time.monotonic()
        try:
            for ch in b"GET /health/ping HTTP/1.1\r\nX-Slow: ":
                s.sendall(bytes([ch]))
                self.assert_ping()  # everyone else is served meanwhile
                time.sleep(0.05)
            # then silence: the idle timeout must close it
            deadline = time.monotonic() + (LIMITS["idle_timeout_s"] + 3) * TIME_SCALE
            while time.monotonic() < deadline:
                try:
                    if s.recv(4096) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    closed = True
                    break
        finally:
            s.close()
        self.assertTrue(closed, f"still open after {time.monotonic() - t0:.1f} s")

    def test_many_idle_connections(self):
        socks = []
        try:
            for _ in range(2000):
                try:
                    socks.append(socket.create_connection((self.h.host, self.h.port), timeout=2))
                except OSError:
                    break
            self.assertGreaterEqual(len(socks), LIMITS["max_connections"])
        finally:
            for s in socks:
                s.close()
        # the slots come back at once when the clients go
        deadline = time.monotonic() + 5 * TIME_SCALE
        while True:
            try:
                self.assert_ping()
                break
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # and afterwards
    def test_zz_after_everything(self):
        """Runs last (by name): memory back to where it was, no secret in the log."""
        pid = self.h.proc.pid

        def round_of_abuse():
            for data in (self.request(b"/health/?checks=" + b"a" * 100000),
                         self.request(b"/health/?auth=" + SECRET.encode() + b"&checks=" +
                                      b",".join(b"foo" for _ in range(999))),
                         b"\x00garbage\r\n\r\n"):
                self.send(data, timeout=1)
            for _ in range(200):
                self.h.get("/health/?checks=foo&auth=" + SECRET)

        # one round first: what the first of each request touches (an HTTP
        # thread's malloc arena growing once) is not a leak; growth after it is
        round_of_abuse()
        before = rss_kb(pid)
        for _ in range(3):
            round_of_abuse()
        after = rss_kb(pid)
        # RSS means something only in a plain build: ASan's quarantine and
        # valgrind keep freed memory on purpose (they check leaks themselves)
        if not os.environ.get("HEALTHD_WRAPPER") and not os.environ.get("HEALTHD_SANITIZED"):
            self.assertLess(after - before, 1024, f"RSS grew from {before} to {after} kB")
        self.assert_ping()
        self.assertNotIn(SECRET, self.h.log)
        self.assertNotIn("auth=", self.h.log)


def exchange(h, data, seconds):
    """Sends data on a new connection; (everything answered, whether the
    server closed it within `seconds`)."""
    with socket.create_connection((h.host, h.port), timeout=5 * TIME_SCALE) as s:
        s.sendall(data)
        return read_until_closed(s, seconds)


def responses(reply):
    """reply split into (status, headers, body) by Content-Length; what does
    not parse as a response is an AssertionError."""
    out = []
    while reply:
        head, sep, rest = reply.partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"HTTP/1.1 "):
            raise AssertionError(f"not a response: {reply[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for ln in lines[1:]:
            k, colon, v = ln.partition(":")
            if not colon:
                raise AssertionError(f"not a header line: {ln!r}")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        reply = rest[n:]
    return out


class Framing(ServerTest):
    """Issue #22: HTTP/1.1 framing by RFC 9112. Each answer beside nginx
    1.22's to the same bytes (`return 200` in a location), where it differs."""

    CONFIG = {"checks": [{"name": "foo", "plugin": "dummy"}]}

    def only_answer(self, data):
        """The one response to data, after which the server closes."""
        reply, closed = exchange(self.h, data, 3 * TIME_SCALE)
        rs = responses(reply)
        self.assertEqual(len(rs), 1, reply)
        self.assertTrue(closed, "the connection stayed open")
        return rs[0]

    def assert_bad_request(self, data):
        st, headers, _ = self.only_answer(data)
        self.assertEqual(st, 400)
        self.assertEqual(headers.get("connection"), "close")

    def test_conflicting_content_lengths(self):
        # 0.9.75 took the first and served the rest as a second request (404)
        self.assert_bad_request(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                b"Content-Length: 40\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_content_length_with_transfer_encoding(self):
        # RFC 9112 6.3: a desync shape; the connection must not be reused
        self.assert_bad_request(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /nowhere HTTP/1.1"
                                b"\r\nHost: x\r\n\r\n")

    def test_unknown_transfer_coding(self):
        # nginx: 501 Not Implemented, and closes
        self.assert_bad_request(b"POST /health/ping HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: gzip\r\n\r\nabc")

    def test_missing_host_answered_once(self):
        # 0.9.75's own 400 sent its header block twice
        self.assert_bad_request(b"GET /health/ping HTTP/1.1\r\n\r\n")

    def test_two_hosts(self):
        self.assert_bad_request(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")

    def test_http_1_0_needs_no_host(self):
        st, _, body = self.only_answer(b"GET /health/ping HTTP/1.0\r\n\r\n")
        self.assertEqual((st, body), (200, b"pong"))

    def test_space_in_request_target(self):
        # 0.9.75's strict mode closed without an answer
        self.assert_bad_request(b"GET /health/ping x HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_absolute_form_target(self):
        # RFC 9112 3.2.2: a server accepts it (0.9.75 routed the whole URL: 404)
        reply, closed = exchange(self.h, b"GET http://x/health/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                                 b"GET HTTP://x/health?checks=foo HTTP/1.1\r\nHost: x\r\n"
                                 b"Connection: close\r\n\r\n", 3 * TIME_SCALE)
        (st1, _, body1), (st2, headers2, _) = responses(reply)
        self.assertEqual((st1, body1), (200, b"pong"))
        self.assertEqual((st2, headers2.get("location")), (308, "/health/?checks=foo"))
        self.assertTrue(closed)

    def test_allow_lists_options(self):
        reply, _ = exchange(self.h, b"DELETE /health/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"OPTIONS /health/ping HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\n", 3 * TIME_SCALE)
        (st1, h1, _), (st2, h2, _) = responses(reply)
        self.assertEqual((st1, st2), (405, 204))
        self.assertEqual(h1.get("allow"), "GET, HEAD, OPTIONS")
        self.assertEqual(h1.get("allow"), h2.get("allow"))


class ConfiguredLimits(ServerTest):
    # two HTTP threads whatever the CPUs: the per-address count spans them
    CONFIG = {"http_threads": 2, "limits": {"max_connections_per_ip": 4, "max_body_bytes": 100}}

    def test_connections_per_address(self):
        # four answered connections: healthd has them all, not just the kernel
        # (until it has seen an earlier test's connections close, one may be
        # refused: try again)
        deadline = time.monotonic() + 5 * TIME_SCALE
        while True:
            held = [socket.create_connection((self.h.host, self.h.port), timeout=2)
                    for _ in range(4)]
            try:
                for s in held:
                    s.sendall(b"GET /health/ping HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(read_answer(s)[0], 200)
                break
            except ConnectionError:
                for s in held:
                    s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            # a fifth from the same address is closed without an answer...
            extra = socket.create_connection((self.h.host, self.h.port), timeout=2)
            extra.sendall(b"GET /health/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                self.assertEqual(extra.recv(100), b"")
            except ConnectionResetError:
                pass
            extra.close()
            # ...while the four it holds are served
            held[0].sendall(b"GET /health/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_answer(held[0])[0], 200)
        finally:
            for s in held:
                s.close()
        time.sleep(0.2)  # slots come back when the clients go
        self.assertEqual(self.h.get("/health/ping")[0], 200)

    def test_body_limit(self):
        st, _, body = self.h.request("GET", "/health/ping", body=b"a" * 100)
        self.assertEqual((st, body), (200, b"pong"))
        # over the limit: 413 at once, without reading the body, then closed
        reply = self.h.raw(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
                           timeout=5 * TIME_SCALE)
        self.assertEqual(status_of(reply), 413, reply)
        self.assertIn(b"Connection: close", reply)


# A small connection limit, and time limits no test reaches: at the limit,
# only a reclaim or a refusal can end a connection.
OVERLOAD_LIMITS = {"max_connections": 8, "idle_timeout_s": 600, "header_timeout_s": 600,
                   "body_timeout_s": 600, "send_timeout_s": 600, "max_body_bytes": 1000}
# Short time limits, so that the slow-client tests stay fast; the idle timeout
# is long, so that only a total-time limit can close a client that trickles.
SLOW_LIMITS = dict(OVERLOAD_LIMITS, header_timeout_s=2, body_timeout_s=2, send_timeout_s=2)
# two HTTP threads whatever the CPUs: a reclaim walks every thread's connections
OVERLOAD = {"http_threads": 2, "limits": OVERLOAD_LIMITS,
            "checks": [{"name": "slow", "plugin": "dummy", "delay_ms": 4000, "timeout_ms": 20000,
                        "defaults": False}] +
                      # enough checks for a /metrics answer far larger than socket buffers
                      [{"name": "c%04d_%s" % (i, "x" * 40), "plugin": "dummy"} for i in range(1000)]}
SLOW = dict(OVERLOAD, limits=SLOW_LIMITS)
PING = b"GET /health/ping HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSED = "healthd_http_connections_closed_total"
OPEN = ("healthd_http_connections", frozenset())


def read_answer(s):
    """One response with a Content-Length from a socket; (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the body")
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:n]


def closed_within(s, seconds):
    """Whether the server closes s within `seconds` (anything it sends is read and dropped)."""
    deadline = time.monotonic() + seconds
    s.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


class Overload(unittest.TestCase):
    """SPEC section 7 / issue #10: at max_connections and against slow clients.
    A server per test, so that one test's connections never count in another."""

    def connect(self, h):
        return socket.create_connection((h.host, h.port), timeout=5 * TIME_SCALE)

    def probe(self, h):
        """A fresh connection's ping: answered 200 within a second."""
        t0 = time.monotonic()
        st, _, body = h.get("/health/ping", timeout=5 * TIME_SCALE)
        took = time.monotonic() - t0
        self.assertEqual((st, body), (200, b"pong"))
        self.assertLess(took, 1.0 * TIME_SCALE)

    def test_probe_answered_while_a_client_keeps_the_limit_busy(self):
        with running(self, OVERLOAD) as h:
            stop = threading.Event()
            served = [0] * OVERLOAD_LIMITS["max_connections"]

            def client(i):
                # one keep-alive connection sending pings back to back; a
                # connection reclaimed for the probe reconnects
                s = None
                for _ in range(100000):
                    if stop.is_set():
                        break
                    try:
                        if s is None:
                            s = self.connect(h)
                        s.sendall(PING)
                        read_answer(s)
                        served[i] += 1
                    except OSError:
                        if s is not None:
                            s.close()
                        s = None
                if s is not None:
                    s.close()

            threads = [threading.Thread(target=client, args=(i,))
                       for i in range(OVERLOAD_LIMITS["max_connections"])]
            for t in threads:
                t.start()
            try:
                deadline = time.monotonic() + 10 * TIME_SCALE
                while min(served) < 3 and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertGreaterEqual(min(served), 3, "the busy clients were not served")
                for _ in range(5):
                    self.probe(h)
            finally:
                stop.set()
                for t in threads:
                    t.join(30 * TIME_SCALE)

    def test_least_recently_active_idle_connection_is_reclaimed(self):
        with running(self, OVERLOAD) as h:
            held = []
            try:
                for _ in range(OVERLOAD_LIMITS["max_connections"]):
                    held.append(self.connect(h))  # served in this order: held[0] idle the longest
                    held[-1].sendall(PING)
                    self.assertEqual(read_answer(held[-1])[0], 200)
                self.probe(h)
                self.assertTrue(closed_within(held[0], 5 * TIME_SCALE),
                                "the oldest idle connection was not reclaimed")
                m = h.metrics()
                self.assertGreaterEqual(m[(CLOSED, frozenset({("reason", "reclaimed")}))], 1)
                self.assertEqual(m[(CLOSED, frozenset({("reason", "refused")}))], 0)
                self.assertEqual(m[("healthd_http_connections_limit", frozenset())], 8)
                # the others were left alone
                held[-1].sendall(PING)
                self.assertEqual(read_answer(held[-1])[0], 200)
            finally:
                for s in held:
                    s.close()

    def test_waits_in_the_backlog_when_nothing_can_be_reclaimed(self):
        """Backpressure, as nginx at worker_connections: at the limit healthd
        stops accepting, and a new connection waits in the kernel's backlog
        (neither answered nor closed) until a slot can be made for it."""
        with running(self, OVERLOAD) as h:
            held = [self.connect(h) for _ in range(OVERLOAD_LIMITS["max_connections"])]
            try:
                # every connection waits for a 4 s check: none is idle. The
                # 100 Continue shows that healthd has the request (then in its
                # body, too young to reclaim; with its byte, waiting for the check)
                for s in held:
                    s.sendall(b"GET /health/?checks=slow HTTP/1.1\r\nHost: x\r\n"
                              b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\n")
                    self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 100 "))
                    s.sendall(b"a")
                extra = self.connect(h)
                try:
                    extra.sendall(PING)
                    # while the checks run: no answer, and no reset either
                    extra.settimeout(1.0)
                    with self.assertRaises(socket.timeout):
                        extra.recv(100)
                    for s in held:  # the held requests are answered all the same
                        self.assertEqual(read_answer(s)[0], 200)
                    # then idle, one of them makes room: the waiting ping is served
                    extra.settimeout(10 * TIME_SCALE)
                    self.assertEqual(read_answer(extra)[:3:2], (200, b"pong"))
                finally:
                    extra.close()
                m = h.metrics()
                self.assertGreaterEqual(m[(CLOSED, frozenset({("reason", "reclaimed")}))], 1)
                self.assertEqual(m[(CLOSED, frozenset({("reason", "refused")}))], 0)
            finally:
                for s in held:
                    s.close()
        self.assertRegex(h.log, r"connections: 0 refused at a limit, [1-9]\d* reclaimed")

    def test_slowloris_closed_by_the_header_time_limit(self):
        with running(self, SLOW) as h:
            s = self.connect(h)
            try:
                s.sendall(b"GET /health/ping HTTP/1.1\r\nHost: x\r\n")
                closed = False
                t0 = time.monotonic()
                # a header byte every 0.2 s: never idle, never complete
                for _ in range(int(20 * TIME_SCALE / 0.2)):
                    try:
                        s.sendall(b"X-Slow: 1\r\n"[:1])
                    except OSError:
                        closed = True
                        break
                    if closed_within(s, 0.2):
                        closed = True
                        break
                took = time.monotonic() - t0
                self.assertTrue(closed, "a trickling header was never closed")
                self.assertGreaterEqual(took, SLOW_LIMITS["header_timeout_s"] - 0.5)
                self.probe(h)
                self.assertEqual(h.metrics()[(CLOSED, frozenset({("reason", "timed_out")}))], 1)
            finally:
                s.close()

    def test_slow_body_closed_by_the_body_time_limit(self):
        with running(self, SLOW) as h:
            s = self.connect(h)
            try:
                # a body healthd reads (GET with 1000 bytes, within max_body_bytes)
                s.sendall(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
                closed = False
                for _ in range(int(20 * TIME_SCALE / 0.2)):
                    try:
                        s.sendall(b"a")
                    except OSError:
                        closed = True
                        break
                    if closed_within(s, 0.2):
                        closed = True
                        break
                self.assertTrue(closed, "a trickling body was never closed")
            finally:
                s.close()

    def test_slow_reader_closed_by_the_send_time_limit(self):
        with running(self, SLOW) as h:
            self.assertEqual(h.get("/health/", timeout=30 * TIME_SCALE)[0], 200)  # every row
            full = len(h.get("/metrics")[2])
            self.assertGreater(full, 200000)
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5 * TIME_SCALE)
            s.connect((h.host, h.port))
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                got = 0
                closed = False
                deadline = time.monotonic() + 20 * TIME_SCALE
                # 1 kB every 0.1 s (never idle): the answer would take ~25 s
                while time.monotonic() < deadline:
                    try:
                        chunk = s.recv(1024)
                    except ConnectionResetError:
                        closed = True
                        break
                    if not chunk:
                        closed = True
                        break
                    got += len(chunk)
                    time.sleep(0.1)
                self.assertTrue(closed, f"a slow reader kept its answer open ({got} bytes read)")
                self.assertLess(got, full)
            finally:
                s.close()

    def test_unwanted_body_answered_without_reading_it(self):
        with running(self, OVERLOAD) as h:
            for req, code in ((b"POST /health/ping", 405), (b"PUT /health/", 405),
                              (b"POST /nowhere", 404), (b"GET /health/ping", 413)):
                s = self.connect(h)
                try:
                    # 8190 body bytes announced, none sent
                    s.sendall(req + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 8190\r\n\r\n")
                    st, headers, _ = read_answer(s)
                    self.assertEqual(st, code, req)
                    self.assertEqual(headers.get("connection"), "close", req)
                    self.assertNotIn("keep-alive", headers, req)
                    self.assertTrue(closed_within(s, 5 * TIME_SCALE), req)
                finally:
                    s.close()

    def wait_open(self, h, want):
        """Until healthd counts `want` open connections (this request's own
        included); returns the count last seen."""
        deadline = time.monotonic() + 10 * TIME_SCALE
        while True:
            n = h.metrics()[OPEN]
            if n == want or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    def test_open_connections_counted(self):
        with running(self, OVERLOAD) as h:
            held = []
            try:
                for _ in range(3):
                    held.append(self.connect(h))
                    held[-1].sendall(PING)
                    self.assertEqual(read_answer(held[-1])[0], 200)
                self.assertEqual(self.wait_open(h, 4), 4)  # the three, and /metrics' own
            finally:
                for s in held:
                    s.close()
            self.assertEqual(self.wait_open(h, 1), 1)

    def test_burst_buffers_kept_a_while_then_handed_back(self):
        """After a burst of connections, healthd keeps their buffers for a
        while (a burst that comes back reuses them instead of taking every
        page again by page faults), then hands them back to the system."""
        if os.environ.get("HEALTHD_WRAPPER") or os.environ.get("HEALTHD_SANITIZED"):
            self.skipTest("RSS means something only in a plain build")
        burst = 500
        # two HTTP threads whatever the CPUs: each shrinks its own arena
        config = {"http_threads": 2,
                  "limits": {"max_connections": 1024, "max_request_bytes": 16384},
                  "checks": [{"name": "a", "plugin": "dummy"}]}
        with running(self, config) as h:
            pid = h.proc.pid
            h.get("/health/ping")
            base = rss_kb(pid)
            held = []
            try:
                for _ in range(burst):
                    held.append(self.connect(h))
                    held[-1].sendall(PING)
                # answered, so each connection's 16 KiB buffer has been cleared (touched)
                for s in held:
                    self.assertEqual(read_answer(s)[0], 200)
                peak = rss_kb(pid)
            finally:
                for s in held:
                    s.close()
            grown = peak - base
            self.assertGreater(grown, burst * 8, f"RSS {base} -> {peak} kB: the burst took no memory?")
            self.assertEqual(self.wait_open(h, 1), 1)
            # not at once: a second later the buffers are still there to reuse
            time.sleep(1)
            held_kb = rss_kb(pid)
            self.assertGreater(held_kb, peak - grown // 4,
                               f"RSS {base} -> {peak} -> {held_kb} kB: handed back at once")
            # then to the system, about 10 s after the burst ended
            deadline = time.monotonic() + 10 + 20 * TIME_SCALE
            now_kb = held_kb
            while time.monotonic() < deadline:
                now_kb = rss_kb(pid)
                if now_kb - base < grown // 4:
                    break
                time.sleep(0.2)
            self.assertLess(now_kb - base, grown // 4,
                            f"RSS {base} -> {peak} -> {now_kb} kB: never handed back")

    def test_keep_alive_header(self):
        with running(self, SLOW) as h:
            conn = h.connection(timeout=5 * TIME_SCALE)
            try:
                for path in ("/health/ping", "/health/?checks=c0000_" + "x" * 40, "/nowhere",
                             "/metrics", "/health"):
                    conn.request("GET", path)
                    resp = conn.getresponse()
                    resp.read()
                    # the smaller of the idle and the header time limits
                    self.assertEqual(resp.getheader("Keep-Alive"), "timeout=2", path)
            finally:
                conn.close()
            st, headers, _ = h.get("/health/ping", headers={"Connection": "close"})
            self.assertEqual(st, 200)
            self.assertNotIn("keep-alive", headers)


if __name__ == "__main__":
    unittest.main(verbosity=2)
