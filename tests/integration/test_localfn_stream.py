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


class LocalStream(LocalFunctionCase):
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


if __name__ == "__main__":
    harness.main()
