"""The postgres plugin against a real, throwaway PostgreSQL cluster.

Each case starts the real healthd with a `db` check and asks it over HTTP.
Timings are printed (stderr) so a run shows how close to the bounds it came.
"""

import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import unittest
from urllib.parse import quote

from healthd_fixture import Healthd, running, main, run_healthd, PLUGIN_DIR, TIME_SCALE
from pg_cluster import PgCluster, free_port

TIMEOUT_MS = 1000
# A timed-out run must answer no later than its timeout plus this (a noisy
# 2-core machine included); it waited for nothing if it answered much earlier.
LATE_MS = 200
EARLY_MS = 100
# A check's state-change line (core/transitions.c).
STATE_CHANGE = re.compile(r": check \S+: (\w+ -> \w+ after |\w+ at its first result: )")


def db_check(conninfo, name="db", timeout_ms=TIMEOUT_MS):
    return {"name": name, "plugin": "postgres", "conninfo": conninfo, "timeout_ms": timeout_ms}


def verbose(h, name="db"):
    """One run of check `name`: (status code, passed, output, seconds taken)."""
    t0 = time.monotonic()
    status, _, body = h.get(f"/health/?checks={name}&verbose=1", timeout=30)
    took = time.monotonic() - t0
    doc = json.loads(body)
    return status, doc["checks"][name], doc["details"][name]["output"], took


def wait_for(cond, what, h, timeout=15):
    deadline = time.monotonic() + timeout * TIME_SCALE
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout * TIME_SCALE:.0f} s:\n{h.log}")
        time.sleep(0.02)


def note(what, seconds):
    print(f"  [timing] {what}: {seconds * 1000:.0f} ms", file=sys.stderr)


