#!/usr/bin/env python3
"""bench/stream.py: time to first byte and throughput of invoke_mode
buffered against invoke_mode stream, on the same response, on this machine.

Two set-ups, each run with the daemon in both modes:

  lambda  the stand-in Lambda (tests/integration/standin_lambda.py) answers
          Invoke with an ALB response and InvokeWithResponseStream with the
          same response as an event stream (prelude, then the body in
          64 KiB PayloadChunks). Two bodies: SIZE_MB at once, and a "slow
          function" that writes 16 pieces of 64 KiB 100 ms apart.
  local   local function mode: the real lambda/bootstrap (buffered, or with
          SSM_SIGN_PROXY_RESPONSE_MODE=streaming) calling a TLS origin that
          sends SIZE_MB at once, or the same slow 16 pieces.

Every figure is the median of ROUNDS requests. The stand-in and the origin
are Python: the MB/s are theirs as much as the daemon's, and the same for
both modes; time to first byte is what streaming changes.

    ./tests/run.sh          # builds _build
    bench/stream.py         # SIZE_MB=5 ROUNDS=5
"""

import os
import statistics
import sys
import tempfile

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("SSP_SRCDIR", top)
os.environ.setdefault("SSP_BUILDDIR", os.path.join(top, "_build"))
os.environ.setdefault("SSP_DAEMON", os.path.join(top, "_build", "src", "ssm-sign-proxy"))
os.environ.setdefault("SSP_BOOTSTRAP", os.path.join(top, "_build", "lambda", "bootstrap"))
sys.path.insert(0, os.path.join(top, "tests", "integration"))

import base64  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import daemon_fixture  # noqa: E402
import harness  # noqa: E402
import standin_lambda as sl  # noqa: E402
import stream_client  # noqa: E402
import tls_origin  # noqa: E402

SIZE_MB = float(os.environ.get("SIZE_MB", "5"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PIECE = 65536
HOST = "api.example.test"


def body_pieces(slow):
    if slow:
        out = []
        for i in range(16):
            out.append(bytes([65 + i % 26]) * PIECE)
            out.append(0.1)
        return out[:-1]
    n = int(SIZE_MB * 1024 * 1024)
    return [bytes([97 + (i // PIECE) % 26]) * min(PIECE, n - i) for i in range(0, n, PIECE)]


def lambda_handler(mode, slow):
    pieces = body_pieces(slow)

    def buffered(inv):
        for p in pieces:
            if isinstance(p, float):
                time.sleep(p)
        body = b"".join(p for p in pieces if isinstance(p, bytes))
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(body).decode(), "isBase64Encoded": True}

    def streamed(inv):
        prelude = json.dumps({"statusCode": 200,
                              "headers": {"content-type": "application/octet-stream"}})
        return sl.Stream([prelude.encode() + b"\0" * 8] + pieces)
    return buffered if mode == "buffered" else streamed


class Bench(daemon_fixture.ProxyTestCase):
    def runTest(self):
        pass


def measure(d, rounds):
    ttfb, total, mbps = [], [], []
    for _ in range(rounds):
        r = stream_client.fetch(d.host, d.port, "http://%s/bench" % HOST, timeout=120)
        if not r.complete or r.status != 200:
            raise SystemExit("bench: request failed: %s %s" % (r.status, r.error))
        ttfb.append(r.ttfb * 1000)
        total.append((r.end_at - r.sent_at) * 1000)
        mbps.append(r.length / 1048576 / (r.end_at - r.sent_at))
    return statistics.median(ttfb), statistics.median(total), statistics.median(mbps), r.length


def run_lambda(tc, mode, slow):
    tc.lam.handler = lambda_handler(mode, slow)
    d = tc.start_daemon(config={"invoke_mode": mode, "log_level": "warn", "access_log": "off",
                                "timeouts": {"invoke": 60, "stream_idle": 30}})
    try:
        return measure(d, ROUNDS)
    finally:
        d.stop()


def run_local(tc, origin, params, mode, slow):
    pieces = body_pieces(slow)
    origin.handler = lambda req: tls_origin.Response(
        200, headers=[("Content-Type", "application/octet-stream")], stream=list(pieces))
    env = {"SSM_SIGN_PROXY_PARAMETERS_FILE": params,
           "SSM_SIGN_PROXY_CONNECT_TO": origin.connect_to(HOST),
           "AWS_CA_BUNDLE": origin.ca.ca_file,
           "SSM_SIGN_PROXY_RESPONSE_MODE": "streaming" if mode == "stream" else "buffered",
           "SSM_SIGN_PROXY_ORIGIN_TIMEOUT": "60"}
    cfg = {"function_name": None, "invoke_mode": mode, "log_level": "warn",
           "access_log": "off", "timeouts": {"invoke": 60, "stream_idle": 30},
           "local_function": {"command": harness.BOOTSTRAP, "concurrency": 1, "timeout": 60,
                              "environment": env}}
    d = tc.start_daemon(config=cfg, credentials=False)
    try:
        return measure(d, ROUNDS)
    finally:
        d.stop()


def main():
    tc = Bench()
    tc.setUp()
    origin = tls_origin.Origin()
    params = os.path.join(tempfile.mkdtemp(prefix="ssp-bench-stream-"), "parameters.yaml")
    with os.fdopen(os.open(params, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write('"/%s/headers/Authorization": "token bench"\n' % HOST)
    rows = []
    try:
        for setup in ("lambda", "local"):
            for slow in (False, True):
                for mode in ("buffered", "stream"):
                    if setup == "lambda":
                        t = run_lambda(tc, mode, slow)
                    else:
                        t = run_local(tc, origin, params, mode, slow)
                    what = "16 x 64 KiB, 100 ms apart" if slow else "%g MB at once" % SIZE_MB
                    rows.append((setup, what, mode) + t)
                    print("%-7s %-26s %-9s ttfb %8.1f ms  total %8.1f ms  %7.1f MB/s  (%d bytes)"
                          % rows[-1], flush=True)
    finally:
        origin.close()
        tc.tearDown()
        tc.doCleanups()
    print("\n| set-up | response | invoke_mode | time to first byte | whole response | MB/s |")
    print("|---|---|---|---|---|---|")
    for setup, what, mode, ttfb, total, mbps, _ in rows:
        print("| %s | %s | %s | %.1f ms | %.1f ms | %.1f |" % (setup, what, mode, ttfb, total, mbps))


if __name__ == "__main__":
    main()
