"""The Debian packages, built as a maintainer builds them and checked as an
administrator would meet them.

A copy of the source tree (the files git knows, as in a clean clone) is built
with `dpkg-buildpackage -us -uc -b`, then:
  - exactly four packages come out (plus their -dbgsym), each with what it
    should hold and nothing of the others': the server depends on neither
    libpq nor libcurl;
  - lintian reports no error, and no warning outside the list below (each
    with the reason it stays);
  - the packages, unpacked into a temporary root with dpkg-deb, work: the
    postinst's secret step makes a secret, the packaged healthd with the
    packaged configuration serves it, loads both plugin packages, and the
    example plugin builds with the -dev package's pkg-config file.

DEB_BUILD_OPTIONS=nocheck: the suites dh_auto_test would run (unit, plugins,
integration, abi) are the ones this same `meson test` run already runs on the
same sources; running them again inside the package build would only double
the time. A plain `dpkg-buildpackage` runs them.

Needs build-essential (dpkg-dev), debhelper and lintian (`.ci/bootstrap --test`); without them
the test is skipped, except in CI (CI=true), where it fails.
"""

import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import healthd_fixture
from healthd_fixture import Healthd

SOURCE_ROOT = os.environ["HEALTHD_SOURCE_ROOT"]
TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper", "lintian": "lintian",
         "g++": "build-essential",  # dpkg-checkbuilddeps wants all of build-essential
         "git": "git", "cc": "gcc", "pkg-config": "pkg-config"}

# lintian tags that may remain, and why (anything else fails the test).
LINTIAN_ALLOWED = {
    # A systemd unit and no /etc/init.d script: healthd is started by systemd
    # (Type=notify, the sandbox of the unit); there is no sysvinit variant.
    "package-supports-alternative-init-but-no-init.d-script",
}

PACKAGES = ("healthd", "healthd-plugin-postgres", "healthd-plugin-http", "healthd-plugin-dev")

build = None  # set by setUpModule


class Build:
    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="healthd-deb-")
        self.src = os.path.join(self.tmp.name, "healthd")
        files = subprocess.run(["git", "-C", SOURCE_ROOT, "ls-files", "-z", "--cached",
                                "--others", "--exclude-standard"], check=True,
                               capture_output=True).stdout.split(b"\0")
        for rel in (f.decode() for f in files if f):
            if not os.path.exists(os.path.join(SOURCE_ROOT, rel)):
                continue  # deleted in the work tree, not yet in git
            os.makedirs(os.path.dirname(os.path.join(self.src, rel)), exist_ok=True)
            shutil.copy2(os.path.join(SOURCE_ROOT, rel), os.path.join(self.src, rel))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MESON", "HEALTHD_", "ASAN_", "UBSAN_", "PYTHON"))}
        env["DEB_BUILD_OPTIONS"] = "nocheck parallel=2"
        p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=self.src, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=1200)
        self.log = p.stdout + p.stderr
        if p.returncode != 0:
            raise AssertionError(f"dpkg-buildpackage failed ({p.returncode}):\n"
                                 + self.log[-6000:])
        self.triplet = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"],
                                      check=True, capture_output=True,
                                      text=True).stdout.strip()
        self.debs = {}
        for deb in glob.glob(os.path.join(self.tmp.name, "*.deb")):
            name = os.path.basename(deb).split("_")[0]
            self.debs[name] = deb
        self.changes = glob.glob(os.path.join(self.tmp.name, "*.changes"))

    def contents(self, pkg):
        out = subprocess.run(["dpkg-deb", "-c", self.debs[pkg]], check=True,
                             capture_output=True, text=True).stdout
        return {line.split()[5][1:].rstrip("/") for line in out.splitlines()}

    def field(self, pkg, name):
        return subprocess.run(["dpkg-deb", "-f", self.debs[pkg], name], check=True,
                              capture_output=True, text=True).stdout.strip()

    def control_file(self, pkg, name):
        d = os.path.join(self.tmp.name, "control-" + pkg)
        if not os.path.isdir(d):
            subprocess.run(["dpkg-deb", "-e", self.debs[pkg], d], check=True)
        with open(os.path.join(d, name)) as f:
            return f.read()


