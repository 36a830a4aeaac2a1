#!/usr/bin/env python3
"""invoke_mode: stream end to end. Against the stand-in Lambda's
InvokeWithResponseStream (a real event stream, SigV4-checked): the prelude
becomes the client's head as soon as it is complete, the body streams
(chunked to HTTP/1.1, close-delimited to 1.0), 50 MB pass intact without
the worker's memory growing, a slow client pauses the stream instead of
filling memory, and failures before the first byte are clean 502/504 while
failures after it cut the client's response short (no chunked terminator)
with an access-log line saying so. In local function mode with the real
bootstrap in streaming mode and a TLS origin: the same properties through
the Runtime API emulator."""

import itertools
import os
import threading
import time

import daemon_fixture
import harness
import standin_lambda as sl
import stream_client
import tls_origin
from localfn_case import LocalFunctionCase

MB = 1024 * 1024


def complete(tc, r):
    """Assert r arrived whole; say what the daemon logged otherwise."""
    if not r.complete:
        warn = [l for l in tc.d.log().splitlines() if " warn:" in l or " error:" in l]
        tc.fail("%s; the daemon said:\n%s" % (r.error, "\n".join(warn[-5:])))
HOST = "api.example.test"
URL = "http://%s/big" % HOST
STREAM = {"invoke_mode": "stream", "timeouts": {"invoke": 5, "stream_idle": 5}}


def prelude(status=200, headers=None, cookies=None, multi=None):
    import json
    p = {"statusCode": status, "headers": dict(headers or {})}
    if cookies:
        p["cookies"] = cookies
    if multi:
        p["multiValueHeaders"] = multi
    return json.dumps(p).encode() + b"\0" * 8


