#!/usr/bin/env python3
"""Local function mode's Runtime API emulator and streaming answers: a
runtime that posts in response streaming mode in every shape (the same or a
new connection, one byte at a time, chunk extensions and 100-continue,
error trailers, dying mid-stream) is read right (src/rtstream.c), whether
the daemon gathers the answer (invoke_mode buffered, as Invoke does) or
passes it on as it comes (invoke_mode stream)."""

import os

import harness
import stream_client
import stream_runtime
from localfn_case import LocalFunctionCase

HOST = "api.example.test"


class RuntimeCase(LocalFunctionCase):
    def start_rt(self, invoke_mode="buffered", **kw):
        self.go_file = os.path.join(self.tmp, "go")
        cfg = {"invoke_mode": invoke_mode} if invoke_mode != "buffered" else {}
        return self.start_local(stream_runtime.write(self), concurrency=1, timeout=10,
                                environment={"LF_GO": self.go_file}, config=cfg, **kw)

    def check(self, d, path, status=200, body=None):
        r = d.curl("http://%s%s" % (HOST, path), timeout=15)
        self.assertEqual(r.status, status, r)
        if body is not None:
            self.assertEqual(r.body, body)
        return r


class LocalStream(RuntimeCase):
    """invoke_mode buffered: the answer is gathered, as Invoke does."""

    def test_gathered_answers(self):
        d = self.start_rt()
        r = self.check(d, "/plain/5000", body=stream_runtime.body_bytes(5000))
        self.assertEqual(r.header("X-Path"), "/plain/5000")
        self.check(d, "/onebyte", body=b"one byte at a time")
        self.check(d, "/ext", body=b"with extensions")
        self.check(d, "/newconn", body=stream_runtime.body_bytes(5000))
        self.check(d, "/classic", status=203, body=b"classic answer")
        # The connection is still in step: a plain answer after all that.
        self.check(d, "/plain/10", body=stream_runtime.body_bytes(10))

    def test_error_trailers_are_a_function_error(self):
        d = self.start_rt()
        r = self.check(d, "/error", status=502)
        self.assertIn(b"Test.Midway", r.body)
        self.assertIn(b"it broke midway", r.body)
        self.check(d, "/plain/10", body=stream_runtime.body_bytes(10))

    def test_dying_mid_stream(self):
        d = self.start_rt()
        r = self.check(d, "/die", status=502)
        self.assertIn(b"cut short", r.body)
        # A new process takes over.
        self.check(d, "/plain/10", body=stream_runtime.body_bytes(10))

    def test_more_than_6mb_gathered_is_refused(self):
        d = self.start_rt()
        r = self.check(d, "/plain/%d" % (7 << 20), status=502)
        self.assertIn(b"6291456", r.body)
        self.check(d, "/plain/10", body=stream_runtime.body_bytes(10))


class LocalStreamPassedOn(RuntimeCase):
    """invoke_mode stream: the same answers passed on as they come."""

    def fetch(self, d, path, **kw):
        return stream_client.fetch(d.host, d.port, "http://%s%s" % (HOST, path), keep=True, **kw)

    def test_answers_pass_through(self):
        d = self.start_rt(invoke_mode="stream")
        for path, body in (("/plain/300000", stream_runtime.body_bytes(300000)),
                           ("/onebyte", b"one byte at a time"), ("/ext", b"with extensions"),
                           ("/newconn", stream_runtime.body_bytes(5000))):
            with self.subTest(path=path):
                r = self.fetch(d, path)
                self.assertTrue(r.complete, r.error)
                self.assertEqual((r.status, r.body), (200, body))
                self.assertEqual(r.header("X-Path"), [path])
                self.assertEqual(r.header("Transfer-Encoding"), ["chunked"])
        r = self.fetch(d, "/classic")
        self.assertEqual((r.status, r.body), (203, b"classic answer"))

    def test_first_bytes_while_the_function_still_works(self):
        d = self.start_rt(invoke_mode="stream")
        go = lambda: open(self.go_file, "w").close()  # noqa: E731
        r = self.fetch(d, "/pause", on_first_byte=go, timeout=15)
        self.assertTrue(r.complete, r.error)
        self.assertEqual(r.body, b"first second")

    def test_failures_after_the_head_cut_the_response(self):
        d = self.start_rt(invoke_mode="stream")
        for path in ("/error", "/die"):
            with self.subTest(path=path):
                r = self.fetch(d, path)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"partial")
                self.assertFalse(r.complete, "a failed answer looked complete")
        # The line is written just after the client's connection closes.
        d.wait_log("GET %s /error 200 7 " % HOST)
        d.wait_log("GET %s /die 200 7 " % HOST)
        lines = [l for l in d.log().splitlines() if " /error 200 7 " in l or " /die 200 7 " in l]
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all(l.endswith(" aborted") for l in lines), lines)
        # The next answer is whole again.
        r = self.fetch(d, "/plain/10")
        self.assertTrue(r.complete, r.error)


if __name__ == "__main__":
    harness.main()
