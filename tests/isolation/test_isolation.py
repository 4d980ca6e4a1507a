"""SPEC section 8: plugin code runs in executor processes. Whatever a plugin
does (crash, abort, exit, hang, leak, write junk on its socket) the server
answers, names the plugin and the cause, restarts the executor with backoff
and leaves no process behind. The misbehaving plugin is
tests/fixtures/misbehave.c; every wait below is for an event (a log line, a
metric, a pid gone), bounded and scaled by TIME_SCALE."""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest

from healthd_fixture import (BIN, FIXTURE_DIR, PLUGIN_DIR, TIME_SCALE, WRAPPER, Healthd,
                             StartupError, abi_version, run_healthd, running)

SANITIZED = bool(os.environ.get("HEALTHD_SANITIZED"))
# A plugin's SIGSEGV must reach the server as a SIGSEGV, not as ASan's report
# and abort; an executor that dies mid-run cannot be leak-checked.
CRASH_ENV = ({"ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:handle_segv=0:detect_leaks=0"}
             if SANITIZED else {})
# words healthd puts before itself when it spawns an executor (valgrind)
EXECUTOR_WRAPPER = os.environ.get("HEALTHD_EXECUTOR_WRAPPER", "").split()
WAIT = 15.0 * TIME_SCALE  # upper bound for any awaited event
# Process-wide signal name as healthd prints it.
SIGNAMES = {"segv": "SIGSEGV", "abort": "SIGABRT"}

PLUGINS = None  # a plugin directory with dummy.so and misbehave.so, see setUpModule


def setUpModule():
    global PLUGINS
    PLUGINS = tempfile.mkdtemp(prefix="healthd-iso-plugins-")
    shutil.copy(os.path.join(PLUGIN_DIR, "dummy.so"), PLUGINS)
    shutil.copy(os.path.join(FIXTURE_DIR, "misbehave.so"), PLUGINS)


def tearDownModule():
    shutil.rmtree(PLUGINS)


def mis(name, mode, **opts):
    """A misbehave instance, not in the defaults."""
    return {"name": name, "plugin": "misbehave", "mode": mode, "defaults": False, **opts}


def dummy(name, **opts):
    return {"name": name, "plugin": "dummy", "defaults": False, **opts}


def ms(n):
    return int(n * TIME_SCALE)


