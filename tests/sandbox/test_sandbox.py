"""The executor sandbox (README "Security model") against a hostile plugin.

tests/fixtures/hostile.c attacks the server on each run and says in its
message what it could do. Each attack is asserted blocked, and by the layer
README's threat table names: with every layer; with namespaces turned off in
the config (not dumpable, landlock and seccomp still hold); with namespaces
unavailable (unshare denied to healthd, as Docker's default profile does);
as root and as an unprivileged uid.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import healthd_fixture
from healthd_fixture import FIXTURE_DIR, TIME_SCALE, Healthd, main
from pki import make_pki

SECRET = "sandbox-test-secret"
NOUNSHARE = os.path.join(FIXTURE_DIR, "..", "sandbox", "nounshare")
ATTACKS = ["proc", "mem", "environ", "secret", "config", "ptrace", "stop", "pidfd"]
# Under meson's valgrind setup executors run without landlock and seccomp
# (valgrind implements neither): only what holds without them is tested.
WRAPPED = bool(os.environ.get("HEALTHD_EXECUTOR_WRAPPER"))
MAX_TASKS = 128  # isolation.max_tasks' default


def tasks_tail(root):
    """How the sandbox line ends on the task limit (README "Security model")."""
    if root:
        return r"; no task limit as root \(RLIMIT_NPROC does not bind uid 0\)"
    return rf", tasks {MAX_TASKS}"
ENOENT = os.strerror(2)
EACCES = os.strerror(13)
EPERM = os.strerror(1)


def escapees():
    """Pids of hostile's setsid() escapees, from the host's /proc."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "hostile-escape":
                    found.append(int(pid))
        except OSError:
            pass
    return found


def proc_field(pid, name):
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read().strip()
    except OSError:
        return None


def proc_state(pid):
    """The state letter of /proc/PID/stat (after the parenthesised comm)."""
    stat = proc_field(pid, "stat")
    return stat.rsplit(")", 1)[1].split()[0] if stat else None


def children(pid):
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found  # gone meanwhile
    for task in tasks:
        found += [int(c) for c in (proc_field(f"{pid}/task/{task}", "children") or "").split()]
    return found


def descendants(pid):
    """Every process below pid, from the host's /proc."""
    found, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            found.append(c)
            todo.append(c)
    return found


