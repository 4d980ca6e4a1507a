"""A loopback HTTP(S) server for the http plugin's tests.

    with LoopbackServer() as srv:             # http://127.0.0.1:PORT
        srv.url("/ok")
        srv.connections                       # TCP connections accepted so far
        srv.requests                          # [Request(method, path, headers)]

Routes (any method; HEAD answers like GET without a body):
  /ok              200 "ok"
  /no-content      204
  /error           500
  /redirect        302 -> /ok
  /redirect-loop   302 -> itself
  /redirect-ftp    302 -> ftp://127.0.0.1:PORT/ (a protocol the plugin must refuse)
  /slow            waits up to SLOW_SECONDS for the client to hang up, then 200;
                   .slow_hangups records how long each client stayed
  /delay?ms=N      sleeps N ms, then 200
  /drop            closes the socket without answering
  /echo            200; the request is in .requests like every other
  /big             200 with a body of BIG_BYTES
  /endless         200 announcing ENDLESS_BYTES and sending them until the client
                   hangs up; .endless_sends records (bytes sent, completed)
  /basic           200 if the request carries Basic auth, else 401
  /switch          .switch_status (200 unless set); while .gate is cleared it
                   first waits for it to be set (GATE_SECONDS at most)

A request line in absolute form (GET http://host/path, as sent to a proxy) is
routed by its path and recorded with .proxied = True.

tls=(certfile, keyfile) serves HTTPS instead; the TLS handshake runs in the
connection's thread so a client that rejects the certificate cannot stall the
accept loop.

Standard library only.
"""

import collections
import http.server
import select
import socket
import ssl
import threading
import time
import unittest
import urllib.parse

SLOW_SECONDS = 10.0  # long past any check's timeout; ends early when the client leaves
BIG_BYTES = 2 * 1024 * 1024
ENDLESS_BYTES = 256 * 1024 * 1024
GATE_SECONDS = 60.0  # a test opens the gate long before; bounded all the same

Request = collections.namedtuple("Request", "method path headers proxied")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner, tls):
        self.owner = owner
        self.tls_context = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.tls_context = ctx
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        conn, addr = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return conn, addr

    def finish_request(self, request, client_address):
        if self.tls_context is not None:
            try:
                request.settimeout(10)
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with self.owner.lock:
                    self.owner.tls_failures += 1
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients that hang up early are part of the tests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be counted
    timeout = 30                   # idle keep-alive connections end eventually
    disable_nagle_algorithm = True # headers and body go out in separate writes

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def _route(self):
        owner = self.server.owner
        proxied = self.path.startswith(("http://", "https://"))
        target = urllib.parse.urlsplit(self.path)
        path, query = target.path, urllib.parse.parse_qs(target.query)
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(length)
        with owner.lock:
            owner.requests.append(Request(self.command, self.path,
                                          {k.lower(): v for k, v in self.headers.items()},
                                          proxied))
        if path == "/ok" or path == "/echo":
            self._answer(200, b"ok")
        elif path == "/no-content":
            self._answer(204)
        elif path == "/error":
            self._answer(500, b"broken")
        elif path == "/redirect":
            self._answer(302, b"", [("Location", "/ok")])
        elif path == "/redirect-loop":
            self._answer(302, b"", [("Location", "/redirect-loop")])
        elif path == "/redirect-ftp":
            self._answer(302, b"", [("Location", f"ftp://127.0.0.1:{owner.port}/")])
        elif path == "/slow":
            self._slow()
        elif path == "/delay":
            time.sleep(int(query.get("ms", ["0"])[0]) / 1000.0)
            self._answer(200, b"ok")
        elif path == "/drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif path == "/big":
            self._answer(200, b"x" * BIG_BYTES)
        elif path == "/endless":
            self._endless()
        elif path == "/switch":
            owner.gate.wait(GATE_SECONDS)
            with owner.lock:
                status = owner.switch_status
            self._answer(status, b"switched")
        elif path == "/basic":
            auth = self.headers.get("Authorization", "")
            self._answer(200 if auth.startswith("Basic ") else 401, b"")
        else:
            self._answer(404, b"no such route")

    def _slow(self):
        """Wait for the client to hang up (or SLOW_SECONDS), recording how long it took."""
        owner = self.server.owner
        start = time.monotonic()
        end = start + SLOW_SECONDS
        hung_up = False
        while not owner.stopping.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if r:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        hung_up = True
                        break
                except OSError:
                    hung_up = True
                    break
        with owner.lock:
            owner.slow_hangups.append(time.monotonic() - start if hung_up else None)
        if hung_up:
            self.close_connection = True
            return
        try:
            self._answer(200, b"late")
        except OSError:
            pass

    def _endless(self):
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Length", str(ENDLESS_BYTES))
        self.end_headers()
        chunk = b"x" * 65536
        sent, completed = 0, False
        try:
            while sent < ENDLESS_BYTES and not owner.stopping.is_set():
                self.wfile.write(chunk)
                sent += len(chunk)
            completed = sent >= ENDLESS_BYTES
        except OSError:
            self.close_connection = True
        with owner.lock:
            owner.endless_sends.append((sent, completed))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route


class LoopbackServer:
    def __init__(self, tls=None):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = 0
        self.tls_failures = 0
        self.requests = []
        self.slow_hangups = []
        self.endless_sends = []
        self.switch_status = 200
        self.gate = threading.Event()
        self.gate.set()
        self._server = _Server(self, tls)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def reset(self):
        with self.lock:
            self.connections = 0
            self.tls_failures = 0
            self.requests = []
            self.slow_hangups = []
            self.endless_sends = []
            self.switch_status = 200
        self.gate.set()

    def count(self, path):
        """Requests seen so far for path (query string included)."""
        with self.lock:
            return sum(1 for r in self.requests if r.path == path)

    def snapshot(self):
        """(connections, requests) under the lock."""
        with self.lock:
            return self.connections, list(self.requests)

    def wait_for(self, predicate, timeout=5.0):
        """Poll predicate() (under the lock) until true or timeout; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.02)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LoopbackTestCase(unittest.TestCase):
    """A test class with one LoopbackServer (self.srv), reset before each test."""

    @classmethod
    def setUpClass(cls):
        cls.srv = LoopbackServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.srv.reset()


def closed_port():
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
