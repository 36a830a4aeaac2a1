"""A stand-in for the Lambda Runtime API (2018-06-01), in-process, on
loopback, for running the real `bootstrap` as Lambda would.

    rt = standin_runtime.RuntimeAPI()
    env = rt.function_env(prefix="test", ssm_endpoint="http://127.0.0.1:5000", ...)
    proc = harness.Proc([harness.BOOTSTRAP], env=env)
    resp = rt.invoke({"httpMethod": "GET", ...}, timeout=2)   # the response JSON, a dict
    rt.close()

Endpoints served:
  GET  /2018-06-01/runtime/invocation/next         long poll: blocks until invoke()
  POST /2018-06-01/runtime/invocation/{id}/response
       (buffered, or streaming: Lambda-Runtime-Function-Response-Mode:
       streaming, chunked, trailers; see Invocation.streaming)
  POST /2018-06-01/runtime/invocation/{id}/error
  POST /2018-06-01/runtime/init/error
Anything else is answered 404 and recorded in `unexpected`.
"""

import json
import os
import queue
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

import harness

PREFIX = "/2018-06-01"
FUNCTION_NAME = "ssm-sign-proxy-test"
REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_ARN = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, FUNCTION_NAME)

# The function's AWS credentials in tests. Tests assert that none of these
# appear in the function's output.
ACCESS_KEY = "AKIDSTANDINEXAMPLE01"
SECRET_KEY = "standinSecretKey/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "standinSessionToken//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"


class FunctionError(AssertionError):
    """The function answered /invocation/{id}/error; .invocation has it."""

    def __init__(self, invocation):
        self.invocation = invocation
        super().__init__("function reported an error: %r (type header %r)"
                         % (invocation.body, invocation.error_type))


