"""Reload without restart (SIGHUP): the configuration, checks_dir and the
plugin directory are read again, the new set is validated whole, and the
switch loses no request.

Every case runs healthd with a plugin directory of its own (dummy.so, and the
`ver` fixture plugin, whose check says which build and which executor process
answered) while keep-alive clients poll it; each case ends by asserting that
none of their requests failed and that the process is the same one.
"""

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
import unittest

from healthd_fixture import Healthd, FIXTURE_DIR, PLUGIN_DIR, TIME_SCALE, main

BUILD = re.compile(r"build (\S+) pid (\d+)")
# counter.so is built beside this test (tests/reload), not among the fixtures
COUNTER_SO = os.path.join(FIXTURE_DIR, os.pardir, "reload", "counter.so")


def wait_for(cond, what, h, timeout=20):
    deadline = time.monotonic() + timeout * TIME_SCALE
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout * TIME_SCALE:.0f} s:\n{h.log}")
        time.sleep(0.02)


class Load:
    """Keep-alive clients asking `paths` in a loop until stopped; every answer
    must be 200 (or the expected code of its path)."""

    def __init__(self, h, paths, clients=4):
        self.h = h
        self.paths = paths
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(clients)]

    def client(self, i):
        conn = self.h.connection(timeout=30 * TIME_SCALE)
        k = i
        while not self.stop_ev.is_set():
            path, want = self.paths[k % len(self.paths)]
            k += 1
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == want
                if ok and path.startswith("/health/?"):
                    json.loads(body)
            except Exception as e:  # a reset connection is a failure too
                ok, body = False, repr(e).encode()
                conn.close()
                conn = self.h.connection(timeout=30 * TIME_SCALE)
            with self.lock:
                self.done += 1
                if not ok:
                    self.failures.append((path, body[:200]))
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        # under way before anything changes
        wait_for(lambda: self.done >= 20, "requests from the load clients", self.h)
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60 * TIME_SCALE)

    def assertClean(self, test):
        test.assertEqual(self.failures[:5], [], f"{len(self.failures)} of {self.done} failed")
        test.assertGreater(self.done, 20)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.h = None

    def tearDown(self):
        if self.h is not None:
            rc = self.h.stop()
            self.assertEqual(rc, 0, f"healthd did not exit cleanly:\n{self.h.log}")
            self.h._tmp.cleanup()

    def start(self, config, plugins=("dummy", "ver1")):
        h = Healthd(config="{}", plugin_dir="")
        self.plugin_dir = os.path.join(h.tmpdir, "plugins")
        self.checks_dir = os.path.join(h.tmpdir, "checks.d")
        os.mkdir(self.plugin_dir)
        os.mkdir(self.checks_dir)
        for p in plugins:
            self.install(p, "ver" if p.startswith("ver") else p)
        h.plugin_dir = self.plugin_dir
        # "ver" answers with its pid, which the tests match against healthd's
        # children: in a PID namespace every executor would be pid 2
        iso = dict(config.get("isolation", {}), plugins={"ver": {"pid_namespace": False}})
        config = dict(config, checks_dir=self.checks_dir, isolation=iso)
        h.config = config
        self.config = config
        self.h = h.start()
        self.pid = h.proc.pid
        return h

    def install(self, build, name):
        """As install(1) does: a new file renamed over the old name."""
        src = os.path.join(FIXTURE_DIR if build.startswith("ver") or build == "misbehave"
                           else PLUGIN_DIR, build + ".so")
        if build == "counter":
            src = COUNTER_SO
        tmp = os.path.join(self.plugin_dir, "." + name + ".tmp")
        shutil.copyfile(src, tmp)
        os.rename(tmp, os.path.join(self.plugin_dir, name + ".so"))

    @staticmethod
    def replace_file(path, text):
        """Written whole, then renamed over: a reload never reads half a file."""
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)

    def write_config(self, config=None, text=None):
        self.replace_file(self.h.config_path, text if text is not None else json.dumps(config))

    def drop_in(self, name, checks):
        self.replace_file(os.path.join(self.checks_dir, name), json.dumps(checks))

    def reload(self, expect):
        """SIGHUP, then wait for the log line matching `expect` after it."""
        mark = len(self.h.log.splitlines())
        self.h.proc.send_signal(signal.SIGHUP)
        pattern = re.compile(expect)
        return wait_for(lambda: next((line for line in self.h.log.splitlines()[mark:]
                                      if pattern.search(line)), None),
                        f"log line /{expect}/", self.h)

    def build(self, check):
        status, _, body = self.h.get(f"/health/?checks={check}&verbose=1")
        self.assertEqual(status, 200, body)
        m = BUILD.fullmatch(json.loads(body)["details"][check]["output"])
        self.assertIsNotNone(m, body)
        return m.group(1), int(m.group(2))

    def metric(self, name, **labels):
        return self.h.metrics().get((name, frozenset(labels.items())))

    def children(self):
        """healthd's child processes (its executors), by PID."""
        kids = set()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid and fields[0] != "Z":
                kids.add(int(d))
        return kids

    def assertSameProcess(self):
        self.assertIsNone(self.h.proc.poll(), f"healthd exited:\n{self.h.log}")
        self.assertEqual(self.h.proc.pid, self.pid)

    # -- the cases ------------------------------------------------------------

    def test_drop_in_replace_remove_and_a_broken_config_under_load(self):
        self.start({"checks": [{"name": "v", "plugin": "ver"}], "in_process": ["dummy"]})
        self.assertEqual(self.build("v")[0], "1.0")
        paths = [("/health/?checks=v", 200), ("/health/ping", 200),
                 ("/health/?checks=true", 200), ("/metrics", 200)]
        with Load(self.h, paths) as load:
            # 1. a check dropped into checks_dir: added; "v" keeps its executor
            self.drop_in("extra.json", [{"name": "v2", "plugin": "ver"}])
            # a new check of the plugin: it gets a fresh executor (see README)
            self.reload(r"reload: 1 check added, 0 removed, \d+ kept; "
                        r"plugin ver restarted \(1\.0, its checks changed\)")
            self.assertEqual(self.build("v2")[0], "1.0")
            self.assertEqual(self.metric("healthd_check_runs_total", check="v2"), 1)
            # 2. a new build renamed over the plugin: the new build answers
            _, pid_before = self.build("v")
            self.install("ver2", "ver")
            line = self.reload(r"reload: .*plugin ver replaced \(1\.0 -> 2\.0\)")
            self.assertIn("0 checks added, 0 removed", line)
            version, pid2 = self.build("v")
            self.assertEqual(version, "2.0")
            self.assertNotEqual(pid2, pid_before)
            self.assertEqual(self.build("v2"), (version, pid2))
            # the old executor ends once its runs are over, and is reaped
            wait_for(lambda: pid_before not in self.children(), "the old executor's end",
                     self.h)
            # 3. a plain reload changes nothing: same executor, same answers
            self.reload(r"reload: 0 checks added, 0 removed, \d+ kept$")
            self.assertEqual(self.build("v"), ("2.0", pid2))
            # 4. the drop-in removed: its check is gone, the rest stays
            os.unlink(os.path.join(self.checks_dir, "extra.json"))
            self.reload(r"reload: 0 checks added, 1 removed")
            wait_for(lambda: self.metric("healthd_check_runs_total", check="v2") is None,
                     "v2 gone from /metrics", self.h)
            _, pid2 = self.build("v")  # the plugin's checks changed: a fresh executor
            # 5. a broken configuration: refused in one line, nothing changes
            self.write_config(text='{"checks": [')
            line = self.reload(r"reload failed: ")
            self.assertIn(self.h.config_path, line)
            self.assertIn("still serving", line)
            self.assertEqual(self.build("v"), ("2.0", pid2))
            # 6. an unknown plugin in a check: refused, nothing changes
            self.write_config(dict(self.config, checks=[{"name": "v", "plugin": "nosuch"}]))
            line = self.reload(r"reload failed: ")
            self.assertIn('unknown plugin "nosuch" (plugins in process: dummy; isolated: ver)',
                          line)
            self.assertEqual(self.build("v"), ("2.0", pid2))
            # 7. a plugin removed from the directory, and its check with it
            self.write_config(dict(self.config, checks=[]))
            os.unlink(os.path.join(self.plugin_dir, "ver.so"))
            self.reload(r"reload: 0 checks added, 1 removed, \d+ kept; plugin ver removed")
            wait_for(lambda: pid2 not in self.children(), "the removed plugin's executor's end",
                     self.h)
            load.paths[0] = ("/health/ping", 200)
        load.assertClean(self)
        self.assertSameProcess()
        m = self.h.metrics()
        self.assertEqual(m[("healthd_reloads_total", frozenset({("result", "ok")}))], 5)
        self.assertEqual(m[("healthd_reloads_total", frozenset({("result", "failed")}))], 2)
        # every executor retired on the way ends: those of steps 1 and 4 may
        # still be finishing a run of the load above (TSan once saw one here)
        wait_for(lambda: not self.children(), "end of every executor", self.h)

    def test_counters_go_on_for_kept_checks(self):
        self.start({"checks": [{"name": "v", "plugin": "ver"}]})
        for _ in range(3):
            self.build("v")
        # dummy runs in process: its new check is instantiated, "v" is kept
        self.drop_in("x.json", [{"name": "d", "plugin": "dummy", "result": "ok"}])
        self.reload(r"reload: 1 check added, 0 removed")
        status, _, body = self.h.get("/health/?checks=d")
        self.assertEqual((status, json.loads(body)["checks"]), (200, {"d": True}))
        self.assertEqual(self.metric("healthd_check_runs_total", check="v"), 3)
        _, pid = self.build("v")
        self.assertEqual(self.metric("healthd_check_runs_total", check="v"), 4)
        # a sibling check added: the plugin restarts, "v" (unchanged) keeps
        # its counters, the new one starts at zero
        self.drop_in("y.json", [{"name": "w", "plugin": "ver"}])
        self.reload(r"reload: 1 check added, .*plugin ver restarted")
        self.assertEqual(self.metric("healthd_check_runs_total", check="v"), 4)
        self.assertEqual(self.metric("healthd_check_runs_total", check="w"), 0)
        _, pid2 = self.build("v")
        self.assertNotEqual(pid2, pid)
        self.assertEqual(self.metric("healthd_check_runs_total", check="v"), 5)
        # a new build of the plugin: its checks start afresh
        self.install("ver2", "ver")
        self.reload(r"plugin ver replaced \(1\.0 -> 2\.0\)")
        self.assertEqual(self.metric("healthd_check_runs_total", check="v"), 0)
        self.assertEqual(self.build("v")[0], "2.0")
        self.assertEqual(self.metric("healthd_check_runs_total", check="v"), 1)
        self.assertSameProcess()

    def history(self, check):
        status, _, body = self.h.get(f"/health/history?check={check}")
        return status, json.loads(body) if status == 200 else None

    def test_history_kept_by_name(self):
        """Issue 24: a check that stays keeps its history (whatever its index
        now), a removed one is gone from P/history, a new one starts empty;
        results after the reload go on the same history. A bad depends_on is
        refused like any bad set."""
        self.start({"checks": [{"name": "a", "plugin": "dummy", "result": "ok"},
                               {"name": "b", "plugin": "dummy", "result": "critical"}]})
        for _ in range(3):
            self.h.get("/health/?checks=a,b")
        self.write_config(dict(self.config, checks=[
            {"name": "b", "plugin": "dummy", "result": "critical"},
            {"name": "a", "plugin": "dummy", "result": "ok", "depends_on": ["b"]},
        ]))
        self.reload(r"reload: ")
        status, doc = self.history("a")
        self.assertEqual(status, 200)
        self.assertEqual([r["status"] for r in doc["results"]], ["pass"] * 3)
        self.assertEqual([r["status"] for r in self.history("b")[1]["results"]], ["fail"] * 3)
        self.h.get("/health/?checks=a")
        self.assertEqual(len(self.history("a")[1]["results"]), 4)
        self.write_config(dict(self.config, checks=[
            {"name": "a", "plugin": "dummy", "result": "ok", "depends_on": ["a"]}]))
        self.reload(r"reload failed: .*checks\[0\]\.depends_on: cycle a -> a")
        self.assertEqual(len(self.history("a")[1]["results"]), 4)  # still serving the old set
        self.write_config(dict(self.config, checks=[
            {"name": "a", "plugin": "dummy", "result": "ok"}]))
        self.reload(r"reload: ")
        self.assertEqual(self.history("b")[0], 404)
        self.assertEqual(len(self.history("a")[1]["results"]), 4)
        self.assertSameProcess()

    def test_background_checks_across_a_reload(self):
        self.start({"checks": [{"name": "v", "plugin": "ver"}]})
        # a background check added by a reload runs on its own, at once
        self.drop_in("b.json", [{"name": "b", "plugin": "ver", "interval_ms": 100}])
        self.reload(r"reload: 1 check added")
        wait_for(lambda: (self.metric("healthd_check_runs_total", check="b") or 0) >= 3,
                 "background runs of b after the reload", self.h)
        # only a host key changes: v keeps its state and runs in the background now
        self.build("v")
        self.write_config(dict(self.config, checks=[{"name": "v", "plugin": "ver",
                                                     "interval_ms": 100}]))
        self.reload(r"reload: ")
        wait_for(lambda: (self.metric("healthd_check_runs_total", check="v") or 0) >= 4,
                 "background runs of v after the reload", self.h)
        self.assertSameProcess()

    def test_process_settings_need_a_restart(self):
        self.start({"checks": [], "http_threads": 2})
        self.write_config(dict(self.config, http_threads=3, url_prefix="/other"))
        self.reload(r"reload: 0 checks added")
        self.assertIn("reload: http_threads changed: it needs a restart", self.h.log)
        self.assertIn("reload: url_prefix changed: it needs a restart", self.h.log)
        status, _, _ = self.h.get("/health/ping")
        self.assertEqual(status, 200, "the prefix stays as it was until a restart")
        self.assertSameProcess()

    def test_a_new_in_process_plugin_file_is_said_to_need_a_restart(self):
        """In-process plugins are not reloaded: a new build renamed over one
        is reported in one line, an unchanged one is not."""
        self.start({"checks": [], "in_process": ["dummy"]})
        self.reload(r"reload: 0 checks added")
        self.assertNotIn("needs a restart", self.h.log)
        self.install("dummy", "dummy")  # a new file (inode) under the same name
        self.reload(r"reload: 0 checks added")
        self.assertIn("dummy.so runs in process: its new file needs a restart", self.h.log)
        self.assertSameProcess()

    def counter(self, check):
        """The answer of a counter.so check: "run N of NAME"."""
        status, _, body = self.h.get(f"/health/?checks={check}&verbose=1")
        self.assertEqual(status, 200, body)
        return json.loads(body)["details"][check]["output"]

    def destroyed(self, check, runs):
        """How many times the log says check's state was destroyed after runs."""
        return len(re.findall(rf"counter: destroy {check} after {runs} runs$",
                              self.h.log, re.M))

    def test_in_process_checks_are_added_kept_and_removed(self):
        """A reload instantiates new checks of a plugin running in process,
        keeps the state of unchanged ones and destroys removed ones once."""
        in_process = ["dummy", "counter"]
        self.start({"checks": [{"name": "a", "plugin": "counter"},
                               {"name": "b", "plugin": "counter"}], "in_process": in_process},
                   plugins=("dummy", "ver1", "counter"))
        self.assertEqual(self.counter("a"), "run 1 of a")
        self.assertEqual(self.counter("a"), "run 2 of a")
        self.assertEqual(self.counter("b"), "run 1 of b")
        # b removed; c (counter) and d (dummy, with its option) added
        self.drop_in("x.json", [{"name": "c", "plugin": "counter"},
                                {"name": "d", "plugin": "dummy", "result": "critical"}])
        self.write_config(dict(self.config, checks=[{"name": "a", "plugin": "counter"}]))
        self.reload(r"reload: 2 checks added, 1 removed")
        self.assertNotIn("needs a restart", self.h.log)
        self.assertEqual(self.counter("c"), "run 1 of c")
        status, _, body = self.h.get("/health/?checks=d")
        self.assertEqual((status, json.loads(body)["checks"]), (503, {"d": False}))
        self.assertEqual(self.counter("a"), "run 3 of a")  # kept: same state
        status, _, body = self.h.get("/health/?checks=b")
        self.assertNotIn("b", json.loads(body)["available_checks"])
        wait_for(lambda: self.destroyed("b", 1), "b's destroy", self.h)
        # new options make a new check: the old state goes, the new one starts
        self.write_config(dict(self.config, checks=[{"name": "a", "plugin": "counter",
                                                     "delay_ms": 0}]))
        self.reload(r"reload: 0 checks added, 0 removed")
        self.assertEqual(self.counter("a"), "run 1 of a")
        wait_for(lambda: self.destroyed("a", 3), "the old a's destroy", self.h)
        # a refused reload destroys what it instantiated, and serves on
        self.drop_in("y.json", [{"name": "n", "plugin": "counter"},
                                {"name": "z", "plugin": "nosuch"}])
        self.reload(r"reload failed: .*unknown plugin \"nosuch\"")
        self.assertEqual(self.destroyed("n", 0), 1, self.h.log)
        self.assertEqual(self.counter("c"), "run 2 of c")
        self.assertSameProcess()
        h, self.h = self.h, None
        self.assertEqual(h.stop(), 0, f"healthd did not exit cleanly:\n{h.log}")
        h._tmp.cleanup()
        self.h = h  # for destroyed(): every state went once, each at its time
        counts = [self.destroyed(*x) for x in (("a", 3), ("a", 1), ("b", 1), ("c", 2),
                                               ("n", 0))]
        self.h = None
        self.assertEqual(counts, [1, 1, 1, 1, 1], h.log)
        self.assertEqual(len(re.findall(r"counter: destroy ", h.log)), 5, h.log)

    def test_a_removed_check_is_destroyed_after_its_last_run(self):
        """A check removed while its run is still in plugin code keeps its
        state until that run returned."""
        delay = min(int(3000 * TIME_SCALE), 60000)
        slow = {"name": "slow", "plugin": "counter", "delay_ms": delay, "timeout_ms": 300}
        self.start({"checks": [slow], "in_process": ["dummy", "counter"]},
                   plugins=("dummy", "ver1", "counter"))
        # answered at its timeout; the run goes on in the plugin
        self.assertEqual(self.h.get("/health/?checks=slow", timeout=30 * TIME_SCALE)[0], 503)
        self.write_config(dict(self.config, checks=[]))
        self.reload(r"reload: 0 checks added, 1 removed")
        wait_for(lambda: self.destroyed("slow", 1), "slow's destroy", self.h)
        lines = self.h.messages
        ended = next(i for i, l in enumerate(lines) if l.endswith("counter: slow: run 1 ended"))
        gone = next(i for i, l in enumerate(lines) if l.endswith("counter: destroy slow after "
                                                                 "1 runs"))
        self.assertLess(ended, gone, self.h.log)
        self.assertEqual(self.destroyed("slow", 0), 0, self.h.log)
        self.assertSameProcess()
        h, self.h = self.h, None
        self.assertEqual(h.stop(), 0, f"healthd did not exit cleanly:\n{h.log}")
        h._tmp.cleanup()
        self.assertEqual(len(re.findall(r"counter: destroy ", h.log)), 1, h.log)

    def test_groups_reload_with_the_checks(self):
        self.start({"checks": [{"name": "v", "plugin": "ver"}], "groups": {"live": ["v"]}})
        self.assertEqual(self.h.get("/health/live")[0], 200)
        self.assertEqual(self.h.get("/health/ready")[0], 404)
        self.write_config(dict(self.config, groups={"live": ["v"], "ready": ["v", "false"]}))
        self.reload(r"reload: 0 checks added")
        status, _, body = self.h.get("/health/ready")
        self.assertEqual((status, json.loads(body)["checks"]), (503, {"v": True, "false": False}))
        # a group naming an unknown check: refused in one line, nothing changes
        self.write_config(dict(self.config, groups={"bad": ["nosuch"]}))
        line = self.reload(r"reload failed: ")
        self.assertIn('groups.bad: unknown check "nosuch"', line)
        self.assertEqual(self.h.get("/health/ready")[0], 503)
        self.assertEqual(self.h.get("/health/bad")[0], 404)
        self.assertSameProcess()

    def test_reload_during_a_stuck_run(self):
        """A run stuck in plugin code across a reload: its request is answered
        at its deadline, the reload goes through at once, and the stuck
        executor is killed and reaped as without a reload."""
        hang = {"name": "stuck", "plugin": "misbehave", "mode": "hang", "timeout_ms": 300}
        self.start({"checks": [hang, {"name": "v", "plugin": "ver"}],
                    "isolation": {"kill_after_ms": 500}},
                   plugins=("dummy", "ver1", "misbehave"))
        result = {}

        def ask():
            result["answer"] = self.h.get("/health/?checks=stuck,v", timeout=30 * TIME_SCALE)

        t = threading.Thread(target=ask)
        t.start()
        wait_for(lambda: self.metric("healthd_check_runs_total", check="stuck") == 1,
                 "the stuck run", self.h)
        self.drop_in("x.json", [{"name": "v2", "plugin": "ver"}])
        self.reload(r"reload: 1 check added")
        t.join(30 * TIME_SCALE)
        status, _, body = result["answer"]
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["checks"], {"stuck": False, "v": True})
        self.assertEqual(self.build("v2")[0], "1.0")
        wait_for(lambda: "still running" in self.h.log, "the stuck run's kill", self.h)
        self.assertSameProcess()

    def test_metrics_name_a_replaced_plugin_once(self):
        """While a request started before a reload holds the old set, the
        replaced plugin lives on beside its replacement: /metrics shows one
        series per plugin name, the replacement's."""
        slow = {"name": "slow", "plugin": "misbehave", "mode": "sleep", "ms": 3000,
                "timeout_ms": 20000}
        self.start({"checks": [slow, {"name": "v", "plugin": "ver"}]},
                   plugins=("dummy", "ver1", "misbehave"))
        result = {}

        def ask():
            result["answer"] = self.h.get("/health/?checks=slow", timeout=30 * TIME_SCALE)

        t = threading.Thread(target=ask)
        t.start()
        wait_for(lambda: "check slow: run started" in self.h.log, "the slow run", self.h)
        self.install("ver2", "ver")
        self.reload(r"plugin ver replaced \(1\.0 -> 2\.0\)")
        status, _, body = self.h.get("/metrics")
        self.assertEqual(status, 200)
        series = [line.rsplit(" ", 1)[0] for line in body.decode().splitlines()
                  if line and not line.startswith("#")]
        self.assertEqual([s for s in set(series) if series.count(s) > 1], [])
        self.assertIn('healthd_plugin_up{plugin="ver"}', series)
        self.assertIsNone(self.h.proc.poll())
        self.assertTrue(t.is_alive(), "the slow request ended before /metrics was read")
        t.join(30 * TIME_SCALE)
        self.assertEqual(result["answer"][0], 200)

    def test_a_request_holding_an_old_set_across_two_reloads(self):
        """A group request routed before two reloads (its check kept by the
        first, removed by the second) runs it when its body arrives: the
        state of that check must not point into the set in between once that
        set is freed (ASan: heap-use-after-free in runner_submit_in)."""
        self.start({"checks": [{"name": "x", "plugin": "ver"}, {"name": "v", "plugin": "ver"}],
                    "groups": {"g": ["x"]}})
        with socket.create_connection((self.h.host, self.h.port),
                                      timeout=30 * TIME_SCALE) as s:
            s.sendall(b"GET /health/g HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            # routed (the set held) once libmicrohttpd asks for the body
            self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 100"))
            self.reload(r"reload: 0 checks added, 0 removed")
            self.write_config(dict(self.config, checks=[{"name": "v", "plugin": "ver"}],
                                   groups={}))
            self.reload(r"reload: 0 checks added, 1 removed")
            # one more: its line comes after the last one's collection
            self.reload(r"reload: 0 checks added, 0 removed")
            s.sendall(b"body")
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
        self.assertEqual(json.loads(answer.split(b"\r\n\r\n", 1)[1])["checks"], {"x": True})
        self.assertSameProcess()

    def test_a_stuck_in_process_run_does_not_hold_replaced_executors(self):
        """A run stuck in in-process code since before a reload keeps the
        checks it runs with, not the replaced plugin's executor."""
        slow = {"name": "slow", "plugin": "dummy", "delay_ms": 60000, "timeout_ms": 300}
        self.start({"checks": [slow, {"name": "v", "plugin": "ver"}], "in_process": ["dummy"]})
        self.assertEqual(self.h.get("/health/?checks=slow", timeout=30 * TIME_SCALE)[0], 503)
        _, pid1 = self.build("v")
        self.install("ver2", "ver")
        self.reload(r"plugin ver replaced \(1\.0 -> 2\.0\)")
        self.assertEqual(self.build("v")[0], "2.0")
        wait_for(lambda: pid1 not in self.children(), "the replaced executor's end", self.h)
        self.assertSameProcess()
        h, self.h = self.h, None  # the stuck run: shutdown abandons it
        rc = h.stop()
        h._tmp.cleanup()
        self.assertEqual(rc, 0, f"healthd did not exit cleanly:\n{h.log}")

    def test_sigterm_with_an_in_process_run_stuck_since_before_a_reload(self):
        """Shutdown abandons a run stuck in in-process code; what it may still
        use stays in memory, the reloads' generations too: under ASan or
        valgrind the exit reports no leak."""
        slow = {"name": "slow", "plugin": "dummy", "delay_ms": 8000, "timeout_ms": 300}
        self.start({"checks": [slow, {"name": "v", "plugin": "ver"}], "in_process": ["dummy"]})
        status, _, _ = self.h.get("/health/?checks=slow", timeout=30 * TIME_SCALE)
        self.assertEqual(status, 503)
        self.drop_in("x.json", [{"name": "v2", "plugin": "ver"}])
        self.reload(r"reload: 1 check added")
        h, self.h = self.h, None
        rc = h.stop()
        h._tmp.cleanup()
        self.assertIn("abandoning them", h.log)
        self.assertEqual(rc, 0, f"healthd did not exit cleanly:\n{h.log}")

    def test_sighup_storm(self):
        self.start({"checks": [{"name": "v", "plugin": "ver"}]})
        with Load(self.h, [("/health/?checks=v", 200), ("/health/ping", 200)]) as load:
            for i in range(20):
                if i % 2:
                    self.drop_in("x.json", [{"name": f"s{i}", "plugin": "ver"}])
                else:
                    self.write_config(dict(self.config, checks=[{"name": "v", "plugin": "ver"}]))
                self.h.proc.send_signal(signal.SIGHUP)
            # the last state: v (config) and s19 (drop-in)
            mark = "reload: "
            wait_for(lambda: json.loads(self.h.get("/health/?checks=s19")[2])["checks"]
                     == {"s19": True}, "s19 served", self.h)
            wait_for(lambda: self.h.log.count(mark) >= 1, "a reload line", self.h)
            wait_for(lambda: len(self.children()) == 1, "one executor left (ver)", self.h)
        load.assertClean(self)
        self.assertSameProcess()
        status, _, body = self.h.get("/health/?checks=v,s19")
        self.assertEqual((status, json.loads(body)["checks"]), (200, {"s19": True, "v": True}))
        m = self.h.metrics()
        ok = m[("healthd_reloads_total", frozenset({("result", "ok")}))]
        self.assertGreaterEqual(ok, 1)
        self.assertLessEqual(ok, 20)
        self.assertEqual(m[("healthd_reloads_total", frozenset({("result", "failed")}))], 0)


if __name__ == "__main__":
    main()
