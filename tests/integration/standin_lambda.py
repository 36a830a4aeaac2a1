"""A stand-in for the AWS Lambda Invoke API, run in a thread of the test.

It listens on 127.0.0.1 (a free port), speaks HTTP/1.1 with keep-alive and
answers `POST /2015-03-31/functions/{name}/invocations`. Every request's SigV4
signature is checked independently of the daemon's C signer: the request is
rebuilt as a botocore AWSRequest from what came over the wire (method, raw
path with its escapes, the signed headers, body) and signed again with
botocore's SigV4Auth at the request's own X-Amz-Date. A mismatch is answered
403 InvalidSignatureException, as AWS does, and recorded in
`signature_failures` so that the test fails loudly (daemon_fixture checks it
in tearDown).

Every invocation is recorded (function name as decoded from the path, raw
path, headers, body, parsed event, client port, time). What the function
answers is scriptable per test:

    lam.handler = lambda event: {"statusCode": 201, "body": "made"}
    lam.push(throttle(), throttle())     # the next two calls, then handler
    lam.handler = function_error("boom")
    lam.push(delay(1.5))                 # answer the next call 1.5 s late

A behaviour is a callable taking the Invocation and returning either an
ALB response dict (sent as the function's result: 200, JSON body) or a
Reply (sent as is). The default handler, echo(), answers 200 with the event
it received as its JSON body.

`POST /2021-11-15/functions/{name}/response-streaming-invocations`
(InvokeWithResponseStream, SigV4-checked the same way) answers 200 with a
real event stream (application/vnd.amazon.eventstream, chunked): a Stream
behaviour says what goes in it (PayloadChunk bytes, pauses, the final
InvokeComplete with an optional ErrorCode/ErrorDetails, an exception
message, or a connection cut); stream_response() builds one from an HTTP
integration response (prelude, 8 NUL bytes, body pieces). A dict result is
streamed as one PayloadChunk of its JSON (a function that answers in the
buffered shape), a Reply with X-Amz-Function-Error as an InvokeComplete
with that ErrorCode, any other Reply is sent as is (throttling, errors
before the stream). inv.streaming tells which API a call used.
"""

import base64
import datetime
import http.server
import json
import socket
import socketserver
import threading
import time
import urllib.parse
import uuid

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"
STREAM_PREFIX = "/2021-11-15/functions/"
STREAM_SUFFIX = "/response-streaming-invocations"

# Credentials every test uses unless it says otherwise (AWS's documentation
# example keys: never real).
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


class Reply:
    """An HTTP answer sent exactly as given (status, header list, body)."""

    def __init__(self, status, headers=None, body=b""):
        self.status = status
        self.headers = list(headers or [])
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")

    def __repr__(self):
        return "Reply(%d, %r, %r)" % (self.status, self.headers, self.body[:80])


class Drop:
    """Close the connection without answering (a broken connection after
    the function may have run)."""


class Stream:
    """An InvokeWithResponseStream answer: items are bytes (one PayloadChunk
    each), numbers (seconds to pause), or the markers below; without an
    explicit end, InvokeComplete (no error) closes the stream.

        Stream([b"abc", 0.5, b"def"])
        Stream([b"abc", Complete("Unhandled", "boom")])
        Stream([b"abc", Exception_("ServiceException", "bad")])
        Stream([b"abc", CUT])            # connection closed mid-stream
        Stream([b"abc", CORRUPT])        # a PayloadChunk with a bad CRC
    """

    def __init__(self, items, headers=None):
        self.items = list(items) if not callable(items) else items
        self.headers = list(headers or [])


class Complete:
    def __init__(self, error_code=None, error_details=None, log_result=None):
        self.error_code = error_code
        self.error_details = error_details
        self.log_result = log_result


class Exception_:
    def __init__(self, exc_type, message):
        self.exc_type = exc_type
        self.message = message


CUT = object()
CORRUPT = object()