def setUpModule():
    global build
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        msg = f"needs {', '.join(sorted(set(missing)))} (.ci/bootstrap --test installs them)"
        if os.environ.get("CI") == "true":
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)
    build = Build()


def tearDownModule():
    if build is not None:
        build.tmp.cleanup()


class Contents(unittest.TestCase):
    def test_exactly_the_four_packages(self):
        self.assertEqual(sorted(n for n in build.debs if not n.endswith("-dbgsym")),
                         sorted(PACKAGES), build.debs)
        self.assertEqual(len(build.changes), 1)

    def test_server(self):
        files = build.contents("healthd")
        plugins = f"/usr/lib/{build.triplet}/healthd/plugins"
        # exec and tcp need nothing but libc: they ship with the server
        for want in ("/usr/bin/healthd", f"{plugins}/dummy.so", f"{plugins}/exec.so",
                     f"{plugins}/tcp.so",
                     "/usr/share/man/man8/healthd.8.gz", "/usr/share/man/man7/healthd-plugin.7.gz",
                     "/lib/systemd/system/healthd.service", "/etc/healthd/healthd.json",
                     "/etc/healthd/checks.d", "/usr/share/doc/healthd/examples/healthd.json",
                     "/usr/share/doc/healthd/README.Debian", "/usr/share/doc/healthd/copyright"):
            self.assertIn(want, files)
        for unwanted in (f"{plugins}/postgres.so", f"{plugins}/http.so",
                         "/usr/include/healthd/plugin.h"):
            self.assertNotIn(unwanted, files)
        depends = build.field("healthd", "Depends")
        self.assertRegex(depends, r"\blibmicrohttpd12\b")
        self.assertRegex(depends, r"\blibjson-c5\b")
        self.assertNotRegex(depends, r"libpq|libcurl")
        self.assertEqual(build.control_file("healthd", "conffiles").split(),
                         ["/etc/healthd/healthd.json"])

    def test_plugin_packages(self):
        version = build.field("healthd", "Version")
        for pkg, so, lib in (("healthd-plugin-postgres", "postgres.so", "libpq5"),
                             ("healthd-plugin-http", "http.so", "libcurl4")):
            files = {f for f in build.contents(pkg) if not f.startswith("/usr/share/doc")}
            self.assertEqual({f for f in files if "." in os.path.basename(f)},
                             {f"/usr/lib/{build.triplet}/healthd/plugins/{so}"}, pkg)
            depends = build.field(pkg, "Depends")
            self.assertIn(f"healthd (= {version})", depends)
            self.assertRegex(depends, rf"\b{lib}\b")

    def test_dev_package(self):
        files = build.contents("healthd-plugin-dev")
        for want in ("/usr/include/healthd/plugin.h",
                     f"/usr/lib/{build.triplet}/pkgconfig/healthd-plugin.pc",
                     "/usr/share/doc/healthd-plugin-dev/examples/heartbeat/heartbeat.c",
                     "/usr/share/doc/healthd-plugin-dev/examples/heartbeat/meson.build",
                     "/usr/share/doc/healthd-plugin-dev/examples/tcp/tcp.c",
                     "/usr/share/doc/healthd-plugin-dev/examples/tcp/meson.build"):
            self.assertIn(want, files)
        self.assertFalse(any(f.endswith(".so") for f in files), files)

    def test_unit_is_notify_and_starts_as_policy_says(self):
        root = unpacked()
        with open(os.path.join(root, "lib/systemd/system/healthd.service")) as f:
            unit = f.read().splitlines()
        for want in ("Type=notify", "WatchdogSec=30s",
                     "ExecStart=/usr/bin/healthd --config /etc/healthd/healthd.json",
                     "LoadCredential=url_secret:/etc/healthd/url_secret",
                     "WantedBy=multi-user.target"):
            self.assertIn(want, unit)
        postinst = build.control_file("healthd", "postinst")
        # enabled and started on install through deb-systemd-invoke, which
        # obeys an administrator's policy-rc.d; the secret is made first
        self.assertIn("deb-systemd-helper enable 'healthd.service'", postinst)
        self.assertIn("deb-systemd-invoke $_dh_action 'healthd.service'", postinst)
        self.assertLess(postinst.index("/etc/healthd/url_secret"),
                        postinst.index("deb-systemd-invoke"))
        self.assertIn("rm -f /etc/healthd/url_secret", build.control_file("healthd", "postrm"))


