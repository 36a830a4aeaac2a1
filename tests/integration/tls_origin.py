"""A TLS origin for the function's tests: a test CA of its own, a server
certificate for the test host names, and an HTTPS server (HTTP/1.1,
keep-alive) that records every request exactly and answers what the test
scripted.

    ca = tls_origin.test_ca()          # CA + server cert, made once per process
    origin = tls_origin.Origin()       # listens on 127.0.0.1:origin.port
    origin.push(tls_origin.Response(302, headers=[("Location", "/elsewhere")]))
    ...                                # the function calls https://api.example.test/...
    req = origin.requests[0]           # .method .target .raw_line .headers .body
    origin.close()

The function reaches it through SSM_SIGN_PROXY_CONNECT_TO
(origin.connect_to("api.example.test")), with AWS_CA_BUNDLE=ca.ca_file, so
TLS is verified for the original host name against the test CA.
"""

import gzip
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Names the server certificate is valid for. Tests pick hosts from here.
TEST_HOSTS = ("api.example.test", "hooks.example.test", "other.example.test", "ssm.example.test")


class TestCA:
    """Files of a test CA and one server certificate signed by it."""

    def __init__(self, directory):
        self.dir = directory
        self.ca_file = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        self.cert_file = os.path.join(directory, "server.pem")
        self.key_file = os.path.join(directory, "server.key")
        # CA certificate followed by nothing else: a bundle for AWS_CA_BUNDLE.
        self.bundle = self.ca_file


_ca = None
_ca_lock = threading.Lock()


def _openssl(*args, cwd):
    r = subprocess.run(("openssl",) + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stdout.decode("utf-8", "replace")))


def test_ca():
    """The test CA and server certificate, generated with the openssl CLI
    into a temporary directory on first use and reused for the rest of the
    process (one test file = one process)."""
    global _ca
    with _ca_lock:
        if _ca is not None:
            return _ca
        d = tempfile.mkdtemp(prefix="ssp-ca-")
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s,IP:127.0.0.1\n" % ",".join("DNS:" + h for h in TEST_HOSTS))
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ssm-sign-proxy test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=api.example.test", cwd=d)
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
        _ca = TestCA(d)
        import atexit
        atexit.register(shutil.rmtree, d, True)
        return _ca


class Response:
    """What the origin answers to one request.

    headers: list of (name, value); repeated names are sent repeatedly
    (two Set-Cookie stay two). body: bytes (or str, sent as UTF-8).
    gzip=True compresses the body and adds Content-Encoding: gzip.
    delay: seconds to wait before answering (for deadline tests).
    chunked=True sends Transfer-Encoding: chunked instead of Content-Length.
    close=True closes the connection after answering.
    stream: an iterable of bytes (sent as one chunk each, flushed) and
    numbers (seconds to sleep) replacing body, sent chunked, or with
    Content-Length: length when given; with cut=True the connection is
    closed after the stream without the terminating chunk (or short of
    length): an answer cut short.
    """

    def __init__(self, status=200, headers=None, body=b"", reason=None, gzip=False, delay=0.0,
                 chunked=False, close=False, stream=None, cut=False, length=None):
        self.status = status
        self.reason = reason
        self.headers = list(headers or [])
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.gzip = gzip
        self.delay = delay
        self.chunked = chunked
        self.close = close
        self.stream = stream
        self.cut = cut
        self.length = length


