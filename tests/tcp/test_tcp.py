"""tcp plugin through the real healthd binary against loopback listeners:
an open port, a closed one, a listener whose accept queue is full (the
connect hangs until the deadline), and send/expect against a small
Redis-like server (standard library only).
"""

import json
import os
import socket
import socketserver
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from healthd_fixture import TIME_SCALE, free_port, main, run_healthd, running  # noqa: E402


class PingServer(socketserver.ThreadingTCPServer):
    """Answers each line: PING -> +PONG, anything else -> -NOAUTH ...; "silent"
    mode reads and never answers; "close" mode closes at once."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode="ping"):
        self.mode = mode
        self.lines = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), PingHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class PingHandler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        if srv.mode == "close":
            return
        line = self.rfile.readline(1024)
        with srv.lock:
            srv.lines.append(line)
        if srv.mode == "silent":
            srv.release.wait(30)
            return
        if line.strip() == b"PING":
            self.wfile.write(b"+PONG\r\n")
        else:
            self.wfile.write(b"-NOAUTH Authentication required. Send AUTH first, "
                             b"then everything else.\r\n")


class TcpTest(unittest.TestCase):
    def healthd(self, *checks):
        config = {"checks": [dict({"plugin": "tcp"}, **c) for c in checks]}
        return running(self, config)

    def probe(self, h, *names):
        status, body = h.get_json("/health/?checks=" + ",".join(names) + "&verbose=1",
                                  timeout=30 * TIME_SCALE)
        self.assertEqual(status, 200 if all(body["checks"].values()) else 503, body)
        return body["details"]

    def server(self, mode="ping"):
        srv = PingServer(mode)
        self.addCleanup(srv.stop)
        return srv

    def test_open_port(self):
        srv = self.server()
        with self.healthd({"name": "open", "host": "127.0.0.1", "port": srv.port}) as h:
            d = self.probe(h, "open")["open"]
            self.assertEqual(d["status"], "pass", d)
            self.assertRegex(d["output"], rf"^connected to 127\.0\.0\.1 port {srv.port} in \d+ ms$")
            self.assertEqual(set(d["values"]), {"connect_time"})
            self.assertGreaterEqual(d["values"]["connect_time"], 0)
            self.assertLess(d["values"]["connect_time"], 5)
            samples = h.metrics()
            self.assertIn(("healthd_check_value", frozenset(
                {"check": "open", "name": "connect_time", "unit": "seconds"}.items())), samples)
            status, _, body = h.get("/health/?checks=open",
                                    headers={"Accept": "application/health+json"})
            m = json.loads(body)["checks"]["open:connect_time"][0]
            self.assertEqual((m["observedUnit"], m["status"]), ("s", "pass"))

    def test_ipv6_loopback(self):
        try:
            listener = socket.socket(socket.AF_INET6)
            listener.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        with listener:
            listener.listen(4)
            port = listener.getsockname()[1]
            with self.healthd({"name": "v6", "host": "::1", "port": port}) as h:
                d = self.probe(h, "v6")["v6"]
                self.assertEqual(d["status"], "pass", d)

    def test_closed_port(self):
        port = free_port()
        with self.healthd({"name": "closed", "host": "127.0.0.1", "port": port}) as h:
            d = self.probe(h, "closed")["closed"]
            self.assertEqual(d["status"], "fail")
            self.assertEqual(d["output"], "connection refused")
            self.assertNotIn("values", d)

    def test_full_accept_queue_times_out(self):
        # backlog 0, never accepted: the kernel queues one connection, then drops SYNs
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        self.addCleanup(lambda: [s.close() for s in fillers])
        with self.healthd({"name": "full", "host": "127.0.0.1", "port": port,
                           "timeout_ms": 700}) as h:
            d = self.probe(h, "full")["full"]
            self.assertEqual(d["status"], "fail", d)
            self.assertEqual(d["output"], "timeout after 700 ms")
            samples = h.metrics()
            self.assertEqual(samples[("healthd_check_timeouts_total",
                                      frozenset({"check": "full"}.items()))], 1)

    def test_send_and_expect(self):
        srv = self.server()
        with self.healthd({"name": "pong", "host": "127.0.0.1", "port": srv.port,
                           "send": "PING\r\n", "expect": "+PONG"},
                          {"name": "noauth", "host": "127.0.0.1", "port": srv.port,
                           "send": "INFO\r\n", "expect": "+PONG"}) as h:
            details = self.probe(h, "pong", "noauth")
            self.assertEqual(details["pong"]["status"], "pass", details)
            self.assertRegex(details["pong"]["output"],
                             rf'^connected to 127\.0\.0\.1 port {srv.port} in \d+ ms, got "\+PONG"$')
            self.assertEqual(set(details["pong"]["values"]), {"connect_time", "response_time"})
            self.assertGreaterEqual(details["pong"]["values"]["response_time"],
                                    details["pong"]["values"]["connect_time"])
            self.assertEqual(details["noauth"]["status"], "fail")
            self.assertEqual(details["noauth"]["output"],
                             # the answer's first 48 bytes, then an ellipsis
                             'expected "+PONG", got "-NOAUTH Authentication required. Send AUTH '
                             'first\u2026"')
            with srv.lock:
                self.assertEqual(sorted(srv.lines), [b"INFO\r\n", b"PING\r\n"])

    def test_server_that_closes_or_never_answers(self):
        closer, silent = self.server("close"), self.server("silent")
        with self.healthd({"name": "closer", "host": "127.0.0.1", "port": closer.port,
                           "expect": "+OK"},
                          {"name": "silent", "host": "127.0.0.1", "port": silent.port,
                           "send": "PING\r\n", "expect": "+PONG", "timeout_ms": 600}) as h:
            details = self.probe(h, "closer", "silent")
            self.assertEqual(details["closer"]["output"],
                             'expected "+OK", got nothing (connection closed)')
            self.assertEqual(details["silent"]["output"], "timeout after 600 ms")
            # connected, so the connect time is there even though the answer never came
            self.assertEqual(set(details["silent"]["values"]), {"connect_time"})

    def test_name_lookup(self):
        srv = self.server()
        with self.healthd({"name": "byname", "host": "localhost", "port": srv.port}) as h:
            d = self.probe(h, "byname")["byname"]
            # localhost may resolve to ::1 first, where nothing listens: the next address counts
            self.assertEqual(d["status"], "pass", d)
            self.assertRegex(d["output"], rf"^connected to localhost port {srv.port} in \d+ ms$")

    @unittest.skipIf(TIME_SCALE > 1, "LD_PRELOAD shim and valgrind do not mix")
    def test_slow_name_lookup_keeps_the_deadline(self):
        # the shim makes a lookup of "*slow*" take 2 s, then fail
        env = {"LD_PRELOAD": os.path.join(os.environ["HEALTHD_FIXTURE_DIR"], "slowdns.so")}
        if os.environ.get("HEALTHD_SANITIZED"):
            env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        config = {"checks": [{"name": "dns", "plugin": "tcp", "host": "slow.invalid",
                              "port": 1, "timeout_ms": 300}]}
        with running(self, config, env=env) as h:
            start = time.monotonic()
            d = self.probe(h, "dns")["dns"]
            took = time.monotonic() - start
            self.assertEqual(d["output"], "timeout after 300 ms")
            self.assertLess(took, 1.5)  # not the lookup's 2 s
            self.assertNotIn("no answer after", h.log)  # the run itself returned in time
            # later runs wait for the same lookup (no second thread) and take its answer
            outputs = set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                out = self.probe(h, "dns")["dns"]["output"]
                outputs.add(out)
                if out.startswith("cannot resolve"):
                    break
            self.assertEqual(out, "cannot resolve slow.invalid: Name or service not known",
                             outputs)
            self.assertLessEqual(outputs, {"timeout after 300 ms", out})

    def test_bad_options_are_refused(self):
        for opts, why in (({}, "host: missing"),
                          ({"host": "127.0.0.1"}, "port: missing; 1 to 65535"),
                          ({"host": "127.0.0.1", "port": 0},
                           'port: expected an integer from 1 to 65535, got "0"'),
                          ({"host": "127.0.0.1", "port": 1, "expect": ""},
                           "expect: must not be empty"),
                          ({"host": "127.0.0.1", "port": 1, "bogus": 1},
                           "bogus: unknown option for plugin tcp")):
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump({"checks": [dict({"name": "t", "plugin": "tcp"}, **opts)]}, f)
                f.flush()
                rc, _, err = run_healthd(["--config", f.name, "--no-url-secret",
                                          "--check-config", "--plugin-dir",
                                          os.environ["HEALTHD_PLUGIN_DIR"]])
                self.assertEqual(rc, 1, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(why, err)


if __name__ == "__main__":
    main()
