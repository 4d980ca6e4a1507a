"""HTTPS on healthd's own endpoint (issue #25): the exporter-toolkit's tls
names, client certificates, versions, bad files, renewal, and the connection
layer's limits over TLS.

Certificates are made by each test class with the openssl command line tool;
the client is Python's ssl module (and curl once). Real healthd binary.
"""

import contextlib
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from healthd_fixture import TIME_SCALE, Healthd, main, read_until_closed, run_healthd  # noqa: E402

CHECKS = [{"name": "foo", "plugin": "dummy"}, {"name": "bar", "plugin": "dummy",
                                                "result": "critical", "defaults": False}]
PING = b"GET /health/ping HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSED = "healthd_http_connections_closed_total"
FDS = ("process_open_fds", frozenset())
LINGER_MAX = 64  # http_conn.c: refused clients' sockets kept open at once


def stamp(t):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))


class Pki:
    """A directory of CAs and certificates signed by them (openssl ca, so that
    the dates can be set: expired and not yet valid ones)."""

    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def path(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name):
        d = self.path(name + "-db")
        os.makedirs(d)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {d}/index.txt\n"
                    f"new_certs_dir = {d}\nserial = {d}/serial\ndefault_md = sha256\n"
                    "policy = p\ncopy_extensions = copy\nunique_subject = no\n"
                    "[p]\ncommonName = supplied\n")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", self.path(name + ".key"), "-out", self.path(name + ".pem"),
                  "-days", "3", "-subj", f"/CN={name}")
        return name

    def leaf(self, name, ca, san="IP:127.0.0.1", start=-3600, end=2 * 86400):
        """A key and a certificate signed by ca, valid from now+start to now+end."""
        key, csr, pem = self.path(name + ".key"), self.path(name + ".csr"), self.path(name + ".pem")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
                  "-addext", f"subjectAltName={san}")
        now = time.time()
        self._run("ca", "-batch", "-notext", "-config", self.path(ca + "-db/ca.cnf"),
                  "-cert", self.path(ca + ".pem"), "-keyfile", self.path(ca + ".key"),
                  "-in", csr, "-out", pem, "-startdate", stamp(now + start),
                  "-enddate", stamp(now + end))
        return pem, key


def fingerprint_of_file(pem):
    with open(pem) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def client_context(ca, cert=None, minimum=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


class TlsHealthd(Healthd):
    """Healthd spoken to over HTTPS with ctx."""

    def __init__(self, ctx, **kw):
        super().__init__(**kw)
        self.ctx = ctx

    def connection(self, timeout=10):
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout * TIME_SCALE,
                                           context=self.ctx)

    def fingerprint(self, ctx=None):
        """The sha256 of the certificate a new connection is served."""
        with socket.create_connection((self.host, self.port), timeout=10 * TIME_SCALE) as s:
            with (ctx or self.ctx).wrap_socket(s, server_hostname=self.host) as t:
                return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()

    def wait_log(self, pattern, count=1, timeout=10):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while sum(pattern in line for line in self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} (x{count}) within "
                                     f"{timeout * TIME_SCALE:.0f} s:\n{self.log}")
            time.sleep(0.02)


def refused(h, ctx):
    """Whether a ping with ctx fails (handshake, or the alert that TLS 1.3
    sends after it) instead of being answered."""
    conn = http.client.HTTPSConnection(h.host, h.port, timeout=10 * TIME_SCALE, context=ctx)
    try:
        conn.request("GET", "/health/ping")
        conn.getresponse().read()
        return False
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return True
    finally:
        conn.close()


def refusal(h, ctx):
    """What the client is told when its ping is refused ("" when answered)."""
    conn = http.client.HTTPSConnection(h.host, h.port, timeout=10 * TIME_SCALE, context=ctx)
    try:
        conn.request("GET", "/health/ping")
        conn.getresponse().read()
        return ""
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected) as e:
        return str(e) or type(e).__name__
    finally:
        conn.close()


def closed_within(s, seconds):
    """Whether the server closes s within `seconds`; what it sends is returned too."""
    got, closed = read_until_closed(s, seconds)
    return closed, got


def server_closed(s, seconds):
    """Waits (at most `seconds`) until the server has shut down its side of s."""
    p = select.poll()
    p.register(s.fileno(), select.POLLRDHUP)
    return bool(p.poll(seconds * 1000))


