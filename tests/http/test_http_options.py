"""http plugin: bad options are refused at startup, with a line naming the option.

Runs `healthd --check-config` (exit 1 on a refused check, 0 on a good one) and
starts healthd once with a bad check to see it refuse to serve.
"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from healthd_fixture import PLUGIN_DIR, Healthd, StartupError, main, run_healthd  # noqa: E402

PASSWORD = "pw-never-printed-9931"
GOOD_URL = "http://127.0.0.1:9/status"  # never contacted: --check-config does no I/O
EXPECT_STATUS = "expect_status: expected an integer from 100 to 599"
METHOD = "method: expected GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS"
MAX_REDIRECTS = "max_redirects: expected an integer from 0 to 50"

# (what is wrong, options of the check, text the error must contain)
BAD = [
    ("url missing",            {"url": None},                             "url: missing"),
    ("url empty",              {"url": ""},                               "url: missing"),
    ("url ftp",                {"url": "ftp://127.0.0.1/x"},
     "url: only http and https are supported"),
    ("url file",               {"url": "file:///etc/passwd"},
     "url: only http and https are supported"),
    ("url no scheme",          {"url": "127.0.0.1:9000/status"},
     "url: not a valid absolute URL"),
    ("url not a URL",          {"url": "not a url"},                      "url: not a valid absolute URL"),
    ("url no host",            {"url": "http://"},                        "url: not a valid absolute URL"),
    ("url number",             {"url": 80},                               "url: not a valid absolute URL"),
    ("expect_status text",     {"expect_status": "abc"},                  EXPECT_STATUS),
    ("expect_status 99",       {"expect_status": 99},                     EXPECT_STATUS),
    ("expect_status 600",      {"expect_status": 600},                    EXPECT_STATUS),
    ("expect_status 20x",      {"expect_status": "20x"},                  EXPECT_STATUS),
    ("method unknown",         {"method": "BREW"},                        METHOD),
    ("method empty",           {"method": ""},                            METHOD),
    ("tls_verify not bool",    {"tls_verify": "maybe"},                   "tls_verify: expected true or false"),
    ("ca_file missing",        {"ca_file": "/nonexistent/ca.pem"},
     "ca_file: cannot read /nonexistent/ca.pem"),
    ("max_redirects -1",       {"max_redirects": -1},                     MAX_REDIRECTS),
    ("max_redirects 51",       {"max_redirects": 51},                     MAX_REDIRECTS),
    ("proxy ftp",              {"proxy": "ftp://127.0.0.1:21"},
     "proxy: only http, https, socks4, socks4a, socks5 and socks5h are supported"),
    ("header name with space", {"header": {"Bad Name": "x"}},
     "header:Bad Name: not a valid header name"),
    ("header name empty",      {"header": {"": "x"}},                     "header:: not a valid header name"),
    ("header with newline",    {"header": {"X-A": "a\r\nInjected: yes"}},
     "header:X-A: the value contains a line break"),
    ("header with control",    {"header": {"X-A": "a\x01b"}},
     "header:X-A: the value contains a control character"),
    ("header Content-Length",  {"header": {"Content-Length": "5"}},
     "header:Content-Length: cannot be set"),
    ("header not an object",   {"header": "X-A: b"},                      "header: expected an object"),
    ("unknown option",         {"colour": "red"},                         "colour: unknown option"),
    ("misspelt option",        {"expect_staus": 200},                     "expect_staus: unknown option"),
    ("header key wrong case",  {"Header:X-A": "b"},                       "Header:X-A: unknown option"),
]

GOOD = [
    ("minimal",      {}),
    ("everything",   {"method": "post", "expect_status": 204, "tls_verify": False,
                      "max_redirects": 0, "proxy": "socks5h://127.0.0.1:1080",
                      "header": {"X-A": "b", "Authorization": "Bearer x", "X-Empty": "",
                                 "X-Tab": "a\tb", "X-Utf8": "gr\u00fc\u00dfe"},
                      "header:X-Flat": "c"}),
    ("https",        {"url": "https://127.0.0.1:9/status", "ca_file": "/dev/null",
                      "tls_verify": True}),
    ("expect 100",   {"expect_status": 100}),
    ("expect 599",   {"expect_status": "599"}),
    ("proxy off",    {"proxy": ""}),
]


def check_config(checks):
    """healthd --check-config on a file holding these checks: (rc, stdout, stderr, path)."""
    with tempfile.TemporaryDirectory(prefix="healthd-http-") as tmp:
        path = os.path.join(tmp, "healthd.json")
        with open(path, "w") as f:
            json.dump({"checks": checks}, f)
        rc, out, err = run_healthd(["--check-config", "--config", path,
                                    "--plugin-dir", PLUGIN_DIR, "--no-url-secret"])
        return rc, out, err, path


def http_check(options):
    c = {"name": "api", "plugin": "http", "url": GOOD_URL}
    c.update(options)
    if c["url"] is None:  # None: leave the key out
        del c["url"]
    return c


class CredentialRedirects(unittest.TestCase):
    def test_asking_for_redirects_with_a_credential_header_is_refused(self):
        rc, out, err, path = check_config([http_check({"header": {"X-Api-Key": "k-123456"},
                                                        "max_redirects": 3})])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("max_redirects: header X-Api-Key looks like a credential", err)
        self.assertNotIn("k-123456", err)
        # Authorization is dropped by curl itself on a redirect to another host
        rc, out, err, path = check_config([http_check({"header": {"Authorization": "Bearer x"},
                                                        "max_redirects": 3})])
        self.assertEqual(rc, 0, out + err)


class HttpOptionsTest(unittest.TestCase):
    def test_good_options_are_accepted(self):
        for what, options in GOOD:
            with self.subTest(what):
                rc, out, err, _ = check_config([http_check(options)])
                self.assertEqual(rc, 0, f"{what}: {err}")

    def test_bad_options_are_refused(self):
        for what, options, expect in BAD:
            with self.subTest(what):
                rc, out, err, path = check_config([http_check(options)])
                self.assertEqual(rc, 1, f"{what}: accepted ({err})")
                # one line says what is wrong, naming the option and the file
                lines = [line for line in err.splitlines() if expect in line and path in line]
                self.assertEqual(len(lines), 1, f"{what}: no line with {expect!r} in:\n{err}")

    def test_credentials_are_not_echoed_in_refusals(self):
        for key, value in (("url", f"ftp://probe:{PASSWORD}@127.0.0.1/x"),
                           ("url", f"gopher://probe:{PASSWORD}@127.0.0.1/x"),
                           ("proxy", f"ftp://probe:{PASSWORD}@127.0.0.1:21")):
            with self.subTest(key=key, value=value):
                rc, out, err, _ = check_config([http_check({key: value})])
                self.assertEqual(rc, 1, err)
                self.assertIn(f"{key}: only", err)
                self.assertNotIn(PASSWORD, err + out)

    def test_bad_check_stops_startup(self):
        h = Healthd(config={"checks": [
            {"name": "ok", "plugin": "http", "url": GOOD_URL},
            http_check({"expect_status": 1000}),
        ]})
        try:
            with self.assertRaises(StartupError) as cm:
                h.start()
            self.assertEqual(cm.exception.returncode, 1)
            self.assertIn("expect_status", cm.exception.log)
            # the http plugin checks its options in instantiate(), plugin code
            # that runs once healthd listens: it never gets to be ready
            self.assertNotIn("ready: ", cm.exception.log)
        finally:
            h.__exit__(None, None, None)


if __name__ == "__main__":
    main()
