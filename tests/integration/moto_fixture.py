"""SSM Parameter Store for the function's tests: a real `moto_server` on a
free loopback port, parameters put with boto3, and an optional HTTP
stand-in in front of it that counts requests and can throttle.

    moto = moto_fixture.Moto()                 # starts moto_server, waits for it
    moto.put("/test/api.example.test/headers/X-Api-Key", "s3cret")   # String
    moto.put("/test/.../basic/password", "pw", secure=True)          # SecureString
    moto.delete(name); moto.put(name, "new")   # rotation (put overwrites)
    env AWS_ENDPOINT_URL_SSM = moto.endpoint   # http://127.0.0.1:PORT
    moto.stop()

    proxy = moto_fixture.SSMProxy(moto.endpoint)   # AWS_ENDPOINT_URL_SSM = proxy.endpoint
    proxy.throttle(3)        # the next 3 requests get 400 ThrottlingException
    proxy.count              # requests received (throttled ones included)
    proxy.close()

When moto_server is not installed, Moto() raises unittest.SkipTest.
"""

import http.client
import json
import shutil
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler

import harness

REGION = "us-east-1"
# moto checks nothing about credentials; these only keep boto3 from looking
# at the developer's own configuration.
_BOTO_KEYS = {"aws_access_key_id": "AKIDMOTOFIXTURE00001", "aws_secret_access_key": "motoFixtureSecret"}


class Moto:
    """moto_server -H 127.0.0.1 -p PORT, as a harness.Proc."""

    def __init__(self, logdir=None, timeout=20.0):
        exe = shutil.which("moto_server")
        if exe is None:
            raise unittest.SkipTest("moto_server is not installed")
        self.port = harness.free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        env = harness.clean_env()
        self.proc = harness.Proc([exe, "-H", "127.0.0.1", "-p", str(self.port)], env=env, name="moto",
                                 logdir=logdir)
        try:
            harness.wait_port(self.port, timeout=timeout, proc=self.proc)
            self._client = None
            # The port answers before the app is fully loaded: wait for a
            # real SSM call to succeed.
            harness.wait_for(self._ready, timeout=timeout, interval=0.1, what="moto_server SSM")
        except BaseException:
            self.proc.stop()
            raise

    def _ready(self):
        try:
            self.client().describe_parameters(MaxResults=1)
            return True
        except Exception:
            return False

    def client(self):
        """A boto3 SSM client talking to this moto."""
        if self._client is None:
            import boto3
            import botocore.config
            self._client = boto3.client("ssm", region_name=REGION, endpoint_url=self.endpoint,
                                        config=botocore.config.Config(retries={"total_max_attempts": 3}),
                                        **_BOTO_KEYS)
        return self._client

    def put(self, name, value, secure=False, overwrite=True):
        """Create or overwrite a parameter (String, or SecureString)."""
        self.client().put_parameter(Name=name, Value=value, Type="SecureString" if secure else "String",
                                    Overwrite=overwrite)

    def put_many(self, params, secure=False):
        """params: dict name -> value, or list of (name, value)."""
        items = params.items() if isinstance(params, dict) else params
        for k, v in items:
            self.put(k, v, secure=secure)

    def delete(self, name):
        self.client().delete_parameter(Name=name)

    def delete_path(self, path):
        """Delete every parameter under path (recursive)."""
        c = self.client()
        names = []
        for page in c.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
            names += [p["Name"] for p in page["Parameters"]]
        for i in range(0, len(names), 10):
            c.delete_parameters(Names=names[i:i + 10])

    def get(self, name):
        return self.client().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class SSMRequest:
    """One request the proxy received: target (X-Amz-Target), body (parsed
    JSON or None), headers (list of (name, value)), and what was answered."""

    def __init__(self, target, body, headers, raw):
        self.target = target
        self.body = body
        self.headers = headers
        self.raw = raw
        self.throttled = False
        self.status = None


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, data, ctype="application/x-amz-json-1.1", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        px = self.server.px
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        req = SSMRequest(self.headers.get("X-Amz-Target"), body, list(self.headers.items()), raw)
        action = px._admit(req)
        if px.delay:
            time.sleep(px.delay)
        if action == "throttle":
            req.throttled = True
            req.status = 400
            return self._send(400, json.dumps({"__type": px.throttle_type,
                                               "message": "Rate exceeded"}).encode())
        if action == "error500":
            req.status = 500
            return self._send(500, json.dumps({"__type": "InternalServerError",
                                               "message": "stand-in 500"}).encode())
        if action == "empty_page" and body is not None:
            # An empty page that still carries a NextToken: the caller must
            # follow it. The token is the one the caller sent (or the start),
            # so following it yields the real first page.
            req.status = 200
            token = body.get("NextToken") or "0"
            return self._send(200, json.dumps({"Parameters": [], "NextToken": token}).encode())
        fwd = raw
        if px.page_size is not None and body is not None and "MaxResults" in body:
            body = dict(body, MaxResults=min(int(body["MaxResults"]), px.page_size))
            fwd = json.dumps(body).encode()
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection")}
        conn = http.client.HTTPConnection("127.0.0.1", px.upstream_port, timeout=10)
        try:
            conn.request("POST", self.path, body=fwd, headers=headers)
            r = conn.getresponse()
            data = r.read()
            req.status = r.status
            extra = [(k, v) for k, v in r.getheaders()
                     if k.lower() not in ("content-length", "connection", "transfer-encoding", "content-type",
                                          "x-amzn-requestid", "server", "date")]
            self._send(r.status, data, r.getheader("Content-Type") or "application/x-amz-json-1.1", extra)
        finally:
            conn.close()

    def do_GET(self):
        self.server.px._admit(SSMRequest(None, None, list(self.headers.items()), b""))
        self._send(404, b"{}")


class SSMProxy:
    """A plain HTTP stand-in in front of moto (AWS_ENDPOINT_URL_SSM points
    here). Records every request; throttle(n) answers the next n with HTTP
    400 {"__type": throttle_type}; fail(n) with 500; empty_pages(n) answers
    the next n with an empty page that still has a NextToken; page_size caps
    MaxResults forwarded to moto (short pages); delay (seconds) holds every
    answer back (a slow Parameter Store). upstream=None makes it a
    pure stand-in that throttles or answers 500 only (for counting)."""

    def __init__(self, upstream, throttle_type="ThrottlingException"):
        self.upstream = upstream
        self.upstream_port = int(upstream.rsplit(":", 1)[1]) if upstream else None
        self.throttle_type = throttle_type
        self.page_size = None
        self.delay = 0.0
        self.requests = []
        self._throttle = 0
        self._fail = 0
        self._empty = 0
        self._lock = threading.Lock()
        self.server = harness.LoopbackHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.px = self
        self.port = self.server.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def throttle(self, n):
        with self._lock:
            self._throttle = n

    def fail(self, n):
        with self._lock:
            self._fail = n

    def empty_pages(self, n):
        with self._lock:
            self._empty = n

    @property
    def count(self):
        with self._lock:
            return len(self.requests)

    def targets(self):
        with self._lock:
            return [r.target for r in self.requests]

    def reset(self):
        with self._lock:
            self.requests = []
            self._throttle = self._fail = self._empty = 0

    def _admit(self, req):
        with self._lock:
            self.requests.append(req)
            if self._throttle > 0:
                self._throttle -= 1
                return "throttle"
            if self._fail > 0 or self.upstream is None:
                self._fail = max(0, self._fail - 1)
                return "error500"
            if self._empty > 0:
                self._empty -= 1
                return "empty_page"
            return "forward"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
