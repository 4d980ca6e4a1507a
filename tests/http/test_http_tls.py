"""http plugin against a loopback HTTPS server with self-signed certificates.

The certificates are made at test time with the openssl command line tool:
one valid for 127.0.0.1, one for another name (to prove the host name is
verified, not only the chain).
"""

import contextlib
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from healthd_fixture import Healthd, main  # noqa: E402
from loopback import LoopbackServer  # noqa: E402


def make_cert(directory, name, san):
    cert = os.path.join(directory, f"{name}.pem")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class HttpTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="healthd-http-tls-")
        cls.cert, key = make_cert(cls.tmp.name, "loopback", "IP:127.0.0.1")
        cls.srv = LoopbackServer(tls=(cls.cert, key)).start()
        cls.other_cert, other_key = make_cert(cls.tmp.name, "other", "DNS:other.invalid")
        cls.other = LoopbackServer(tls=(cls.other_cert, other_key)).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.other.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.srv.reset()
        self.other.reset()

    @contextlib.contextmanager
    def healthd(self, *checks):
        # A generous timeout: these tests are about TLS, not timing, and a
        # handshake under ASan with a slow unwinder can take seconds.
        config = {"checks": [dict({"name": "api", "plugin": "http", "timeout_ms": 10000}, **c)
                             for c in checks]}
        with Healthd(config=config) as h:
            yield h
            self.assertEqual(h.stop(), 0, h.log)

    def probe_one(self, h, name="api"):
        status, body = h.get_json(f"/health/?checks={name}&verbose=1")
        passed = body["checks"][name]
        self.assertEqual(status, 200 if passed else 503)
        return passed, body["details"][name]["output"]

    def test_self_signed_is_refused_by_default(self):
        with self.healthd({"url": self.srv.url("/ok")}) as h:
            passed, output = self.probe_one(h)
            self.assertFalse(passed)
            self.assertTrue(output.startswith("TLS failure: "), output)
            self.assertIn("certificate", output)
            # refused during the handshake: no request reached the server
            self.assertEqual(self.srv.snapshot()[1], [])

    def test_tls_verify_false_accepts_it(self):
        with self.healthd({"url": self.srv.url("/ok"), "tls_verify": False}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)
            self.assertEqual(len(self.srv.snapshot()[1]), 1)

    def test_ca_file_accepts_it(self):
        with self.healthd({"url": self.srv.url("/ok"), "ca_file": self.cert}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)

    def test_ca_file_does_not_excuse_a_wrong_host_name(self):
        with self.healthd({"url": self.other.url("/ok"), "ca_file": self.other_cert}) as h:
            passed, output = self.probe_one(h)
            self.assertFalse(passed)
            self.assertTrue(output.startswith("TLS failure: "), output)
            self.assertIn("127.0.0.1", output)
            self.assertEqual(self.other.snapshot()[1], [])

    def test_ca_file_of_another_server_is_refused(self):
        with self.healthd({"url": self.srv.url("/ok"), "ca_file": self.other_cert}) as h:
            passed, output = self.probe_one(h)
            self.assertFalse(passed)
            self.assertTrue(output.startswith("TLS failure: "), output)

    def test_https_runs_reuse_one_connection(self):
        with self.healthd({"url": self.srv.url("/ok"), "ca_file": self.cert}) as h:
            for _ in range(5):
                passed, output = self.probe_one(h)
                self.assertTrue(passed, output)
            connections, reqs = self.srv.snapshot()
            self.assertEqual(len(reqs), 5)
            self.assertEqual(connections, 1)

    def test_https_redirect_is_followed(self):
        with self.healthd({"url": self.srv.url("/redirect"), "ca_file": self.cert}) as h:
            passed, output = self.probe_one(h)
            self.assertTrue(passed, output)
            self.assertEqual([r.path for r in self.srv.snapshot()[1]], ["/redirect", "/ok"])


if __name__ == "__main__":
    main()