def wait_for(what, predicate, seconds=10):
    """Polls predicate (an event seen from outside: a process gone) up to a bound."""
    deadline = time.monotonic() + seconds * TIME_SCALE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Sandbox(unittest.TestCase):
    USER = None  # None: as whoever runs the tests; else setpriv to this user

    def setUp(self):
        if self.USER is not None and (os.getuid() != 0 or shutil.which("setpriv") is None):
            self.skipTest("needs root and setpriv to run healthd as another user")
        if WRAPPED and self._testMethodName != "test_escapee_dies_with_the_namespace":
            self.skipTest("asserts landlock or seccomp: off under the executor wrapper")
        self.dir = tempfile.mkdtemp(prefix="healthd-sandbox-")
        os.chmod(self.dir, 0o755)
        self.plugins = os.path.join(self.dir, "plugins")
        self.shared = os.path.join(self.dir, "shared")  # readable by the plugin
        os.mkdir(self.plugins, 0o755)
        os.mkdir(self.shared, 0o755)
        shutil.copy(os.path.join(FIXTURE_DIR, "hostile.so"), self.plugins)
        os.chmod(os.path.join(self.plugins, "hostile.so"), 0o755)
        self.pidfile = os.path.join(self.shared, "server.pid")
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(self.secret_file, 0o600)
        if self.USER is not None:
            os.chown(self.secret_file, *self.ids())
        self.stopped = None

    def tearDown(self):
        if self.stopped is not None:
            try:
                os.kill(self.stopped, signal.SIGCONT)  # if a block failed
            except ProcessLookupError:
                pass
        for pid in escapees():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def ids(self):
        import pwd
        pw = pwd.getpwnam(self.USER)
        return pw.pw_uid, pw.pw_gid

    def start(self, isolation=None, attacks=ATTACKS, wrapper=(), checks=(), tls=None, outer=()):
        """healthd with the hostile plugin; wrapper runs as healthd's user,
        outer as the test's (before setpriv)."""
        checks = list(checks)
        for a in attacks:
            ck = {"name": a, "plugin": "hostile", "attack": a, "pidfile": self.pidfile}
            if a in ("secret", "config"):
                ck["attack"] = "read"
                ck["path"] = self.secret_file if a == "secret" else "CONFIG"
            checks.append(ck)
        config = {"url_secret_file": self.secret_file, "checks": checks}
        if isolation:
            config["isolation"] = isolation
        if tls:
            config["tls"] = {k: v for k, v in tls.items() if k != "ca"}
        h = Healthd(config=config, secret=False, plugin_dir=self.plugins)
        if tls:
            import http.client
            import ssl
            ctx = ssl.create_default_context(cafile=tls["ca"])
            h.connection = lambda timeout=10: http.client.HTTPSConnection(
                h.host, h.port, timeout=timeout * TIME_SCALE, context=ctx)
        for ck in checks:
            if ck.get("path") == "CONFIG":
                ck["path"] = os.path.join(h.tmpdir, "healthd.json")
        saved = healthd_fixture.WRAPPER
        wrap = list(wrapper)
        if self.USER is not None:
            os.chmod(h.tmpdir, 0o755)
            wrap = ["setpriv", f"--reuid={self.USER}", "--regid=nogroup",
                    "--clear-groups"] + wrap
        healthd_fixture.WRAPPER = list(outer) + wrap + saved
        try:
            h.start()
        finally:
            healthd_fixture.WRAPPER = saved
        self.addCleanup(h.stop)
        self.stopped = h.proc.pid
        with open(self.pidfile, "w") as f:
            f.write(f"{h.proc.pid}\n")
        return h

    def attack(self, h, name):
        st, doc = h.get_json(f"/health/?checks={name}&verbose=1&auth={SECRET}")
        self.assertEqual(st, 200, doc)
        return doc["details"][name]["output"]

    def assert_denied_logged(self, h, call):
        wait_for(f"the line for {call}",
                 lambda: f"plugin hostile: sandbox: denied {call}() (seccomp)" in h.log)

    # -- every layer ------------------------------------------------------

    def root(self):
        """Whether healthd runs as the host's root (no task limit binds it)."""
        return self.USER is None and os.getuid() == 0

    def wait_ready(self, h):
        """The startup lines come with "ready:", after the port listens."""
        wait_for("the ready line", lambda: "healthd: ready: " in h.log)

    def assert_layers(self, h, layers, landlock):
        m = h.metrics()
        for layer in ("namespaces", "pid_namespace", "seccomp", "landlock"):
            key = ("healthd_plugin_sandbox_layer",
                   frozenset({"plugin": "hostile", "layer": layer}.items()))
            self.assertEqual(m.get(key), 1 if layer in layers else 0, layer)
        abi = m.get(("healthd_plugin_sandbox_landlock_abi",
                     frozenset({"plugin": "hostile"}.items())))
        if landlock:
            self.assertGreaterEqual(abi, 1)
        else:
            self.assertEqual(abi, 0)

    def test_all_layers(self):
        h = self.start()
        self.wait_ready(h)
        # every layer there: no warning, one line at startup (README "Security model")
        self.assertNotIn("warning: plugin hostile: sandbox:", h.log)
        self.assertRegex(h.log, r"healthd: plugin hostile: sandbox: user\+pid\+mount namespaces, "
                                r"landlock v\d+, seccomp, no_new_privs, not dumpable, "
                                r"no capabilities" + tasks_tail(self.root()) + "\n")
        self.assert_layers(h, ["namespaces", "pid_namespace", "seccomp", "landlock"], True)
        tasks = h.metrics().get(("healthd_plugin_sandbox_layer",
                                 frozenset({"plugin": "hostile", "layer": "tasks"}.items())))
        self.assertEqual(tasks, 0 if self.root() else 1)
        # PID namespace: neither the server nor a sibling executor is there;
        # the one healthd is its PID 1, the reaper
        self.assertEqual(self.attack(h, "proc"), "proc: 1 healthd, server hidden")
        self.assertEqual(self.attack(h, "mem"), f"mem: {ENOENT}")
        self.assertEqual(self.attack(h, "environ"), f"environ: {ENOENT}")
        # landlock (over the mount namespace's overmount)
        self.assertEqual(self.attack(h, "secret"), f"read: {EACCES}")
        self.assertEqual(self.attack(h, "config"), f"read: {EACCES}")
        # seccomp: EPERM, and one line
        self.assertEqual(self.attack(h, "ptrace"), f"ptrace: {EPERM}")
        self.assert_denied_logged(h, "ptrace")
        self.assertEqual(self.attack(h, "stop"), f"stop: {EPERM}")
        self.assert_denied_logged(h, "kill")
        self.assertEqual(self.attack(h, "pidfd"), f"pidfd_open: {EPERM}, pidfd_getfd: {EPERM}")
        self.assert_denied_logged(h, "pidfd_getfd")
        self.assertEqual(h.get("/health/ping")[0], 200)

    def test_escapee_dies_with_the_namespace(self):
        h = self.start(attacks=["escape"])
        self.assertEqual(self.attack(h, "escape"), "escape: started")
        wait_for("the escapee to run", lambda: escapees() != [])
        self.assertEqual(h.stop(), 0)
        wait_for("the escapee to be gone", lambda: escapees() == [])

    # -- namespaces turned off: what README says remains -----------------

    def test_without_namespaces(self):
        h = self.start({"plugins": {"hostile": {"namespaces": False}}})
        self.wait_ready(h)
        # as configured: no warning, and the startup line says so
        self.assertNotIn("warning: plugin hostile: sandbox:", h.log)
        self.assertRegex(h.log, r"healthd: plugin hostile: sandbox: landlock v\d+, seccomp, "
                                r"no_new_privs, not dumpable, no capabilities; "
                                r"namespaces off by configuration\n")
        self.assert_layers(h, ["seccomp", "landlock"], True)
        # the server is visible now, but not dumpable: no mem, no environ
        self.assertRegex(self.attack(h, "proc"), r"proc: [1-9]\d* healthd, server visible")
        self.assertEqual(self.attack(h, "mem"), f"mem: {EACCES}")
        self.assertEqual(self.attack(h, "environ"), f"environ: {EACCES}")
        # landlock alone keeps the files
        self.assertEqual(self.attack(h, "secret"), f"read: {EACCES}")
        self.assertEqual(self.attack(h, "config"), f"read: {EACCES}")
        self.assertEqual(self.attack(h, "ptrace"), f"ptrace: {EPERM}")
        self.assertEqual(self.attack(h, "stop"), f"stop: {EPERM}")
        self.assertEqual(self.attack(h, "pidfd"), f"pidfd_open: {EPERM}, pidfd_getfd: {EPERM}")

    def test_without_landlock_the_overmount_holds(self):
        h = self.start({"plugins": {"hostile": {"landlock": False}}}, ["secret", "config"])
        self.assertEqual(self.attack(h, "secret"), "read: 0 bytes")
        self.assertEqual(self.attack(h, "config"), "read: 0 bytes")

    def renewed_key(self, tag, **isolation):
        """healthd with its TLS key as a Kubernetes secret volume holds it,
        renewed once the executors run; checks "link", "first" and "renewed"
        read the key by its configured path, its first and its new target."""
        pki = make_pki(self.shared) if not os.path.exists(
            os.path.join(self.shared, "ca.pem")) else {
            n: os.path.join(self.shared, n) for n in ("ca.pem", "server.pem", "server.key")}
        vol = os.path.join(self.shared, f"tls-{tag}")
        first, second = os.path.join(vol, "..2026_12_01"), os.path.join(vol, "..2026_12_06")
        for d in (first, second):
            os.makedirs(d)
            for name in ("server.pem", "server.key"):
                shutil.copy(pki[name], d)
                os.chmod(os.path.join(d, name), 0o644)
        os.symlink("..2026_12_01", os.path.join(vol, "..data"))
        for name in ("server.pem", "server.key"):
            os.symlink(os.path.join("..data", name), os.path.join(vol, name))
        paths = {"link": os.path.join(vol, "server.key"),
                 "first": os.path.join(first, "server.key"),
                 "renewed": os.path.join(second, "server.key")}
        checks = [{"name": n, "plugin": "hostile", "attack": "read", "path": p,
                   "pidfile": self.pidfile} for n, p in paths.items()]
        h = self.start(isolation or None, [], checks=checks,
                       tls={"cert_file": os.path.join(vol, "server.pem"),
                            "key_file": paths["link"], "ca": pki["ca.pem"]})
        os.symlink("..2026_12_06", os.path.join(vol, "..data.new"))
        os.rename(os.path.join(vol, "..data.new"), os.path.join(vol, "..data"))
        return h

    def test_tls_key_hidden_across_renewal(self):
        # the secret volume's directory is hidden, not just the key's target at
        # startup: the renewal's new target is out of reach too
        # (the hidden directory is an empty tmpfs of mode 0: EACCES)
        for tag, isolation in (("overmount", {"plugins": {"hostile": {"landlock": False}}}),
                               ("all", {})):
            h = self.renewed_key(tag, **isolation)
            for name in ("link", "first", "renewed"):
                self.assertEqual(self.attack(h, name), f"read: {EACCES}", f"{tag}: {name}")

    # -- namespaces unavailable ------------------------------------------

    def test_namespaces_unavailable_warn(self):
        h = self.start(attacks=["mem", "secret", "ptrace"], wrapper=[NOUNSHARE])
        self.wait_ready(h)
        self.assertRegex(h.log, r"warning: plugin hostile: sandbox: landlock v\d+, seccomp, "
                                r".*; (.*, )?no namespaces \(unshare: " + EPERM)
        self.assertEqual(h.log.count("plugin hostile: sandbox: "), 1, h.log)  # not again at ready
        self.assert_layers(h, ["seccomp", "landlock"], True)
        self.assertEqual(self.attack(h, "mem"), f"mem: {EACCES}")
        self.assertEqual(self.attack(h, "secret"), f"read: {EACCES}")
        self.assertEqual(self.attack(h, "ptrace"), f"ptrace: {EPERM}")

    # /proc/acpi masked as Docker and containerd mask it: the kernel then refuses
    # a user namespace its own /proc (mount_too_revealing)
    MASKPROC = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'for d in acpi scsi bus driver; do [ -d /proc/$d ] && '
                'mount -t tmpfs -o ro tmpfs /proc/$d && break; done && exec "$@"', "maskproc"]

    def masked(self):
        if os.getuid() != 0:
            self.skipTest("masking /proc for healthd needs root (unshare --mount)")

    def test_masked_proc_no_pid_namespace(self):
        # the plugin loads (it was refused, and restarted forever), the PID
        # namespace is reported missing with the kernel's reason, and the
        # layers that hold without it still hold
        self.masked()
        h = self.start(attacks=["proc", "secret", "stop", "ptrace"], outer=self.MASKPROC)
        self.wait_ready(h)
        self.assertRegex(h.log, r"warning: plugin hostile: sandbox: user\+mount namespaces, "
                                r".*no PID namespace \(its /proc cannot be mounted: " + EPERM +
                                r" \(parts of /proc are masked, as in a container\)\)")
        self.assert_layers(h, ["namespaces", "seccomp", "landlock"], True)
        self.assertNotIn("refused", h.log)
        # the outer /proc shows the server, but neither its secret nor a signal reaches it
        self.assertEqual(self.attack(h, "secret"), f"read: {EACCES}")
        self.assertEqual(self.attack(h, "stop"), f"stop: {EPERM}")
        self.assertEqual(self.attack(h, "ptrace"), f"ptrace: {EPERM}")
        self.assertEqual(h.get("/health/ping")[0], 200)

    def test_masked_proc_pid_namespace_required(self):
        self.masked()
        with self.assertRaises(healthd_fixture.StartupError) as cm:
            self.start({"require": ["pid_namespace"]}, ["mem"], outer=self.MASKPROC)
        self.assertIn("plugin hostile: refused: isolation.require names a sandbox layer "
                      "this executor could not set up: no PID namespace (its /proc cannot be "
                      "mounted: ", cm.exception.log)

    def test_namespaces_unavailable_required(self):
        with self.assertRaises(healthd_fixture.StartupError) as cm:
            self.start({"require": ["namespaces"]}, ["mem"], wrapper=[NOUNSHARE])
        self.assertNotEqual(cm.exception.returncode, 0)
        self.assertIn("plugin hostile: refused: isolation.require names a sandbox layer "
                      "this executor could not set up: no namespaces (unshare: ",
                      cm.exception.log)

    # -- a fork bomb: the task limit --------------------------------------

    def test_fork_bomb(self):
        shutil.copy(os.path.join(FIXTURE_DIR, "misbehave.so"), self.plugins)
        os.chmod(os.path.join(self.plugins, "misbehave.so"), 0o755)
        hold = int(3000 * TIME_SCALE)
        checks = [{"name": "bomb", "plugin": "hostile", "attack": "bomb", "count": "200",
                   "hold_ms": str(hold), "pidfile": self.pidfile, "timeout_ms": 4 * hold},
                  {"name": "ok", "plugin": "misbehave", "mode": "ok"},
                  {"name": "boom", "plugin": "misbehave", "mode": "segv"}]
        # the service's own limit (TasksMax's stand-in), above what this test needs
        h = self.start({"max_tasks": 32}, attacks=[], checks=checks,
                       wrapper=["prlimit", "--nproc=2000"])
        root = self.USER is None and os.getuid() == 0
        self.assertNotIn("warning: plugin", h.log)  # root's missing task limit is no warning
        answer = {}
        bomber = threading.Thread(target=lambda: answer.update(
            doc=h.get_json(f"/health/?checks=bomb&verbose=1&auth={SECRET}", timeout=60)[1]))
        bomber.start()
        self.addCleanup(bomber.join, 60)
        wait_for("the bomb to hold its children", lambda: "bomb: holding" in h.log)
        # while it holds them: the other executor answers, crashes, and comes back
        st, doc = h.get_json(f"/health/?checks=ok&auth={SECRET}")
        self.assertEqual((st, doc["checks"]), (200, {"ok": True}))
        self.assertEqual(h.get(f"/health/?checks=boom&auth={SECRET}")[0], 503)
        wait_for("misbehave's executor to restart",
                 lambda: re.search(r"plugin misbehave: executor pid \d+ ready", h.log))
        st, doc = h.get_json(f"/health/?checks=ok&auth={SECRET}")
        self.assertEqual((st, doc["checks"]), (200, {"ok": True}))
        self.assertIn("bomb: holding", h.log)  # all this while the bomb held
        bomber.join(60)
        out = answer["doc"]["details"]["bomb"]["output"]
        if root:
            self.assertEqual(out, "bomb: 200 forked")  # README: root has no task limit
        else:
            m = re.fullmatch(r"bomb: (\d+) forked, then (.*)", out)
            self.assertIsNotNone(m, out)
            # the executor's sandbox, main thread and run thread count too
            self.assertLessEqual(int(m.group(1)), 32 - 4)
            self.assertEqual(m.group(2), os.strerror(11))  # EAGAIN

    def test_task_limit_required_as_root(self):
        if self.USER is not None or os.getuid() != 0:
            self.skipTest("as root only")
        with self.assertRaises(healthd_fixture.StartupError) as cm:
            self.start({"require": ["tasks"]}, ["mem"])
        self.assertIn("plugin hostile: refused: isolation.require names tasks, which no executor "
                      "of root's can have (RLIMIT_NPROC does not bind uid 0)", cm.exception.log)

    # -- a flood on stderr: the log's budget ---------------------------------

    def test_flood(self):
        checks = [{"name": "flood", "plugin": "hostile", "attack": "flood", "count": "100",
                   "pidfile": self.pidfile, "timeout_ms": int(60000 * TIME_SCALE)}]
        h = self.start(attacks=[], checks=checks)
        before = len(h.log)
        st, doc = h.get_json(f"/health/?checks=flood&verbose=1&auth={SECRET}",
                             timeout=70 * TIME_SCALE)
        self.assertEqual(st, 200, doc)
        # the executor never stopped: every byte went through, none blocked it
        self.assertRegex(doc["details"]["flood"]["output"], r"^flood: 104857600 bytes written")
        wait_for("the summary line", lambda: re.search(
            r"warning: plugin hostile: executor pid \d+ wrote more than the log takes: "
            r"\d+ bytes in \d+ lines dropped", h.log))
        # the rest of the pipe is read after the answer: counted, not logged
        wait_for("99 of the 100 MiB counted as dropped", lambda: h.metrics()[
            ("healthd_plugin_log_dropped_bytes_total",
             frozenset({("plugin", "hostile")}))] > 99 << 20)
        self.assertLess(len(h.log) - before, 1 << 20)  # logged, of 100 MiB
        self.assertRegex(h.log, r"healthd: plugin hostile: x{1000}\n")  # lines, prefixed
        self.assertEqual(h.get("/health/ping")[0], 200)

    # -- healthd as PID 1 (a container's init) ---------------------------

    def test_pid1_reaps_orphans(self):
        # namespaces off for exec, as where a container's profile denies them:
        # the commands' orphans then reach healthd, PID 1 of this namespace
        shutil.copy(os.path.join(healthd_fixture.PLUGIN_DIR, "exec.so"), self.plugins)
        os.chmod(os.path.join(self.plugins, "exec.so"), 0o755)
        sh = ["/bin/sh", "-c", "sleep 30 & sleep 30"]
        unshare = ["unshare", "--pid", "--kill-child", "--mount-proc"]
        if self.USER is not None or os.getuid() != 0:  # a PID namespace needs a user one
            unshare.insert(1, "--map-current-user")
        h = self.start({"plugins": {"exec": {"namespaces": False}}}, attacks=[],
                       wrapper=unshare,
                       checks=[{"name": "sleeps", "plugin": "exec", "command": sh,
                                "timeout_ms": 300}])
        init = children(h.proc.pid)
        self.assertEqual(len(init), 1)
        self.assertEqual(proc_field(init[0], "comm"), "healthd-init")
        for _ in range(30):
            st, doc = h.get_json(f"/health/?checks=sleeps&verbose=1&auth={SECRET}")
            self.assertEqual(st, 503, doc)
            # the run before may still be reaping its commands on a slow
            # (sanitized) machine: then this one joins the wait, as documented
            self.assertRegex(doc["details"]["sleeps"]["output"],
                             r"^timeout after 300 ms( \(an earlier run is still stuck\))?$")
        wait_for("no zombie in the namespace",
                 lambda: [p for p in descendants(h.proc.pid) if proc_state(p) == "Z"] == [])
        # the server, PID 2, still answers; SIGTERM to PID 1, as a container
        # runtime sends it, reaches the server, and its exit status comes back
        self.assertEqual(h.get("/health/ping")[0], 200)
        os.kill(init[0], signal.SIGTERM)
        h.proc.wait(15 * TIME_SCALE)
        self.assertEqual(h.stop(), 0)  # and its log read to the end
        self.assertIn("SIGTERM: shutting down", h.log)


