"""SPEC section 7: whatever a client sends, healthd answers 4xx or closes the
connection, keeps serving, does not grow, and never logs the secret.

One server for the whole corpus, so that what one request breaks, the next
one (and the final checks) would see."""

import os
import socket
import threading
import time
import unittest

from healthd_fixture import ServerTest, TIME_SCALE, Healthd

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
        for _ in range(200):
            self.h.get("/health/?checks=foo&auth=" + SECRET)
        before = rss_kb(pid)
        for _ in range(3):
            for data in (self.request(b"/health/?checks=" + b"a" * 100000),
                         self.request(b"/health/?auth=" + SECRET.encode() + b"&checks=" +
                                      b",".join(b"foo" for _ in range(999))),
                         b"\x00garbage\r\n\r\n"):
                self.send(data, timeout=1)
            for _ in range(200):
                self.h.get("/health/?checks=foo&auth=" + SECRET)
        after = rss_kb(pid)
        # RSS means something only in a plain build: ASan's quarantine and
        # valgrind keep freed memory on purpose (they check leaks themselves)
        if not os.environ.get("HEALTHD_WRAPPER") and not os.environ.get("HEALTHD_SANITIZED"):
            self.assertLess(after - before, 1024, f"RSS grew from {before} to {after} kB")
        self.assert_ping()
        self.assertNotIn(SECRET, self.h.log)
        self.assertNotIn("auth=", self.h.log)


class ConfiguredLimits(ServerTest):
    CONFIG = {"limits": {"max_connections_per_ip": 4, "max_body_bytes": 100}}

    def test_connections_per_address(self):
        held = [socket.create_connection((self.h.host, self.h.port), timeout=2)
                for _ in range(4)]
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
            self.assertTrue(held[0].recv(4096).startswith(b"HTTP/1.1 200 "))
        finally:
            for s in held:
                s.close()
        time.sleep(0.2)  # slots come back when the clients go
        self.assertEqual(self.h.get("/health/ping")[0], 200)

    def test_body_limit(self):
        st, _, body = self.h.request("GET", "/health/ping", body=b"a" * 100)
        self.assertEqual((st, body), (200, b"pong"))
        reply = self.h.raw(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"
                           + b"a" * 101)
        self.assertEqual(reply, b"")  # closed: no answer for an oversized body


if __name__ == "__main__":
    unittest.main(verbosity=2)