class PostgresUp(unittest.TestCase):
    """A server that stays up for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster(log_connections=True).__enter__()
        cls.password = "hd-pw-" + secrets.token_hex(8)
        cls.pg.create_user("app", cls.password)

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def conninfo(self, password=None, **extra):
        return self.pg.conninfo("app", self.password if password is None else password, **extra)

    def assertNoPassword(self, text, *passwords):
        for pw in passwords or (self.password,):
            self.assertNotIn(pw, text)
            self.assertNotIn(quote(pw, safe=""), text)

    def test_up_passes_and_keeps_its_connection(self):
        with running(self, {"checks": [db_check(self.conninfo())]}) as h:
            status, _, body = h.get("/health/?checks=db")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["checks"], {"db": True})
            self.assertEqual(json.loads(body)["health"], "running")
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True))
            self.assertRegex(output, r"^SELECT 1 returned 1 in \d+ ms \(kept connection\)$")

    def test_uri_with_encoded_password_passes(self):
        odd = "p@ss/w%rd:" + secrets.token_hex(4)
        self.pg.create_user("odd_" + secrets.token_hex(3), odd)
        user = self.pg.sql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'odd_%' "
                           "ORDER BY oid DESC LIMIT 1")[0][0]
        uri = (f"postgresql://{user}:{quote(odd, safe='')}@127.0.0.1:{self.pg.port}/postgres"
               f"?application_name=hd-uri")
        with running(self, {"checks": [db_check(uri)]}) as h:
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True), output)
            self.assertRegex(output, r"\(new connection\)$")
        self.assertNoPassword(h.log, odd)

    def test_unix_socket_passes(self):
        ci = f"host={self.pg.dir} port={self.pg.port} user=postgres dbname=postgres"
        with running(self, {"checks": [db_check(ci)]}) as h:
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True), output)

    def test_wrong_password_fails_naming_authentication(self):
        wrong = "hd-wrong-" + secrets.token_hex(8)
        with running(self, {"checks": [db_check(self.conninfo(wrong))]}) as h:
            status, ok, output, took = verbose(h)
            note("wrong password answered in", took)
            self.assertEqual((status, ok), (503, False))
            self.assertTrue(output.startswith("authentication failed: "), output)
            self.assertIn('password authentication failed for user "app"', output)
            self.assertNotIn("\n", output)
            self.assertNoPassword(output, wrong, self.password)
            status, _, body = h.get("/health/?checks=db")
            self.assertEqual(status, 503)
            self.assertEqual(json.loads(body)["checks"], {"db": False})
            metrics = h.get("/metrics")[2].decode()
        self.assertNoPassword(h.log + metrics, wrong, self.password)

    def test_missing_database_fails_naming_it(self):
        with running(self, {"checks": [db_check(self.conninfo() + " dbname=nope")]}) as h:
            status, ok, output, _ = verbose(h)
        self.assertEqual((status, ok), (503, False))
        self.assertTrue(output.startswith("connection failed: "), output)
        self.assertIn('database "nope" does not exist', output)
        self.assertNoPassword(output + h.log)

    def test_password_never_shown(self):
        """In no message, log line or metric, whatever the failure and the conninfo form."""
        wrong = "hd-leak-" + secrets.token_hex(8)
        closed = free_port()
        checks = [
            db_check(self.conninfo(wrong), "kw_wrong"),
            db_check(f"postgresql://app:{wrong}@127.0.0.1:{self.pg.port}/postgres", "uri_wrong"),
            db_check(f"host=127.0.0.1 port={closed} user=app password={wrong}", "refused"),
            db_check(f"postgresql://app:{wrong}@127.0.0.1:{closed}/postgres", "uri_refused"),
            db_check(self.conninfo(), "good"),
        ]
        texts = []
        with running(self, {"checks": checks}) as h:
            for c in checks:
                status, ok, output, _ = verbose(h, c["name"])
                self.assertEqual(ok, c["name"] == "good", output)
                texts.append(output)
            self.assertTrue(texts[0].startswith("authentication failed: "), texts[0])
            self.assertTrue(texts[1].startswith("authentication failed: "), texts[1])
            self.assertTrue(texts[2].startswith("connection refused: "), texts[2])
            self.assertTrue(texts[3].startswith("connection refused: "), texts[3])
            texts.append(h.get("/health/?verbose=1")[2].decode())
            texts.append(h.get("/metrics")[2].decode())
        texts.append(h.log)
        self.assertNoPassword("\n".join(texts), wrong, self.password)

    def test_invalid_conninfo_is_refused_without_quoting_it(self):
        secret = "hd-cfg-" + secrets.token_hex(6)
        cases = [
            f"postgresql://app:{secret}%zz@127.0.0.1/postgres",      # bad percent-encoding
            f"host=127.0.0.1 password={secret} {secret}x",              # missing "="
            f"postgresql://app:{secret}@[::1/postgres",               # echoes the whole URI
            "host=127.0.0.1 nosuchoption=1",                          # unknown keyword
            # found in review: a quote inside libpq's quoted token
            f'postgresql://app:s3"{secret}%zz@127.0.0.1/postgres',
            f'postgresql://app:p"{secret}@[::1]x/db',
            f'host=h password=abc {secret}"ghi',
            # a raw '@' or '/' in a URI password: libpq would split it wrongly
            f"postgresql://app:Secr3t@{secret}@127.0.0.1/postgres",
            f"postgresql://app:Pa/{secret}@127.0.0.1/postgres",
        ]
        for conninfo in cases:
            with self.subTest(conninfo=conninfo):
                rc, out, err = self._check_config({"checks": [db_check(conninfo)]})
                self.assertEqual(rc, 1, out + err)
                self.assertIn("conninfo", err)
                self.assertNoPassword(out + err, secret)

    def test_raw_at_in_uri_password_says_how_to_write_it(self):
        rc, out, err = self._check_config({"checks": [db_check(
            "postgresql://app:Secr3t@Word@127.0.0.1/postgres")]})
        self.assertEqual(rc, 1, out + err)
        self.assertIn("write an '@' in the user name or password as %40", err)
        self.assertNotIn("Word", err)

    def test_short_password_withholds_libpq_text(self):
        # masking "o" would spell it out: c***nnecti***n; the detail is withheld
        self.pg.create_user("shorty", "o")
        conninfo = self.pg.conninfo("shorty", "o", dbname="nodb")
        with running(self, {"checks": [db_check(conninfo)]}) as h:
            _, ok, output, _ = verbose(h)
            self.assertFalse(ok)
            self.assertIn("details withheld: the password is too short to mask", output)
            self.assertNotIn("***", output)

    def test_missing_conninfo_and_unknown_option_are_refused(self):
        rc, out, err = self._check_config({"checks": [{"name": "db", "plugin": "postgres"}]})
        self.assertEqual(rc, 1, out + err)
        self.assertIn("conninfo: missing", err)
        rc, out, err = self._check_config(
            {"checks": [dict(db_check(self.conninfo()), connninfo="typo")]})
        self.assertEqual(rc, 1, out + err)
        self.assertIn("connninfo", err)
        self.assertNoPassword(out + err)

    def test_hundred_runs_use_one_backend(self):
        app = "hd-reuse-" + secrets.token_hex(4)
        query = (f"SELECT pid FROM pg_stat_activity WHERE usename = 'app' "
                 f"AND application_name = '{app}'")
        config = {"checks": [db_check(self.conninfo(application_name=app))]}
        with running(self, config) as h:
            time.sleep(0.3)
            self.assertEqual(self.pg.sql(query), [], "instantiate() must not connect")
            pids = set()
            t0 = time.monotonic()
            for i in range(100):
                status, _, body = h.get("/health/?checks=db")
                self.assertEqual(status, 200, f"run {i}: {body}")
                if i in (0, 49):
                    pids.update(r[0] for r in self.pg.sql(query))
            note("100 sequential runs took", time.monotonic() - t0)
            rows = self.pg.sql(query)
            self.assertEqual(len(rows), 1, rows)
            pids.update(r[0] for r in rows)
            self.assertEqual(len(pids), 1, f"backends seen: {pids}")
            runs = h.metrics()[("healthd_check_runs_total", frozenset({("check", "db")}))]
            self.assertEqual(runs, 100)
        log = self.pg.server_log()
        authorized = [line for line in log.splitlines()
                      if "connection authorized" in line and f"application_name={app}" in line]
        self.assertEqual(len(authorized), 1, authorized)

    def test_reload_keeps_the_backend(self):
        """A reload that does not touch the postgres plugin (it adds a check of
        another plugin) keeps its executor, so the check keeps its backend."""
        app = "hd-reload-" + secrets.token_hex(4)
        query = (f"SELECT pid FROM pg_stat_activity WHERE usename = 'app' "
                 f"AND application_name = '{app}'")
        config = {"checks": [db_check(self.conninfo(application_name=app))]}
        with running(self, config) as h:
            status, _, body = h.get("/health/?checks=db")
            self.assertEqual(status, 200, body)
            before = [r[0] for r in self.pg.sql(query)]
            self.assertEqual(len(before), 1, before)
            config["checks"].append({"name": "port", "plugin": "tcp", "host": "127.0.0.1",
                                     "port": self.pg.port})
            with open(h.config_path, "w") as f:
                json.dump(config, f)
            h.proc.send_signal(signal.SIGHUP)
            # kept: db, and the in-process dummy's own "true" and "false"
            wait_for(lambda: re.search(r"reload: 1 check added, 0 removed, 3 kept; "
                                       r"plugin tcp restarted", h.log),
                     "the reload's summary line", h)
            self.assertNotIn("plugin postgres", h.log.split("SIGHUP")[1])
            for name in ("db", "port"):
                status, _, body = h.get(f"/health/?checks={name}")
                self.assertEqual(status, 200, f"{name}: {body}")
            after = [r[0] for r in self.pg.sql(query)]
            self.assertEqual(after, before, "the postgres check reconnected across the reload")
            runs = h.metrics()[("healthd_check_runs_total", frozenset({("check", "db")}))]
            self.assertEqual(runs, 2, "its counters go on across the reload")

    def _check_config(self, config):
        path = os.path.join(self.pg.dir, f"cfg-{secrets.token_hex(4)}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        try:
            return run_healthd(["--check-config", "--config", path, "--plugin-dir", PLUGIN_DIR,
                                "--no-url-secret"])
        finally:
            os.unlink(path)


class PostgresTrouble(unittest.TestCase):
    """A fresh server per case, stopped, frozen or restarted under healthd."""

    def setUp(self):
        self.pg = PgCluster(log_connections=True).__enter__()
        self.addCleanup(self.pg.close)  # thaws first: runs even when the case fails
        self.password = "hd-pw-" + secrets.token_hex(8)
        self.pg.create_user("app", self.password)
        self.app = "hd-" + secrets.token_hex(4)
        self.config = {"checks": [db_check(self.pg.conninfo(
            "app", self.password, application_name=self.app))]}

    def backend_pids(self):
        return [r[0] for r in self.pg.sql(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{self.app}'")]

    def assertTimedOut(self, status, ok, output, took):
        self.assertEqual((status, ok), (503, False), output)
        self.assertEqual(output, f"timeout after {TIMEOUT_MS} ms")
        self.assertLess(took, (TIMEOUT_MS + LATE_MS) / 1000)
        self.assertGreater(took, (TIMEOUT_MS - EARLY_MS) / 1000)

    def assertPluginKeptItsDeadline(self, h):
        """The host's timer also answers "timeout after N ms" for a plugin that
        blocks, and logs it. The plugin gives up a little early so that its own
        answer counts; on a loaded machine the timer may still win by a hair,
        but the run must then have returned within LATE_MS of its deadline."""
        # (not the state-change lines, core/transitions.c: another event)
        host_lines = [line for line in h.log.splitlines()
                      if "check db" in line and "postgres:" not in line
                      and not STATE_CHANGE.search(line)]
        expired = [line for line in host_lines if "no answer after" in line]
        returned = [int(m.group(1)) for m in
                    (re.search(r"run returned after (\d+) ms, past its", line)
                     for line in host_lines) if m]
        if expired:
            print(f"  [timing] host timer won; late runs returned after {returned} ms",
                  file=sys.stderr)
        self.assertEqual(len(host_lines), len(expired) + len(returned), host_lines)
        self.assertEqual(len(expired), len(returned), host_lines)
        for ms in returned:
            self.assertLess(ms, TIMEOUT_MS + LATE_MS, host_lines)

    def test_stopped_server_fails_fast(self):
        with running(self, self.config) as h:
            self.assertEqual(verbose(h)[:2], (200, True))
            self.pg.stop()
            status, ok, output, took = verbose(h)
            note("stopped server (kept connection gone) answered in", took)
            self.assertEqual((status, ok), (503, False))
            self.assertTrue(output.startswith("connection refused: "), output)
            self.assertIn("Connection refused", output)
            self.assertLess(took, TIMEOUT_MS / 1000)
            status, ok, output, took = verbose(h)
            self.assertEqual((status, ok), (503, False))
            self.assertTrue(output.startswith("connection refused: "), output)
            self.assertLess(took, TIMEOUT_MS / 1000)
        self.assertNotIn(self.password, h.log)

    def test_stopped_server_over_unix_socket(self):
        ci = f"host={self.pg.dir} port={self.pg.port} user=postgres"
        self.pg.stop()
        with running(self, {"checks": [db_check(ci)]}) as h:
            status, ok, output, took = verbose(h)
        self.assertEqual((status, ok), (503, False))
        self.assertTrue(output.startswith("connection refused: "), output)
        self.assertLess(took, TIMEOUT_MS / 1000)

    def _frozen_run(self, h):
        """One check run against the frozen server, pinging healthd while it waits."""
        result = {}

        def ask():
            result["v"] = verbose(h)

        asker = threading.Thread(target=ask)
        asker.start()
        pings = []
        try:
            time.sleep(0.1)
            for _ in range(3):
                self.assertTrue(asker.is_alive(), "the check answered before the pings")
                t0 = time.monotonic()
                status, _, body = h.get("/health/ping", timeout=5)
                pings.append(time.monotonic() - t0)
                self.assertEqual((status, body), (200, b"pong"))
                time.sleep(0.2)
        finally:
            asker.join(30)
        note("ping while frozen, slowest", max(pings))
        self.assertLess(max(pings), 0.5)
        self.assertIn("v", result, "the check request did not come back")
        return result["v"]

    def test_frozen_server_times_out_on_the_kept_connection(self):
        with running(self, self.config) as h:
            self.assertEqual(verbose(h)[:2], (200, True))
            self.pg.freeze()
            status, ok, output, took = self._frozen_run(h)
            note("frozen server, query on kept connection, answered in", took)
            self.assertTimedOut(status, ok, output, took)
            # Still frozen: the next run must not hang either (it connects anew).
            status, ok, output, took = verbose(h)
            note("frozen server, second run (connect), answered in", took)
            self.assertTimedOut(status, ok, output, took)
            self.pg.thaw()
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True), output)
            self.assertRegex(output, r"\(new connection\)$")
            self.assertPluginKeptItsDeadline(h)
            # both timed-out runs count as timeouts, whoever ended them (ABI 1.1)
            label = frozenset({("check", "db")})
            self.assertEqual(h.metrics()[("healthd_check_timeouts_total", label)], 2)

    def test_stops_cleanly_while_a_cancel_waits_on_the_frozen_server(self):
        """A timed-out query leaves a cancel request blocked on the frozen server;
        healthd must still shut down at once, unload the plugin and exit 0."""
        with Healthd(config=self.config) as h:
            self.assertEqual(verbose(h)[:2], (200, True))
            self.pg.freeze()
            status, ok, output, took = verbose(h)
            self.assertTimedOut(status, ok, output, took)
            t0 = time.monotonic()
            rc = h.stop()
            took = time.monotonic() - t0
        note("shutdown with a cancel blocked on the frozen server", took)
        self.assertEqual(rc, 0, h.log)
        self.assertLess(took, 5)
        self.assertIn("healthd: stopped", h.log)

    def test_frozen_server_times_out_while_connecting(self):
        self.pg.freeze()
        with running(self, self.config) as h:
            status, ok, output, took = self._frozen_run(h)
            note("frozen server, first connect, answered in", took)
            self.assertTimedOut(status, ok, output, took)
            self.pg.thaw()
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True), output)
            self.assertPluginKeptItsDeadline(h)

    def _restart_reconnects(self, mode):
        with running(self, self.config) as h:
            self.assertEqual(verbose(h)[:2], (200, True))
            before = self.backend_pids()
            self.assertEqual(len(before), 1, before)
            self.pg.restart(mode)
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True), output)
            self.assertRegex(output, r"\(new connection\)$")
            after = self.backend_pids()
            self.assertEqual(len(after), 1, after)
            self.assertNotEqual(before, after)
            status, ok, output, _ = verbose(h)
            self.assertEqual((status, ok), (200, True), output)
            self.assertRegex(output, r"\(kept connection\)$")

    def test_fast_restart_reconnects_on_the_next_run(self):
        self._restart_reconnects("fast")

    def test_immediate_restart_reconnects_on_the_next_run(self):
        self._restart_reconnects("immediate")


if __name__ == "__main__":
    main()
