"""exec plugin through the real healthd binary: Debian's monitoring-plugins
(package monitoring-plugins-basic) and shell scripts that hang, flood, or leave
children behind.

Each test starts healthd with the checks it needs, asks GET /health/?verbose=1
(and /metrics, health+json where values matter) and checks the answer, and for
the process tests what is left in /proc afterwards.
"""

import json
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from healthd_fixture import TIME_SCALE, Healthd, main, run_healthd, running  # noqa: E402

PLUGINS = "/usr/lib/nagios/plugins"
SECRET = "exec-secret-0815-never-in-a-child"
MARKER = "HEALTHD_EXEC_TEST_MARKER"


def plugin(name):
    path = os.path.join(PLUGINS, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is missing: apt-get install monitoring-plugins-basic")
    return path


def wait_for(predicate, timeout, what):
    """Polls predicate (an event: a file, a process gone) up to timeout * TIME_SCALE."""
    deadline = time.monotonic() + timeout * TIME_SCALE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up after {timeout * TIME_SCALE:.1f}s waiting for {what}")


def proc_state(pid):
    """(state letter, parent pid) of a process, or None once it is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def group_members(pgid):
    """Pids of living (not zombie) processes in process group pgid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class ExecTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="healthd-exec-")
        self.addCleanup(shutil.rmtree, self.tmp)

    def script(self, name, body):
        """An executable /bin/sh script in the test's directory."""
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def healthd(self, *checks, **kw):
        # The tests follow commands by host pid (pidfiles, process groups),
        # which a PID namespace hides: the opt-out README documents.
        config = {"checks": [dict({"plugin": "exec"}, **c) for c in checks],
                  "isolation": {"plugins": {"exec": {"pid_namespace": False}}}}
        return running(self, config, **kw)

    def probe(self, h, *names):
        """(seed checks, details) of one GET /health/?checks=NAMES&verbose=1."""
        status, body = h.get_json("/health/?checks=" + ",".join(names) + "&verbose=1",
                                  timeout=30 * TIME_SCALE)
        self.assertEqual(status, 200 if all(body["checks"].values()) else 503, body)
        return body["checks"], body["details"]

    def assert_group_ends(self, pgid):
        """No living process is left in process group pgid (killed ones may take a moment to die)."""
        wait_for(lambda: not group_members(pgid), 2, f"process group {pgid} to end")

    def assert_gone(self, pid, healthd_pid, timeout):
        """pid ends: reaped, or (a grandchild handed to init) a zombie that is not healthd's."""
        def ended():
            st = proc_state(pid)
            return st is None or (st[0] == "Z" and st[1] != healthd_pid)
        wait_for(ended, timeout, f"pid {pid} to end")
        st = proc_state(pid)
        self.assertTrue(st is None or st[1] != healthd_pid,
                        f"pid {pid} is a zombie left to healthd: {st}")