def early_request(h, ctx):
    """A refused client as Go's: its request right behind its Finished (a TLS
    1.3 client's handshake ends there), another once the server has sent its
    alert and closed its side (as Go's writer may), then a read. Returns the
    socket, still open, and what the client was told: the alert's text, or
    the error that lost it (a reset: "broken pipe", "connection reset")."""
    raw = socket.create_connection((h.host, h.port), timeout=10 * TIME_SCALE)
    s = ctx.wrap_socket(raw, server_hostname=h.host)
    try:
        s.sendall(PING)
        if not server_closed(s, 10 * TIME_SCALE):
            return s, "the server did not close"
        s.sendall(PING)
        return s, "answered: " + repr(s.recv(4096))
    except (ssl.SSLError, OSError) as e:
        return s, str(e) or type(e).__name__


class PkiTest(unittest.TestCase):
    """A Pki per class: a CA, the server's pair, clients from it and from another CA."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="healthd-tls-")
        cls.pki = pki = Pki(cls._tmp.name)
        pki.ca("ca")
        pki.ca("other")
        cls.server = pki.leaf("server", "ca")
        cls.client = pki.leaf("client", "ca", san="DNS:client")
        cls.stranger = pki.leaf("stranger", "other", san="DNS:stranger")
        cls.ca_pem = pki.path("ca.pem")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def tls(self, **kw):
        return dict({"cert_file": self.server[0], "key_file": self.server[1]}, **kw)

    @contextlib.contextmanager
    def serving(self, tls, ctx=None, limits=None, extra=None, **kw):
        config = dict({"checks": CHECKS, "tls": tls}, **(extra or {}))
        if limits is not None:
            config["limits"] = limits
        h = TlsHealthd(ctx or client_context(self.ca_pem), config=config, **kw)
        with h:
            yield h
        self.assertEqual(h.proc.returncode, 0, f"healthd did not exit cleanly:\n{h.log}")


class Serving(PkiTest):
    def test_routes_over_https_as_over_http(self):
        with Healthd(config={"checks": CHECKS}) as plain:
            _, _, plain_body = plain.get("/health/?checks=true,foo,bar")
        with self.serving(self.tls()) as h:
            self.assertTrue(any("listening on https://127.0.0.1:" in m for m in h.messages),
                            h.log)
            status, headers, body = h.get("/health/ping")
            self.assertEqual((status, body), (200, b"pong"))
            self.assertEqual(headers["content-type"], "text/plain")
            status, _, body = h.get("/health/?checks=true,foo,bar")
            self.assertEqual(status, 503)
            self.assertEqual(body, plain_body)
            # auth is unchanged over HTTPS
        with self.serving(self.tls(), secret="s3cret") as h:
            self.assertEqual(h.get("/health/")[0], 401)
            self.assertEqual(h.get("/health/?auth=s3cret")[0], 200)

    def test_curl_with_the_ca(self):
        with self.serving(self.tls()) as h:
            out = subprocess.run(["curl", "-sS", "--cacert", self.ca_pem,
                                  f"https://127.0.0.1:{h.port}/health/ping"],
                                 capture_output=True, text=True, timeout=30 * TIME_SCALE)
            self.assertEqual((out.returncode, out.stdout), (0, "pong"), out.stderr)
            # a client that does not trust the CA gives up
            out = subprocess.run(["curl", "-sS", f"https://127.0.0.1:{h.port}/health/ping"],
                                 capture_output=True, text=True, timeout=30 * TIME_SCALE)
            self.assertNotEqual(out.returncode, 0)

    def test_expiry_metric(self):
        with self.serving(self.tls()) as h:
            m = h.metrics()
            out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", self.server[0]],
                                 capture_output=True, text=True, check=True)
            end = ssl.cert_time_to_seconds(out.stdout.strip().split("=", 1)[1])
            self.assertEqual(m[("healthd_tls_certificate_expiry_timestamp_seconds",
                                frozenset())], end)
            self.assertEqual(m[("healthd_tls_reloads_total", frozenset({("result", "ok")}))], 0)

    def test_plain_http_to_the_tls_port_is_closed_at_once(self):
        # idle and header limits far beyond the wait: only the failed
        # handshake can close it
        with self.serving(self.tls(), limits={"idle_timeout_s": 600,
                                              "header_timeout_s": 600}) as h:
            with socket.create_connection((h.host, h.port), timeout=5) as s:
                s.sendall(PING)
                closed, got = closed_within(s, 5 * TIME_SCALE)
                self.assertTrue(closed, "a plain request held the connection open")
                self.assertNotIn(b"HTTP/1.1 200", got)
            self.assertEqual(h.get("/health/ping")[:3:2], (200, b"pong"))

    def test_handshake_garbage_is_closed_at_once(self):
        with self.serving(self.tls(), limits={"idle_timeout_s": 600,
                                              "header_timeout_s": 600}) as h:
            # not a TLS record (an unknown content type), an oversized record,
            # a truncated ClientHello that says it is complete. (Bytes from
            # 0x80 read as an SSLv2 hello's length: GnuTLS waits for the rest,
            # which the header time limit bounds, as in Limits.)
            for junk in (b"\x01" + os.urandom(511), b"\x16\x03\x01\xff\xff" + os.urandom(64),
                         b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00"):
                with socket.create_connection((h.host, h.port), timeout=5) as s:
                    s.sendall(junk)
                    self.assertTrue(closed_within(s, 5 * TIME_SCALE)[0], junk)
            self.assertEqual(h.get("/health/ping")[:3:2], (200, b"pong"))


class ClientCerts(PkiTest):
    """client_auth_type with Go's meanings: which clients pass the handshake."""

    def contexts(self):
        return {"none": client_context(self.ca_pem),
                "right CA": client_context(self.ca_pem, self.client),
                "other CA": client_context(self.ca_pem, self.stranger)}

    def check(self, auth, expect, ca=True):
        tls = self.tls(client_auth_type=auth)
        if ca:
            tls["client_ca_file"] = self.ca_pem
        with self.serving(tls) as h:
            for name, ctx in self.contexts().items():
                self.assertEqual(not refused(h, ctx), expect[name],
                                 f"{auth}, client cert {name}:\n{h.log}")
            self.assertTrue(any(f"client certificates: {auth}" in m for m in h.messages))

    def test_no_client_cert(self):
        self.check("NoClientCert", {"none": True, "right CA": True, "other CA": True}, ca=False)

    def test_require_and_verify(self):
        self.check("RequireAndVerifyClientCert",
                   {"none": False, "right CA": True, "other CA": False})

    def test_verify_if_given(self):
        self.check("VerifyClientCertIfGiven", {"none": True, "right CA": True, "other CA": False})

    def test_require_any(self):
        self.check("RequireAnyClientCert", {"none": False, "right CA": True, "other CA": True},
                   ca=False)

    def test_request(self):
        self.check("RequestClientCert", {"none": True, "right CA": True, "other CA": True},
                   ca=False)

    def test_expired_client_cert_refused(self):
        old = self.pki.leaf("old-client", "ca", san="DNS:old", start=-3 * 86400, end=-86400)
        with self.serving(self.tls(client_auth_type="RequireAndVerifyClientCert",
                                   client_ca_file=self.ca_pem)) as h:
            self.assertTrue(refused(h, client_context(self.ca_pem, old)))
            self.assertFalse(refused(h, client_context(self.ca_pem, self.client)))


    def test_refusals_say_why(self):
        # Go's alerts, so that a client (Prometheus' lastError, curl) names the
        # cause instead of "EOF": libmicrohttpd sends none of its own
        old = self.pki.leaf("old-client2", "ca", san="DNS:old", start=-3 * 86400, end=-86400)
        with self.serving(self.tls(client_auth_type="RequireAndVerifyClientCert",
                                   client_ca_file=self.ca_pem)) as h:
            self.assertIn("certificate required", refusal(h, client_context(self.ca_pem)))
            self.assertIn("unknown ca", refusal(h, client_context(self.ca_pem, self.stranger)))
            self.assertIn("certificate expired", refusal(h, client_context(self.ca_pem, old)))
            tls12 = client_context(self.ca_pem)
            tls12.maximum_version = ssl.TLSVersion.TLSv1_2
            self.assertIn("bad certificate", refusal(h, tls12))
        with self.serving(self.tls(client_auth_type="RequireAnyClientCert")) as h:
            self.assertIn("certificate required", refusal(h, client_context(self.ca_pem)))