class StreamLambda(daemon_fixture.ProxyTestCase):
    def go(self, **kw):
        cfg = daemon_fixture.merge(dict(STREAM), kw.pop("config", {}) or {})
        self.d = self.start_daemon(config=cfg, **kw)
        return self.d

    def fetch(self, url=URL, **kw):
        return stream_client.fetch(self.d.host, self.d.port, url, **kw)

    def worker(self):
        # The worker that serves (after its readiness, not one being replaced).
        self.assertTrue(self.fetch(url="http://%s/warm-up" % HOST).complete)
        return harness.wait_for(lambda: harness.workers_of(self.d.pid), what="a worker")[0]

    def test_head_headers_and_body(self):
        self.lam.handler = lambda inv: sl.Stream([
            prelude(201, {"Content-Type": "text/plain", "X-One": "1", "Connection": "x-hop",
                          "Content-Length": "999"},
                    cookies=["a=1", "b=2"], multi={"X-Rep": ["a", "b"]}),
            b"hello ", b"streamed ", b"world"])
        self.go()
        r = self.fetch(keep=True)
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.status, 201)
        self.assertEqual(r.body, b"hello streamed world")
        self.assertEqual(r.header("X-One"), ["1"])
        self.assertEqual(r.header("X-Rep"), ["a", "b"])
        self.assertEqual(r.header("Set-Cookie"), ["a=1", "b=2"])
        self.assertEqual(r.header("Transfer-Encoding"), ["chunked"])
        # The function's framing and hop-by-hop fields never go out.
        self.assertEqual(r.header("Content-Length"), [])
        self.assertNotIn("x-hop", ",".join(r.header("Connection")))
        inv = self.lam.last()
        self.assertTrue(inv.streaming, "the daemon did not call InvokeWithResponseStream")
        self.assertEqual(inv.function, self.function_name)
        self.assertEqual(inv.event["path"], "/big")
        self.d.wait_log("GET %s /big 201 20 " % HOST)

    def test_body_behind_a_long_prelude_is_sent_whole(self):
        # A long prelude split over pieces, body in the same piece as its
        # end, a small client buffer: every body byte arrives, in order.
        # (pstream_data() once stopped writing the bytes queued behind the
        # prelude when the client buffer filled; this exchange does not
        # reproduce that interleaving reliably, see the commit.)
        body = bytes(range(256)) * 4096
        p = prelude(200, {"Content-Type": "application/octet-stream", "X-Big": "b" * 40000})
        self.lam.handler = lambda inv: sl.Stream([p[:30000], p[30000:] + body[:300000],
                                                  body[300000:]])
        self.go(config={"limits": {"stream_buffer": "16K"}})
        r = self.fetch(keep=True)
        complete(self, r)
        self.assertEqual(len(r.body), len(body))
        self.assertEqual(r.body, body)

    def test_http10_client_gets_a_close_delimited_body(self):
        self.lam.handler = lambda inv: sl.Stream([prelude(200, {"Content-Type": "text/plain"}),
                                                  b"one ", b"two"])
        self.go()
        r = self.fetch(version="1.0", keep=True)
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.body, b"one two")
        self.assertEqual(r.header("Transfer-Encoding"), [])

    def test_buffered_style_answer_through_the_stream(self):
        # A function that answers the classic way: Lambda streams its JSON.
        self.lam.handler = sl.respond(202, "classic", headers={"X-Classic": "yes"})
        self.go()
        r = self.fetch(keep=True)
        self.assertTrue(r.complete, r.error)
        self.assertEqual((r.status, r.body, r.header("X-Classic")), (202, b"classic", ["yes"]))

    def test_50mb_intact_and_memory_flat(self):
        gen, digest = stream_client.pattern(50 * MB)
        self.lam.handler = lambda inv: sl.Stream(lambda: itertools.chain([prelude(200, {
            "Content-Type": "application/octet-stream"})], gen()))
        self.go()
        w = self.worker()
        # A first request warms the worker up (allocator, curl handles).
        small_gen, _ = stream_client.pattern(1 * MB)
        self.lam.push(lambda inv: sl.Stream(lambda: itertools.chain([prelude()], small_gen())))
        self.assertTrue(self.fetch().complete)
        before = stream_client.rss_kb(w)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], stream_client.rss_kb(w))
                time.sleep(0.02)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        r = self.fetch(timeout=120)
        stop.set()
        t.join()
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.length, 50 * MB)
        self.assertEqual(r.sha256, digest)
        grew = peak[0] - before
        print("50 MB streamed: worker RSS %d kB before, peak +%d kB; %.1f MB/s"
              % (before, grew, 50 / (r.end_at - r.sent_at)))
        stream_client.assert_flat(self, w, grew, 4 * 1024, "worker")

    def test_slow_reader_keeps_memory_flat(self):
        gen, digest = stream_client.pattern(16 * MB)
        self.lam.handler = lambda inv: sl.Stream(lambda: itertools.chain([prelude()], gen()))
        self.go(config={"limits": {"stream_buffer": "128K"}})
        w = self.worker()
        self.assertTrue(self.fetch(url="http://%s/warm" % HOST).complete)
        before = stream_client.rss_kb(w)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], stream_client.rss_kb(w))
                time.sleep(0.02)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        # 16 kB every 2 ms at most: about 8 MB/s, far slower than the stand-in.
        r = self.fetch(timeout=120, rcvbuf=32768, read_size=16384, pause=0.002)
        stop.set()
        t.join()
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.sha256, digest)
        grew = peak[0] - before
        print("16 MB to a slow reader: worker RSS peak +%d kB" % grew)
        stream_client.assert_flat(self, w, grew, 4 * 1024, "worker, slow reader")

    def test_first_bytes_before_the_function_finishes(self):
        # The function sends its prelude and a first piece, then waits until
        # the client has them: a daemon that buffered would never deliver.
        seen = threading.Event()
        got = {}

        def items():
            yield prelude(200, {"Content-Type": "text/plain"})
            yield b"first"
            got["seen"] = seen.wait(10)
            yield b" second"
        self.lam.handler = lambda inv: sl.Stream(items)
        self.go()
        r = self.fetch(keep=True, on_first_byte=seen.set)
        self.assertTrue(got.get("seen"), "the client got nothing before the function finished")
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.body, b"first second")
        print("first bytes after %.1f ms" % (r.ttfb * 1000))

    def test_first_byte_timing_with_a_2s_pause(self):
        # Reported, not asserted: first bytes come long before the 2 s pause ends.
        self.lam.handler = lambda inv: sl.Stream([prelude(), b"first", 2.0, b"rest"])
        self.go()
        r = self.fetch(keep=True)
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.body, b"firstrest")
        print("first bytes after %.1f ms, whole answer after %.1f ms"
              % (r.ttfb * 1000, (r.end_at - r.sent_at) * 1000))

    def assert_cut(self, r, body_prefix=None):
        self.assertEqual(r.status, 200)
        self.assertFalse(r.complete, "a failed stream looked complete: %r" % r.body[:100])
        self.assertIsNotNone(r.error)
        if body_prefix is not None and not r.body.startswith(body_prefix):
            warn = [l for l in self.d.log().splitlines() if "warn" in l or "error" in l or "debug: invoke" in l]
            self.fail("%r; the daemon said:\n%s" % (r.body[:100], "\n".join(warn[-6:])))

    def test_function_error_after_first_byte_cuts_the_response(self):
        self.lam.handler = lambda inv: sl.Stream([prelude(), b"partial",
                                                  sl.Complete("Unhandled", "boom")])
        self.go()
        r = self.fetch(keep=True)
        self.assert_cut(r, b"partial")
        self.d.wait_log("GET %s /big 200 7 " % HOST)
        self.d.wait_log("aborted")

    def test_broken_streams_cut_the_response(self):
        for end in (sl.CUT, sl.CORRUPT, sl.Exception_("ServiceException", "internal")):
            with self.subTest(end=end):
                self.lam.handler = lambda inv, end=end: sl.Stream([prelude(), b"abc", end])
                if not hasattr(self, "d"):
                    self.go()
                self.assert_cut(self.fetch(keep=True), b"abc")

    def test_failures_before_the_first_byte_are_clean(self):
        self.go()
        cases = [
            (sl.Stream([sl.Complete("Unhandled", "boom")]), 502, "Unhandled"),
            (sl.Stream([sl.Exception_("ServiceException", "bad")]), 502, "ServiceException"),
            (sl.Stream([b"not a prelude and not JSON"]), 502, "invalid response"),
            (sl.Stream([b'{"statusCode": 99}' + b"\0" * 8, b"x"]), 502, "statusCode"),
        ]
        for reply, status, text in cases:
            with self.subTest(text=text):
                self.lam.push(lambda inv, reply=reply: reply)
                r = self.fetch(keep=True)
                self.assertTrue(r.complete, r.error)
                self.assertEqual(r.status, status)
                self.assertIn(text, r.body.decode("utf-8", "replace"))

    def test_throttling_is_retried_before_the_first_byte(self):
        self.lam.push(sl.throttle(), sl.throttle())
        self.lam.handler = lambda inv: sl.Stream([prelude(), b"ok"])
        self.go(config={"retry": {"attempts": 3, "base": 0.01, "cap": 0.02}})
        r = self.fetch(keep=True)
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.body, b"ok")
        self.assertEqual(len(self.lam.invocations), 3)

    def test_no_prelude_within_the_invoke_budget_is_504(self):
        self.lam.handler = lambda inv: sl.Stream([3.0, prelude(), b"late"])
        self.go(config={"timeouts": {"invoke": 0.5, "connect": 0.2}})
        r = self.fetch(keep=True)
        self.assertEqual(r.status, 504, r.body)

    def test_stream_idle_timeout_cuts_a_stalled_stream(self):
        self.lam.handler = lambda inv: sl.Stream([prelude(), b"some", 5.0, b"never"])
        self.go(config={"timeouts": {"stream_idle": 0.5}})
        r = self.fetch(keep=True, timeout=10)
        self.assert_cut(r, b"some")
        self.d.wait_log("stalled")

    def test_a_completed_stream_is_cached(self):
        self.lam.handler = lambda inv: sl.Stream([
            prelude(200, {"Content-Type": "text/plain", "Cache-Control": "max-age=60"}),
            b"cached ", b"body"])
        self.go(config={"cache": {"ttl": 60}})
        r1 = self.fetch(keep=True)
        r2 = self.fetch(keep=True)
        self.assertEqual((r1.body, r2.body), (b"cached body", b"cached body"))
        self.assertEqual(len(self.lam.invocations), 1, "the second request was not a hit")
        self.assertIn("hit", ",".join(r2.header("Cache-Status")))

    def test_a_failed_stream_is_not_cached(self):
        self.lam.push(lambda inv: sl.Stream([
            prelude(200, {"Cache-Control": "max-age=60"}), b"part", sl.CUT]))
        self.lam.handler = lambda inv: sl.Stream([
            prelude(200, {"Cache-Control": "max-age=60"}), b"whole"])
        self.go(config={"cache": {"ttl": 60}})
        self.assertFalse(self.fetch().complete)
        r = self.fetch(keep=True)
        self.assertEqual(r.body, b"whole")
        self.assertEqual(len(self.lam.invocations), 2)


