"""Fixtures for the daemon's integration tests: write a config, start the
real daemon against a stand-in Lambda (standin_lambda.py) and talk to it as
clients do (requests through it as a proxy, raw sockets for exact request
lines, curl the way the README shows).

    class T(daemon_fixture.ProxyTestCase):
        def test_get(self):
            d = self.start_daemon()                  # workers: 1, short timeouts
            r = d.get("http://api.example.test/x?a=1")
            self.assertEqual(r.status_code, 200)
            inv = self.lam.last()                    # what the stand-in Lambda got
            self.assertEqual(inv.event["path"], "/x")

start_daemon(config={...}) deep-merges into the default config (a value of
None deletes a key); config_text="..." writes a file verbatim. The stand-in
checks every SigV4 signature; tearDown fails the test if one was bad, unless
the test set self.expect_signature_failures = True.
"""

import json
import os
import socket
import subprocess
import time

import harness
import standin_lambda
from standin_lambda import ACCESS_KEY, SECRET_KEY

# Every generated config uses these (seconds): short, so that no test waits
# long, and the whole suite stays fast.
SHORT_TIMEOUTS = {
    "client_header": 2,
    "client_body": 2,
    "keepalive": 2,
    "invoke": 2,
    "connect": 1,
    "shutdown": 2,
}


# --- YAML -------------------------------------------------------------------

def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    # A JSON string is a valid YAML double-quoted scalar (JSON's escapes are
    # a subset of YAML's).
    return json.dumps(str(v))


def to_yaml(value, indent=0):
    """Emit YAML for dicts, lists and scalars (no PyYAML needed: a fresh
    Debian machine may not have it)."""
    pad = "  " * indent
    out = []
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        for k, v in value.items():
            if isinstance(v, dict) and v:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            elif isinstance(v, list) and v:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            elif isinstance(v, list):
                out.append("%s%s: []\n" % (pad, k))
            elif isinstance(v, dict):
                out.append("%s%s: {}\n" % (pad, k))
            else:
                out.append("%s%s: %s\n" % (pad, k, _yaml_scalar(v)))
        return "".join(out)
    if isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)) and v:
                inner = to_yaml(v, indent + 1).lstrip()
                out.append("%s- %s" % (pad, inner))
            else:
                out.append("%s- %s\n" % (pad, _yaml_scalar(v)))
        return "".join(out)
    return pad + _yaml_scalar(value) + "\n"


def merge(base, over):
    """Deep-merge over into a copy of base; a None value deletes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# --- raw HTTP ---------------------------------------------------------------

class RawResponse:
    """A response read off a socket: status, reason, headers [(name, value)]
    as sent, body bytes, and whether the server closed the connection."""

    def __init__(self, version, status, reason, headers, body, closed, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.closed = closed
        self.head = head                # the status line and headers, raw

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "RawResponse(%d %s, %r, %r)" % (self.status, self.reason, self.headers, self.body[:200])


class Conn:
    """A client connection to the daemon with exact control of the bytes.
    Reads keep a buffer, so several responses can be read off one
    keep-alive connection."""

    def __init__(self, host, port, timeout=3.0, source=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _readline(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed before a full line (have %r)" % self.buf[:200])
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _readn(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed after %d of %d body bytes" % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, method="GET"):
        """Read one response. Raises EOFError if the server closes first,
        socket.timeout if it says nothing in time."""
        head = []
        line = self._readline()
        while line == b"":  # tolerate stray CRLF between responses
            line = self._readline()
        head.append(line)
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("not an HTTP status line: %r" % line)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        while True:
            line = self._readline()
            if line == b"":
                break
            head.append(line)
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        body = b""
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            while True:
                size = int(self._readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._readline() != b"":
                        pass
                    break
                body += self._readn(size)
                self._readline()
        elif "content-length" in hmap:
            body = self._readn(int(hmap["content-length"]))
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        closed = "close" in hmap.get("connection", "").lower()
        return RawResponse(version, status, reason, headers, body, closed, b"\r\n".join(head))

    def request(self, data, method=None):
        """Send data (one full request) and read the answer."""
        self.send(data)
        if method is None:
            raw = data.encode("latin-1") if isinstance(data, str) else data
            method = raw.split(b" ", 1)[0].decode("latin-1")
        return self.read_response(method)

    def closed_by_peer(self, timeout=2.0):
        """True if the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CurlResult:
    def __init__(self, returncode, status, headers, body, stderr):
        self.returncode = returncode
        self.status = status
        self.headers = headers
        self.body = body
        self.stderr = stderr

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "CurlResult(rc=%d, %s, %r, %r, %r)" % (self.returncode, self.status, self.headers,
                                                       self.body[:200], self.stderr[:200])


