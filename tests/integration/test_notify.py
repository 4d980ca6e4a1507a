"""systemd's notify protocol, as a Type=notify unit sees it: the test binds
its own NOTIFY_SOCKET (a datagram socket, as systemd does) and reads what
the real healthd sends: READY=1 once it listens, STATUS= with the plugins
still loading and the count of checks and of failing ones, WATCHDOG=1 when WATCHDOG_USEC asks for it, and
STOPPING=1 on SIGTERM."""

import os
import signal
import socket
import tempfile
import time
import unittest

from healthd_fixture import TIME_SCALE, Healthd, main

WAIT = 10.0 * TIME_SCALE


class NotifySocket:
    """A bound AF_UNIX datagram socket; .messages() yields each datagram as a
    list of lines, waiting up to WAIT for each."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.tmp = tempfile.TemporaryDirectory(prefix="healthd-notify-")
        if abstract:
            name = f"healthd-test-notify-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = os.path.join(self.tmp.name, "notify")
            self.sock.bind(path)
            self.env_value = path
        self.received = []

    def close(self):
        self.sock.close()
        self.tmp.cleanup()

    def next(self, timeout=WAIT):
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096)
        lines = data.decode().splitlines()
        self.received.append(lines)
        return lines

    def wait_for(self, pred, what, timeout=WAIT):
        """Reads datagrams until one has a line for which pred is true."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; got {self.received}")
            try:
                lines = self.next(left)
            except socket.timeout:
                continue
            for line in lines:
                if pred(line):
                    return line


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.ns = NotifySocket()
        self.addCleanup(self.ns.close)

    def start(self, env=None, config=None):
        env = dict(env or {})
        env.setdefault("NOTIFY_SOCKET", self.ns.env_value)
        h = Healthd(config=config, env=env)
        h.start()
        self.addCleanup(h.stop)
        return h

    def test_ready_after_listening_then_status_then_stopping(self):
        h = self.start(config={"checks": [{"name": "slow", "plugin": "dummy",
                                           "result": "critical"}]})
        first = self.ns.next()
        self.assertEqual(first[0], "READY=1", first)
        # READY=1 once it listens: the isolated plugins of the plugin
        # directory may still be loading, and STATUS= names them until they
        # have (their stand-ins count as checks meanwhile)
        self.assertRegex(first[1], r"^STATUS=(loading [a-z]+(, [a-z]+)*; \d+ checks|3 checks), "
                                   r"0 failing$")
        # true, false and slow: none has run, so none is failing yet
        if first[1] != "STATUS=3 checks, 0 failing":
            self.ns.wait_for(lambda l: l == "STATUS=3 checks, 0 failing", "STATUS once loaded")
        # READY=1 came after the listening socket: a ping is answered now
        status, _, body = h.get("/health/ping")
        self.assertEqual((status, body), (200, b"pong"))

        h.get("/health/?checks=false,slow")
        self.ns.wait_for(lambda l: l == "STATUS=3 checks, 2 failing", "STATUS with 2 failing")
        h.get("/health/?checks=true")
        # a passing check changes nothing; the status is not sent again
        self.assertEqual(h.stop(), 0)
        last = self.ns.wait_for(lambda l: l.startswith("STOPPING="), "STOPPING=1")
        self.assertEqual(last, "STOPPING=1")
        sent = [l for msg in self.ns.received for l in msg]
        self.assertEqual(sent.count("READY=1"), 1, sent)
        self.assertEqual(sent.count("STATUS=3 checks, 2 failing"), 1, sent)
        self.assertNotIn("WATCHDOG=1", sent, "no WATCHDOG_USEC, no watchdog pings")

    def test_reload_sends_reloading_then_ready(self):
        """SIGHUP (ExecReload=): RELOADING=1 with MONOTONIC_USEC= (as
        systemd.service(5) asks), then READY=1 with the new count of checks."""
        h = self.start(config={"checks": []})
        self.assertEqual(self.ns.next()[0], "READY=1")
        with open(h.config_path, "w") as f:
            f.write('{"checks": [{"name": "extra", "plugin": "dummy", "result": "ok"}]}')
        h.proc.send_signal(signal.SIGHUP)
        self.ns.wait_for(lambda l: l == "RELOADING=1", "RELOADING=1")
        lines = self.ns.received[-1]
        usec = [l for l in lines if l.startswith("MONOTONIC_USEC=")]
        self.assertEqual(len(usec), 1, lines)
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.assertLessEqual(int(usec[0].split("=", 1)[1]), now_usec)
        self.ns.wait_for(lambda l: l == "READY=1", "READY=1 after the reload")
        # dummy runs in process: the reload instantiates "extra" beside true
        # and false
        self.assertIn("STATUS=3 checks, 0 failing", self.ns.received[-1])

    def test_watchdog_pings(self):
        h = self.start(env={"WATCHDOG_USEC": str(int(200000 * TIME_SCALE)),
                            "WATCHDOG_PID": ""})
        self.assertEqual(self.ns.next()[0], "READY=1")
        for _ in range(3):
            self.ns.wait_for(lambda l: l == "WATCHDOG=1", "WATCHDOG=1")
        self.assertEqual(h.stop(), 0)
        self.ns.wait_for(lambda l: l == "STOPPING=1", "STOPPING=1")

    def test_watchdog_for_another_pid_is_not_ours(self):
        # WATCHDOG_PID names the process the watchdog is meant for (systemd
        # sets it; a child that inherits it must not ping).
        h = self.start(env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"},
                       config={"checks": [{"name": "bad", "plugin": "dummy",
                                           "result": "unknown"}]})
        self.assertEqual(self.ns.next()[0], "READY=1")
        h.get("/health/?checks=bad")
        # the status thread has run at least once (10 ticks of a 100 ms watchdog)
        self.ns.wait_for(lambda l: l == "STATUS=3 checks, 1 failing", "STATUS with 1 failing")
        self.assertEqual(h.stop(), 0)
        self.ns.wait_for(lambda l: l == "STOPPING=1", "STOPPING=1")
        sent = [l for msg in self.ns.received for l in msg]
        self.assertNotIn("WATCHDOG=1", sent)

    def test_abstract_socket(self):
        ns = NotifySocket(abstract=True)
        self.addCleanup(ns.close)
        h = self.start(env={"NOTIFY_SOCKET": ns.env_value})
        self.assertEqual(ns.next()[0], "READY=1")
        self.assertEqual(h.stop(), 0)
        ns.wait_for(lambda l: l == "STOPPING=1", "STOPPING=1")

    def test_no_socket_no_messages_and_runs(self):
        # Without NOTIFY_SOCKET healthd behaves as before (Type=exec, a shell).
        h = Healthd(env={"NOTIFY_SOCKET": ""})
        h.start()
        self.addCleanup(h.stop)
        self.assertEqual(h.get("/health/ping")[0], 200)
        self.assertEqual(h.stop(), 0)
        self.assertNotIn("NOTIFY_SOCKET", h.log)

    def test_unreachable_socket_is_logged_once_not_fatal(self):
        path = os.path.join(self.ns.tmp.name, "nobody-listens")
        h = self.start(env={"NOTIFY_SOCKET": path})
        self.assertEqual(h.get("/health/ping")[0], 200)
        self.assertEqual(h.stop(), 0)
        self.assertEqual(h.log.count("cannot notify the service manager"), 1, h.log)


if __name__ == "__main__":
    main()