class Lintian(unittest.TestCase):
    def test_no_errors_and_only_known_warnings(self):
        p = subprocess.run(["lintian", "--display-info", "--pedantic", "--tag-display-limit", "0",
                            build.changes[0]], capture_output=True, text=True, timeout=600)
        print(p.stdout + p.stderr)
        tags = re.findall(r"^([EWIPX]): (\S+?): (\S+)", p.stdout, re.M)
        errors = [t for t in tags if t[0] == "E"]
        self.assertEqual(errors, [], p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        unexpected = {t[2] for t in tags if t[0] in "WIP"} - LINTIAN_ALLOWED
        self.assertEqual(unexpected, set(), p.stdout)


_root = None


def unpacked():
    """The four packages unpacked with dpkg-deb -x into one root (once)."""
    global _root
    if _root is None:
        _root = os.path.join(build.tmp.name, "root")
        for pkg in PACKAGES:
            subprocess.run(["dpkg-deb", "-x", build.debs[pkg], _root], check=True)
    return _root


class Unpacked(unittest.TestCase):
    """The packaged files in use, without installing them on this machine."""

    def setUp(self):
        self.root = unpacked()
        self.plugins = f"{self.root}/usr/lib/{build.triplet}/healthd/plugins"
        self.bin = f"{self.root}/usr/bin/healthd"

    def postinst_secret(self, etc):
        """The package's own postinst up to debhelper's part, run on etc."""
        script = build.control_file("healthd", "postinst")
        script = script.split("# Automatically added by dh_")[0].replace("/etc/healthd/", etc + "/")
        subprocess.run(["sh", "-c", script, "postinst", "configure"], check=True)
        with open(etc + "/url_secret") as f:
            return f.read()

    def test_postinst_makes_a_secret_once_and_healthd_serves_it(self):
        etc = os.path.join(build.tmp.name, "etc-healthd")
        shutil.copytree(self.root + "/etc/healthd", etc)
        secret = self.postinst_secret(etc)
        self.assertRegex(secret, r"^[0-9a-f]{32}\n$")
        self.assertEqual(os.stat(etc + "/url_secret").st_mode & 0o777, 0o600)
        self.assertEqual(self.postinst_secret(etc), secret, "an upgrade keeps the secret")

        # the packaged configuration, with the credential systemd would hand over
        with open(etc + "/healthd.json") as f:
            config = f.read()
        self.assertIn('"/run/credentials/healthd.service/url_secret"', config)
        config = config.replace("/run/credentials/healthd.service/url_secret",
                                etc + "/url_secret").replace('"checks.d"', f'"{etc}/checks.d"')
        old_bin, healthd_fixture.BIN = healthd_fixture.BIN, self.bin
        try:
            with Healthd(config=config, secret=False, plugin_dir=self.plugins) as h:
                status, _, _ = h.get("/health/")
                self.assertEqual(status, 401)
                status, body = h.get_json("/health/?checks=true",
                                          {"Authorization": "Bearer " + secret.strip()})
                self.assertEqual((status, body["checks"]), (200, {"true": True}))
        finally:
            healthd_fixture.BIN = old_bin

    def test_plugin_packages_load(self):
        config = os.path.join(build.tmp.name, "plugins.json")
        with open(config, "w") as f:
            f.write('{"checks": [{"name": "db", "plugin": "postgres", "conninfo": "dbname=x"},'
                    ' {"name": "api", "plugin": "http", "url": "http://127.0.0.1:9/"}]}')
        p = subprocess.run([self.bin, "--config", config, "--plugin-dir", self.plugins,
                            "--no-url-secret", "--check-config"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for plugin in ("dummy", "http", "postgres"):
            self.assertRegex(p.stdout, rf"(?m)^plugin {plugin} ")

    def test_example_plugin_builds_with_the_dev_package(self):
        env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=self.root,
                   PKG_CONFIG_PATH=f"{self.root}/usr/lib/{build.triplet}/pkgconfig")
        env.pop("PKG_CONFIG_LIBDIR", None)
        plugindir = subprocess.run(["pkg-config", "--variable=plugindir", "healthd-plugin"],
                                   env=env, check=True, capture_output=True, text=True)
        self.assertEqual(plugindir.stdout.strip(),
                         f"{self.root}/usr/lib/{build.triplet}/healthd/plugins")
        out = os.path.join(build.tmp.name, "plugins-dev")
        os.makedirs(out, exist_ok=True)
        src = f"{self.root}/usr/share/doc/healthd-plugin-dev/examples/heartbeat/heartbeat.c"
        subprocess.run("cc $(pkg-config --cflags healthd-plugin) -shared -fPIC "
                       f"-fvisibility=hidden -o {out}/heartbeat.so {src}", shell=True,
                       env=env, check=True)
        p = subprocess.run([self.bin, "--plugin-dir", out, "--no-url-secret", "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^plugin heartbeat ")

    def test_plugin_man_page_quick_start_matches_the_packages(self):
        """healthd-plugin(7)'s QUICK START, as packaged, works verbatim: the
        paths it names are in the packages or written by an earlier step, the
        ABI it shows is the header's, and every $VARIABLE is set before use."""
        with gzip.open(f"{self.root}/usr/share/man/man7/healthd-plugin.7.gz", "rt") as f:
            page = f.read()
        section = page.split(".SH QUICK START\n", 1)[1].split("\n.SH ", 1)[0]
        text = (section.replace("\\-", "-").replace("\\(aq", "'").replace("\\&", "")
                .replace("\\e", "\\"))
        with open(f"{self.root}/usr/include/healthd/plugin.h") as f:
            header = f.read()
        abi = ".".join(re.search(rf"#define HEALTHD_ABI_{part} (\d+)", header)[1]
                       for part in ("MAJOR", "MINOR"))
        shown = re.findall(r"\(ABI (\d+\.\d+)\)", text)
        self.assertTrue(shown, text)
        self.assertEqual(set(shown), {abi})
        for doc in re.findall(r"/usr/share/doc/[\w./-]+", text):
            self.assertTrue(os.path.exists(self.root + doc.rstrip(".")), doc)
        # the commands, continuation lines joined
        commands = re.findall(r"(?m)^\$ ((?:.*\\\n)*.*)$", text)
        self.assertTrue(commands, text)
        written, assigned = set(), set()
        postinst = build.control_file("healthd", "postinst")
        for cmd in commands:
            for var in re.findall(r"\$\{?([A-Za-z_]\w*)", cmd):
                self.assertIn(var, assigned | {"PATH", "HOME"}, f"${var} is never set: {cmd}")
            for path in re.findall(r"(?<![\w.$])(/(?:etc|usr|run)/[\w./-]+)", cmd):
                if re.search(rf"(?:\btee|>)\s+{re.escape(path)}", cmd):
                    written.add(path)
                elif path == "/etc/healthd/url_secret":
                    self.assertIn(path, postinst, "the postinst makes the secret")
                else:
                    self.assertTrue(path in written or os.path.exists(self.root + path),
                                    f"{path} is neither packaged nor written first: {cmd}")
            assigned.update(re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", cmd))


if __name__ == "__main__":
    unittest.main(verbosity=2)