class Versions(PkiTest):
    def test_min_tls13_refuses_a_tls12_client(self):
        with self.serving(self.tls(min_version="TLS13")) as h:
            self.assertTrue(refused(h, client_context(self.ca_pem,
                                                      maximum=ssl.TLSVersion.TLSv1_2)))
            self.assertFalse(refused(h, client_context(self.ca_pem,
                                                       minimum=ssl.TLSVersion.TLSv1_3)))

    def test_max_tls12(self):
        with self.serving(self.tls(max_version="TLS12")) as h:
            self.assertTrue(refused(h, client_context(self.ca_pem,
                                                      minimum=ssl.TLSVersion.TLSv1_3)))
            self.assertFalse(refused(h, client_context(self.ca_pem,
                                                       maximum=ssl.TLSVersion.TLSv1_2)))

    def test_default_refuses_tls11(self):
        with warnings.catch_warnings():  # deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = client_context(self.ca_pem, minimum=ssl.TLSVersion.TLSv1_1,
                                 maximum=ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 needs it for TLS 1.1
        # the control: can this client and this GnuTLS speak TLS 1.1 at all?
        with self.serving(self.tls(min_version="TLS10")) as h:
            if refused(h, ctx):
                self.skipTest("TLS 1.1 cannot be negotiated here even with min_version TLS10 "
                              "(the client's OpenSSL or the system's GnuTLS policy): the "
                              "default's refusal is not shown")
        with self.serving(self.tls()) as h:
            self.assertTrue(refused(h, ctx))
            self.assertFalse(refused(h, client_context(self.ca_pem)))