# --- the daemon -------------------------------------------------------------

class Daemon:
    """A running daemon: its process (harness.Proc), where it listens, its
    config file, and ways to talk to it."""

    def __init__(self, tc, proc, host, port, config_path, config):
        self.tc = tc
        self.proc = proc
        self.host = host
        self.port = port
        self.config_path = config_path
        self.config = config
        h = "[%s]" % host if ":" in host else host
        self.proxy_url = "http://%s:%d" % (h, port)
        self._session = None

    @property
    def pid(self):
        return self.proc.pid

    def session(self):
        """A requests.Session that uses the daemon as its http proxy and
        ignores the environment's proxy settings."""
        import requests
        if self._session is None:
            s = requests.Session()
            s.trust_env = False
            s.proxies = {"http": self.proxy_url}
            self._session = s
            self.tc.addCleanup(s.close)
        return self._session

    def request(self, method, url, **kw):
        kw.setdefault("timeout", 5)
        kw.setdefault("allow_redirects", False)
        return self.session().request(method, url, **kw)

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def connect(self, timeout=3.0, source=None):
        """A raw connection (Conn) to the daemon; closed at cleanup."""
        c = Conn(self.host, self.port, timeout=timeout, source=source)
        self.tc.addCleanup(c.close)
        return c

    def raw(self, data, timeout=3.0, source=None, method=None):
        """Send one raw request on a new connection; return the RawResponse."""
        with Conn(self.host, self.port, timeout=timeout, source=source) as c:
            return c.request(data, method=method)

    def curl(self, *args, data=None, proxy=None, timeout=5):
        """Run curl with http_proxy set as users do (`http_proxy=HOST:PORT
        curl http://api...`). args are curl arguments (the URL among them)."""
        env = harness.clean_env()
        env["http_proxy"] = proxy or self.proxy_url
        hdr = os.path.join(self.tc.tmp, "curl-headers-%d" % time.monotonic_ns())
        out = os.path.join(self.tc.tmp, "curl-body-%d" % time.monotonic_ns())
        argv = ["curl", "-sS", "--path-as-is", "--max-time", str(timeout), "-D", hdr, "-o", out]
        argv += list(args)
        p = subprocess.run(argv, env=env, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 5)
        status, headers = None, []
        if os.path.exists(hdr):
            with open(hdr, "rb") as f:
                blocks = f.read().decode("latin-1").split("\r\n\r\n")
            # The last response block (curl writes 100-continue blocks too).
            blocks = [b for b in blocks if b.strip()]
            if blocks:
                lines = blocks[-1].split("\r\n")
                status = int(lines[0].split(" ")[1])
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.append((k.strip(), v.strip()))
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
        return CurlResult(p.returncode, status, headers, body, p.stderr.decode("utf-8", "replace"))

    def log(self):
        """Everything the daemon printed (stderr and stdout) so far."""
        return self.proc.output()

    def wait_log(self, text, timeout=5.0):
        harness.wait_for(lambda: text in self.log(), timeout=timeout, what="%r in the daemon log" % text)

    def running(self):
        return self.proc.poll() is None

    def stop(self, **kw):
        return self.proc.stop(**kw)


def cidr_loopback():
    return ["127.0.0.0/8", "::1/128"]