def stream_response(status=200, headers=None, body=b"", pieces=None, cookies=None,
                    multi_value_headers=None, end=None, piece_size=65536):
    """A Stream behaviour sending an HTTP integration response: the JSON
    prelude, 8 NUL bytes, then body (split in piece_size pieces) or the
    given pieces (bytes and pauses); end: a Complete, Exception_, CUT or
    CORRUPT instead of a clean InvokeComplete."""
    def behaviour(inv):
        prelude = {"statusCode": status, "headers": dict(headers or {})}
        if cookies:
            prelude["cookies"] = list(cookies)
        if multi_value_headers:
            prelude["multiValueHeaders"] = {k: list(v) for k, v in multi_value_headers.items()}
        items = [json.dumps(prelude).encode() + b"\0" * 8]
        if pieces is not None:
            items += list(pieces)
        else:
            items += [body[i:i + piece_size] for i in range(0, len(body), piece_size)]
        if end is not None:
            items.append(end)
        return Stream(items)
    return behaviour


def aws_error(status, error_type, message, extra=None, headers=None):
    """An AWS service error as Lambda sends it: the name in
    X-Amzn-ErrorType, a JSON body with Type and message."""
    body = {"Type": "User" if status < 500 else "Service", "message": message}
    if extra:
        body.update(extra)
    return Reply(status, [("Content-Type", "application/json"),
                          ("X-Amzn-ErrorType", error_type)] + list(headers or []),
                 json.dumps(body))


# --- behaviours -------------------------------------------------------------

def echo(inv):
    """Default handler: 200 with the received event as a JSON body."""
    return {"statusCode": 200, "statusDescription": "200 OK",
            "headers": {"content-type": "application/json"},
            "body": json.dumps(inv.event), "isBase64Encoded": False}


def respond(status=200, body="", headers=None, multi_value_headers=None, binary=False,
            description=None):
    """A fixed ALB response; body may be bytes (sent base64-encoded)."""
    def behaviour(inv):
        r = {"statusCode": status}
        if description is not None:
            r["statusDescription"] = description
        if isinstance(body, bytes) or binary:
            raw = body if isinstance(body, bytes) else body.encode("utf-8")
            r["body"] = base64.b64encode(raw).decode("ascii")
            r["isBase64Encoded"] = True
        else:
            r["body"] = body
            r["isBase64Encoded"] = False
        if headers is not None:
            r["headers"] = dict(headers)
        if multi_value_headers is not None:
            r["multiValueHeaders"] = {k: list(v) for k, v in multi_value_headers.items()}
        return r
    return behaviour


def function_error(message="function failed", error_type="Error", kind="Unhandled"):
    """The function raised: HTTP 200 with X-Amz-Function-Error."""
    def behaviour(inv):
        return Reply(200, [("Content-Type", "application/json"),
                           ("X-Amz-Function-Error", kind),
                           ("X-Amz-Executed-Version", "$LATEST")],
                     json.dumps({"errorMessage": message, "errorType": error_type,
                                 "stackTrace": []}))
    return behaviour


def throttle(retry_after=None):
    """429 TooManyRequestsException: the function did not run."""
    def behaviour(inv):
        hdrs = [("Retry-After", str(retry_after))] if retry_after is not None else []
        return aws_error(429, "TooManyRequestsException", "Rate Exceeded.",
                         {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}, hdrs)
    return behaviour


def service_error(message="Internal failure."):
    """500 ServiceException: the function may have run."""
    return lambda inv: aws_error(500, "ServiceException", message)


def not_found():
    """404 ResourceNotFoundException for the invoked name."""
    return lambda inv: aws_error(404, "ResourceNotFoundException",
                                 "Function not found: arn:aws:lambda:us-east-1:123456789012:function:%s"
                                 % inv.function)


def access_denied():
    return lambda inv: aws_error(403, "AccessDeniedException",
                                 "User is not authorized to perform: lambda:InvokeFunction")


def too_large():
    return lambda inv: aws_error(413, "RequestTooLargeException",
                                 "Request must be smaller than 6291456 bytes for the InvokeFunction operation")


def drop():
    """Close the connection without an answer."""
    return lambda inv: Drop()


def delay(seconds, then=None):
    """Answer `seconds` late with `then` (default: the stand-in's handler).
    The wait ends early when the stand-in stops."""
    def behaviour(inv):
        inv.standin._stopping.wait(seconds)
        nxt = then if then is not None else inv.standin.handler
        return nxt(inv)
    return behaviour


# --- records ----------------------------------------------------------------