class BadConfig(PkiTest):
    """One line naming the key, the file and the problem; no start; the same
    from --check-config."""

    def expect(self, tls, *words):
        with tempfile.TemporaryDirectory(prefix="healthd-tls-cfg-") as d:
            path = os.path.join(d, "healthd.json")
            with open(path, "w") as f:
                json.dump({"tls": tls}, f)
            for mode in ([], ["--check-config"]):
                rc, _, err = run_healthd(["--config", path, "--no-url-secret",
                                          "--listen", "127.0.0.1:0"] + mode)
                self.assertNotEqual(rc, 0, err)
                lines = [ln for ln in err.splitlines() if "tls" in ln]
                self.assertEqual(len(lines), 1, err)
                for w in words:
                    self.assertIn(w, lines[0])

    def test_missing_key(self):
        self.expect({"cert_file": self.server[0]}, "tls.key_file", "missing")

    def test_unreadable_file(self):
        missing = self.pki.path("nope.pem")
        self.expect(self.tls(cert_file=missing), "tls.cert_file", missing, "cannot read")

    def test_key_not_matching(self):
        self.expect(self.tls(key_file=self.client[1]), "tls.key_file", self.client[1],
                    self.server[0], "not the key")

    def test_expired(self):
        pem, key = self.pki.leaf("expired", "ca", start=-3 * 86400, end=-86400)
        self.expect({"cert_file": pem, "key_file": key}, "tls.cert_file", pem, "expired")

    def test_not_yet_valid(self):
        pem, key = self.pki.leaf("future", "ca", start=86400, end=2 * 86400)
        self.expect({"cert_file": pem, "key_file": key}, "tls.cert_file", pem, "not valid before")

    def test_not_a_certificate(self):
        self.expect(self.tls(cert_file=self.server[1]), "tls.cert_file", "no PEM certificate")

    def test_unknown_client_auth_type(self):
        self.expect(self.tls(client_auth_type="Sometimes"), "tls.client_auth_type",
                    "Sometimes", "RequireAndVerifyClientCert")

    def test_verify_without_ca(self):
        for auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
            self.expect(self.tls(client_auth_type=auth), "tls.client_ca_file", "missing", auth)

    def test_ca_without_policy(self):
        self.expect(self.tls(client_ca_file=self.ca_pem), "tls.client_ca_file", "NoClientCert")

    def test_unknown_min_version(self):
        self.expect(self.tls(min_version="SSL3"), "tls.min_version", "SSL3", "TLS13")

    def test_unknown_key(self):
        self.expect(self.tls(cipher_suites=[]), "tls.cipher_suites", "unknown key")

    def test_empty_ca_file(self):
        empty = self.pki.path("empty.pem")
        open(empty, "w").close()
        self.expect(self.tls(client_auth_type="RequireAndVerifyClientCert",
                             client_ca_file=empty), "tls.client_ca_file", empty)


