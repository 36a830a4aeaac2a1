"""Fixtures for the local function mode tests (test_localfn*.py): the daemon
with a `local_function:` block, and small custom runtimes written for the
occasion (any runtime must work, not only ours).

    class T(localfn_case.LocalFunctionCase):
        def test_x(self):
            d = self.start_local(self.python_runtime(), concurrency=2)
            r = d.raw(get("api.example.test", "/echo"))

The Python runtime (RUNTIME_PY) speaks the Runtime API with urllib and
decides what to do from the event's path:
  /crash/segv  kill itself with SIGSEGV     /crash/exit  exit with status 3
  /sleep/S     sleep S seconds, then answer /error       post to /invocation/ID/error
  /env         answer its exec environment   /big         answer 7 MB (too large)
  /api-errors  report what the Runtime API answers to mistakes, then answer
  anything else: echo (path, pid, ...)
and from LF_MODE at start: init_error (post /init/error, exit 1), hang (never
ask for an invocation), ignore_term (ignore SIGTERM), spawn_child (start a
`sleep` child in its group), impatient (give up on its first GET /next after
0.3 s and ask again). It writes its pid (and its child's) into
LF_PIDDIR so that tests can check which processes exist.
"""

import json
import os
import signal
import socket
import sys
import time

import daemon_fixture
import harness

RUNTIME_PY = r'''#!%(python)s
import json, os, signal, subprocess, sys, time, urllib.error, urllib.request

api = "http://%%s/2018-06-01/runtime" %% os.environ["AWS_LAMBDA_RUNTIME_API"]
mode = os.environ.get("LF_MODE", "")
piddir = os.environ.get("LF_PIDDIR")
if piddir:
    open(os.path.join(piddir, str(os.getpid())), "w").close()
print("runtime %%d starting (mode %%r)" %% (os.getpid(), mode), flush=True)

def post(path, obj, headers=None):
    req = urllib.request.Request(api + path, data=json.dumps(obj).encode(), method="POST",
                                 headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status

if mode == "init_error":
    post("/init/error", {"errorType": "Runtime.ConfigError",
                         "errorMessage": "bad setting on line 3"},
         {"Lambda-Runtime-Function-Error-Type": "Runtime.ConfigError"})
    sys.exit(1)
if mode == "hang":
    while True:
        time.sleep(60)
if mode == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "impatient":
    # A client timeout on the first GET /next, then a normal loop.
    try:
        urllib.request.urlopen(api + "/invocation/next", timeout=0.3)
    except OSError:
        print("gave up waiting; asking again", flush=True)
if mode == "spawn_child":
    child = subprocess.Popen(["sleep", "300"])
    if piddir:
        open(os.path.join(piddir, "child-%%d" %% child.pid), "w").close()

while True:
    with urllib.request.urlopen(api + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        inv_headers = {k: v for k, v in r.headers.items() if k.lower().startswith("lambda-runtime-")}
        event = json.loads(r.read())
    path = event.get("path", "")
    print("invocation %%s for %%s" %% (rid, path), flush=True)
    if path == "/crash/segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if path == "/crash/exit":
        os._exit(3)
    if path.startswith("/sleep/"):
        time.sleep(float(path.split("/")[2]))
    if path == "/error":
        post("/invocation/%%s/error" %% rid, {"errorType": "TestError",
                                            "errorMessage": "it went wrong on purpose"})
        continue
    if path == "/api-errors":
        # What the Runtime API answers to mistakes, reported in the body.
        seen = {}
        for name, url, method in (("wrong_id", "/invocation/not-the-id/response", "POST"),
                                  ("get_response", "/invocation/%%s/response" %% rid, "GET"),
                                  ("unknown", "/invocation/%%s/bogus" %% rid, "POST"),
                                  ("init_get", "/init/error", "GET")):
            req = urllib.request.Request(api + url, data=b"{}" if method == "POST" else None,
                                         method=method)
            try:
                with urllib.request.urlopen(req) as r:
                    seen[name] = [r.status, None]
            except urllib.error.HTTPError as e:
                seen[name] = [e.code, json.loads(e.read()).get("errorType")]
        post("/invocation/%%s/response" %% rid, {"statusCode": 200, "body": json.dumps(seen)})
        continue
    if path == "/big":
        post("/invocation/%%s/response" %% rid, {"statusCode": 200, "body": "x" * (7 << 20)})
        continue
    if path == "/env":
        with open("/proc/self/environ", "rb") as f:
            env = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if kv)
        body = {"env": env, "cwd": os.getcwd()}
    else:
        body = {"path": path, "pid": os.getpid(), "query": event.get("queryStringParameters"),
                "method": event.get("httpMethod"), "body": event.get("body"),
                "invocation": inv_headers, "request_id": rid}
    post("/invocation/%%s/response" %% rid,
         {"statusCode": 200, "statusDescription": "200 OK",
          "headers": {"Content-Type": "application/json", "X-Runtime": "python"},
          "body": json.dumps(body), "isBase64Encoded": False})
'''