class MonitoringPlugins(ExecTest):
    def test_check_dummy_exit_codes(self):
        checks = [{"name": f"d{code}", "command": [plugin("check_dummy"), str(code), f"text {code}"]}
                  for code in range(4)]
        with self.healthd(*checks) as h:
            seed, details = self.probe(h, "d0", "d1", "d2", "d3")
            self.assertEqual(seed, {"d0": True, "d1": True, "d2": False, "d3": False})
            self.assertEqual([details[f"d{c}"]["status"] for c in range(4)],
                             ["pass", "warn", "fail", "fail"])
            self.assertEqual(details["d0"]["output"], "OK: text 0")
            self.assertEqual(details["d1"]["output"], "WARNING: text 1")
            self.assertEqual(details["d2"]["output"], "CRITICAL: text 2")
            self.assertEqual(details["d3"]["output"], "UNKNOWN: text 3")
            samples = h.metrics()
            self.assertEqual([samples[("healthd_check_status", frozenset({"check": f"d{c}"}.items()))]
                              for c in range(4)], [0, 1, 2, 3])

    def test_check_load_perfdata(self):
        cmd = [plugin("check_load"), "-w", "1000,1000,1000", "-c", "2000,2000,2000"]
        with self.healthd({"name": "load", "command": cmd}) as h:
            seed, details = self.probe(h, "load")
            d = details["load"]
            self.assertEqual(d["status"], "pass", d)
            m = re.fullmatch(r"LOAD OK - total load average: ([\d.]+), ([\d.]+), ([\d.]+)",
                             d["output"])
            self.assertIsNotNone(m, d["output"])
            # the values are the numbers of the same run's text, parsed from its perfdata
            self.assertEqual(d["values"], {"load1": float(m.group(1)), "load5": float(m.group(2)),
                                           "load15": float(m.group(3))})
            samples = h.metrics()
            for name in ("load1", "load5", "load15"):
                key = ("healthd_check_value", frozenset({"check": "load", "name": name}.items()))
                self.assertIn(key, samples)
                self.assertGreaterEqual(samples[key], 0)
            status, _, body = h.get("/health/?checks=load", headers={
                "Accept": "application/health+json"})
            self.assertEqual(status, 200)
            doc = json.loads(body)
            self.assertIn("load:load1", doc["checks"])
            self.assertEqual(doc["checks"]["load:load1"][0]["status"], "pass")
            self.assertNotIn("observedUnit", doc["checks"]["load:load1"][0])

    def test_check_disk_perfdata(self):
        cmd = [plugin("check_disk"), "-w", "0%", "-c", "0%", "-p", "/"]
        with self.healthd({"name": "disk", "command": cmd}) as h:
            _, details = self.probe(h, "disk")
            d = details["disk"]
            self.assertEqual(d["status"], "pass", d)
            self.assertTrue(d["output"].startswith("DISK OK - free space: / "), d["output"])
            # check_disk reports the used space of / in bytes: compare with statvfs
            st = os.statvfs("/")
            used = (st.f_blocks - st.f_bfree) * st.f_frsize
            self.assertIn("/", d["values"])
            self.assertAlmostEqual(d["values"]["/"], used, delta=max(used * 0.05, 64 << 20))
            samples = h.metrics()
            key = ("healthd_check_value",
                   frozenset({"check": "disk", "name": "/", "unit": "bytes"}.items()))
            self.assertIn(key, samples)
            status, _, body = h.get("/health/?checks=disk", headers={
                "Accept": "application/health+json"})
            m = json.loads(body)["checks"]["disk:/"][0]
            self.assertEqual(m["observedUnit"], "B")
            self.assertEqual(m["status"], "pass")

    def test_check_tcp_against_a_loopback_listener(self):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            port = listener.getsockname()[1]
            stop = threading.Event()

            def accept():
                listener.settimeout(0.1)
                while not stop.is_set():
                    try:
                        conn, _ = listener.accept()
                        conn.close()
                    except OSError:
                        pass
            t = threading.Thread(target=accept, daemon=True)
            t.start()
            try:
                cmd = [plugin("check_tcp"), "-H", "127.0.0.1", "-p", str(port)]
                with self.healthd({"name": "tcp", "command": cmd},
                                  {"name": "closed", "command": [plugin("check_tcp"), "-H",
                                                                 "127.0.0.1", "-p", "1"]}) as h:
                    seed, details = self.probe(h, "tcp", "closed")
                    d = details["tcp"]
                    self.assertEqual(d["status"], "pass", d)
                    self.assertRegex(d["output"], rf"^TCP OK - [\d.]+ second response time on "
                                                  rf"127\.0\.0\.1 port {port}$")
                    self.assertIn("time", d["values"])
                    self.assertGreaterEqual(d["values"]["time"], 0)
                    self.assertLess(d["values"]["time"], 10)
                    self.assertEqual(details["closed"]["status"], "fail")
                    self.assertIn("Connection refused", details["closed"]["output"])
                    samples = h.metrics()
                    self.assertIn(("healthd_check_value", frozenset(
                        {"check": "tcp", "name": "time", "unit": "seconds"}.items())), samples)
            finally:
                stop.set()
                t.join(5)


