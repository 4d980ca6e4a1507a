"""The plugin loader against real .so files: every refusal names the file and
the reason and stops startup; good plugins load in file-name order; shipped
plugins export nothing but their descriptor."""

import os
import shutil
import subprocess
import tempfile
import unittest

from healthd_fixture import FIXTURE_DIR, PLUGIN_DIR, Healthd, StartupError, run_healthd


class PluginDir:
    """A temporary plugin directory holding copies of the named .so files."""

    def __init__(self, *files):
        self.dir = tempfile.mkdtemp(prefix="healthd-plugins-")
        for src, name in files:
            shutil.copy(src, os.path.join(self.dir, name))

    def __enter__(self):
        return self.dir

    def __exit__(self, *exc):
        shutil.rmtree(self.dir)


def fixture(name):
    return os.path.join(FIXTURE_DIR, name + ".so")


def shipped(name):
    return os.path.join(PLUGIN_DIR, name + ".so")


class Refusals(unittest.TestCase):
    def refused(self, fixture_name, reason):
        """Loading dummy.so plus the fixture must fail, naming file and reason."""
        with PluginDir((shipped("dummy"), "dummy.so"),
                       (fixture(fixture_name), "zz-" + fixture_name + ".so")) as d:
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 1, err)
            lines = err.strip().splitlines()
            self.assertIn(f"plugin {d}/zz-{fixture_name}.so: refused: ", lines[-1])
            self.assertIn(reason, lines[-1])
            # the same refusal stops a real start
            with self.assertRaises(StartupError) as cm:
                Healthd(plugin_dir=d).start()
            self.assertEqual(cm.exception.returncode, 1)
            self.assertIn(reason, cm.exception.log)

    def test_not_an_elf_object(self):
        self.refused("notelf", "not a loadable shared object")

    def test_missing_descriptor(self):
        self.refused("nosymbol", "it does not export healthd_plugin_v1")

    def test_other_major_symbol(self):
        self.refused("v2symbol", "built for plugin ABI 2, this healthd speaks ABI 1")

    def test_wrong_major_in_descriptor(self):
        self.refused("wrongmajor", "built for plugin ABI 2.0, this healthd speaks ABI 1.2")

    def test_newer_minor(self):
        self.refused("newerminor", "built for plugin ABI 1.3, newer than this healthd's 1.2")

    def test_load_fails(self):
        self.refused("loadfails", "its load function failed: cannot find /etc/fixture.conf")

    def test_name_already_taken(self):
        self.refused("takenname", 'check name "true" is already taken')

    def test_error_ignored_by_plugin_still_refused(self):
        self.refused("ignoreserror", "registered a check the host refused")

    def test_check_struct_too_small(self):
        self.refused("smallcheck", "struct healthd_check has size 8")

    def test_bad_plugin_name(self):
        self.refused("badname", "its name may only contain")

    def test_two_plugins_with_one_name(self):
        with PluginDir((shipped("dummy"), "dummy.so"), (shipped("dummy"), "dummy2.so")) as d:
            rc, _, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 1)
            self.assertIn(f"plugin {d}/dummy2.so: refused: a plugin named \"dummy\" is already "
                          f"loaded from {d}/dummy.so", err)

    def test_missing_plugin_dir(self):
        rc, _, err = run_healthd(["--plugin-dir", "/nonexistent/plugins", "--no-url-secret",
                                  "--check-config"])
        self.assertEqual(rc, 1)
        self.assertIn("plugin_dir /nonexistent/plugins: cannot open: No such file or directory", err)


class Loading(unittest.TestCase):
    def test_good_fixture_loads_in_file_name_order(self):
        with PluginDir((fixture("good"), "a-good.so"), (shipped("dummy"), "b-dummy.so")) as d:
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)
            self.assertLess(out.index("plugin good 0.1 (ABI 1.2)"), out.index("plugin dummy"))
            self.assertIn("check good-check: plugin good, in defaults", out)
            with Healthd(plugin_dir=d) as h:
                status, hdrs, body = h.get("/health/")
                self.assertEqual(status, 200)
                self.assertEqual(body, b'{"available_checks":["good-check","true","false"],'
                                       b'"checks":{"good-check":true},"health":"running"}\n')

    def test_older_minor_loads(self):
        # built with this header but declaring minor 0 (HEALTHD_PLUGIN_MINOR)
        with PluginDir((fixture("olderminor"), "olderminor.so")) as d:
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)
            self.assertIn("plugin olderminor 0.1 (ABI 1.0)", out)
            with Healthd(plugin_dir=d) as h:
                st, doc = h.get_json("/health/?checks=olderminor-check")
                self.assertEqual((st, doc["checks"]), (200, {"olderminor-check": True}))

    def test_non_so_files_are_ignored(self):
        with PluginDir((shipped("dummy"), "dummy.so"), (fixture("notelf"), "README.txt")) as d:
            rc, out, err = run_healthd(["--plugin-dir", d, "--no-url-secret", "--check-config"])
            self.assertEqual(rc, 0, err)


class Exports(unittest.TestCase):
    """Plugins are built with hidden visibility: the descriptor is all they export."""

    def test_shipped_plugins_export_only_the_descriptor(self):
        plugins = sorted(f for f in os.listdir(PLUGIN_DIR) if f.endswith(".so"))
        self.assertIn("dummy.so", plugins)
        for name in plugins:
            out = subprocess.run(["nm", "-D", "--defined-only", os.path.join(PLUGIN_DIR, name)],
                                 capture_output=True, text=True, check=True).stdout
            symbols = {line.split()[-1] for line in out.splitlines() if line.strip()}
            symbols -= {"_init", "_fini", "__bss_start", "_edata", "_end"}
            # an ASan build adds one ODR marker per exported global, named after it
            symbols = {s for s in symbols if not s.startswith("__odr_asan.")}
            self.assertEqual(symbols, {"healthd_plugin_v1"}, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