class SandboxUnprivileged(Sandbox):
    """The same, with healthd as nobody: what a plain user gets."""
    USER = "nobody"


class StrictModes(unittest.TestCase):
    """sshd's StrictModes: plugins others can write are refused, secrets others
    can read are warned about."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="healthd-modes-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.so = os.path.join(self.dir, "hostile.so")
        shutil.copy(os.path.join(FIXTURE_DIR, "hostile.so"), self.so)
        os.chmod(self.so, 0o755)
        os.chmod(self.dir, 0o755)

    def check_config(self, config="{}"):
        path = os.path.join(self.dir, "..", os.path.basename(self.dir) + ".json")
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        with open(path, "w") as f:
            f.write(config)
        os.chmod(path, 0o600)
        return healthd_fixture.run_healthd(["--check-config", "--no-url-secret", "--config",
                                            path, "--plugin-dir", self.dir])

    def test_modes_that_pass(self):
        code, out, err = self.check_config()
        self.assertEqual(code, 0, err)
        self.assertEqual(err, "")
        root = os.getuid() == 0
        if WRAPPED:
            self.assertRegex(out, r"\n  sandbox: user\+pid\+mount namespaces, no_new_privs, "
                                  r"not dumpable, no capabilities" +
                                  ("" if root else rf", tasks {MAX_TASKS}") +
                                  r"; landlock off under the executor wrapper, seccomp off under "
                                  r"the executor wrapper" +
                                  (", no task limit as root \\(RLIMIT_NPROC does not bind uid "
                                   "0\\)" if root else "") + "\n")
        else:
            self.assertRegex(out, r"\n  sandbox: user\+pid\+mount namespaces, landlock v\d+, "
                                  r"seccomp, no_new_privs, not dumpable, no capabilities" +
                                  tasks_tail(root) + "\n")

    def test_world_writable_directory(self):
        os.chmod(self.dir, 0o777)
        code, _, err = self.check_config()
        self.assertEqual(code, 1)
        self.assertIn(f"plugin {self.so}: refused: its directory {self.dir} is writable by "
                      "everyone (mode 0777", err)

    def test_plugin_of_another_user(self):
        if os.getuid() != 0:
            self.skipTest("needs root to chown")
        os.chown(self.so, 65534, 65534)
        os.chmod(self.so, 0o666)
        code, _, err = self.check_config()
        self.assertEqual(code, 1)
        self.assertIn(f"plugin {self.so}: refused: it is owned by another user (mode 0666, "
                      "uid 65534)", err)

    def test_secret_readable_by_others(self):
        secret = os.path.join(self.dir, "secret")
        with open(secret, "w") as f:
            f.write("s3cret\n")
        os.chmod(secret, 0o644)
        os.unlink(self.so)
        code, _, err = self.check_config('{"url_secret_file": "%s"}' % secret)
        self.assertIn(f"warning: {secret} is url_secret_file and is readable by every user "
                      "(mode 0644)", err)


class Config(unittest.TestCase):
    def test_bad_require(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"isolation": {"require": ["landlok"]}}')
            f.flush()
            code, _, err = healthd_fixture.run_healthd(["--check-config", "--no-url-secret",
                                                         "--config", f.name])
        self.assertEqual(code, 1)
        self.assertIn('isolation.require: unknown layer "landlok"', err)


if __name__ == "__main__":
    main()