# A runtime in POSIX shell with curl, after AWS's own tutorial: proof that
# any executable speaking the Runtime API works.
RUNTIME_SH = r'''#!/bin/sh
set -eu
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
hdrs=$(mktemp)
trap 'rm -f "$hdrs"' EXIT
# A runtime that stamps its own lines (the daemon's log stamps them once).
echo "2026-11-30T10:00:00.123Z sh runtime up" >&2
while true; do
	event=$(curl -sS -D "$hdrs" "$api/invocation/next")
	id=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *\([^[:space:]]*\).*/\1/p' "$hdrs")
	path=$(printf '%s' "$event" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
	curl -sS -o /dev/null -X POST "$api/invocation/$id/response" \
		-d "{\"statusCode\":201,\"headers\":{\"X-Runtime\":\"sh\"},\"body\":\"shell saw $path\"}"
done
'''


def get(host, path, extra=""):
    return "GET http://%s%s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n" % (host, path, host, extra)


alive = harness.alive


class LocalFunctionCase(daemon_fixture.ProxyTestCase):
    """ProxyTestCase with the daemon in local function mode (the stand-in
    Lambda it starts is there to prove that nothing calls it)."""

    def write_runtime(self, text, name):
        path = os.path.join(self.tmp, "fn", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def python_runtime(self):
        return self.write_runtime(RUNTIME_PY % {"python": sys.executable}, "runtime.py")

    def shell_runtime(self):
        return self.write_runtime(RUNTIME_SH, "bootstrap.sh")

    @property
    def piddir(self):
        d = os.path.join(self.tmp, "pids")
        os.makedirs(d, exist_ok=True)
        return d

    def function_pids(self, children=False):
        names = os.listdir(self.piddir)
        if children:
            return sorted(int(n.split("-")[1]) for n in names if n.startswith("child-"))
        return sorted(int(n) for n in names if n.isdigit())

    def start_local(self, command, concurrency=1, timeout=2, environment=None, mode=None,
                    config=None, env=None, **kw):
        fenv = {"LF_PIDDIR": self.piddir}
        if mode:
            fenv["LF_MODE"] = mode
        fenv.update(environment or {})
        cfg = {
            "function_name": None,
            "local_function": {
                "command": command,
                "concurrency": concurrency,
                "timeout": timeout,
                "environment": fenv,
            },
            "retry": {"respawn": 0.1, "respawn_cap": 0.4},
        }
        cfg = daemon_fixture.merge(cfg, config or {})
        d = self.start_daemon(config=cfg, env=env, **kw)
        self.addCleanup(self.assert_no_lambda_calls)
        return d

    def assert_no_lambda_calls(self):
        self.assertEqual(len(self.lam.invocations), 0, "local mode must not call AWS Lambda")

    def wait_ready(self, n, timeout=5.0):
        """Wait until n function processes have started."""
        return harness.wait_for(lambda: len(self.function_pids()) >= n and self.function_pids(),
                                timeout=timeout, what="%d function processes" % n)
