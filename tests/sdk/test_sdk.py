"""The plugin SDK as a third-party author meets it.

`meson install --destdir` of the current build into a temporary root, then,
using nothing but what was installed:
  - the example plugin examples/heartbeat is built with the documented cc line
    (pkg-config with PKG_CONFIG_SYSROOT_DIR pointing into the root), and with
    its three-line meson.build;
  - the INSTALLED healthd loads it from the installed plugin directory and
    serves it over HTTP: pass on a fresh file, fail on an old or missing one,
    with the plugin's message in ?verbose=1;
  - the installed example configuration, unit file and man pages are checked.

Environment (set by tests/sdk/meson.build):
  HEALTHD_BUILD_ROOT  the build directory to install from
  HEALTHD_SOURCE_ROOT the source tree (for comparing installed files)
  HEALTHD_MESON       the meson command
Everything is written below one temporary directory, removed at the end.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import healthd_fixture
from healthd_fixture import Healthd

BUILD_ROOT = os.environ["HEALTHD_BUILD_ROOT"]
SOURCE_ROOT = os.environ["HEALTHD_SOURCE_ROOT"]
MESON = os.environ.get("HEALTHD_MESON", "meson")

# The one line healthd-plugin(7) and README.md give authors.
CC_LINE = ('cc $(pkg-config --cflags healthd-plugin) -shared -fPIC -fvisibility=hidden '
           '-o "$OUT" "$SRC"')

sdk = None  # the installed tree, set up once: see setUpModule


class InstalledTree:
    """One `meson install --destdir` and the paths an author would look up."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="healthd-sdk-")
        self.root = os.path.join(self.tmp.name, "root")
        subprocess.run([MESON, "install", "-C", BUILD_ROOT, "--destdir", self.root,
                        "--no-rebuild", "--quiet"], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
        pcs = self.find("healthd-plugin.pc")
        if len(pcs) != 1:
            raise AssertionError(f"expected one healthd-plugin.pc under {self.root}, got {pcs}")
        self.pc_dir = os.path.dirname(pcs[0])
        self.env = dict(os.environ, PKG_CONFIG_PATH=self.pc_dir,
                        PKG_CONFIG_SYSROOT_DIR=self.root)
        self.env.pop("PKG_CONFIG_LIBDIR", None)
        with open(os.path.join(BUILD_ROOT, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        self.prefix = opts["prefix"]
        # bindir, sysconfdir, ... as configured, without the root
        self.dirs = {k: os.path.join(self.prefix, opts[k]) for k in (
            "bindir", "datadir", "includedir", "mandir", "sysconfdir")}
        self.bin = self.root + self.dirs["bindir"] + "/healthd"
        self.plugindir = self.pkgconfig("--variable=plugindir")  # root included
        self.docdir = self.root + self.dirs["datadir"] + "/doc/healthd"

    def find(self, name):
        return [os.path.join(d, name) for d, _, files in os.walk(self.root) if name in files]

    def pkgconfig(self, *args):
        return subprocess.run(["pkg-config", *args, "healthd-plugin"], env=self.env,
                              check=True, capture_output=True, text=True).stdout.strip()

    def cleanup(self):
        self.tmp.cleanup()


def setUpModule():
    global sdk
    sdk = InstalledTree()
    # every Healthd() and run_healthd() below runs the installed binary
    healthd_fixture.BIN = sdk.bin


def tearDownModule():
    if sdk is not None:
        sdk.cleanup()


def header_define(path, name):
    with open(path) as f:
        m = re.search(rf"^#define {name} (\d+)$", f.read(), re.M)
    return m.group(1)


def exported(so):
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                         check=True).stdout
    symbols = {line.split()[-1] for line in out.splitlines() if line.strip()} - {
        "_init", "_fini", "__bss_start", "_edata", "_end"}
    return {s for s in symbols if not s.startswith("__odr_asan.")}  # ASan builds add these


def build_heartbeat(out):
    """The documented cc line, run by a shell as an author would type it."""
    src = os.path.join(sdk.docdir, "examples", "heartbeat", "heartbeat.c")
    p = subprocess.run(["sh", "-c", CC_LINE], env=dict(sdk.env, OUT=out, SRC=src),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{CC_LINE} failed:\n{p.stderr}")
    return out


class Layout(unittest.TestCase):
    def test_installed_files(self):
        self.assertTrue(os.access(sdk.bin, os.X_OK), sdk.bin)
        for name in ("dummy.so", "http.so", "postgres.so"):
            self.assertTrue(os.path.isfile(os.path.join(sdk.plugindir, name)), name)
        header = sdk.root + sdk.dirs["includedir"] + "/healthd/plugin.h"
        with open(header, "rb") as a, open(os.path.join(SOURCE_ROOT, "include", "healthd",
                                                        "plugin.h"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        for path in (sdk.root + sdk.dirs["mandir"] + "/man8/healthd.8",
                     sdk.root + sdk.dirs["mandir"] + "/man7/healthd-plugin.7",
                     sdk.docdir + "/examples/healthd.json",
                     sdk.docdir + "/examples/checks.d/app.json",
                     sdk.docdir + "/examples/heartbeat/heartbeat.c",
                     sdk.docdir + "/examples/heartbeat/meson.build",
                     sdk.docdir + "/examples/tcp/tcp.c",
                     sdk.docdir + "/examples/tcp/meson.build"):
            self.assertTrue(os.path.isfile(path), path)
        self.assertEqual(len(sdk.find("healthd.service")), 1)
        self.assertTrue(os.path.isdir(sdk.root + sdk.dirs["sysconfdir"] + "/healthd/checks.d"))

    def test_pkgconfig(self):
        header = os.path.join(SOURCE_ROOT, "include", "healthd", "plugin.h")
        major = header_define(header, "HEALTHD_ABI_MAJOR")
        minor = header_define(header, "HEALTHD_ABI_MINOR")
        self.assertEqual(sdk.pkgconfig("--modversion"), f"{major}.{minor}")
        self.assertEqual(sdk.pkgconfig("--variable=abi_major"), major)
        self.assertEqual(sdk.pkgconfig("--variable=abi_minor"), minor)
        self.assertEqual(sdk.pkgconfig("--cflags"), f"-I{sdk.root}{sdk.dirs['includedir']}")
        self.assertEqual(sdk.pkgconfig("--libs"), "")  # a plugin links against nothing
        # plugindir is where the shipped plugins went, and the binary's default
        self.assertTrue(sdk.plugindir.startswith(sdk.root + sdk.prefix + "/"), sdk.plugindir)
        out = subprocess.run([sdk.bin, "--help"], capture_output=True, text=True,
                             check=True).stdout
        self.assertIn(f"(default: {sdk.plugindir[len(sdk.root):]})", out)


class Heartbeat(unittest.TestCase):
    """examples/heartbeat built out of tree, run by the installed healthd."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="healthd-heartbeat-")
        cls.so = os.path.join(sdk.plugindir, "heartbeat.so")
        build_heartbeat(cls.so)

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.so)
        cls.tmp.cleanup()

    def test_builds_cleanly_and_exports_only_the_descriptor(self):
        self.assertEqual(exported(self.so), {"healthd_plugin_v1"})
        src = os.path.join(sdk.docdir, "examples", "heartbeat", "heartbeat.c")
        p = subprocess.run(["sh", "-c", 'cc $(pkg-config --cflags healthd-plugin) -std=c11 '
                            '-Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Werror '
                            '-fsyntax-only "$SRC"'], env=dict(sdk.env, SRC=src),
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(src) as f:
            self.assertLessEqual(len(f.read().splitlines()), 65, "keep the example short")

    def test_check_config_shows_it(self):
        beat = os.path.join(self.tmp.name, "beat")
        cfg = self.config(beat)
        rc, out, err = healthd_fixture.run_healthd(["--plugin-dir", sdk.plugindir, "--config",
                                                    cfg, "--no-url-secret", "--check-config"])
        self.assertEqual(rc, 0, err)
        self.assertIn(f"plugin heartbeat 1.0 (ABI 1.2) from {self.so}: 1 check, isolated\n"
                      "  a file an application touches is fresh\n", out)
        self.assertIn(f"check app-alive: plugin heartbeat, in defaults, timeout 2000 ms, "
                      f"cache 0 ms ({cfg}: checks[0])", out)

    def test_bad_options_are_refused(self):
        for opts, why in (({}, "path: expected an absolute file name"),
                          ({"path": "/x", "max_age_s": "soon"},
                           'max_age_s: expected an integer from 1 to 2147483647, got "soon"'),
                          ({"path": "/x", "max_age": 5}, "max_age: unknown option")):
            cfg = os.path.join(self.tmp.name, "bad.json")
            with open(cfg, "w") as f:
                json.dump({"checks": [dict({"name": "hb", "plugin": "heartbeat"}, **opts)]}, f)
            rc, _, err = healthd_fixture.run_healthd(["--plugin-dir", sdk.plugindir, "--config",
                                                      cfg, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 1, err)
            self.assertIn(why, err)

    def test_pass_and_fail_over_http(self):
        beat = os.path.join(self.tmp.name, "heartbeat")
        with Healthd(config=self.config_dict(beat), plugin_dir=sdk.plugindir) as h:
            with open(f"/proc/{h.proc.pid}/cmdline", "rb") as f:  # also under a wrapper
                self.assertIn(sdk.bin.encode(), f.read().split(b"\0"))
            url = "/health/?checks=app-alive&verbose=1"

            status, body = h.get_json(url)
            self.assertEqual(status, 503)
            self.assertEqual(body["checks"], {"app-alive": False})
            self.assertEqual(body["details"]["app-alive"]["status"], "fail")
            self.assertEqual(body["details"]["app-alive"]["output"],
                             f"{beat}: No such file or directory")

            with open(beat, "w"):
                pass
            status, body = h.get_json(url)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["checks"], {"app-alive": True})
            self.assertEqual(body["details"]["app-alive"]["status"], "pass")
            self.assertRegex(body["details"]["app-alive"]["output"],
                             rf"^{re.escape(beat)} is [0-2] s old \(max 60\)$")
            status, body = h.get_json("/health/")  # in the defaults
            self.assertEqual((status, body["checks"]), (200, {"app-alive": True}))

            old = time.time() - 312
            os.utime(beat, (old, old))
            status, body = h.get_json(url)
            self.assertEqual(status, 503)
            self.assertEqual(body["health"], "degraded")
            self.assertEqual(body["details"]["app-alive"]["status"], "fail")
            self.assertRegex(body["details"]["app-alive"]["output"],
                             rf"^{re.escape(beat)} is 31[2-4] s old \(max 60\)$")

    def test_example_configuration_with_drop_in(self):
        """The installed healthd.json and checks.d/app.json, as an operator
        would copy them, with the secret file moved to where this test can
        write it: every check they declare is created."""
        etc = os.path.join(self.tmp.name, "etc")
        os.makedirs(os.path.join(etc, "checks.d"))
        examples = os.path.join(sdk.docdir, "examples")
        with open(os.path.join(examples, "healthd.json")) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["url_secret_file"], "/run/credentials/healthd.service/url_secret")
        cfg["url_secret_file"] = os.path.join(etc, "url_secret")
        with open(cfg["url_secret_file"], "w") as f:
            f.write("s3cret\n")
        with open(os.path.join(etc, "healthd.json"), "w") as f:
            json.dump(cfg, f)
        shutil.copy(os.path.join(examples, "checks.d", "app.json"), os.path.join(etc, "checks.d"))
        rc, out, err = healthd_fixture.run_healthd(["--plugin-dir", sdk.plugindir, "--config",
                                                    os.path.join(etc, "healthd.json"),
                                                    "--check-config"])
        self.assertEqual(rc, 0, err)
        self.assertIn("check db: plugin postgres, in defaults", out)
        self.assertIn("check api: plugin http, not in defaults, timeout 2000 ms, cache 1000 ms",
                      out)
        self.assertIn(f"check app-alive: plugin heartbeat, in defaults, timeout 2000 ms, cache 0 "
                      f"ms ({etc}/checks.d/app.json: [0])", out)
        self.assertIn("auth: on", out)

    def test_meson_build_of_the_example(self):
        """examples/heartbeat/meson.build: dependency('healthd-plugin') only."""
        src = os.path.join(self.tmp.name, "src")
        build = os.path.join(self.tmp.name, "build")
        shutil.copytree(os.path.join(sdk.docdir, "examples", "heartbeat"), src)
        with open(os.path.join(src, "meson.build")) as f:
            text = f.read()
        self.assertEqual(len(text.splitlines()), 4)  # the 4th: healthd --test-plugin
        self.assertIn("'--test-plugin'", text)
        env = {k: v for k, v in sdk.env.items() if not k.startswith("MESON")}
        for cmd in ([MESON, "setup", build, src], [MESON, "compile", "-C", build],
                    [MESON, "test", "-C", build, "--no-rebuild"],
                    [MESON, "introspect", "--installed", build]):
            p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 0, f"{cmd}:\n{p.stdout}\n{p.stderr}")
        so = os.path.join(build, "heartbeat.so")
        self.assertEqual(exported(so), {"healthd_plugin_v1"})
        # it would install into the plugin directory the .pc names
        self.assertEqual(json.loads(p.stdout), {so: os.path.join(sdk.plugindir, "heartbeat.so")})
        plugins = os.path.join(self.tmp.name, "plugins")
        os.mkdir(plugins)
        shutil.copy(so, plugins)
        rc, out, err = healthd_fixture.run_healthd(["--plugin-dir", plugins, "--no-url-secret",
                                                    "--check-config"])
        self.assertEqual(rc, 0, err)
        self.assertIn("plugin heartbeat 1.0 (ABI 1.2)", out)

    def config(self, beat):
        path = os.path.join(self.tmp.name, "healthd.json")
        with open(path, "w") as f:
            json.dump(self.config_dict(beat), f)
        return path

    @staticmethod
    def config_dict(beat):
        return {"checks": [{"name": "app-alive", "plugin": "heartbeat", "path": beat,
                            "max_age_s": 60}]}


class Tcp(unittest.TestCase):
    def test_tcp_example_builds_and_its_meson_test_passes(self):
        """examples/tcp out of tree: meson setup, compile, and its `meson test`
        (healthd --test-plugin of the installed binary) pass."""
        with tempfile.TemporaryDirectory(prefix="healthd-tcp-") as tmp:
            src, build = os.path.join(tmp, "src"), os.path.join(tmp, "build")
            shutil.copytree(os.path.join(sdk.docdir, "examples", "tcp"), src)
            env = {k: v for k, v in sdk.env.items() if not k.startswith("MESON")}
            for cmd in ([MESON, "setup", build, src], [MESON, "compile", "-C", build],
                        [MESON, "test", "-C", build, "--no-rebuild", "--print-errorlogs"]):
                p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                   stdin=subprocess.DEVNULL)
                self.assertEqual(p.returncode, 0, f"{cmd}:\n{p.stdout}\n{p.stderr}")
            self.assertEqual(exported(os.path.join(build, "tcp.so")), {"healthd_plugin_v1"})
            with open(os.path.join(build, "meson-logs", "testlog.txt")) as f:
                log = f.read()
            # port 9 (discard): refused, unless this machine runs the service
            self.assertRegex(log, r"ok \d+ - run test-a: (CRITICAL|OK) in \d+ ms of 2000 ms: "
                                  r"127\.0\.0\.1:9(: Connection refused| answered)")


class Cxx(unittest.TestCase):
    """A C++ plugin (tests/sdk/cxx_plugin.cpp) against the installed header."""

    # healthd-plugin(7): what a C++ plugin is built with
    FLAGS = ("-Wall -Wextra -Wpedantic -Werror -shared -fPIC -fvisibility=hidden "
             "-fvisibility-inlines-hidden")

    def test_cxx_plugin_builds_warning_free_and_keeps_the_contract(self):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cxx_plugin.cpp")
        with tempfile.TemporaryDirectory(prefix="healthd-cxx-") as tmp:
            script = os.path.join(tmp, "plugin.map")
            with open(script, "w") as f:
                f.write("{ global: healthd_plugin_v1; local: *; };\n")
            for std in ("c++11", "c++14", "c++17", "c++20"):
                with self.subTest(std=std):
                    out = os.path.join(tmp, f"cxx-{std}.so")
                    p = subprocess.run(
                        ["sh", "-c", f'g++ -std={std} $(pkg-config --cflags healthd-plugin) '
                         f'{self.FLAGS} -Wl,--version-script="$MAP" -o "$OUT" "$SRC"'],
                        env=dict(sdk.env, OUT=out, SRC=src, MAP=script),
                        capture_output=True, text=True)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertEqual(p.stderr, "")
                    self.assertEqual(exported(out), {"healthd_plugin_v1"})
                    rc, tap, err = healthd_fixture.run_healthd(
                        ["--test-plugin", out, "--option", "words=a b c", "--option", "min=2"])
                    self.assertEqual(rc, 0, tap + err)
                    self.assertIn("ok 5 - run test-a: OK in ", tap)
                    self.assertIn(": 3 words (min 2)", tap)

    def test_c_header_needs_c99(self):
        p = subprocess.run(["sh", "-c", 'echo "#include <healthd/plugin.h>" | cc -std=c89 '
                            '$(pkg-config --cflags healthd-plugin) -fsyntax-only -x c -'],
                           env=sdk.env, capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("needs C99 or later", p.stderr)


class Readme(unittest.TestCase):
    def test_readme_example_builds_and_runs(self):
        """The C example under "## Writing a check plugin" in README.md."""
        with open(os.path.join(SOURCE_ROOT, "README.md")) as f:
            readme = f.read()
        section = readme.split("\n## Writing a check plugin\n", 1)[1].split("\n## ", 1)[0]
        code = section.split("```c\n", 1)[1].split("```", 1)[0]
        self.assertIn(CC_LINE.replace('"$OUT" "$SRC"', "ready.so ready.c"), section)
        with tempfile.TemporaryDirectory(prefix="healthd-readme-") as tmp:
            src = os.path.join(tmp, "ready.c")
            with open(src, "w") as f:
                f.write(code)
            plugins = os.path.join(tmp, "plugins")
            os.mkdir(plugins)
            p = subprocess.run(["sh", "-c", CC_LINE + " -Wall -Wextra -Werror"],
                               env=dict(sdk.env, OUT=os.path.join(plugins, "ready.so"), SRC=src),
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            rc, out, err = healthd_fixture.run_healthd(["--plugin-dir", plugins,
                                                        "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)
            self.assertIn("check app-ready: plugin ready, in defaults", out)
            ready = os.path.exists("/run/app/ready")
            with Healthd(plugin_dir=plugins) as h:
                status, body = h.get_json("/health/?verbose=1")
            self.assertEqual(body["checks"], {"app-ready": ready})
            self.assertEqual(status, 200 if ready else 503)
            if not ready:
                self.assertEqual(body["details"]["app-ready"]["output"],
                                 "/run/app/ready is missing")


class Docs(unittest.TestCase):
    def test_man_pages_render_without_warnings(self):
        if shutil.which("man") is None:
            self.skipTest("man is not installed (apt-get install man-db)")
        pages = [sdk.root + sdk.dirs["mandir"] + "/man8/healthd.8",
                 sdk.root + sdk.dirs["mandir"] + "/man7/healthd-plugin.7"]
        for page in pages:
            p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "", page)
            self.assertGreater(len(p.stdout), 2000, page)

    def test_systemd_unit(self):
        unit = sdk.find("healthd.service")[0]
        with open(unit) as f:
            text = f.read()
        self.assertIsNone(re.search(r"@[A-Z_]+@", text), "unsubstituted placeholder")
        lines = set(text.splitlines())
        etc, bindir = sdk.dirs["sysconfdir"], sdk.dirs["bindir"]
        for want in (f"ExecStart={bindir}/healthd --config {etc}/healthd/healthd.json",
                     f"LoadCredential=url_secret:{etc}/healthd/url_secret",
                     "Type=notify", "NotifyAccess=main", "WatchdogSec=30s",
                     "DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes",
                     "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                     "SystemCallFilter=@system-service"):
            self.assertIn(want, lines)
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        # verify wants ExecStart to exist and the Documentation= pages to be found
        copy = os.path.join(sdk.tmp.name, "healthd.service")
        with open(copy, "w") as f:
            f.write(text.replace(f"ExecStart={bindir}/healthd", f"ExecStart={sdk.bin}"))
        p = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True,
                           env=dict(os.environ, MANPATH=sdk.root + sdk.dirs["mandir"],
                                    SYSTEMD_LOG_LEVEL="warning"))
        os.unlink(copy)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