class ProxyTestCase(harness.TestCase):
    """Base class for daemon tests: a stand-in Lambda per test (self.lam),
    started in setUp and stopped after the daemons; tearDown fails the test
    if the stand-in saw a bad signature."""

    region = "us-east-1"
    function_name = "test-function"
    # Start the stand-in Lambda with a session token (the daemon gets it in
    # AWS_SESSION_TOKEN) to exercise X-Amz-Security-Token.
    session_token = None

    def setUp(self):
        super().setUp()
        self.expect_signature_failures = False
        self.lam = standin_lambda.StandinLambda(token=self.session_token, region=self.region)
        self.lam.start()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.lam.stop()
        if self.lam.signature_failures and not self.expect_signature_failures:
            raise AssertionError("the stand-in Lambda rejected %d signature(s); first: %s"
                                 % (len(self.lam.signature_failures),
                                    self.lam.signature_failures[0].signature_error))
        if self.lam.handler_errors:
            raise AssertionError("stand-in handler raised: %s" % self.lam.handler_errors[0])

    # -- config and environment --
    def default_config(self, listen):
        return {
            "function_name": self.function_name,
            "listen": listen,
            "workers": 1,
            "region": self.region,
            "log_level": "debug",
            "access_log": "stderr",
            "timeouts": dict(SHORT_TIMEOUTS),
            # As root without user: the workers would drop to the build's
            # default user, who cannot read the tests' private directories.
            **({"user": "root"} if os.geteuid() == 0 else {}),
        }

    def write_config(self, config=None, text=None, name="ssm-sign-proxy.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text if text is not None else to_yaml(config))
        return path

    def daemon_env(self, credentials=True, extra=None):
        """The daemon's environment: clean, the stand-in as the Lambda
        endpoint, test credentials (or none at all: HOME and the shared
        files point at an empty directory)."""
        home = os.path.join(self.tmp, "home")
        os.makedirs(home, exist_ok=True)
        env = harness.clean_env()
        env.update({
            "HOME": home,
            "AWS_ENDPOINT_URL_LAMBDA": self.lam.url,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "no-credentials"),
            "AWS_CONFIG_FILE": os.path.join(home, "no-config"),
        })
        if credentials:
            env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
            env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
            if self.session_token:
                env["AWS_SESSION_TOKEN"] = self.session_token
        if extra:
            for k, v in extra.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
        return env

    # -- starting --
    def start_daemon(self, config=None, config_text=None, env=None, credentials=True, args=(),
                     host="127.0.0.1", port=None, wait=True, name="ssm-sign-proxy"):
        """Start the daemon with -c FILE and wait until it listens. config is
        merged into default_config(); config_text replaces the file (then
        host/port say where to wait). Returns a Daemon."""
        if port is None:
            port = harness.free_port(host)
        h = "[%s]" % host if ":" in host else host
        cfg = None
        if config_text is None:
            cfg = merge(self.default_config("%s:%d" % (h, port)), config or {})
            path = self.write_config(cfg)
        else:
            path = self.write_config(text=config_text)
        proc = self.start([harness.DAEMON, "-c", path] + list(args),
                          env=self.daemon_env(credentials, env), name=name)
        d = Daemon(self, proc, host, port, path, cfg)
        if wait:
            harness.wait_port(port, host=host, timeout=10, proc=proc)
            if (credentials and cfg is not None and cfg.get("function_name")
                    and "local_function" not in cfg):
                # The credentials agent publishes a moment after the workers
                # listen (seconds under the sanitizers on a loaded machine):
                # a test's first request must not spend its short invoke
                # budget on that. A test that makes the agent fail sees so in
                # its own assertions; this only waits.
                try:
                    d.wait_log("AWS credentials from", timeout=10)
                except AssertionError:
                    pass
        return d

    def run_daemon(self, args, env=None, credentials=True, timeout=10):
        """Run the daemon to completion (config checks, refusals): returns
        (exit code, output). Fails if it does not exit in time."""
        proc = self.start([harness.DAEMON] + list(args), env=self.daemon_env(credentials, env))
        rc = proc.wait(timeout)
        if rc is None:
            raise AssertionError("daemon %s did not exit within %ds; output:\n%s"
                                 % (" ".join(args), timeout, proc.output()))
        return rc, proc.output()