class Invocation:
    """One request the stand-in received."""

    def __init__(self, standin, method, raw_path, headers, body, client):
        self.standin = standin
        self.method = method
        self.raw_path = raw_path
        self.headers = headers          # [(name, value)] as received
        self.body = body                # bytes
        self.client = client            # (address, port)
        self.port = client[1]
        self.time = time.monotonic()
        self.wall = time.time()
        path, _, query = raw_path.partition("?")
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.function = None
        self.streaming = False
        if path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX):
            self.function = urllib.parse.unquote(path[len(INVOKE_PREFIX):-len(INVOKE_SUFFIX)])
        elif path.startswith(STREAM_PREFIX) and path.endswith(STREAM_SUFFIX):
            self.function = urllib.parse.unquote(path[len(STREAM_PREFIX):-len(STREAM_SUFFIX)])
            self.streaming = True
        try:
            self.event = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            self.event = None
        self.signature_error = None
        self.status = None              # what the stand-in answered
        self.sent_bytes = 0             # streaming: event stream bytes written
        self.request_id = str(uuid.uuid4())  # sent as x-amzn-RequestId

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def __repr__(self):
        return "Invocation(%s %s from port %d)" % (self.method, self.raw_path, self.port)


# --- the signature check ----------------------------------------------------

def _parse_authorization(value):
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        raise ValueError("Authorization is not AWS4-HMAC-SHA256: %r" % (value,))
    parts = {}
    for item in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, sep, v = item.strip().partition("=")
        if not sep:
            raise ValueError("malformed Authorization component %r" % item)
        parts[k] = v
    for k in ("Credential", "SignedHeaders", "Signature"):
        if k not in parts:
            raise ValueError("Authorization lacks %s" % k)
    return parts


class _Verifier(SigV4Auth):
    """botocore's signer, limited to the headers the client says it signed
    (botocore would otherwise sign every header it sees)."""

    def __init__(self, credentials, service, region, signed):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        m = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                m[name.lower()] = value
        return m


def verify_signature(method, raw_path, headers, body, access_key, secret_key, token,
                     region, service="lambda", now=None, max_skew=300, token_signed=True):
    """Check a received request's SigV4 signature with botocore. Returns
    None when good, else (error type, message) as AWS would answer.
    token_signed: also require X-Amz-Security-Token among the signed headers
    (AWS tolerates it unsigned; our notes say we sign it)."""
    auth = None
    for k, v in headers:
        if k.lower() == "authorization":
            auth = v
    try:
        parts = _parse_authorization(auth)
    except ValueError as e:
        return ("IncompleteSignatureException", str(e))
    scope = parts["Credential"].split("/")
    if len(scope) != 5:
        return ("IncompleteSignatureException", "bad credential scope %r" % parts["Credential"])
    akid, day, sregion, sservice, term = scope
    if akid != access_key:
        return ("UnrecognizedClientException",
                "The security token included in the request is invalid (access key %r)" % akid)
    if sregion != region or sservice != service or term != "aws4_request":
        return ("InvalidSignatureException",
                "Credential should be scoped to a valid region/service: got %s/%s/%s, want %s/%s/aws4_request"
                % (sregion, sservice, term, region, service))
    signed = parts["SignedHeaders"].split(";")
    if signed != sorted(signed):
        return ("InvalidSignatureException", "SignedHeaders not sorted: %s" % parts["SignedHeaders"])
    hdr = {}
    for k, v in headers:
        hdr.setdefault(k.lower(), []).append(v)
    for need in ("host", "x-amz-date"):
        if need not in signed:
            return ("InvalidSignatureException", "%s is not signed" % need)
    for name in signed:
        if name not in hdr:
            return ("InvalidSignatureException", "signed header %s was not sent" % name)
    if token is not None:
        if hdr.get("x-amz-security-token") != [token]:
            return ("UnrecognizedClientException", "X-Amz-Security-Token missing or wrong")
        if token_signed and "x-amz-security-token" not in signed:
            return ("InvalidSignatureException", "x-amz-security-token is not signed")
    elif "x-amz-security-token" in hdr:
        return ("UnrecognizedClientException", "unexpected X-Amz-Security-Token")
    amzdate = hdr["x-amz-date"][0]
    try:
        when = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return ("IncompleteSignatureException", "bad X-Amz-Date %r" % amzdate)
    if day != amzdate[:8]:
        return ("InvalidSignatureException", "credential scope date %s != X-Amz-Date %s" % (day, amzdate))
    now = time.time() if now is None else now
    if abs(when.timestamp() - now) > max_skew:
        nowtxt = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        earlier = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - max_skew))
        return ("InvalidSignatureException",
                "Signature expired: %s is now earlier than %s (%s - 5 min.)" % (amzdate, earlier, nowtxt)
                if when.timestamp() < now else
                "Signature not yet current: %s is still later than %s (%s + 5 min.)"
                % (amzdate, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + max_skew)), nowtxt))

    # Rebuild the request from the wire: exact raw path (botocore encodes it
    # again, as SigV4 wants for every service but S3), signed headers with
    # their values (joined as a repeated header would be), body.
    req_headers = HTTPHeaders()
    for name in signed:
        req_headers[name] = ",".join(v.strip() for v in hdr[name])
    host = hdr["host"][0]
    req = AWSRequest(method=method, url="http://%s%s" % (host, raw_path), headers=req_headers, data=body)
    req.context["timestamp"] = amzdate
    signer = _Verifier(Credentials(access_key, secret_key, token), service, region, set(signed))
    signer._modify_request_before_signing(req)
    canonical = signer.canonical_request(req)
    sts = signer.string_to_sign(req, canonical)
    want = signer.signature(sts, req)
    if want != parts["Signature"]:
        return ("InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "The Canonical String for this request should have been\n'%s'\n\n"
                "The String-to-Sign should have been\n'%s'\n" % (canonical, sts))
    return None