class StreamLocal(LocalFunctionCase):
    """Local function mode, the real bootstrap in streaming mode, a TLS
    origin: the whole path without AWS."""

    def setUp(self):
        super().setUp()
        if not os.access(harness.BOOTSTRAP, os.X_OK):
            self.fail("lambda/bootstrap is not built (%s)" % harness.BOOTSTRAP)
        self.origin = tls_origin.Origin()
        self.addCleanup(self.origin.close)
        self.params = os.path.join(self.tmp, "parameters.yaml")
        fd = os.open(self.params, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write('"/%s/headers/Authorization": "token local-stream-secret"\n' % HOST)

    def start_fn(self, mode="streaming", invoke_mode="stream", config=None):
        env = {
            "SSM_SIGN_PROXY_PARAMETERS_FILE": self.params,
            "SSM_SIGN_PROXY_CONNECT_TO": self.origin.connect_to(HOST),
            "AWS_CA_BUNDLE": self.origin.ca.ca_file,
            "SSM_SIGN_PROXY_RESPONSE_MODE": mode,
            "SSM_SIGN_PROXY_ORIGIN_TIMEOUT": "60",
        }
        cfg = {"invoke_mode": invoke_mode, "timeouts": {"stream_idle": 5}}
        cfg = daemon_fixture.merge(cfg, config or {})
        self.d = self.start_local(harness.BOOTSTRAP, concurrency=1, timeout=60, environment=env,
                                  credentials=False, config=cfg)
        return self.d

    def fetch(self, url=URL, **kw):
        return stream_client.fetch(self.d.host, self.d.port, url, **kw)

    def test_50mb_from_a_tls_origin_intact_memory_flat(self):
        gen, digest = stream_client.pattern(50 * MB)
        small, _ = stream_client.pattern(MB)
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=small()))
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "application/x-big")],
                                             stream=gen()))
        self.start_fn()
        self.assertTrue(self.fetch(url="http://%s/warm" % HOST).complete)
        w = harness.workers_of(self.d.pid)[0]
        before = stream_client.rss_kb(w)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], stream_client.rss_kb(w))
                time.sleep(0.02)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        r = self.fetch(timeout=120)
        stop.set()
        t.join()
        complete(self, r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), ["application/x-big"])
        self.assertEqual((r.length, r.sha256), (50 * MB, digest))
        self.assertEqual(self.origin.requests[-1].header("Authorization"),
                         ["token local-stream-secret"])
        grew = peak[0] - before
        print("local mode, 50 MB: worker RSS peak +%d kB, %.1f MB/s"
              % (grew, 50 / (r.end_at - r.sent_at)))
        stream_client.assert_flat(self, w, grew, 4 * 1024, "worker, local mode")

    def test_slow_reader_pauses_the_function(self):
        # The daemon stops reading the function's connection while the
        # client is behind, and resumes it (this hung when the resume went
        # to the watcher of the wrong connection).
        gen, digest = stream_client.pattern(8 * MB)
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=gen()))
        self.start_fn(config={"limits": {"stream_buffer": "64K"}})
        r = self.fetch(timeout=60, rcvbuf=32768, read_size=16384, pause=0.002)
        complete(self, r)
        self.assertEqual(r.sha256, digest)

    def test_first_bytes_early(self):
        seen = threading.Event()
        got = {}

        def stream():
            yield b"first"
            got["seen"] = seen.wait(10)
            yield b" then the rest"
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=stream()))
        self.start_fn()
        r = self.fetch(keep=True, on_first_byte=seen.set)
        self.assertTrue(got.get("seen"), "nothing reached the client before the origin finished")
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.body, b"first then the rest")
        print("local mode: first bytes after %.1f ms" % (r.ttfb * 1000))

    def test_first_byte_timing_with_a_2s_pause(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=[b"first", 2.0, b"rest"]))
        self.start_fn()
        r = self.fetch(keep=True)
        self.assertTrue(r.complete, r.error)
        print("local mode: first bytes after %.1f ms (the origin pauses 2 s after them)"
              % (r.ttfb * 1000))

    def test_origin_failing_mid_stream_cuts_the_response(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                             stream=[b"x" * 100000, 0.2], cut=True))
        self.start_fn()
        r = self.fetch(keep=True)
        self.assertEqual(r.status, 200)
        self.assertFalse(r.complete, "the cut answer looked complete")
        self.d.wait_log("aborted")

    def test_streaming_function_with_buffered_invoke_mode(self):
        # invoke_mode buffered, function streaming: the emulator gathers the
        # answer (as Invoke does) and the daemon reads the integration response.
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain"),
                                                           ("X-From", "origin")],
                                             body=b"gathered body"))
        self.start_fn(invoke_mode="buffered")
        r = self.d.curl("http://%s/g" % HOST)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"gathered body")
        self.assertEqual(r.header("X-From"), "origin")

    def test_buffered_function_with_stream_invoke_mode(self):
        self.origin.push(tls_origin.Response(203, headers=[("Content-Type", "text/plain")],
                                             body=b"classic"))
        self.start_fn(mode="buffered")
        r = self.fetch(keep=True)
        self.assertTrue(r.complete, r.error)
        self.assertEqual((r.status, r.body), (203, b"classic"))


if __name__ == "__main__":
    harness.main()