class Request:
    """One request as the origin received it.

    raw_line: the request line bytes without CRLF (b"GET /a%2fb?x=1 HTTP/1.1");
    method; target: the request target as str (latin-1, bytes preserved);
    path and query: target split at the first '?' (query None when absent);
    headers: list of (name, value) in received order; body: bytes
    (de-chunked); tls_sni: the SNI name the client sent.
    """

    def __init__(self, raw_line, method, target, version, headers, body, sni):
        self.raw_line = raw_line
        self.method = method
        self.target = target
        self.version = version
        if "?" in target:
            self.path, self.query = target.split("?", 1)
        else:
            self.path, self.query = target, None
        self.headers = headers
        self.body = body
        self.tls_sni = sni

    def header(self, name):
        """Every value of header name (case-insensitive), in order."""
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def query_pairs(self):
        """The raw query split at '&' and the first '=' (no decoding)."""
        if self.query is None:
            return []
        out = []
        for part in self.query.split("&"):
            k, sep, v = part.partition("=")
            out.append((k, v if sep else None))
        return out

    def __repr__(self):
        return "<Request %r>" % (self.raw_line,)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ssp-test-origin"

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until an empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        origin = self.server.origin
        body = self._read_body()
        sni = getattr(self.connection, "ssp_sni", None)
        raw = self.raw_requestline.rstrip(b"\r\n")
        req = Request(raw, self.command, self.path, self.request_version, list(self.headers.items()),
                      body, sni)
        resp = origin._record(req)
        if resp.delay:
            time.sleep(resp.delay)
        payload = resp.body
        headers = list(resp.headers)
        if resp.gzip:
            payload = gzip.compress(payload)
            headers.append(("Content-Encoding", "gzip"))
        if resp.stream is not None:
            return self._stream(resp)
        try:
            self.send_response_only(resp.status, resp.reason)
            self.send_header("Date", self.date_time_string())
            for k, v in headers:
                self.send_header(k, v)
            if resp.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif self.command != "HEAD" and resp.status not in (204, 304) and not 100 <= resp.status < 200:
                self.send_header("Content-Length", str(len(payload)))
            if resp.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD" and resp.status not in (204, 304):
                if resp.chunked:
                    step = 65536
                    for i in range(0, len(payload), step):
                        chunk = payload[i:i + step]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _stream(self, resp):
        try:
            self.send_response_only(resp.status, resp.reason)
            self.send_header("Date", self.date_time_string())
            for k, v in resp.headers:
                self.send_header(k, v)
            if resp.length is not None:
                self.send_header("Content-Length", str(resp.length))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for item in resp.stream:
                if isinstance(item, (int, float)):
                    time.sleep(item)
                    continue
                if not item:
                    continue
                if resp.length is not None:
                    self.wfile.write(item)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(item), item))
                self.wfile.flush()
            if resp.cut:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if resp.length is None:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    # Every method the function may pass on (TRACE included: a test checks
    # that it never arrives).
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _handle

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, TimeoutError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, origin, ctx):
        self.origin = origin
        self.ctx = ctx
        super().__init__(addr, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # http.server writes the head and the body separately: without
        # TCP_NODELAY, Nagle and the client's delayed ACK add 40 ms per answer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.origin._count_connection()
        return sock, addr

    def finish_request(self, request, client_address):
        # The handshake happens in the connection's own thread so that one
        # slow or broken client never stalls accept().
        try:
            request.settimeout(10)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.origin._tls_failures.append(repr(e))
            return
        self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address):
        pass


class Origin:
    """An HTTPS origin on 127.0.0.1 (port chosen by the kernel).

    Scripting: push(Response) queues answers for the next requests in order;
    when the queue is empty the default answer (set_default) is used:
    200 text/plain "origin ok". handler=callable(Request) -> Response,
    when set, overrides both.
    """

    def __init__(self, ca=None, host="127.0.0.1"):
        self.ca = ca or test_ca()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        self._snis = []

        def sni_cb(sslsock, name, _ctx):
            # The callback gets the SSLSocket being handshaken: tag it so the
            # request records which name the client asked for.
            self._snis.append(name)
            try:
                sslsock.ssp_sni = name
            except AttributeError:
                pass

        ctx.sni_callback = sni_cb
        self.requests = []
        self.connections = 0
        self._tls_failures = []
        self._queue = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.handler = None
        self._default = Response(200, headers=[("Content-Type", "text/plain")], body=b"origin ok")
        self.server = _Server((host, 0), self, ctx)
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # --- scripting -------------------------------------------------------
    def set_default(self, response):
        with self._lock:
            self._default = response

    def push(self, *responses):
        with self._lock:
            self._queue.extend(responses)

    # --- observation ------------------------------------------------------
    @property
    def snis(self):
        """SNI names clients sent, in order of handshakes."""
        return list(self._snis)

    @property
    def tls_failures(self):
        return list(self._tls_failures)

    def wait_requests(self, n, timeout=5.0):
        """Block until at least n requests were received; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("origin got %d requests, expected %d" % (len(self.requests), n))
                self._cond.wait(left)
            return list(self.requests)

    def reset(self):
        with self._lock:
            self.requests = []
            self._queue = []
            self.connections = 0

    # --- wiring -----------------------------------------------------------
    def connect_to(self, host="api.example.test", port=443):
        """A curl --connect-to entry routing host:port to this origin."""
        return "%s:%d:%s:%d" % (host, port, self.host, self.port)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # --- internals --------------------------------------------------------
    def _count_connection(self):
        with self._lock:
            self.connections += 1

    def _record(self, req):
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
            handler = self.handler
            if handler is None:
                resp = self._queue.pop(0) if self._queue else self._default
        if handler is not None:
            resp = handler(req)
        return resp


def closed_port(host="127.0.0.1"):
    """A port where nothing listens (bound then closed): connecting to it is
    refused, for 'origin unreachable' tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
