#!/usr/bin/env python3
"""The function in streaming mode (SSM_SIGN_PROXY_RESPONSE_MODE=streaming):
the answer goes to the Runtime API stand-in as a chunked streaming post
(prelude, 8 NUL bytes, the origin's body as it arrives), large bodies pass
without being held, the first bytes go out before the origin has finished,
and an origin that fails mid-body is reported in the trailers."""

import hashlib
import threading
import time

import harness
import lambda_case
import stream_client
import tls_origin
from lambda_case import HOST

STREAMING = {"SSM_SIGN_PROXY_RESPONSE_MODE": "streaming"}
MB = 1024 * 1024


def pattern(total, piece=MB):
    """Deterministic non-repeating bytes, piece by piece, and their sha256."""
    sha = hashlib.sha256()
    pieces = []
    n = 0
    i = 0
    while n < total:
        block = hashlib.sha256(b"%d" % i).digest() * (piece // 32)
        block = block[:min(piece, total - n)]
        pieces.append(block)
        sha.update(block)
        n += len(block)
        i += 1
    return pieces, sha.hexdigest()


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class TestStream(lambda_case.FunctionTestCase):
    def setUp(self):
        super().setUp()
        self.params(HOST, {"headers/X-Api-Key": "stream-secret-1"})

    def wait_output(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.fn.output():
                return
            time.sleep(0.02)
        self.fail("%r not in the function's output:\n%s" % (text, self.fn.output()[-2000:]))

    def start_streaming(self, extra=None):
        env = dict(STREAMING)
        env.update(extra or {})
        return self.start_function(extra=env)

    def test_prelude_headers_body(self):
        body = b"streamed body \x00\xff" * 100
        self.origin.push(tls_origin.Response(201, headers=[
            ("Content-Type", "application/octet-stream"), ("X-One", "1"),
            ("X-Rep", "a"), ("X-Rep", "b"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
            body=body))
        self.start_streaming()
        inv = self.rt.invoke_raw(self.event(path="/s"), timeout=10)
        self.assertTrue(inv.streaming, "the function did not stream: %r" % (inv.headers,))
        h = inv.headers
        self.assertEqual(h.get("Lambda-Runtime-Function-Response-Mode"), "streaming")
        self.assertEqual(h.get("Content-Type"), "application/vnd.awslambda.http-integration-response")
        self.assertIn("chunked", h.get("Transfer-Encoding", ""))
        self.assertIn("Lambda-Runtime-Function-Error-Type", h.get("Trailer", ""))
        p = inv.prelude
        self.assertEqual(p["statusCode"], 201)
        self.assertEqual(p["headers"]["X-One"], "1")
        self.assertEqual(p["headers"]["Content-Type"], "application/octet-stream")
        self.assertEqual(p["multiValueHeaders"]["X-Rep"], ["a", "b"])
        self.assertEqual(p["cookies"], ["a=1", "b=2"])
        self.assertNotIn("Set-Cookie", p["headers"])
        self.assertEqual(inv.stream_body, body)
        self.assertEqual(inv.trailers, {})
        self.assertEqual(self.origin.requests[-1].header("X-Api-Key"), ["stream-secret-1"])
        self.wait_output("status=201")

    def test_large_body_not_held(self):
        pieces, sha = pattern(50 * MB)
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "application/octet-stream")],
                                             stream=pieces))
        self.rt.keep_stream_body = False
        self.start_streaming()
        before = vm_hwm_kb(self.fn.pid)
        inv = self.rt.invoke_raw(self.event(path="/big"), timeout=120)
        peak = vm_hwm_kb(self.fn.pid)
        self.assertEqual(inv.prelude["statusCode"], 200)
        self.assertEqual(inv.stream_len, 50 * MB)
        self.assertEqual(inv.stream_sha256, sha)
        print("bootstrap peak RSS %d kB before, %d kB after a 50 MB streamed body (+%d kB)"
              % (before, peak, peak - before))
        # Holding the body would take 50 MB; the bounded buffer keeps the
        # function's peak far below that.
        stream_client.assert_flat(self, self.fn.pid, peak - before, 16 * 1024, "bootstrap")

    def test_first_bytes_before_the_origin_finishes(self):
        # The origin sends a first piece, then waits until the Runtime API
        # stand-in has received it: a function that held the body until the
        # origin finished would never deliver it (and the test would fail).
        seen = threading.Event()
        self.rt.stream_hook = lambda rid, data: seen.set()
        got = {}

        def stream():
            yield b"first piece"
            got["seen"] = seen.wait(10)
            yield b" and the rest"

        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")], stream=stream()))
        self.start_streaming()
        inv = self.rt.invoke_raw(self.event(), timeout=20)
        self.assertTrue(got.get("seen"), "the first piece reached the Runtime API only at the end")
        self.assertEqual(inv.stream_body, b"first piece and the rest")
        self.assertGreaterEqual(inv.stream_chunks, 2)

    def test_origin_cut_mid_body(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=[b"x" * 100000, 0.1], cut=True))
        self.start_streaming()
        inv = self.rt.invoke_raw(self.event(path="/cut"), timeout=10)
        self.assertEqual(inv.prelude["statusCode"], 200)
        self.assertEqual(inv.error_type, "Runtime.OriginError")
        self.assertEqual(inv.error_body["errorType"], "Runtime.OriginError")
        self.assertIn("cut short", inv.error_body["errorMessage"])
        self.wait_output("truncated=1")

    def test_origin_cut_before_the_prelude_went_out_is_a_clean_502(self):
        # Content-Length promised, nothing sent: the prelude is still ours
        # to choose.
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=[], cut=True, length=1000))
        self.start_streaming()
        inv = self.rt.invoke_raw(self.event(), timeout=10)
        self.assertEqual(inv.prelude["statusCode"], 502)
        self.assertIn(b"cannot reach", inv.stream_body)
        self.assertEqual(inv.trailers, {})

    def test_unreachable_origin(self):
        port = harness.free_port()
        env = self.function_env(connect_to=["%s:443:127.0.0.1:%d" % (HOST, port)], extra=STREAMING)
        self.start_function(env=env)
        inv = self.rt.invoke_raw(self.event(), timeout=10)
        self.assertTrue(inv.streaming)
        self.assertEqual(inv.prelude["statusCode"], 502)
        self.assertEqual(inv.prelude["headers"]["Content-Type"], "text/plain; charset=utf-8")
        self.assertIn(b"cannot", inv.stream_body)

    def test_function_answers_stream_too(self):
        self.start_streaming()
        inv = self.rt.invoke_raw(self.event(host="unknown.example.test"), timeout=10)
        self.assertTrue(inv.streaming)
        self.assertEqual(inv.prelude["statusCode"], 407)
        self.assertEqual(inv.prelude["headers"]["Proxy-Authenticate"], "ssm-sign-proxy")
        self.assertIn(b"no signing parameters", inv.stream_body)

    def test_head_and_empty_bodies(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain"), ("X-H", "1")],
                                             body=b"ignored"))
        self.origin.push(tls_origin.Response(204, headers=[("X-E", "1")]))
        self.start_streaming()
        inv = self.rt.invoke_raw(self.event(method="HEAD"), timeout=10)
        self.assertEqual(inv.prelude["statusCode"], 200)
        self.assertEqual(inv.prelude["headers"]["X-H"], "1")
        self.assertEqual(inv.stream_body, b"")
        inv = self.rt.invoke_raw(self.event(method="DELETE"), timeout=10)
        self.assertEqual(inv.prelude["statusCode"], 204)
        self.assertEqual(inv.stream_body, b"")

    def test_slow_runtime_reader_pauses_the_origin(self):
        # The Runtime API reads slowly: the function's memory stays flat
        # (the origin is paused, not buffered).
        pieces, sha = pattern(20 * MB)
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "application/octet-stream")],
                                             stream=pieces))
        self.rt.keep_stream_body = False
        self.rt.stream_hook = lambda rid, data: time.sleep(0.0005)
        self.start_streaming()
        before = vm_hwm_kb(self.fn.pid)
        inv = self.rt.invoke_raw(self.event(), timeout=120)
        peak = vm_hwm_kb(self.fn.pid)
        self.assertEqual(inv.stream_sha256, sha)
        print("bootstrap peak RSS +%d kB with a slow Runtime API reader" % (peak - before))
        stream_client.assert_flat(self, self.fn.pid, peak - before, 16 * 1024, "bootstrap")

    def test_bad_mode_is_an_init_error(self):
        self.start_function(extra={"SSM_SIGN_PROXY_RESPONSE_MODE": "bogus"}, wait=False)
        body, _ = self.rt.wait_init_error(timeout=5)
        self.assertIn("SSM_SIGN_PROXY_RESPONSE_MODE", body["errorMessage"])

    def test_buffered_stays_the_default(self):
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self.assertEqual(lambda_case.response_body(resp), b"origin ok")
        self.assertFalse(self.rt.invocations[-1].streaming)


if __name__ == "__main__":
    harness.main()