class Processes(ExecTest):
    def test_hanging_command_is_killed_and_reaped(self):
        pidfile = os.path.join(self.tmp, "pid")
        hang = self.script("hang", f'echo $$ > {pidfile}\nexec sleep 1000\n')
        with self.healthd({"name": "hang", "command": [hang], "timeout_ms": 1000}) as h:
            start = time.monotonic()
            seed, details = self.probe(h, "hang")
            elapsed = time.monotonic() - start
            self.assertEqual(details["hang"]["output"], "timeout after 1000 ms")
            self.assertEqual(details["hang"]["status"], "fail")
            self.assertLess(elapsed, 10 * TIME_SCALE)
            pid = int(open(pidfile).read())
            # reaped by healthd itself by the time the run returned (deadline + grace)
            self.assert_gone(pid, h.proc.pid, 2)
            self.assert_group_ends(pid)
            samples = h.metrics()
            self.assertEqual(samples[("healthd_check_timeouts_total",
                                      frozenset({"check": "hang"}.items()))], 1)

    def test_command_ignoring_sigterm_gets_sigkill(self):
        pidfile = os.path.join(self.tmp, "pid")
        stubborn = self.script("stubborn", f'trap "" TERM\necho $$ > {pidfile}\n'
                                           'while :; do sleep 1; done\n')
        with self.healthd({"name": "stubborn", "command": [stubborn], "timeout_ms": 800,
                           "kill_grace_ms": 100}) as h:
            _, details = self.probe(h, "stubborn")
            self.assertEqual(details["stubborn"]["output"], "timeout after 800 ms")
            pid = int(open(pidfile).read())
            self.assert_gone(pid, h.proc.pid, 2)
            self.assert_group_ends(pid)

    def test_background_grandchild_holding_the_output_is_killed(self):
        pidfile = os.path.join(self.tmp, "pids")
        leaver = self.script("leaver", f'sleep 1000 &\necho $$ $! > {pidfile}\n'
                                       'echo "started | kids=1"\n')
        with self.healthd({"name": "leaver", "command": [leaver], "timeout_ms": 2000}) as h:
            start = time.monotonic()
            _, details = self.probe(h, "leaver")
            elapsed = time.monotonic() - start
            # the shell's own answer counts, though its child kept stdout open
            self.assertEqual(details["leaver"]["status"], "pass", details)
            self.assertEqual(details["leaver"]["output"], "started")
            self.assertEqual(details["leaver"]["values"], {"kids": 1})
            self.assertLess(elapsed, 2 * TIME_SCALE + 1)
            shell, kid = map(int, open(pidfile).read().split())
            self.assert_gone(shell, h.proc.pid, 2)
            self.assert_gone(kid, h.proc.pid, 2)
            self.assert_group_ends(shell)

    def test_background_grandchild_with_its_own_output_is_killed(self):
        pidfile = os.path.join(self.tmp, "pids")
        quiet = self.script("quiet", f'sleep 1000 >/dev/null 2>&1 &\necho $$ $! > {pidfile}\n'
                                     'echo done\n')
        with self.healthd({"name": "quiet", "command": [quiet]}) as h:
            _, details = self.probe(h, "quiet")
            self.assertEqual(details["quiet"]["output"], "done")
            shell, kid = map(int, open(pidfile).read().split())
            self.assert_gone(shell, h.proc.pid, 2)
            self.assert_gone(kid, h.proc.pid, 2)
            self.assert_group_ends(shell)

    def test_output_flood_is_drained_and_dropped(self):
        flood = self.script("flood", 'echo "flood ok | bytes=32000000B"\n'
                                     'head -c 32000000 /dev/zero\n'
                                     'head -c 8000000 /dev/zero >&2\n')
        with self.healthd({"name": "flood", "command": [flood], "timeout_ms": 20000}) as h:
            _, details = self.probe(h, "flood")
            d = details["flood"]
            self.assertEqual(d["status"], "pass", d)
            self.assertEqual(d["output"], "flood ok")
            self.assertEqual(d["values"], {"bytes": 32000000})
            if not os.environ.get("HEALTHD_SANITIZED") and "HEALTHD_WRAPPER" not in os.environ:
                with open(f"/proc/{h.proc.pid}/status") as f:
                    rss = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
                self.assertLess(rss, 32000, "healthd kept the flood in memory")

    def test_exit_statuses_beyond_3_and_signals_are_unknown(self):
        four = self.script("four", 'echo "odd status"\nexit 4\n')
        segv = self.script("segv", 'echo "about to crash"\nkill -SEGV $$\n')
        quiet = self.script("silent", 'echo "oops" >&2\nexit 2\n')
        with self.healthd({"name": "four", "command": [four]},
                          {"name": "segv", "command": [segv]},
                          {"name": "silent", "command": [quiet]}) as h:
            _, details = self.probe(h, "four", "segv", "silent")
            self.assertEqual(details["four"]["status"], "fail")
            self.assertEqual(details["four"]["output"], "exit status 4: odd status")
            self.assertEqual(details["segv"]["output"],
                             "killed by signal 11 (SIGSEGV): about to crash")
            self.assertEqual(details["silent"]["output"], "no output; stderr: oops")
            samples = h.metrics()
            self.assertEqual(samples[("healthd_check_status",
                                      frozenset({"check": "four"}.items()))], 3)
            self.assertEqual(samples[("healthd_check_status",
                                      frozenset({"check": "segv"}.items()))], 3)

    def test_child_gets_a_clean_environment_and_nothing_of_healthd(self):
        out = os.path.join(self.tmp, "seen")
        spy = self.script("spy", f'env > {out}.env\n'
                                 f'pwd > {out}.cwd\n'
                                 'echo spied\n')
        # one line each, so that the message shows all: the child's descriptors and signals
        fds = ["/usr/bin/find", "/proc/self/fd", "-mindepth", "1", "-printf", "%f:%l "]
        sigs = ["/usr/bin/awk", '/^Sig(Blk|Ign)/ {printf "%s ", $0}', "/proc/self/status"]
        with self.healthd({"name": "spy", "command": [spy], "env": {"FOO": "bar baz"},
                           "cwd": self.tmp},
                          {"name": "fds", "command": fds, "cwd": self.tmp},
                          {"name": "sigs", "command": sigs},
                          secret=SECRET, env={MARKER: "leaked"}) as h:
            status, body = h.get_json(f"/health/?checks=spy,fds,sigs&verbose=1&auth={SECRET}")
            details = body["details"]
            self.assertEqual(details["spy"]["output"], "spied", body)
        env = open(out + ".env").read()
        self.assertNotIn(SECRET, env)
        self.assertNotIn("HEALTH_URL_SECRET", env)
        self.assertNotIn(MARKER, env)
        names = {line.split("=", 1)[0] for line in env.splitlines()}
        self.assertIn("FOO=bar baz", env.splitlines())
        self.assertIn("LC_ALL=C", env.splitlines())
        # dash adds PWD; nothing else comes from anywhere but the plugin
        self.assertLessEqual(names, {"PATH", "LC_ALL", "FOO", "PWD"}, env)
        self.assertEqual(open(out + ".cwd").read().strip(), os.path.realpath(self.tmp))

        fds = dict(item.split(":", 1) for item in details["fds"]["output"].split())
        self.assertEqual(fds.pop("0"), "/dev/null", details["fds"])
        self.assertTrue(fds.pop("1").startswith("pipe:"), details["fds"])
        self.assertTrue(fds.pop("2").startswith("pipe:"), details["fds"])
        # the rest are find's own: its working directory and the directory it lists
        for fd, target in fds.items():
            self.assertTrue(target == os.path.realpath(self.tmp) or
                            re.fullmatch(r"/proc/\d+/fd", target),
                            f"fd {fd} -> {target} leaked into the command")

        m = re.fullmatch(r"SigBlk:\s+([0-9a-f]{16}) SigIgn:\s+([0-9a-f]{16})",
                         details["sigs"]["output"])
        self.assertIsNotNone(m, details["sigs"])
        # healthd blocks SIGTERM, SIGINT and SIGHUP in every thread and ignores
        # SIGPIPE: the command inherits neither. glibc's posix_spawn leaves its
        # two internal signals (32 and 33, below SIGRTMIN) ignored on purpose;
        # no other signal may be.
        self.assertEqual(int(m.group(1), 16), 0, details["sigs"])
        self.assertEqual(int(m.group(2), 16) & ~((1 << 31) | (1 << 32)), 0, details["sigs"])

    def test_concurrent_runs_each_reap_their_own(self):
        checks = []
        for i in range(4):
            pidfile = os.path.join(self.tmp, f"pid{i}")
            path = self.script(f"s{i}", f'echo $$ > {pidfile}\nsleep 0.3\necho "run {i} | i={i}"\n')
            checks.append({"name": f"s{i}", "command": [path], "timeout_ms": 5000})
        with self.healthd(*checks) as h:
            seed, details = self.probe(h, "s0", "s1", "s2", "s3")
            self.assertEqual(seed, {f"s{i}": True for i in range(4)})
            for i in range(4):
                self.assertEqual(details[f"s{i}"]["output"], f"run {i}")
                self.assertEqual(details[f"s{i}"]["values"], {"i": i})
                pid = int(open(os.path.join(self.tmp, f"pid{i}")).read())
                self.assert_gone(pid, h.proc.pid, 2)

    def test_perfdata_on_later_lines_and_quoted_labels(self):
        multi = self.script("multi", "echo 'OK - main | a=1'\n"
                                     "echo 'long text 2'\n"
                                     "echo \"long text 3 | 'b c'=2.5ms;1;2;0;10\"\n"
                                     "echo \"d=3% garbage e=U\"\n")
        with self.healthd({"name": "multi", "command": [multi]}) as h:
            _, details = self.probe(h, "multi")
            self.assertEqual(details["multi"]["output"], "OK - main")
            self.assertEqual(details["multi"]["values"], {"a": 1, "b c": 2.5, "d": 3})
            samples = h.metrics()
            # base units in /metrics: 2.5 ms is 0.0025 s
            self.assertEqual(samples[("healthd_check_value", frozenset(
                {"check": "multi", "name": "b c", "unit": "seconds"}.items()))], 0.0025)