def wait_for(what, fn, timeout=WAIT, log=None):
    """Polls fn() until it returns something true; returns that."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"waited {timeout:.0f} s for {what}" +
                                 (f"; healthd's log:\n{log()}" if log else ""))
        time.sleep(0.02)


ABI = abi_version()


class Background(threading.Thread):
    """One request on its own thread; .result() joins and returns (status, doc)."""

    def __init__(self, h, path, timeout=60):
        super().__init__(daemon=True)
        self.h, self.path, self.timeout = h, path, timeout * TIME_SCALE
        self.value = self.error = None
        self.start()

    def run(self):
        try:
            self.value = self.h.get_json(self.path, timeout=self.timeout)
        except Exception as e:  # reported by result()
            self.error = e

    def result(self):
        self.join(self.timeout + 5)
        if self.error is not None:
            raise self.error
        if self.value is None:
            raise AssertionError(f"no answer to {self.path}")
        return self.value


# -- processes ----------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid, starttime) of a pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid):
    """{pid: starttime} of the live children of pid, from /proc/*/stat."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pid and st[0] != "Z":
                out[int(entry)] = st[2]
    return out


def gone(pid, starttime):
    """The process is no more: no entry, a zombie nobody reaps, or its pid reused."""
    st = proc_stat(pid)
    return st is None or st[0] == "Z" or st[2] != starttime


def argv(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[:-1]


def executors(h):
    """{pid: starttime} of healthd's executors; each must say so in argv[1]."""
    kids = children(h.proc.pid)
    at = len(EXECUTOR_WRAPPER) + 1
    for pid in kids:
        assert argv(pid)[at:at + 1] == [b"--executor"], f"child {pid} of healthd: {argv(pid)!r}"
    return kids


def only_executor(h):
    """(pid, starttime) of healthd's one executor."""
    procs = executors(h)
    assert len(procs) == 1, f"expected one executor, found {procs}:\n{h.log}"
    return next(iter(procs.items()))


def wait_gone(procs, h=None):
    wait_for(f"processes {sorted(procs)} to exit",
             lambda: all(gone(p, t) for p, t in procs.items()),
             log=(lambda: h.log) if h else None)


# -- what healthd says ----------------------------------------------------------

def verbose(h, checks, timeout=60):
    return h.get_json(f"/health/?checks={checks}&verbose=1", timeout=timeout * TIME_SCALE)


def output(doc, name):
    return doc["details"][name]["output"]


def metric(h, name, **labels):
    return h.metrics().get((name, frozenset(labels.items())))


# A log line that is not a check's state-change line (core/transitions.c).
NOT_STATE_CHANGE = r"^(?!.*: check \S+: (\w+ -> \w+ after |\w+ at its first result: )).*"


def log_matches(h, pattern, start=0):
    """[(line index, match)] of log lines from `start` on matching pattern."""
    rx = re.compile(pattern)
    lines = h.log.splitlines()
    return [(i, m) for i, line in enumerate(lines[start:], start) if (m := rx.search(line))]


def wait_log(h, pattern, start=0, count=1):
    """Waits for `count` log lines from `start` on; returns log_matches()."""
    def enough():
        found = log_matches(h, pattern, start)
        return found if len(found) >= count else None
    return wait_for(f"{count} log line(s) matching {pattern!r}", enough, log=lambda: h.log)


def wait_ready(h, old_pid, start):
    """Waits for a misbehave executor other than old_pid to be ready; its pid."""
    def new_pid():
        pids = [int(m[1]) for _, m in log_matches(
            h, r"plugin misbehave: executor pid (\d+) ready", start)]
        return next((pid for pid in pids if pid != old_pid), None)
    return wait_for("a new misbehave executor", new_pid, log=lambda: h.log)


def crash_text(mode, status=None):
    if mode == "exit":
        return f"exited with status {status}"
    return f"crashed ({SIGNAMES[mode]})"


def mis_path():
    return os.path.join(PLUGINS, "misbehave.so")


# -- the cases ------------------------------------------------------------------

class IsoTest(unittest.TestCase):
    @contextlib.contextmanager
    def serve(self, config, **kw):
        """running() whose failures carry healthd's log."""
        with running(self, config, **kw) as h:
            try:
                yield h
            except AssertionError as e:
                e.args = (f"{e.args[0] if e.args else ''}\n--- healthd's log:\n{h.log}",)
                raise


class CrashInRun(IsoTest):
    """A crash, abort() or exit() in run() fails the runs of that executor in
    flight, naming plugin, cause and the check whose run did it; other
    plugins' runs in flight are untouched; one log line; the executor comes
    back."""

    def crash(self, mode, in_process, **opts):
        config = {"checks": [
            mis("boom", mode, **opts),
            mis("nap", "sleep", ms=ms(30000), timeout_ms=ms(10000)),
            mis("fine", "ok"),
            dummy("dslow", delay_ms=ms(1500), timeout_ms=ms(10000)),
        ]}
        if in_process is not None:
            config["in_process"] = in_process
        cause = crash_text(mode, opts.get("status"))
        with self.serve(config, plugin_dir=PLUGINS, env=CRASH_ENV) as h:
            before = executors(h)
            self.assertEqual(len(before), 1 if in_process is None else 2, before)
            nap = Background(h, "/health/?checks=nap&verbose=1")
            dslow = Background(h, "/health/?checks=dslow,true&verbose=1")
            wait_log(h, r"misbehave: check nap: run started")
            start = len(h.log.splitlines())

            st, doc = verbose(h, "boom")
            self.assertEqual((st, doc["checks"]), (503, {"boom": False}), doc)
            self.assertEqual(output(doc, "boom"),
                             f'plugin misbehave {cause} during check "boom"')
            st, doc = nap.result()
            self.assertEqual((st, doc["checks"]), (503, {"nap": False}), doc)
            # nap did nothing wrong, but its executor died under it during boom
            self.assertEqual(output(doc, "nap"), f'plugin misbehave {cause} during check "boom"')
            st, doc = dslow.result()
            self.assertEqual((st, doc["checks"]), (200, {"dslow": True, "true": True}), doc)
            self.assertEqual(output(doc, "dslow"), f"ok after {ms(1500)} ms")

            # logged once, with the file, the pid and the delay
            lines = wait_log(h, rf"executor pid (\d+) {re.escape(cause)}", start)
            cause_word = cause.split("(")[-1].rstrip(")")  # SIGSEGV, or the exit status
            # a check's state-change line quotes its run's message: another event
            self.assertEqual(len(log_matches(h, NOT_STATE_CHANGE + re.escape(cause_word), start)),
                             1, "one line, not one from the executor and one from the server")
            i, m = lines[0]
            pid = int(m[1])
            line = h.log.splitlines()[i]
            self.assertIn(f"plugin misbehave ({mis_path()}): executor pid {pid} {cause}", line)
            self.assertIn('during check "boom"', line)
            self.assertIn("restarting in 100 ms", line)
            self.assertIn(pid, before)
            new = wait_ready(h, pid, i)
            self.assertNotEqual(new, pid)
            wait_gone({pid: before[pid]}, h)
            for other in set(before) - {pid}:  # the isolated dummy's executor lives on
                self.assertFalse(gone(other, before[other]), f"executor {other} went too")

            st, doc = verbose(h, "fine")
            self.assertEqual((st, doc["checks"], output(doc, "fine")),
                             (200, {"fine": True}, "ok"))
            self.assertEqual(metric(h, "healthd_plugin_restarts_total", plugin="misbehave",
                                    reason="crash"), 1)
            self.assertEqual(metric(h, "healthd_plugin_up", plugin="misbehave"), 1)
            self.assertEqual(metric(h, "healthd_plugin_up", plugin="dummy"), 1)

    def test_segv_dummy_in_process(self):
        self.crash("segv", None)

    def test_segv_dummy_isolated(self):
        self.crash("segv", [])

    def test_abort_dummy_in_process(self):
        self.crash("abort", None)

    def test_abort_dummy_isolated(self):
        self.crash("abort", [])

    def test_exit_dummy_in_process(self):
        self.crash("exit", None, status=3)

    def test_exit_dummy_isolated(self):
        self.crash("exit", [], status=3)


class Backoff(IsoTest):
    """A plugin that crashes on every run: while it is down its checks fail at
    once with "is down"; each restart waits twice as long, up to the maximum."""

    def test_repeated_crashes_back_off(self):
        rmin = ms(500)
        rmax = 3 * rmin  # the cap cuts the doubling short: 1, 2, 3, 3, 3
        config = {"isolation": {"restart_min_ms": rmin, "restart_max_ms": rmax},
                  "checks": [mis("boom", "segv"), mis("fine", "ok")]}
        crashed = 'plugin misbehave crashed (SIGSEGV) during check "boom"'
        with self.serve(config, plugin_dir=PLUGINS, env=CRASH_ENV) as h:
            answers = []
            down_metric_seen = False
            end = time.monotonic() + 20 * WAIT
            while answers.count("crash") < 5:
                self.assertLess(time.monotonic(), end, f"{answers}\n{h.log}")
                st, doc = verbose(h, "boom")
                self.assertEqual((st, doc["checks"]), (503, {"boom": False}), doc)
                out = output(doc, "boom")
                if out == crashed:
                    answers.append("crash")
                    if not down_metric_seen:  # right after a crash, within rmin
                        self.assertEqual(
                            metric(h, "healthd_plugin_up", plugin="misbehave"), 0)
                        down_metric_seen = True
                elif out.startswith("plugin misbehave is down"):
                    answers.append("down")
                else:
                    self.fail(f"unexpected answer {out!r}")
            # crash, then down until the restart, then the next crash ...
            self.assertEqual(answers[0], "crash")
            runs = "".join("c" if a == "crash" else "d" for a in answers)
            self.assertNotIn("cc", runs, answers)
            delays = [int(m[1]) for _, m in wait_log(
                h, r"plugin misbehave \(.*\): executor pid \d+ crashed \(SIGSEGV\).*"
                   r"restarting in (\d+) ms", count=5)]
            self.assertEqual(delays, [rmin, 2 * rmin, rmax, rmax, rmax], h.log)
            wait_for("5 restarts counted", lambda: metric(
                h, "healthd_plugin_restarts_total", plugin="misbehave", reason="crash") == 5,
                log=lambda: h.log)
            wait_for("misbehave up again",
                     lambda: metric(h, "healthd_plugin_up", plugin="misbehave") == 1,
                     log=lambda: h.log)
            st, doc = verbose(h, "fine")
            self.assertEqual((st, doc["checks"]), (200, {"fine": True}), doc)


    def test_backoff_resets_after_a_quiet_window(self):
        rmin = ms(200)
        quiet = ms(5000)  # longer than a restart and a run, so crash 2 still doubles
        config = {"isolation": {"restart_min_ms": rmin, "restart_max_ms": 8 * rmin,
                                "crash_reset_ms": quiet},
                  "checks": [mis("boom", "segv")]}
        rx = r"executor pid \d+ crashed \(SIGSEGV\).*restarting in (\d+) ms"
        with self.serve(config, plugin_dir=PLUGINS, env=CRASH_ENV) as h:
            def crash(n):
                wait_for("misbehave up", lambda: metric(
                    h, "healthd_plugin_up", plugin="misbehave") == 1, log=lambda: h.log)
                self.assertIn("crashed (SIGSEGV)", output(verbose(h, "boom")[1], "boom"))
                return int(wait_log(h, rx, count=n)[n - 1][1][1])
            self.assertEqual((crash(1), crash(2)), (rmin, 2 * rmin))
            wait_log(h, rf"plugin misbehave: no crash for {quiet} ms: its restarts back off "
                        rf"from {rmin} ms again")
            self.assertEqual(crash(3), rmin)


class Deadline(IsoTest):
    """A run still in plugin code kill_after_ms past its deadline retires its
    executor; the executor's other runs finish; the next run is fresh."""

    def test_hanging_run_replaces_executor(self):
        config = {"isolation": {"kill_after_ms": ms(300)}, "checks": [
            mis("stuck", "hang", timeout_ms=ms(500)),
            mis("nap", "sleep", ms=ms(1500), timeout_ms=ms(10000)),
            mis("fine", "ok"),
        ]}
        with self.serve(config, plugin_dir=PLUGINS) as h:
            old, old_start = only_executor(h)
            nap = Background(h, "/health/?checks=nap&verbose=1")
            wait_log(h, r"misbehave: check nap: run started")
            start = len(h.log.splitlines())
            st, doc = verbose(h, "stuck")
            self.assertEqual((st, output(doc, "stuck")), (503, f"timeout after {ms(500)} ms"))
            (i, m), = wait_log(h, r'plugin misbehave: check "stuck" still running.*'
                                  r"after its deadline; replacing executor pid (\d+)", start)
            self.assertEqual(int(m[1]), old)
            new = wait_ready(h, old, start)
            # nap was in flight in the retired executor: it still answers
            st, doc = nap.result()
            self.assertEqual((st, doc["checks"], output(doc, "nap")),
                             (200, {"nap": True}, "sleep"))
            wait_gone({old: old_start}, h)
            # the runner says the run never returned, not "returned after N ms"
            wait_log(h, r"check stuck: run still in plugin code \d+ ms after its deadline: "
                        r"executor killed; result discarded", start)
            self.assertNotIn("run returned after", h.log)
            self.assertEqual(metric(h, "healthd_plugin_restarts_total", plugin="misbehave",
                                    reason="deadline"), 1)
            self.assertIn(new, executors(h))
            # fresh: not "an earlier run is still stuck"
            st, doc = verbose(h, "stuck,fine")
            self.assertEqual((st, doc["checks"]), (503, {"stuck": False, "fine": True}))
            self.assertEqual(output(doc, "stuck"), f"timeout after {ms(500)} ms")


class ExitInProcess(IsoTest):
    """exit() in run() of an in-process plugin ends healthd, as it must; one
    line names the plugin and the check before the process ends."""

    def test_exit_in_process_is_named(self):
        config = {"in_process": ["misbehave"], "checks": [mis("boom", "exit", status=3)]}
        # not running(): that one wants healthd to end with 0
        with Healthd(config=config, plugin_dir=PLUGINS, env=CRASH_ENV) as h:
            try:
                h.get("/health/?checks=boom", timeout=WAIT)
            except (OSError, http.client.HTTPException):
                pass  # healthd ended under the request
            self.assertEqual(h.proc.wait(WAIT), 3, h.log)
            h.stop()  # its log, read to the end
            self.assertEqual(len(log_matches(h, r'plugin misbehave called exit\(\) during check '
                                                r'"boom": healthd ends')), 1)


@unittest.skipIf(WRAPPER, "memory figures mean nothing under valgrind")
class Memory(IsoTest):
    """An executor above isolation.max_rss_mb is replaced after its current
    runs; no run fails for it."""

    def test_leaking_plugin_is_replaced(self):
        cap = 40
        leaks = [f"l{i}" for i in range(4)]
        config = {"isolation": {"max_rss_mb": cap},
                  "checks": [mis(n, "leak", kb=4096) for n in leaks] +
                            [mis("nap", "sleep", ms=ms(2000), timeout_ms=ms(10000))]}
        rx = (r"plugin misbehave: executor pid (\d+) uses (\d+) MiB, above "
              rf"isolation.max_rss_mb {cap} MiB; replacing it")
        with self.serve(config, plugin_dir=PLUGINS) as h:
            first, first_start = only_executor(h)
            # in flight in the first executor while it grows past the cap
            nap = Background(h, "/health/?checks=nap&verbose=1")
            wait_log(h, r"misbehave: check nap: run started")
            rounds_after = None
            for _ in range(40):  # 16 MB a round: the cap is passed in the third
                st, doc = verbose(h, ",".join(leaks))
                self.assertEqual((st, doc["checks"]), (200, {n: True for n in leaks}), doc)
                if rounds_after is None:  # sampled while it grows
                    wait_for("healthd_plugin_rss_bytes", lambda: metric(
                        h, "healthd_plugin_rss_bytes", plugin="misbehave"), log=lambda: h.log)
                if rounds_after is None and log_matches(h, rx):
                    rounds_after = 0
                if rounds_after is not None:
                    rounds_after += 1
                    if rounds_after > 3:  # runs across the replacement answered too
                        break
            else:
                self.fail(f"no replacement after 40 rounds:\n{h.log}")
            (i, m), *_ = log_matches(h, rx)
            self.assertEqual(int(m[1]), first)
            self.assertGreater(int(m[2]), cap)
            st, doc = nap.result()
            self.assertEqual((st, doc["checks"], output(doc, "nap")),
                             (200, {"nap": True}, "sleep"))
            wait_ready(h, first, i)
            wait_gone({first: first_start}, h)
            self.assertGreaterEqual(metric(h, "healthd_plugin_restarts_total",
                                           plugin="misbehave", reason="memory"), 1)
            self.assertEqual(metric(h, "healthd_plugin_restarts_total", plugin="misbehave",
                                    reason="crash"), 0)


class Shutdown(IsoTest):
    """No executor outlives healthd, however it ends."""

    CONFIG = {"in_process": [], "checks": [
        mis("nap", "sleep", ms=ms(1000), timeout_ms=ms(10000)),
        mis("stuck", "hang", timeout_ms=ms(10000)),
        dummy("dslow", delay_ms=ms(300)),
    ]}

    def test_sigterm_answers_and_executors_exit(self):
        h = Healthd(config=self.CONFIG, plugin_dir=PLUGINS)
        with h:
            procs = executors(h)
            self.assertEqual(len(procs), 2, procs)  # dummy's and misbehave's
            req = Background(h, "/health/?checks=nap,dslow")
            wait_log(h, r"misbehave: check nap: run started")
            h.proc.send_signal(signal.SIGTERM)
            st, doc = req.result()
            self.assertIn(st, (200, 503))
            self.assertEqual(set(doc["checks"]), {"nap", "dslow"})
            self.assertEqual(h.proc.wait(WAIT), 0, h.log)
            wait_gone(procs, h)

    def test_sigkill_leaves_no_executor(self):
        h = Healthd(config=self.CONFIG, plugin_dir=PLUGINS)
        with h:
            procs = executors(h)
            self.assertEqual(len(procs), 2, procs)
            req = Background(h, "/health/?checks=stuck")
            wait_log(h, r"misbehave: check stuck: run started")  # a thread that never returns
            h.proc.kill()
            h.proc.wait(WAIT)
            req.join(WAIT)
            self.assertIsNotNone(req.error, "the connection should have died with healthd")
            wait_gone(procs)


class Startup(IsoTest):
    """A crash while loading or instantiating refuses startup in one line."""

    def only_line(self, log, needle, expected):
        lines = [line for line in log.splitlines() if needle in line]
        self.assertEqual(len(lines), 1, log)
        self.assertIn(expected, lines[0])

    def test_crash_in_load(self):
        d = tempfile.mkdtemp(prefix="healthd-iso-load-")
        try:
            shutil.copy(os.path.join(PLUGIN_DIR, "dummy.so"), d)
            shutil.copy(os.path.join(FIXTURE_DIR, "crashload.so"), d)
            expected = (f"plugin {d}/crashload.so: refused: its executor crashed (SIGSEGV) "
                        "during load()")
            with self.assertRaises(StartupError) as cm:
                Healthd(plugin_dir=d, env=CRASH_ENV).start()
            self.assertEqual(cm.exception.returncode, 1)
            self.only_line(cm.exception.log, "crashload", expected)
            rc, _, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"],
                                     env=CRASH_ENV)
            self.assertEqual(rc, 1, err)
            self.only_line(err, "crashload", expected)
        finally:
            shutil.rmtree(d)

    def test_crash_in_instantiate(self):
        h = Healthd(config={"checks": [mis("ci", "crash_instantiate")]}, plugin_dir=PLUGINS,
                    env=CRASH_ENV)
        with self.assertRaises(StartupError) as cm:
            h.start()
        self.assertEqual(cm.exception.returncode, 1)
        self.only_line(cm.exception.log, "instantiate",
                       f"{h.config_path}: checks[0] (plugin misbehave): its executor crashed "
                       "(SIGSEGV) during instantiate()")

    def test_unknown_option_refused_through_executor(self):
        # options still travel through the host accessors: a key nobody read is refused
        h = Healthd(config={"checks": [mis("o", "ok", ms=5)]}, plugin_dir=PLUGINS)
        with self.assertRaises(StartupError) as cm:
            h.start()
        self.assertEqual(cm.exception.returncode, 1)
        self.assertIn(f"{h.config_path}: checks[0].ms: unknown option for plugin misbehave",
                      cm.exception.log)


class Concurrency(IsoTest):
    """50 checks of one plugin in one request run at once in its executor; in
    process the server's 8 workers cannot do that."""

    def barrier(self, **config):
        names = [f"b{i:02d}" for i in range(50)]
        config["checks"] = [mis(n, "barrier", n=50, timeout_ms=ms(3000)) for n in names]
        with self.serve(config, plugin_dir=PLUGINS) as h:
            st, doc = verbose(h, ",".join(names))
            return st, doc, names

    def test_fifty_at_once_isolated(self):
        st, doc, names = self.barrier()
        self.assertEqual((st, doc["checks"]), (200, {n: True for n in names}), doc)
        self.assertEqual({output(doc, n) for n in names}, {"50 at once"})

    def most_at_once(self, doc, names):
        """The most runs the barriers saw at once: each one that gave up says
        "only K of 50"; the others were answered "timeout" unstarted."""
        outputs = [output(doc, n) for n in names]
        seen = [int(m[1]) for o in outputs if (m := re.fullmatch(r"only (\d+) of 50 at once", o))]
        self.assertTrue(seen, outputs)
        self.assertEqual(len(seen) + outputs.count(f"timeout after {ms(3000)} ms"), 50, outputs)
        return max(seen)

    def test_in_process_cannot(self):
        st, doc, names = self.barrier(in_process=["dummy", "misbehave"], workers=8)
        self.assertEqual(st, 503)
        self.assertEqual(self.most_at_once(doc, names), 8)  # the server's pool

    def test_max_threads_caps_runs(self):
        st, doc, names = self.barrier(isolation={"max_threads": 8})
        self.assertEqual(st, 503)
        self.assertEqual(self.most_at_once(doc, names), 8)


class Garbage(IsoTest):
    """Junk on an executor's socket: the server kills that executor (reason
    protocol) and nothing else notices. A well-formed result for no run in
    flight is only dropped."""

    def test_junk_from_executor(self):
        config = {"checks": [mis("garb", "garbage"), mis("fine", "ok"),
                             dummy("dslow", delay_ms=ms(1000), timeout_ms=ms(10000))]}
        with self.serve(config, plugin_dir=PLUGINS) as h:
            old, old_start = only_executor(h)
            dslow = Background(h, "/health/?checks=dslow")
            start = len(h.log.splitlines())
            st, doc = verbose(h, "garb")
            self.assertEqual((st, doc["checks"]), (503, {"garb": False}), doc)
            wait_for("a protocol restart", lambda: metric(
                h, "healthd_plugin_restarts_total", plugin="misbehave", reason="protocol") == 1,
                log=lambda: h.log)
            self.assertEqual(h.get("/health/ping")[::2], (200, b"pong"))
            st, doc = verbose(h, "true")
            self.assertEqual((st, doc["checks"]), (200, {"true": True}))
            st, doc = dslow.result()
            self.assertEqual((st, doc["checks"]), (200, {"dslow": True}))
            wait_ready(h, old, start)
            wait_gone({old: old_start}, h)
            st, doc = verbose(h, "fine")
            self.assertEqual((st, doc["checks"]), (200, {"fine": True}))
            self.assertEqual(metric(h, "healthd_plugin_restarts_total", plugin="misbehave",
                                    reason="crash"), 0)


    def test_result_for_no_run_in_flight(self):
        # well-formed, but for a token never given out: dropped, logged, not fatal
        config = {"checks": [mis("stale", "stale"), mis("fine", "ok")]}
        with self.serve(config, plugin_dir=PLUGINS) as h:
            pid, start_time = only_executor(h)
            st, doc = verbose(h, "stale,fine")
            self.assertEqual((st, doc["checks"]), (200, {"stale": True, "fine": True}), doc)
            self.assertEqual(output(doc, "stale"), "sent a stale result")
            wait_log(h, rf"plugin misbehave: executor pid {pid} .*dropped")
            self.assertEqual(executors(h), {pid: start_time})
            self.assertEqual(verbose(h, "fine")[0], 200)
            for reason in ("crash", "protocol"):
                self.assertEqual(metric(h, "healthd_plugin_restarts_total", plugin="misbehave",
                                        reason=reason), 0, reason)


class Executors(IsoTest):
    """What an executor is and holds."""

    def test_no_secret_no_extra_fds(self):
        secret = "iso-secret-3f9a1c"
        config = {"in_process": [], "checks": [mis("fine", "ok")]}
        with self.serve(config, plugin_dir=PLUGINS, secret=secret) as h:
            st, doc = h.get_json(f"/health/?checks=fine,true&auth={secret}")
            self.assertEqual((st, doc["checks"]), (200, {"fine": True, "true": True}))
            procs = executors(h)
            self.assertEqual(len(procs), 2, procs)
            for pid in procs:
                self.assertNotIn(secret.encode(), b" ".join(argv(pid)))
                if os.getuid() != 0:
                    # not dumpable (README "Security model"): the same uid may not
                    # read an executor's environment, descriptors or binary; root
                    # may, and checks them below
                    with self.assertRaises(PermissionError):
                        with open(f"/proc/{pid}/environ", "rb") as f:
                            f.read()
                    continue
                if not EXECUTOR_WRAPPER:  # healthd's own binary
                    self.assertEqual(os.path.realpath(f"/proc/{pid}/exe"),
                                     os.path.realpath(BIN))
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read()
                self.assertNotIn(b"HEALTH_URL_SECRET", env)
                self.assertNotIn(secret.encode(), env)
                self.assertNotIn(secret.encode(), b" ".join(argv(pid)))
                fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
                if EXECUTOR_WRAPPER:  # valgrind keeps its own at the top of the table
                    fds = [fd for fd in fds if fd < 1000]
                self.assertEqual(fds, [0, 1, 2, 3], f"executor {pid}")
                self.assertTrue(os.readlink(f"/proc/{pid}/fd/3").startswith("socket:"))

    def test_in_process_plugins_as_before(self):
        # only dummy.so: the default in_process holds it, so no executor at all
        d = tempfile.mkdtemp(prefix="healthd-iso-dummy-")
        try:
            shutil.copy(os.path.join(PLUGIN_DIR, "dummy.so"), d)
            with self.serve({"checks": [dummy("d", result="warning")]}, plugin_dir=d) as h:
                self.assertEqual(executors(h), {})
                st, doc = verbose(h, "true,false,d")
                self.assertEqual((st, doc["checks"]),
                                 (503, {"true": True, "false": False, "d": True}))
                self.assertEqual(output(doc, "false"), "always fails")
                self.assertEqual(metric(h, "healthd_plugin_up", plugin="dummy"), 1)
        finally:
            shutil.rmtree(d)

    def test_metrics(self):
        config = {"checks": [mis("fine", "ok")]}
        with self.serve(config, plugin_dir=PLUGINS) as h:
            self.assertEqual(verbose(h, "fine")[0], 200)
            self.assertEqual(metric(h, "healthd_plugin_up", plugin="misbehave"), 1)
            self.assertEqual(metric(h, "healthd_plugin_up", plugin="dummy"), 1)
            for reason in ("crash", "deadline", "memory", "protocol"):
                self.assertEqual(metric(h, "healthd_plugin_restarts_total", plugin="misbehave",
                                        reason=reason), 0, reason)
            self.assertGreater(metric(h, "healthd_plugin_rss_bytes", plugin="misbehave"),
                               1 << 20)


class Config(IsoTest):
    def check_config(self, config):
        d = tempfile.mkdtemp(prefix="healthd-iso-config-")
        try:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump(config, f)
            rc, out, err = run_healthd(["--plugin-dir", PLUGINS, "--no-url-secret",
                                        "--config", path, "--check-config"])
            return path, rc, out, err
        finally:
            shutil.rmtree(d)

    def test_check_config_says_where_plugins_run(self):
        two = [mis("a", "ok"), mis("b", "ok")]
        dummy_line = f"plugin dummy 1.0 (ABI {ABI}) from {PLUGINS}/dummy.so: 2 checks, "
        mis_line = f"plugin misbehave 0.1 (ABI {ABI}) from {PLUGINS}/misbehave.so: 2 checks, "
        for in_process, d_where, m_where in ((None, "in process", "isolated"),
                                             ([], "isolated", "isolated"),
                                             (["dummy", "misbehave"], "in process",
                                              "in process")):
            config = {"checks": two}
            if in_process is not None:
                config["in_process"] = in_process
            _, rc, out, err = self.check_config(config)
            self.assertEqual(rc, 0, err)
            self.assertIn(dummy_line + d_where + "\n", out)
            self.assertIn(mis_line + m_where + "\n", out)

    def test_bad_values_name_the_key(self):
        for isolation, key in (({"kill_after_ms": -1}, "isolation.kill_after_ms"),
                               ({"kill_after_ms": "1s"}, "isolation.kill_after_ms"),
                               ({"max_rss_mb": 0}, "isolation.max_rss_mb"),
                               ({"max_threads": 0}, "isolation.max_threads"),
                               ({"restart_min_ms": 0}, "isolation.restart_min_ms"),
                               ({"restart_min_ms": 500, "restart_max_ms": 100},
                                "isolation.restart_max_ms"),
                               ({"crash_reset_ms": 0}, "isolation.crash_reset_ms"),
                               ({"kill_after": 5}, "isolation.kill_after")):
            path, rc, out, err = self.check_config({"isolation": isolation})
            self.assertEqual(rc, 1, (isolation, err))
            lines = err.strip().splitlines()
            self.assertEqual(len(lines), 1, err)
            self.assertIn(f"{path}: {key}: ", lines[0])
        for value, key in (("dummy", "in_process"), ([1], "in_process[0]"),
                           (["Bad Name"], "in_process[0]")):
            path, rc, out, err = self.check_config({"in_process": value})
            self.assertEqual(rc, 1, (value, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(f"{path}: {key}: ", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
