"""SPEC section 2: the shared secret, against the running binary."""

import os
import tempfile
import unittest

from healthd_fixture import ServerTest, Healthd, StartupError, run_healthd

SECRET = "s3cret-Value"
CONFIG = {"checks": [{"name": "foo", "plugin": "dummy"}]}


def runs(h, name="foo"):
    return h.metrics().get(("healthd_check_runs_total", frozenset({("check", name)})), 0)


class NoSecret(unittest.TestCase):
    def test_refuses_to_start_without_a_secret(self):
        rc, out, err = run_healthd(["--listen", "127.0.0.1:0"])
        self.assertEqual(rc, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for hint in ("HEALTH_URL_SECRET", "--no-url-secret", '"url_secret": null'):
            self.assertIn(hint, err)

    def test_empty_env_secret_refused(self):
        rc, _, err = run_healthd(["--listen", "127.0.0.1:0"], env={"HEALTH_URL_SECRET": ""})
        self.assertEqual(rc, 1)
        self.assertIn("HEALTH_URL_SECRET is set but empty", err)

    def test_null_secret_turns_auth_off(self):
        with Healthd(config={"url_secret": None, **CONFIG}, secret=False) as h:
            self.assertEqual(h.get("/health/")[0], 200)


class WithSecret(ServerTest):
    CONFIG = CONFIG
    SECRET = SECRET

    def status(self, path, headers=None):
        return self.h.get(path, headers=headers)[0]

    def test_missing_wrong_empty_auth_401_and_no_check_runs(self):
        before = runs(self.h)
        for path in ("/health/", "/health/?auth=", "/health/?auth=wrong",
                     "/health/?auth=" + SECRET[:-1], "/health/?auth=" + SECRET + "x",
                     "/health/?checks=foo&auth=S3CRET-VALUE"):
            st, hdrs, data = self.h.get(path)
            self.assertEqual(st, 401, path)
            self.assertLess(len(data), 64)
            self.assertNotIn(b"foo", data)
        self.assertEqual(runs(self.h), before)

    def test_right_secret(self):
        self.assertEqual(self.status("/health/?auth=" + SECRET), 200)
        self.assertEqual(self.status("/health/?checks=foo&auth=s3cret%2DValue"), 200)

    def test_first_auth_counts(self):
        self.assertEqual(self.status(f"/health/?auth={SECRET}&auth=wrong"), 200)
        self.assertEqual(self.status(f"/health/?auth=wrong&auth={SECRET}"), 401)

    def test_bearer_header(self):
        self.assertEqual(self.status("/health/", {"Authorization": "Bearer " + SECRET}), 200)
        self.assertEqual(self.status("/health/", {"Authorization": "bearer " + SECRET}), 200)
        self.assertEqual(self.status("/health/", {"Authorization": "Bearer wrong"}), 401)
        self.assertEqual(self.status("/health/", {"Authorization": "Basic " + SECRET}), 401)
        self.assertEqual(self.status("/health/", {"Authorization": SECRET}), 401)

    def test_ping_never_protected(self):
        self.assertEqual(self.h.get("/health/ping")[2], b"pong")

    def test_metrics_not_protected_by_default(self):
        self.assertEqual(self.status("/metrics"), 200)

    def test_redirect_needs_no_secret_and_keeps_it(self):
        st, hdrs, _ = self.h.get("/health?auth=" + SECRET)
        self.assertEqual((st, hdrs["location"]), (308, "/health/?auth=" + SECRET))

    def test_secret_never_logged(self):
        self.h.get("/health/?auth=" + SECRET)
        self.h.get("/health/?auth=wrong-" + SECRET)
        self.h.get("/nope?auth=" + SECRET)
        self.h.get("/health?auth=" + SECRET)
        self.assertNotIn(SECRET, self.h.log)
        self.assertNotIn("auth=", self.h.log)


class Sources(unittest.TestCase):
    def test_config_secret(self):
        with Healthd(config={"url_secret": "from-config", **CONFIG}, secret=False) as h:
            self.assertEqual(h.get("/health/?auth=from-config")[0], 200)
            self.assertEqual(h.get("/health/")[0], 401)

    def test_secret_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".secret", delete=False) as f:
            f.write("file-secret\n")
        try:
            with Healthd(config={"url_secret_file": f.name, **CONFIG}, secret=False) as h:
                self.assertEqual(h.get("/health/?auth=file-secret")[0], 200)
                self.assertEqual(h.get("/health/?auth=file-secret%0A")[0], 401)
        finally:
            os.unlink(f.name)

    def test_env_overrides_config(self):
        with Healthd(config={"url_secret": "from-config", **CONFIG}, secret="from-env") as h:
            self.assertEqual(h.get("/health/?auth=from-env")[0], 200)
            self.assertEqual(h.get("/health/?auth=from-config")[0], 401)

    def test_flag_turns_auth_off_over_env(self):
        with Healthd(config=CONFIG, args=["--no-url-secret"], secret="from-env") as h:
            self.assertEqual(h.get("/health/")[0], 200)

    def test_metrics_auth(self):
        with Healthd(config={"metrics_auth": True, **CONFIG}, secret=SECRET) as h:
            self.assertEqual(h.get("/metrics")[0], 401)
            self.assertEqual(h.get("/metrics?auth=" + SECRET)[0], 200)

    def test_metrics_off(self):
        with Healthd(config={"metrics_path": None}) as h:
            self.assertEqual(h.get("/metrics")[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
