#!/usr/bin/env python3
"""libssm-sign-proxy's public API (include/ssm-sign-proxy.h) against the
stand-in Lambda, which checks every signature with botocore. The calls are
made by tests/unit/libssp_driver, a program that links only the shared
library: the blocking call (event encoding, response decoding, error kinds
and statuses, retries, clock-skew correction, keep-alive), 8 threads x 200
calls on one client, the asynchronous calls with cancellation on a caller's
event_base, a raw-payload invoke, streamed calls (head, body pieces with
pauses, done; failures after the head), credentials that expire mid-run (the
in-process provider chain refreshing them), and silence on stderr with no
log callback set."""

import base64
import calendar
import json
import os
import subprocess
import time

import creds_standins as cs
import harness
import standin_lambda as sl

DRIVER = os.environ.get("SSP_LIBSSP_DRIVER",
                        os.path.join(harness.BUILDDIR, "tests", "unit", "libssp_driver"))


class LibraryTest(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.lam = sl.StandinLambda().start()
        self.addCleanup(self.lam.stop)

    def tearDown(self):
        super().tearDown()
        self.assertEqual(self.lam.signature_failures if not getattr(self, "bad_sigs_ok", False)
                         else [], [], "botocore rejected a signature")

    def env(self, **extra):
        env = harness.clean_env({
            "AWS_ENDPOINT_URL_LAMBDA": self.lam.url,
            "AWS_ACCESS_KEY_ID": sl.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": sl.SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        })
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run_driver(self, *args, env=None, timeout=60, quiet=True):
        p = subprocess.run([DRIVER] + [a if isinstance(a, bytes) else str(a) for a in args],
                           env=env or self.env(), capture_output=True, timeout=timeout)
        if quiet:
            # No log callback, no output: the library never writes to stderr.
            self.assertEqual(p.stderr, b"", "the library wrote to stderr")
        lines = p.stdout.decode().splitlines()
        self.assertTrue(lines, "no output (exit %d): %r" % (p.returncode, p.stderr[-2000:]))
        return p.returncode, json.loads(lines[-1])

    def call(self, method, url, body="", *headers, **kw):
        return self.run_driver("call", method, url, body, *headers, **kw)

    # --- the ABI -----------------------------------------------------------------

    def test_exports_only_the_public_api(self):
        """The shared library exports the header's functions and nothing
        else (the common/ modules inside stay hidden), each with a man page."""
        so = os.path.join(harness.BUILDDIR, "lib", ".libs", "libssm-sign-proxy.so")
        out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                             text=True, check=True).stdout
        exported = {l.split()[-1].split("@")[0] for l in out.splitlines()
                    if l.split()[1] in ("T", "W", "D", "B")}
        exported.discard("SSM_SIGN_PROXY_0.1")
        with open(os.path.join(harness.SRCDIR, "include", "ssm-sign-proxy.h")) as f:
            header = f.read()
        self.assertTrue(exported)
        for sym in sorted(exported):
            self.assertTrue(sym.startswith("ssp_"), "%s is exported" % sym)
            self.assertIn(sym + "(", header, "%s is not in the header" % sym)
            self.assertTrue(os.path.exists(os.path.join(harness.SRCDIR, "doc", "man3", sym + ".3")),
                            "%s has no man page" % sym)

    # --- arguments -----------------------------------------------------------

    def test_argument_checks(self):
        rc, out = self.run_driver("api")
        self.assertEqual(rc, 0)
        self.assertTrue(out["no_function"])
        self.assertEqual(out["bad_timeouts"], -1)
        self.assertEqual(out["bad_retry"], -1)
        self.assertEqual(out["bad_endpoint"], -1)
        self.assertTrue(out["no_method"])
        self.assertEqual(out["header_crlf"], -1, "a header value with CRLF was accepted")
        self.assertEqual(out["header_colon"], -1)
        self.assertEqual(out["bad_url_rc"], -1)
        self.assertEqual(out["bad_url"]["error"]["kind"], "invalid")
        self.assertEqual(out["bad_url"]["error"]["status"], 400)
        self.assertEqual(out["too_large"]["error"]["kind"], "too_large")
        self.assertEqual(out["too_large"]["error"]["status"], 413)
        self.assertIn("6291456", out["too_large"]["error"]["message"])
        self.assertEqual(self.lam.count(), 0, "a refused request reached Lambda")

    # --- the event and the response ------------------------------------------

    def test_event_and_response(self):
        rc, out = self.call("POST", "http://api.example.test/a%2Fb/c?x=1&y=%20z&x=2&flag",
                            "hello", "X-One:1", "X-Multi:a", "X-Multi:b", "Connection:X-Hop",
                            "X-Hop:secret-hop", "Keep-Alive:timeout=5")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["status"], 200)
        self.assertTrue(out["nul_terminated"])
        self.assertIn(["content-type", "application/json"], out["headers"])
        self.assertTrue(out["request_id"])
        inv = self.lam.last()
        self.assertEqual(inv.function, "signer")
        ev = inv.event
        self.assertEqual(ev["httpMethod"], "POST")
        self.assertEqual(ev["path"], "/a%2Fb/c")
        self.assertEqual(ev["multiValueQueryStringParameters"],
                         {"x": ["1", "2"], "y": ["%20z"], "flag": [""]})
        mh = {k.lower(): v for k, v in ev["multiValueHeaders"].items()}
        self.assertEqual(mh["host"], ["api.example.test"])
        self.assertEqual(mh["x-multi"], ["a", "b"])
        for hop in ("connection", "x-hop", "keep-alive"):
            self.assertNotIn(hop, mh)
        self.assertEqual(ev["body"], "hello")
        self.assertFalse(ev["isBase64Encoded"])
        self.assertIn("elb", ev["requestContext"])
        # The response is the function's: its body is the echoed event.
        self.assertEqual(json.loads(out["body"])["path"], "/a%2Fb/c")

    def test_binary_both_ways(self):
        self.lam.handler = sl.respond(201, b"\x00\xff\xfe binary", headers={"X-R": "1"},
                                      multi_value_headers={"Set-Cookie": ["a=1", "b=2"],
                                                           "Connection": ["close"]})
        rc, out = self.call("PUT", "http://api.example.test/bin", b"\xff\xfe\x80")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["status"], 201)
        self.assertEqual(bytes.fromhex(out["body_hex"]), b"\x00\xff\xfe binary")
        names = [h[0].lower() for h in out["headers"]]
        self.assertEqual(names.count("set-cookie"), 2)
        self.assertNotIn("connection", names, "a hop-by-hop header came through")
        ev = self.lam.last().event
        self.assertTrue(ev["isBase64Encoded"])
        self.assertEqual(base64.b64decode(ev["body"]), b"\xff\xfe\x80")

    def test_raw_invoke(self):
        self.lam.handler = lambda inv: sl.Reply(200, [("Content-Type", "application/json")],
                                                json.dumps({"got": inv.event}))
        rc, out = self.run_driver("invoke", '{"anything": [1, 2]}')
        self.assertEqual(out["status"], 200)
        self.assertEqual(json.loads(out["body"]), {"got": {"anything": [1, 2]}})

    # --- errors: what the daemon would answer --------------------------------

    def test_function_error(self):
        self.lam.handler = sl.function_error("boom", "ValueError")
        rc, out = self.call("GET", "http://api.example.test/")
        self.assertEqual(rc, 1)
        e = out["error"]
        self.assertEqual((e["kind"], e["status"], e["function_error"]), ("function", 502, "Unhandled"))
        self.assertIn("ValueError", e["message"])
        self.assertIn("boom", e["message"])
        kinds = [ev["kind"] for ev in out["events"]]
        self.assertEqual(kinds, ["attempt", "function_error"], out["events"])
        fe = out["events"][1]
        self.assertEqual((fe["reason"], fe["attempt"]), ("Unhandled", 1))
        self.assertIn("boom", fe["message"])
        self.assertEqual(fe["request_id"], e["request_id"])

    def test_invalid_function_response(self):
        self.lam.handler = lambda inv: sl.Reply(200, [], "not json")
        rc, out = self.call("GET", "http://api.example.test/")
        self.assertEqual(out["error"]["kind"], "function")
        self.assertIn("invalid response", out["error"]["message"])

    def test_throttled_past_the_budget(self):
        self.lam.handler = sl.throttle()
        rc, out = self.call("GET", "http://api.example.test/")
        e = out["error"]
        self.assertEqual((e["kind"], e["status"], e["attempts"]), ("throttled", 503, 4))
        self.assertEqual(self.lam.count(), 4)

    def test_throttle_then_success(self):
        self.lam.push(sl.throttle(), sl.throttle())
        rc, out = self.call("POST", "http://api.example.test/", "x")
        self.assertEqual(out["status"], 200, out)
        self.assertEqual(self.lam.count(), 3, "throttling is retried for any method")
        # The observer hears every attempt, each throttle and each retry.
        self.assertEqual([(ev["kind"], ev["status"], ev["reason"], ev["attempt"])
                          for ev in out["events"]],
                         [("attempt", 429, "", 1), ("throttled", 0, "", 1),
                          ("retry", 0, "throttled", 1),
                          ("attempt", 429, "", 2), ("throttled", 0, "", 2),
                          ("retry", 0, "throttled", 2),
                          ("attempt", 200, "", 3)])
        self.assertIn("TooManyRequestsException", out["events"][1]["message"])

    def test_5xx_retried_for_get_only(self):
        self.lam.push(sl.service_error())
        rc, out = self.call("GET", "http://api.example.test/")
        self.assertEqual(out["status"], 200, out)
        self.assertEqual(self.lam.count(), 2)
        self.assertEqual([ev["reason"] for ev in out["events"] if ev["kind"] == "retry"],
                         ["5xx"])
        self.lam.reset()
        self.lam.push(sl.service_error())
        rc, out = self.call("POST", "http://api.example.test/", "once")
        e = out["error"]
        self.assertEqual((e["kind"], e["status"]), ("lambda", 502))
        self.assertIn("not idempotent", e["message"])
        self.assertEqual(self.lam.count(), 1, "a POST was retried after a 5xx")

    def test_unknown_function(self):
        self.lam.handler = sl.not_found()
        rc, out = self.call("GET", "http://api.example.test/")
        self.assertEqual((out["error"]["kind"], out["error"]["status"]), ("lambda", 502))
        self.assertIn("ResourceNotFoundException", out["error"]["message"])

    def test_timeout(self):
        self.lam.handler = sl.delay(3, sl.echo)
        t0 = time.monotonic()
        rc, out = self.call("GET", "http://api.example.test/", env=self.env(SSP_TEST_BUDGET="0.5"))
        self.assertEqual((out["error"]["kind"], out["error"]["status"]), ("timeout", 504))
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_endpoint_down(self):
        port = harness.free_port()
        rc, out = self.call("GET", "http://api.example.test/",
                            env=self.env(AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:%d" % port))
        self.assertEqual((out["error"]["kind"], out["error"]["status"]), ("unreachable", 502))
        # Every attempt found no answer; each failure but the last retried.
        att = [ev for ev in out["events"] if ev["kind"] == "attempt"]
        self.assertEqual({ev["status"] for ev in att}, {0})
        self.assertEqual([ev["reason"] for ev in out["events"] if ev["kind"] == "retry"],
                         ["connection"] * (len(att) - 1))

    def test_no_credentials(self):
        rc, out = self.call("GET", "http://api.example.test/",
                            env=self.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                                         SSP_TEST_BUDGET="2"))
        e = out["error"]
        self.assertEqual((e["kind"], e["status"]), ("credentials", 503))
        self.assertIn("no AWS credentials", e["message"])
        self.assertEqual(self.lam.count(), 0)

    def test_provider_gone(self):
        """A caller's provider with no credentials that then says none is
        coming (SSP_CREDENTIALS_GONE, as the daemon's does when its agent is
        down): the waiting call fails with its reason, not at the end of its
        120 s budget (whose message would say "within 120.0 s")."""
        rc, out = self.run_driver("gone", "http://api.example.test/", timeout=60)
        e = out["error"]
        self.assertEqual((e["kind"], e["status"], e["attempts"]), ("credentials", 503, 0))
        self.assertEqual(e["message"], "no credentials yet (the provider stopped)")
        self.assertEqual(out["gets"], 4)
        self.assertEqual(out["refreshes"], 1)
        self.assertEqual(self.lam.count(), 0)

    def test_no_region(self):
        rc, out = self.call("GET", "http://api.example.test/",
                            env=self.env(AWS_REGION=None))
        e = out["error"]
        self.assertEqual((e["kind"], e["status"]), ("config", 503))
        self.assertIn("no AWS region", e["message"])

    def test_no_secret_in_errors(self):
        """A signature refused by Lambda: AWS's message goes on with the
        canonical request (which holds the session token); none of it, nor
        the secret, reaches the error."""
        self.bad_sigs_ok = True
        token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
        rc, out = self.call("GET", "http://api.example.test/",
                            env=self.env(AWS_SECRET_ACCESS_KEY="wrong-secret-value",
                                         AWS_SESSION_TOKEN=token))
        e = out["error"]
        self.assertEqual(e["status"], 502)
        self.assertNotIn("wrong-secret-value", json.dumps(out))
        self.assertNotIn(token, json.dumps(out))
        self.lam.signature_failures.clear()

    def test_clock_skew(self):
        self.bad_sigs_ok = True
        self.lam.clock_offset = 600
        rc, out = self.call("GET", "http://api.example.test/skew")
        self.assertEqual(out["status"], 200, out)
        self.assertIn(("retry", "clock_skew"),
                      [(ev["kind"], ev["reason"]) for ev in out["events"]])
        self.assertEqual(len(self.lam.signature_failures), 1)
        good = self.lam.last()
        amz = calendar.timegm(time.strptime(good.header("X-Amz-Date"), "%Y%m%dT%H%M%SZ"))
        self.assertAlmostEqual(amz, time.time() + 600, delta=5)
        self.lam.signature_failures.clear()

    # --- streamed calls (InvokeWithResponseStream) ------------------------------

    def fnv(self, data):
        h = 2166136261
        for b in data:
            h = ((h ^ b) * 16777619) & 0xffffffff
        return h

    def stream(self, method, url, pause=False, **env):
        return self.run_driver("stream", method, url,
                               env=self.env(SSP_TEST_PAUSE="1" if pause else None, **env))

    def test_stream_head_body_done(self):
        """The prelude becomes the head, the rest comes as body pieces (with
        the consumer pausing after each one), then done with the head."""
        body = bytes(range(256)) * 1200          # 300 KiB in 64 KiB pieces
        self.lam.handler = sl.stream_response(201, {"X-Up": "1", "Connection": "close"},
                                              body, cookies=["a=1"])
        rc, out = self.stream("GET", "http://api.example.test/big", pause=True)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["status"], 201, out)
        head = out["head"]
        self.assertEqual((out["heads"], head["status"], head["pieces_before"]), (1, 201, 0))
        hdrs = [tuple(h) for h in head["headers"]]
        self.assertIn(("X-Up", "1"), hdrs)
        self.assertIn(("Set-Cookie", "a=1"), hdrs)
        self.assertNotIn("connection", [n.lower() for n, _ in hdrs], "hop-by-hop kept")
        self.assertTrue(head["request_id"])
        self.assertEqual((out["total"], out["fnv"]), (len(body), self.fnv(body)))
        self.assertGreater(out["pieces"], 2)
        self.assertEqual(out["pauses"], out["pieces"])
        self.assertEqual(out["inflight"], 0)
        inv = self.lam.last()
        self.assertTrue(inv.streaming)
        self.assertEqual(inv.event["path"], "/big")

    def test_stream_cut_after_head(self):
        self.lam.handler = sl.stream_response(200, {}, pieces=[b"part one"], end=sl.CUT)
        rc, out = self.stream("GET", "http://api.example.test/cut")
        self.assertEqual(out["heads"], 1)
        self.assertEqual(out["total"], len(b"part one"))
        e = out["error"]
        self.assertEqual((e["kind"], e["status"]), ("unreachable", 502), out)
        self.assertIn("broke", e["message"])
        self.assertEqual(self.lam.count(), 1, "a stream cut after its first byte was retried")

    def test_stream_function_error_after_head(self):
        self.lam.handler = sl.stream_response(200, {}, pieces=[b"x"],
                                              end=sl.Complete("Unhandled", "boom"))
        rc, out = self.stream("GET", "http://api.example.test/fail")
        e = out["error"]
        self.assertEqual((e["kind"], e["status"], e["function_error"]),
                         ("function", 502, "Unhandled"), out)
        self.assertIn("boom", e["message"])
        self.assertIn(("function_error", "Unhandled"),
                      [(ev["kind"], ev["reason"]) for ev in out["events"]])

    def test_stream_exception_and_corruption(self):
        self.lam.handler = sl.stream_response(200, {}, pieces=[b"x"],
                                              end=sl.Exception_("ServiceException", "bad"))
        rc, out = self.stream("GET", "http://api.example.test/exc")
        self.assertEqual(out["error"]["kind"], "lambda", out)
        self.assertIn("ServiceException", out["error"]["message"])
        self.lam.handler = sl.stream_response(200, {}, pieces=[b"x", sl.CORRUPT])
        rc, out = self.stream("GET", "http://api.example.test/crc")
        self.assertEqual(out["error"]["kind"], "lambda", out)
        self.assertIn("malformed", out["error"]["message"])

    def test_stream_buffered_answer_and_throttle(self):
        """A throttle before the first byte is retried; a function that
        answers the buffered way gives head, one body piece, done."""
        self.lam.push(sl.throttle(), sl.respond(202, b"whole body", headers={"X-B": "2"}))
        rc, out = self.stream("POST", "http://api.example.test/b")
        self.assertEqual(out["status"], 202, out)
        self.assertEqual((out["heads"], out["pieces"], out["total"]), (1, 1, len(b"whole body")))
        self.assertIn(["X-B", "2"], out["head"]["headers"])
        self.assertEqual(self.lam.count(), 2)
        self.assertEqual([ev["reason"] for ev in out["events"] if ev["kind"] == "retry"],
                         ["throttled"])

    def test_stream_idle_limit(self):
        self.lam.handler = sl.stream_response(200, {}, pieces=[b"a", 5, b"b"])
        rc, out = self.stream("GET", "http://api.example.test/slow", SSP_TEST_STREAM_IDLE="0.5")
        self.assertEqual((out["error"]["kind"], out["error"]["status"]), ("timeout", 504), out)
        self.assertIn("stalled", out["error"]["message"])
        self.assertEqual(out["total"], 1)

    def test_raw_stream_invoke(self):
        self.lam.handler = sl.stream_response(200, {"A": "1"}, b"raw body")
        rc, out = self.run_driver("rawstream", '{"anything": 1}')
        self.assertEqual(out["status"], 200, out)
        raw = bytes.fromhex(out["raw_hex"])
        prelude, sep, rest = raw.partition(b"\0" * 8)
        self.assertEqual(json.loads(prelude)["statusCode"], 200)
        self.assertEqual(rest, b"raw body")
        self.assertEqual(self.lam.last().event, {"anything": 1})

    # --- connections, threads, the loop --------------------------------------

    def test_keepalive(self):
        rc, out = self.run_driver("loop", "1", "http://api.example.test/k")
        self.assertEqual(out["failed"], 0, out)
        self.assertGreater(out["ok"], 5)
        self.assertEqual(self.lam.connections_accepted, 1,
                         "sequential blocking calls did not reuse the connection")

    def test_threads(self):
        """8 threads x 200 calls on one client: every answer reaches its
        own caller (each asks for its own query and body)."""
        calls = 200
        rc, out = self.run_driver("threads", 8, calls, "http://api.example.test/t",
                                  timeout=600)
        self.assertEqual(out, {"ok": 8 * calls, "wrong": 0, "failed": 0, "errors": []})
        self.assertEqual(self.lam.count(), 8 * calls)
        # One kept-alive connection per thread's loop at most.
        self.assertLessEqual(self.lam.connections_accepted, 8)

    def test_async_and_cancel(self):
        self.lam.handler = sl.delay(0.2, sl.echo)
        rc, out = self.run_driver("async", 5, "http://api.example.test/a")
        got = sorted(r["i"] for r in out["results"])
        self.assertEqual(got, [1, 2, 3, 4], "the cancelled call's callback came, or one was lost")
        self.assertTrue(all(r["status"] == 200 for r in out["results"]), out)
        self.assertEqual(out["inflight"], 0)
        # Concurrent on one loop: 4 at once, not one after the other.
        self.assertEqual(self.lam.count(), 4)
        queries = sorted(inv.event["queryStringParameters"]["i"] for inv in self.lam.invocations)
        self.assertEqual(queries, ["1", "2", "3", "4"])

    # --- credentials from the provider chain, expiring -----------------------

    def test_credentials_expire_mid_run(self):
        keyring = cs.Keyring()
        ecs = cs.EcsStandin(keyring=keyring)
        ecs.lifetime = 3
        minted = {}
        orig = ecs.creds_json

        def creds_json(lifetime, code="Success"):
            doc = orig(lifetime, code)
            minted[doc["AccessKeyId"]] = calendar.timegm(
                time.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
            return doc
        ecs.creds_json = creds_json
        ecs.start()
        self.addCleanup(ecs.stop)
        cs.keyring_verifier(self.lam, keyring)
        env = self.env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                       AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs.url + "/creds")
        rc, out = self.run_driver("loop", "7", "http://api.example.test/e", env=env)
        self.assertEqual(out["failed"], 0, out)
        signers = [cs.signer(inv) for inv in self.lam.invocations]
        self.assertGreaterEqual(len(set(signers)), 3,
                                "credentials were not refreshed ahead of expiry")
        for inv, akid in zip(self.lam.invocations, signers):
            signed = calendar.timegm(time.strptime(inv.header("X-Amz-Date"), "%Y%m%dT%H%M%SZ"))
            self.assertLessEqual(signed, minted[akid],
                                 "a call was signed with expired credentials")


if __name__ == "__main__":
    harness.main()