class Renewal(PkiTest):
    """cert-manager renews in place: new connections get the new pair without
    a restart; a bad pair leaves the old one serving."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="healthd-tls-files-")
        self.addCleanup(shutil.rmtree, self.dir)

    def put(self, pair, cert="tls.crt", key="tls.key", directory=None):
        """Replaces the files by rename, as an atomic writer does."""
        directory = directory or self.dir
        for src, name in ((pair[0], cert), (pair[1], key)):
            tmp = os.path.join(directory, "." + name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, os.path.join(directory, name))

    def test_files_replaced_in_place(self):
        self.put(self.server)
        renewed = self.pki.leaf("renewed", "ca")
        with self.serving(self.tls(cert_file=os.path.join(self.dir, "tls.crt"),
                                   key_file=os.path.join(self.dir, "tls.key"))) as h:
            self.assertEqual(h.fingerprint(), fingerprint_of_file(self.server[0]))
            self.put(renewed)
            h.wait_log("files changed: certificate")
            self.assertEqual(h.fingerprint(), fingerprint_of_file(renewed[0]))
            # a half-renewed pair (a new cert with the old key) is refused once,
            # and the one before keeps serving
            third = self.pki.leaf("third", "ca")
            self.put((third[0], renewed[1]))
            h.wait_log("still serving the certificate loaded before")
            self.assertEqual(h.fingerprint(), fingerprint_of_file(renewed[0]))
            m = h.metrics()
            self.assertEqual(m[("healthd_tls_reloads_total", frozenset({("result", "failed")}))], 1)
            # fixed: the new pair is taken
            self.put(third)
            h.wait_log("files changed: certificate", count=2)
            self.assertEqual(h.fingerprint(), fingerprint_of_file(third[0]))
            failures = [m for m in h.messages if "still serving the certificate" in m]
            self.assertEqual(len(failures), 1, h.log)
            self.assertIn("not the key", failures[0])

    def test_kubernetes_secret_symlink_swap(self):
        # a secret volume: tls.crt -> ..data/tls.crt, ..data -> ..TIMESTAMP
        def version(name, pair):
            d = os.path.join(self.dir, name)
            os.mkdir(d)
            self.put(pair, directory=d)
            return name
        os.symlink(version("..v1", self.server), os.path.join(self.dir, "..data"))
        for f in ("tls.crt", "tls.key"):
            os.symlink(os.path.join("..data", f), os.path.join(self.dir, f))
        renewed = self.pki.leaf("renewed-k8s", "ca")
        with self.serving(self.tls(cert_file=os.path.join(self.dir, "tls.crt"),
                                   key_file=os.path.join(self.dir, "tls.key"))) as h:
            self.assertEqual(h.fingerprint(), fingerprint_of_file(self.server[0]))
            os.symlink(version("..v2", renewed), os.path.join(self.dir, "..data_tmp"))
            os.replace(os.path.join(self.dir, "..data_tmp"), os.path.join(self.dir, "..data"))
            h.wait_log("files changed: certificate")
            self.assertEqual(h.fingerprint(), fingerprint_of_file(renewed[0]))

    def test_sighup_rereads(self):
        self.put(self.server)
        renewed = self.pki.leaf("renewed-hup", "ca")
        with self.serving(self.tls(cert_file=os.path.join(self.dir, "tls.crt"),
                                   key_file=os.path.join(self.dir, "tls.key"))) as h:
            # a bad pair on SIGHUP: one line, the old one serves on
            self.put((renewed[0], self.server[1]))
            h.proc.send_signal(signal.SIGHUP)
            h.wait_log("still serving the certificate loaded before")
            self.assertEqual(h.fingerprint(), fingerprint_of_file(self.server[0]))
            self.put(renewed)
            h.proc.send_signal(signal.SIGHUP)
            h.wait_log("tls: SIGHUP: certificate")
            self.assertEqual(h.fingerprint(), fingerprint_of_file(renewed[0]))
            self.assertEqual(sum("still serving the certificate" in m for m in h.messages), 1)


class Limits(PkiTest):
    """The connection layer's limits hold over TLS."""

    def test_stalled_handshake_closed_by_the_header_time_limit(self):
        limits = {"header_timeout_s": 1, "idle_timeout_s": 600}
        with self.serving(self.tls(), limits=limits) as h:
            # nothing, half a ClientHello, half an SSLv2 one: all wait for more
            with socket.create_connection((h.host, h.port), timeout=5) as idle, \
                    socket.create_connection((h.host, h.port), timeout=5) as half, \
                    socket.create_connection((h.host, h.port), timeout=5) as v2:
                half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 16)
                v2.sendall(b"\x80\xff\x01\x03\x01" + os.urandom(16))
                for s in (idle, half, v2):
                    self.assertTrue(closed_within(s, 10 * TIME_SCALE)[0])
            m = h.metrics()
            self.assertGreaterEqual(m[(CLOSED, frozenset({("reason", "timed_out")}))], 3)
            self.assertEqual(h.get("/health/ping")[:3:2], (200, b"pong"))

    def test_stalled_handshakes_reclaimed_at_max_connections(self):
        # at the limit, handshakes that stalled past STALLED_MS make room
        limits = {"max_connections": 4, "idle_timeout_s": 600, "header_timeout_s": 600}
        # one HTTP thread, one accept queue: the held connections are taken
        # before the ping, which then finds every slot stalled
        with self.serving(self.tls(), limits=limits, extra={"http_threads": 1}) as h:
            held = [socket.create_connection((h.host, h.port), timeout=5) for _ in range(4)]
            try:
                self.assertEqual(h.get("/health/ping", timeout=20)[:3:2], (200, b"pong"))
                m = h.metrics()
                self.assertGreaterEqual(m[(CLOSED, frozenset({("reason", "reclaimed")}))], 1)
            finally:
                for s in held:
                    s.close()

    def test_idle_keepalive_tls_reclaimed_at_max_connections(self):
        limits = {"max_connections": 4, "idle_timeout_s": 600, "header_timeout_s": 600}
        with self.serving(self.tls(), limits=limits) as h:
            conns = [h.connection() for _ in range(4)]
            try:
                for c in conns:  # each answered, then idle and kept alive
                    c.request("GET", "/health/ping")
                    self.assertEqual(c.getresponse().read(), b"pong")
                self.assertEqual(h.get("/health/ping", timeout=20)[:3:2], (200, b"pong"))
                m = h.metrics()
                self.assertGreaterEqual(m[(CLOSED, frozenset({("reason", "reclaimed")}))], 1)
                self.assertEqual(m[(CLOSED, frozenset({("reason", "refused")}))], 0)
            finally:
                for c in conns:
                    c.close()