# --- the server -------------------------------------------------------------

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256  # 64 concurrent connects must not overflow the backlog

    def __init__(self, addr, handler, standin):
        self.standin = standin
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):
        # The daemon may close a connection while we answer (its client went
        # away, it gave up on a delayed call): normal, not worth a traceback.
        import sys
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        self.standin._track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.standin._track(request, False)
        super().shutdown_request(request)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in one write with TCP_NODELAY: a second small
    # segment held back by Nagle until the daemon's delayed ACK would add
    # 40 ms to every call and hide the daemon's real latency.
    disable_nagle_algorithm = True
    server_version = "standin-lambda"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def date_time_string(self, timestamp=None):
        if timestamp is None:
            timestamp = self.server.standin.now()
        return super().date_time_string(timestamp)

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        # Shorter: the sender went away mid-request (a worker killed by a
        # test); Lambda would not run it, and it is no signature failure.
        self._truncated = len(body) < n
        return body

    def _send(self, reply, inv=None):
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        for k, v in reply.headers:
            self.send_header(k, v)
        if "x-amzn-requestid" not in names:
            self.send_header("x-amzn-RequestId", inv.request_id if inv else str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(reply.body)))
        self._headers_buffer.append(b"\r\n" + reply.body)
        self.flush_headers()

    def do_POST(self):
        st = self.server.standin
        body = self._read_body()
        if getattr(self, "_truncated", False):
            self.close_connection = True
            return
        inv = Invocation(st, self.command, self.path, list(self.headers.items()), body,
                         self.client_address)
        err = verify_signature(self.command, self.path, inv.headers, body, st.access_key,
                               st.secret_key, st.token, st.region, now=st.now())
        if err is not None:
            inv.signature_error = "%s: %s" % err
            st._record(inv, bad=True)
            reply = aws_error(403, err[0], err[1])
            inv.status = reply.status
            self._send(reply, inv)
            return
        if inv.function is None:
            inv.status = 404
            st._record(inv)
            self._send(aws_error(404, "UnknownOperationException", "Unknown operation %s" % self.path), inv)
            return
        st._record(inv)
        behaviour = st._next_behaviour(inv)
        try:
            result = behaviour(inv)
        except Exception as e:  # a broken test handler: say so, like a function error
            st.handler_errors.append("%s: %r" % (inv, e))
            result = function_error("stand-in handler raised %r" % e)(inv)
        if isinstance(result, Drop):
            inv.status = 0
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if inv.streaming:
            if isinstance(result, dict):
                result = Stream([json.dumps(result).encode()])
            elif isinstance(result, Reply) and any(k.lower() == "x-amz-function-error"
                                                   for k, _ in result.headers):
                kind = [v for k, v in result.headers if k.lower() == "x-amz-function-error"][0]
                result = Stream([Complete(kind, result.body.decode("utf-8", "replace"))])
            if isinstance(result, Stream):
                inv.status = 200
                if st._stopping.is_set():
                    return
                self._send_stream(result, inv)
                return
        if not isinstance(result, Reply):
            result = Reply(200, [("Content-Type", "application/json"),
                                 ("X-Amz-Executed-Version", "$LATEST")], json.dumps(result))
        inv.status = result.status
        if st._stopping.is_set():
            return
        self._send(result, inv)

    def _send_stream(self, stream, inv):
        import eventstream_enc as es
        st = self.server.standin
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("x-amzn-RequestId", inv.request_id)
        self.send_header("X-Amz-Executed-Version", "$LATEST")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in stream.headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            inv.sent_bytes += len(data)

        items = stream.items() if callable(stream.items) else stream.items
        ended = False
        try:
            for item in items:
                if st._stopping.is_set():
                    return
                if isinstance(item, (int, float)):
                    st._stopping.wait(item)
                    continue
                if item is CUT:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if item is CORRUPT:
                    m = bytearray(es.payload_chunk(b"corrupt"))
                    m[-1] ^= 0xff
                    chunk(bytes(m))
                    continue
                if isinstance(item, Complete):
                    chunk(es.invoke_complete(item.error_code, item.error_details, item.log_result))
                    ended = True
                    break
                if isinstance(item, Exception_):
                    chunk(es.exception(item.exc_type, item.message))
                    ended = True
                    break
                chunk(es.payload_chunk(bytes(item)))
            if not ended:
                chunk(es.invoke_complete())
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _unsupported(self):
        self._send(aws_error(404, "UnknownOperationException", "Unknown operation %s %s"
                             % (self.command, self.path)))

    do_GET = do_PUT = do_DELETE = do_HEAD = _unsupported