class Refusals(unittest.TestCase):
    def refused(self, check, why):
        tmp = tempfile.mkdtemp(prefix="healthd-exec-")
        self.addCleanup(shutil.rmtree, tmp)
        path = os.path.join(tmp, "healthd.json")
        with open(path, "w") as f:
            json.dump({"checks": [dict({"name": "x", "plugin": "exec"}, **check)]}, f)
        rc, out, err = run_healthd(["--config", path, "--no-url-secret", "--check-config",
                                    "--plugin-dir", os.environ["HEALTHD_PLUGIN_DIR"]])
        self.assertEqual(rc, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(f"{path}: checks[0] (plugin exec): {why}", lines[0])
        return tmp

    def test_missing_command(self):
        self.refused({"command": ["/nonexistent/check_nope"]},
                     "command[0]: /nonexistent/check_nope: No such file or directory")

    def test_not_executable(self):
        tmp = tempfile.mkdtemp(prefix="healthd-exec-")
        self.addCleanup(shutil.rmtree, tmp)
        path = os.path.join(tmp, "check_plain")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        # no x bit at all: access(X_OK) fails for root too
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        self.refused({"command": [path]}, f"command[0]: {path}: not executable")

    def test_relative_path_directory_string_and_empty(self):
        self.refused({"command": ["check_load"]}, 'command[0]: "check_load" is not an absolute path')
        self.refused({"command": ["/usr/lib"]}, "command[0]: /usr/lib: not a regular file")
        self.refused({"command": "/usr/lib/nagios/plugins/check_load -w 1"},
                     "command: expected an argv array")
        self.refused({"command": []}, "command: missing")

    def test_bad_env_and_cwd(self):
        self.refused({"command": ["/bin/true"], "env": {"HEALTH_URL_SECRET": "x"}},
                     "env.HEALTH_URL_SECRET: healthd's URL secret is never given to a command")
        self.refused({"command": ["/bin/true"], "env": {"1BAD": "x"}},
                     "env.1BAD: not a valid variable name")
        self.refused({"command": ["/bin/true"], "cwd": "relative"},
                     'cwd: "relative" is not an absolute path')
        self.refused({"command": ["/bin/true"], "cwd": "/nonexistent"},
                     "cwd: /nonexistent: No such file or directory")
        self.refused({"command": ["/bin/true"], "kill_grace_ms": 99999},
                     'kill_grace_ms: expected an integer from 0 to 10000, got "99999"')


if __name__ == "__main__":
    main()