class Lingering(PkiTest):
    """A refused client's socket is closed only once the client had time to
    read the alert (nginx's lingering close), within bounds."""

    def serving_required(self):
        return self.serving(self.tls(client_auth_type="RequireAndVerifyClientCert",
                                     client_ca_file=self.ca_pem),
                            ctx=client_context(self.ca_pem, self.client))

    def tls13(self):
        return client_context(self.ca_pem, minimum=ssl.TLSVersion.TLSv1_3)

    def wait_fds(self, h, ok, what, timeout=10):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while True:
            n = h.metrics()[FDS]
            if ok(n):
                return n
            if time.monotonic() > deadline:
                self.fail(f"{what}: process_open_fds {n} after {timeout * TIME_SCALE:.0f} s")
            time.sleep(0.05)

    def test_alert_read_behind_an_early_request(self):
        # without it, the request unread at the close makes it a reset: Go
        # (Prometheus) said "write: broken pipe" instead of the cause
        with self.serving_required() as h:
            for _ in range(20):
                s, told = early_request(h, self.tls13())
                s.close()
                self.assertIn("certificate required", told)
            self.assertEqual(h.get("/health/ping")[:3:2], (200, b"pong"))

    def test_refused_clients_cost_bounded_descriptors(self):
        with self.serving_required() as h:
            base = h.metrics()[FDS]
            held = []
            try:
                # clients that never close: their sockets linger, then go at the bound
                for _ in range(5):
                    held.append(early_request(h, self.tls13())[0])
                self.wait_fds(h, lambda n: n >= base + 5, "lingering sockets held")
                self.wait_fds(h, lambda n: n <= base + 1, "lingering sockets closed")
                # a flood holds at most LINGER_MAX of them (past it, closed at once)
                for _ in range(200):
                    held.append(early_request(h, self.tls13())[0])
                self.assertLessEqual(h.metrics()[FDS], base + LINGER_MAX + 2)
                self.wait_fds(h, lambda n: n <= base + 1, "lingering sockets closed")
            finally:
                for s in held:
                    s.close()
            self.assertEqual(h.get("/health/ping")[:3:2], (200, b"pong"))


if __name__ == "__main__":
    main()