class StandinLambda:
    """The stand-in Lambda endpoint. start() binds a free port (or `port`),
    stop() ends it quickly; start() again reuses the same port (for "endpoint
    down and recovery" tests)."""

    def __init__(self, access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=None,
                 region="us-east-1", host="127.0.0.1", port=0):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.region = region
        self.host = host
        self.port = port
        self.handler = echo
        self.clock_offset = 0.0         # seconds added to the stand-in's clock
        self.invocations = []           # every request that reached do_POST
        self.signature_failures = []    # Invocations whose signature was bad
        self.handler_errors = []
        self.connections_accepted = 0
        self._queue = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._socks = set()
        self._server = None
        self._thread = None
        self._stopping = threading.Event()

    # -- life cycle --
    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="standin-lambda", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop accepting, wake delayed answers, close every connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            socks = list(self._socks)
            self._socks.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(2)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def now(self):
        return time.time() + self.clock_offset

    # -- scripting --
    def push(self, *behaviours):
        """Queue behaviours for the next calls, one each, before handler."""
        with self._lock:
            self._queue.extend(behaviours)

    def _next_behaviour(self, inv):
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return self.handler

    # -- records --
    def _track(self, sock, add):
        with self._lock:
            if add:
                self._socks.add(sock)
                self.connections_accepted += 1
            else:
                self._socks.discard(sock)

    def _record(self, inv, bad=False):
        with self._cond:
            self.invocations.append(inv)
            if bad:
                self.signature_failures.append(inv)
            self._cond.notify_all()

    def count(self):
        with self._lock:
            return len(self.invocations)

    def wait_invocations(self, n, timeout=5.0):
        """Wait until at least n invocations arrived; returns the list."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.invocations) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("stand-in Lambda got %d invocations, expected %d within %.1fs"
                                         % (len(self.invocations), n, timeout))
                self._cond.wait(left)
            return list(self.invocations)

    def last(self):
        with self._lock:
            if not self.invocations:
                raise AssertionError("the stand-in Lambda received no invocation")
            return self.invocations[-1]

    def client_ports(self):
        """Distinct client ports seen (one per connection the daemon opened)."""
        with self._lock:
            return {inv.port for inv in self.invocations}

    def reset(self):
        """Forget invocations and queued behaviours (signature failures are
        kept: a test must not be able to hide one)."""
        with self._lock:
            self.invocations = []
            self._queue = []
