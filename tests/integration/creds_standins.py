"""Stand-ins on loopback for the AWS credential endpoints (what the daemon's
credentials agent and creds_cli talk to), each counting its calls:

  ImdsStandin       EC2 instance metadata v2: PUT /latest/api/token, then GETs
                    that must carry a valid session token (401 otherwise); a
                    role with credentials whose Expiration is configurable;
                    instance-id and placement/region.
  EcsStandin        the ECS/EKS container credentials endpoint; checks the
                    Authorization header against the expected token.
  StsStandin        STS AssumeRoleWithWebIdentity: checks the unsigned form
                    POST's fields, answers XML (or an XML error).

Every issue of credentials mints a fresh key pair into a Keyring, so a test
can tell which fetch signed a request; `keyring_verifier` lets the stand-in
Lambda (standin_lambda.py) accept any key of a keyring.
"""

import http.server
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

import standin_lambda


def iso8601(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Keyring:
    """Credentials minted by the stand-ins: access key id -> (secret, token)."""

    _serial = itertools.count(1)

    def __init__(self):
        self._lock = threading.Lock()
        self.keys = {}
        self.order = []

    def mint(self, prefix="ASIA", token=True):
        n = next(self._serial)
        akid = "%sTEST%012d" % (prefix, n)
        secret = "secret/%d/%s" % (n, secrets.token_hex(8))
        tok = ("token-%d-" % n) + secrets.token_urlsafe(24) if token else None
        with self._lock:
            self.keys[akid] = (secret, tok)
            self.order.append(akid)
        return akid, secret, tok

    def add(self, akid, secret, token=None):
        with self._lock:
            self.keys[akid] = (secret, token)
            self.order.append(akid)

    def get(self, akid):
        with self._lock:
            return self.keys.get(akid)

    def secrets(self):
        """Every secret and token, to check that none leaked into a log."""
        with self._lock:
            out = []
            for s, t in self.keys.values():
                out.append(s)
                if t:
                    out.append(t)
            return out


_orig_verify = standin_lambda.verify_signature


def _keyring_verify(method, raw_path, headers, body, access_key, secret_key, token, region, **kw):
    if isinstance(access_key, Keyring):
        akid = None
        for k, v in headers:
            if k.lower() == "authorization" and "Credential=" in v:
                akid = v.split("Credential=", 1)[1].split("/", 1)[0]
        found = access_key.get(akid) if akid else None
        if found is None:
            return ("UnrecognizedClientException", "unknown access key %r" % akid)
        secret_key, token = found
        access_key = akid
    return _orig_verify(method, raw_path, headers, body, access_key, secret_key, token, region, **kw)


# The stand-in's handler looks verify_signature up at call time.
standin_lambda.verify_signature = _keyring_verify


def keyring_verifier(lam, keyring):
    """Make the stand-in Lambda accept a request signed by any key of keyring
    (and nothing else); each Invocation's signer is then `signer(inv)`."""
    lam.access_key = keyring
    lam.secret_key = None
    lam.token = None


def signer(inv):
    """The access key id that signed an Invocation."""
    auth = inv.header("Authorization") or ""
    if "Credential=" not in auth:
        return None
    return auth.split("Credential=", 1)[1].split("/", 1)[0]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128


class _Base:
    """A threaded HTTP server on 127.0.0.1 whose handler calls self.handle()."""

    def __init__(self, keyring=None, port=0):
        self.keyring = keyring or Keyring()
        self.port = port
        self.lock = threading.Lock()
        self.requests = []       # (method, path) of every request
        self._server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _dispatch(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with standin.lock:
                    standin.requests.append((self.command, self.path))
                status, ctype, out = standin.handle(self.command, self.path, self.headers, body)
                out = out.encode() if isinstance(out, str) else out
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = do_DELETE = _dispatch

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self, method=None, prefix=""):
        with self.lock:
            return sum(1 for m, p in self.requests
                       if (method is None or m == method) and p.startswith(prefix))

    def creds_json(self, lifetime, code="Success"):
        akid, secret, tok = self.keyring.mint()
        return {
            "Code": code,
            "LastUpdated": iso8601(time.time()),
            "Type": "AWS-HMAC",
            "AccessKeyId": akid,
            "SecretAccessKey": secret,
            "Token": tok,
            "Expiration": iso8601(time.time() + lifetime),
        }


class ImdsStandin(_Base):
    """IMDSv2. Settings (change them any time): role (None = no role
    attached), lifetime (seconds until Expiration), region (None = 404),
    instance_id, fail_status (answer every request with it), code (the
    credentials document's Code)."""

    CREDS = "/latest/meta-data/iam/security-credentials/"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.role = "test-role"
        self.lifetime = 3600
        self.region = "eu-west-1"
        self.instance_id = "i-0123456789abcdef0"
        self.fail_status = None
        self.code = "Success"
        self.creds_body = None   # answer this instead of the credentials document
        self.tokens = {}         # token -> expiry
        self.unauthorized = 0    # GETs refused for a missing/bad token
        self.issued = []         # access key ids handed out
        self.fetches = []        # (time issued, Expiration as epoch seconds)

    def creds_calls(self):
        with self.lock:
            return sum(1 for m, p in self.requests
                       if m == "GET" and p.startswith(self.CREDS) and p != self.CREDS)

    def handle(self, method, path, headers, body):
        if self.fail_status:
            return self.fail_status, "text/plain", "failing on purpose"
        if method == "PUT" and path == "/latest/api/token":
            ttl = headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, "text/plain", "missing or bad X-aws-ec2-metadata-token-ttl-seconds"
            tok = secrets.token_urlsafe(32)
            with self.lock:
                self.tokens[tok] = time.time() + int(ttl)
            return 200, "text/plain", tok
        if method != "GET":
            return 405, "text/plain", "method not allowed"
        tok = headers.get("X-aws-ec2-metadata-token")
        with self.lock:
            ok = tok is not None and self.tokens.get(tok, 0) > time.time()
            if not ok:
                self.unauthorized += 1
        if not ok:
            return 401, "text/plain", "Unauthorized"
        if path == "/latest/meta-data/instance-id":
            return 200, "text/plain", self.instance_id
        if path == "/latest/meta-data/placement/region":
            if self.region is None:
                return 404, "text/plain", "Not Found"
            return 200, "text/plain", self.region
        if path == self.CREDS:
            if self.role is None:
                return 404, "text/plain", "Not Found"
            return 200, "text/plain", self.role
        if path.startswith(self.CREDS) and self.role is not None and path[len(self.CREDS):] == self.role:
            if self.creds_body is not None:
                return 200, "text/plain", self.creds_body
            doc = self.creds_json(self.lifetime, self.code)
            with self.lock:
                self.issued.append(doc["AccessKeyId"])
                self.fetches.append((time.time(), int(time.time() + self.lifetime)))
            return 200, "text/plain", json.dumps(doc, indent=2)
        return 404, "text/plain", "Not Found"


class EcsStandin(_Base):
    """The container credentials endpoint at /creds; requires Authorization
    == auth (when auth is not None)."""

    def __init__(self, auth=None, **kw):
        super().__init__(**kw)
        self.auth = auth
        self.lifetime = 3600
        self.refused = 0
        self.seen_auth = []

    def handle(self, method, path, headers, body):
        got = headers.get("Authorization")
        with self.lock:
            self.seen_auth.append(got)
        if self.auth is not None and got != self.auth:
            with self.lock:
                self.refused += 1
            return 401, "application/json", json.dumps({"message": "bad authorization"})
        if method != "GET" or path != "/creds":
            return 404, "application/json", "{}"
        doc = self.creds_json(self.lifetime)
        del doc["Code"], doc["LastUpdated"], doc["Type"]
        doc["RoleArn"] = "arn:aws:iam::123456789012:role/ecs-task"
        return 200, "application/json", json.dumps(doc)


class StsStandin(_Base):
    """STS AssumeRoleWithWebIdentity at POST /. Checks the form: Action,
    Version, RoleArn == role_arn, RoleSessionName present (and equal to
    session_name when set), WebIdentityToken == token; no Authorization
    (the call is unsigned)."""

    def __init__(self, role_arn, token, **kw):
        super().__init__(**kw)
        self.role_arn = role_arn
        self.token = token
        self.session_name = None
        self.lifetime = 3600
        self.forms = []
        self.problems = []
        self.raw_answer = None   # (status, body) to answer instead

    def _error(self, status, code, message):
        return status, "text/xml", (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            % (escape(code), escape(message)))

    def handle(self, method, path, headers, body):
        if method != "POST" or path != "/":
            return self._error(404, "NotFound", "no such endpoint")
        if headers.get("Authorization") is not None:
            self.problems.append("signed request")
        ctype = headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            self.problems.append("content type %r" % ctype)
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        with self.lock:
            self.forms.append(form)
        if self.raw_answer is not None:
            return self.raw_answer[0], "text/xml", self.raw_answer[1]
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
            return self._error(400, "InvalidAction", "bad Action or Version")
        if form.get("RoleArn") != self.role_arn:
            return self._error(403, "AccessDenied", "not allowed to assume %s" % form.get("RoleArn"))
        if not form.get("RoleSessionName") or (
                self.session_name is not None and form["RoleSessionName"] != self.session_name):
            return self._error(400, "ValidationError", "bad RoleSessionName")
        if form.get("WebIdentityToken") != self.token:
            return self._error(400, "InvalidIdentityToken", "Couldn't retrieve verification key")
        doc = self.creds_json(self.lifetime)
        return 200, "text/xml", (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
            "  <AssumeRoleWithWebIdentityResult>\n"
            "    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n"
            "    <AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>\n"
            "    <Credentials>\n"
            "      <SessionToken>%s</SessionToken>\n"
            "      <SecretAccessKey>%s</SecretAccessKey>\n"
            "      <Expiration>%s</Expiration>\n"
            "      <AccessKeyId>%s</AccessKeyId>\n"
            "    </Credentials>\n"
            "  </AssumeRoleWithWebIdentityResult>\n"
            "  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>\n"
            "</AssumeRoleWithWebIdentityResponse>\n"
            % (escape(self.role_arn), escape(form["RoleSessionName"]), escape(doc["Token"]),
               escape(doc["SecretAccessKey"]), doc["Expiration"], doc["AccessKeyId"]))