class Invocation:
    """One event handed to the function and what came back.

    kind: None while pending, then "response" or "error".
    raw: the posted bytes; body: them parsed as JSON (None when not JSON);
    error_type: the Lambda-Runtime-Function-Error-Type header (errors).
    headers: request headers of the post; fetch_headers: what /next sent.

    A streaming answer (Lambda-Runtime-Function-Response-Mode: streaming,
    chunked) sets streaming; raw is then the whole de-chunked body (unless
    the RuntimeAPI has keep_stream_body False: then raw is b"" and only
    stream_len/stream_sha256 tell the body), prelude the parsed JSON before
    the 8 NUL bytes, stream_body the bytes after them, trailers the chunked
    trailers (dict), stream_first_at the time the first body byte after the
    prelude arrived, stream_chunks the chunk count, and error_type the
    Lambda-Runtime-Function-Error-Type trailer when present.
    """

    def __init__(self, event, deadline_ms, request_id, trace_id, client_context=None):
        self.event = event
        self.payload = event if isinstance(event, (bytes, bytearray)) else json.dumps(event).encode("utf-8")
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.trace_id = trace_id
        self.client_context = client_context
        self.kind = None
        self.raw = None
        self.body = None
        self.error_type = None
        self.headers = None
        self.fetched_at = None
        self.done = threading.Event()
        self.streaming = False
        self.prelude = None
        self.stream_body = None
        self.stream_len = 0
        self.stream_sha256 = None
        self.stream_first_at = None
        self.stream_chunks = 0
        self.trailers = {}
        self.error_body = None

    def _complete(self, kind, raw, headers):
        self.kind = kind
        self.raw = raw
        self.headers = headers
        self.error_type = headers.get("Lambda-Runtime-Function-Error-Type")
        try:
            self.body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.body = None
        self.done.set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ssp-runtime-standin"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, obj=None):
        data = json.dumps(obj if obj is not None else {}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        rt = self.server.rt
        if self.path != PREFIX + "/runtime/invocation/next":
            rt.unexpected.append(("GET", self.path))
            return self._reply(404, {"errorType": "NotFound"})
        inv = rt._next(self.connection)
        if inv is None:  # shutting down, or the function went away
            self.close_connection = True
            return self._reply(500, {"errorType": "ShuttingDown"})
        inv.fetched_at = time.time()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", inv.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
        self.send_header("Lambda-Runtime-Trace-Id", inv.trace_id)
        if inv.client_context is not None:
            self.send_header("Lambda-Runtime-Client-Context", inv.client_context)
        self.send_header("Content-Length", str(len(inv.payload)))
        self.end_headers()
        self.wfile.write(inv.payload)

    def _chunked(self, rt, rid):
        """Read a chunked body incrementally (for streaming answers): the
        prelude up to the 8 NUL bytes, then the body, hashed as it comes;
        returns (raw, prelude, body_len, sha256, first_at, chunks, trailers)."""
        import hashlib
        head = b""
        prelude = None
        sha = hashlib.sha256()
        body_len = 0
        kept = []
        first_at = None
        chunks = 0
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("chunked body cut short")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.read(2) != b"\r\n":
                raise ConnectionError("chunk cut short")
            chunks += 1
            if prelude is None:
                head += data
                i = head.find(b"\0" * 8)
                if i < 0:
                    continue
                prelude = head[:i]
                data = head[i + 8:]
            if data:
                if first_at is None:
                    first_at = time.time()
                if rt.stream_hook is not None:
                    rt.stream_hook(rid, data)
                sha.update(data)
                body_len += len(data)
                if rt.keep_stream_body:
                    kept.append(data)
        trailers = {}
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            trailers[k.strip()] = v.strip()
        if prelude is None:
            raw = head
        else:
            raw = prelude + b"\0" * 8 + b"".join(kept) if rt.keep_stream_body else b""
        return raw, prelude, body_len, sha.hexdigest(), first_at, chunks, trailers, b"".join(kept)

    def do_POST(self):
        rt = self.server.rt
        headers = dict(self.headers.items())
        if (self.headers.get("Lambda-Runtime-Function-Response-Mode") == "streaming" and
                "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()):
            return self._streaming_post(rt, headers)
        body = self._body()
        p = self.path
        if p == PREFIX + "/runtime/init/error":
            rt._init_error(body, headers)
            return self._reply(202, {"status": "OK"})
        base = PREFIX + "/runtime/invocation/"
        if p.startswith(base):
            rest = p[len(base):]
            rid, _, what = rest.partition("/")
            if what in ("response", "error"):
                status = rt._complete(rid, what, body, headers)
                if status == 202:
                    return self._reply(202, {"status": "OK"})
                return self._reply(status, {"errorType": "InvalidRequestID",
                                            "errorMessage": "unknown or finished request id"})
        rt.unexpected.append(("POST", p))
        return self._reply(404, {"errorType": "NotFound"})

    def _streaming_post(self, rt, headers):
        base = PREFIX + "/runtime/invocation/"
        rid, _, what = self.path[len(base):].partition("/") if self.path.startswith(base) else ("", "", "")
        if what != "response":
            rt.unexpected.append(("POST", self.path))
            self.close_connection = True
            return self._reply(404, {"errorType": "NotFound"})
        raw, prelude, blen, sha, first_at, chunks, trailers, kept = self._chunked(rt, rid)
        with rt._lock:
            inv = rt._by_id.get(rid)
            if inv is None or inv.done.is_set():
                inv = None
            else:
                rt.invocations.append(inv)
        if inv is None:
            return self._reply(400, {"errorType": "InvalidRequestID"})
        inv.streaming = True
        inv.stream_len = blen
        inv.stream_sha256 = sha
        inv.stream_first_at = first_at
        inv.stream_chunks = chunks
        inv.trailers = trailers
        inv.stream_body = kept if prelude is not None else None
        if prelude is not None:
            try:
                inv.prelude = json.loads(prelude.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                inv.prelude = prelude
        if trailers.get("Lambda-Runtime-Function-Error-Body"):
            import base64
            try:
                inv.error_body = json.loads(base64.b64decode(trailers["Lambda-Runtime-Function-Error-Body"]))
            except ValueError:
                inv.error_body = trailers["Lambda-Runtime-Function-Error-Body"]
        inv._complete("response", raw, headers)
        if trailers.get("Lambda-Runtime-Function-Error-Type"):
            inv.error_type = trailers["Lambda-Runtime-Function-Error-Type"]
        return self._reply(202, {"status": "OK"})


class RuntimeAPI:
    """The Runtime API stand-in. Thread-safe; one function process at a time
    (as Lambda: the next event is handed out after the previous answer)."""

    def __init__(self, host="127.0.0.1"):
        self._events = queue.Queue()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._closing = False
        self._by_id = {}
        self.invocations = []   # every Invocation, in order handed out
        self.init_errors = []   # (parsed body or raw bytes, headers)
        self.unexpected = []    # requests to unknown paths
        self.polling = 0        # /next requests currently waiting
        self.polls = 0          # /next requests received in total
        self.keep_stream_body = True  # False: streamed bodies are only hashed
        self.stream_hook = None       # callable(request_id, bytes) per streamed body piece
        self.server = harness.LoopbackHTTPServer((host, 0), _Handler)
        self.server.rt = self
        self.host = host
        self.port = self.server.server_address[1]
        self.address = "%s:%d" % (host, self.port)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # --- the test's side -----------------------------------------------------
    def submit(self, event, deadline_s=10.0, request_id=None, trace_id=None, client_context=None):
        """Enqueue an event (dict, or raw bytes) without waiting; returns the
        Invocation. deadline_s: Lambda-Runtime-Deadline-Ms = now + this."""
        rid = request_id or str(uuid.uuid4())
        tid = trace_id or "Root=1-%08x-%s;Parent=%s;Sampled=0" % (int(time.time()), uuid.uuid4().hex[:24],
                                                                   uuid.uuid4().hex[:16])
        inv = Invocation(event, int((time.time() + deadline_s) * 1000), rid, tid, client_context)
        with self._lock:
            self._by_id[rid] = inv
        self._events.put(inv)
        return inv

    def wait(self, inv, timeout=5.0):
        """Wait for the function's answer to inv; AssertionError on timeout."""
        if not inv.done.wait(timeout):
            state = "fetched" if inv.fetched_at else "not fetched (is the function polling?)"
            raise AssertionError("no answer from the function within %.1fs; event %s" % (timeout, state))
        return inv

    def invoke_raw(self, event, timeout=5.0, **kw):
        """Submit and wait; the completed Invocation (response or error)."""
        return self.wait(self.submit(event, **kw), timeout)

    def invoke(self, event, timeout=5.0, **kw):
        """Submit and wait; the function's response parsed as JSON (a dict).
        Raises FunctionError when the function posted /error instead."""
        inv = self.invoke_raw(event, timeout, **kw)
        if inv.kind != "response":
            raise FunctionError(inv)
        if inv.body is None:
            raise AssertionError("function response is not JSON: %r" % inv.raw[:200])
        return inv.body

    def wait_polling(self, timeout=5.0, proc=None):
        """Wait until the function is blocked in /next (initialised and idle).
        When proc is given, fail early if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.polling > 0:
                    return
            if proc is not None and proc.poll() is not None:
                raise AssertionError("function exited with %s before polling; output:\n%s"
                                     % (proc.returncode, proc.output()[-2000:]))
            time.sleep(0.01)
        raise AssertionError("function did not poll /invocation/next within %.1fs" % timeout)

    def wait_init_error(self, timeout=5.0):
        """Wait for a POST /runtime/init/error; returns (body, headers)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no /runtime/init/error within %.1fs" % timeout)
                self._cond.wait(left)
            return self.init_errors[0]

    def function_env(self, prefix="test", ssm_endpoint=None, ca_bundle=None, connect_to=None,
                     cache_ttl=None, extra=None, base=None):
        """The environment Lambda gives a function (see AWS-NOTES.md), pointed
        at this stand-in and the given SSM endpoint, CA bundle and
        SSM_SIGN_PROXY_CONNECT_TO (str or list of entries). Values that are
        None are left out; extra is applied last (a None value there removes
        the variable)."""
        import harness
        env = harness.clean_env() if base is None else dict(base)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + FUNCTION_NAME,
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
            "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
            "LAMBDA_TASK_ROOT": os.path.dirname(os.path.abspath(harness.BOOTSTRAP)),
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "_HANDLER": "bootstrap",
            "TZ": ":UTC",
        })
        if prefix is not None:
            env["SSM_SIGN_PROXY_PREFIX"] = prefix
        if ssm_endpoint is not None:
            env["AWS_ENDPOINT_URL_SSM"] = ssm_endpoint
        if ca_bundle is not None:
            env["AWS_CA_BUNDLE"] = ca_bundle
        if connect_to is not None:
            env["SSM_SIGN_PROXY_CONNECT_TO"] = connect_to if isinstance(connect_to, str) else ",".join(connect_to)
        if cache_ttl is not None:
            env["SSM_SIGN_PROXY_CACHE_TTL"] = str(cache_ttl)
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def close(self):
        with self._lock:
            self._closing = True
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # --- the server's side -------------------------------------------------------
    def _next(self, conn):
        with self._lock:
            self.polling += 1
            self.polls += 1
        try:
            while True:
                with self._lock:
                    if self._closing:
                        return None
                if _peer_closed(conn):
                    # The function died or was stopped while polling: do not
                    # hand it an event it can never answer.
                    return None
                try:
                    return self._events.get(timeout=0.05)
                except queue.Empty:
                    continue
        finally:
            with self._lock:
                self.polling -= 1

    def _complete(self, rid, what, body, headers):
        with self._lock:
            inv = self._by_id.get(rid)
            if inv is None or inv.done.is_set():
                return 400
            self.invocations.append(inv)
        inv._complete(what, body, headers)
        return 202

    def _init_error(self, body, headers):
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            parsed = body
        with self._cond:
            self.init_errors.append((parsed, headers))
            self._cond.notify_all()


def _peer_closed(conn):
    try:
        r, _, _ = select.select([conn], [], [], 0)
        if not r:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def alb_event(method="GET", path="/", host="api.example.test", headers=None, query=None, body=b"",
              multi_value=False, target_group_arn=None):
    """An ALB target event (requestContext.elb). headers and query: lists of
    (name, value); query values are given raw (as the client sent them,
    still percent-encoded). body: bytes or str; non-UTF-8 bytes travel
    base64 with isBase64Encoded."""
    import base64
    hdrs = [("host", host)] if host is not None else []
    hdrs += [(k.lower(), v) for k, v in (headers or [])]
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        text = body.decode("utf-8")
        b64 = False
    except UnicodeDecodeError:
        text = base64.b64encode(body).decode("ascii")
        b64 = True
    ev = {
        "requestContext": {"elb": {"targetGroupArn": target_group_arn or
                                   "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ssp/0123456789abcdef"}},
        "httpMethod": method,
        "path": path,
        "body": text,
        "isBase64Encoded": b64,
    }
    if multi_value:
        mh = {}
        for k, v in hdrs:
            mh.setdefault(k, []).append(v)
        mq = {}
        for k, v in (query or []):
            mq.setdefault(k, []).append(v)
        ev["multiValueHeaders"] = mh
        ev["multiValueQueryStringParameters"] = mq
    else:
        ev["headers"] = {k: v for k, v in hdrs}
        ev["queryStringParameters"] = {k: v for k, v in (query or [])}
    return ev


def response_headers(resp):
    """The headers of an ALB response dict as a list of (lower-case name,
    value), from multiValueHeaders or headers, whichever it carries."""
    out = []
    if resp.get("multiValueHeaders"):
        for k, vs in resp["multiValueHeaders"].items():
            for v in vs:
                out.append((k.lower(), v))
    elif resp.get("headers"):
        for k, v in resp["headers"].items():
            out.append((k.lower(), v))
    return out


def response_body(resp):
    """The body of an ALB response dict as bytes (base64-decoded when
    isBase64Encoded)."""
    import base64
    b = resp.get("body") or ""
    if resp.get("isBase64Encoded"):
        return base64.b64decode(b)
    return b.encode("utf-8")
