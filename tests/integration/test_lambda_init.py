#!/usr/bin/env python3
"""A broken configuration is reported through /runtime/init/error and the
function exits; a good one starts polling. Also the runtime loop's
manners: one event at a time, the trace id, an event that is not JSON."""

import harness
import lambda_case
from lambda_case import HOST


class TestInit(lambda_case.FunctionTestCase):
    def _expect_init_error(self, extra, mentions):
        env = self.function_env(extra=extra)
        fn = self.start_function(env=env, wait=False)
        body, headers = self.rt.wait_init_error(timeout=5)
        self.assertIsInstance(body, dict, body)
        self.assertIn("errorMessage", body)
        self.assertIn("errorType", body)
        self.assertIn(mentions, body["errorMessage"])
        self.assertIsNotNone(fn.wait(5), "function kept running after an init error")
        self.assertNotEqual(fn.returncode, 0)
        self.assertEqual(self.rt.polls, 0, "polled for events despite a broken configuration")
        return body

    def test_bad_prefix(self):
        for prefix in ("bad prefix", "a//b", "x:y", "a/\x01"):
            with self.subTest(prefix=prefix):
                self.rt.init_errors.clear()
                self._expect_init_error({"SSM_SIGN_PROXY_PREFIX": prefix}, "SSM_SIGN_PROXY_PREFIX")

    def test_bad_connect_to(self):
        for ct in ("nonsense", "api.example.test:443", "a b:443:127.0.0.1:1", "api.example.test:443:127.0.0.1:1,x"):
            with self.subTest(connect_to=ct):
                self.rt.init_errors.clear()
                self._expect_init_error({"SSM_SIGN_PROXY_CONNECT_TO": ct}, "SSM_SIGN_PROXY_CONNECT_TO")

    def test_bad_connect_to_port(self):
        self._expect_init_error({"SSM_SIGN_PROXY_CONNECT_TO": "api.example.test:notaport:127.0.0.1:1"},
                                "SSM_SIGN_PROXY_CONNECT_TO")

    def test_bad_ttl(self):
        self._expect_init_error({"SSM_SIGN_PROXY_CACHE_TTL": "soon"}, "SSM_SIGN_PROXY_CACHE_TTL")

    def test_prefix_slashes_tolerated(self):
        self.params(HOST, {"headers/X-K": "slash-secret-1"})
        self.start_function(prefix="/" + self.prefix + "/")
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.ssm.requests[0].body["Path"], "/%s/%s" % (self.prefix, HOST))

    def test_nested_prefix(self):
        self.params(HOST, {"headers/X-K": "nested-secret-1"}, prefix=self.prefix + "/team/prod")
        self.start_function(prefix=self.prefix + "/team/prod")
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-K"), ["nested-secret-1"])

    def test_event_that_is_not_json_is_reported_and_loop_continues(self):
        self.params(HOST, {"headers/X-K": "loop-secret-1"})
        self.start_function()
        inv = self.rt.invoke_raw(b"this is not json", timeout=3)
        self.assertIn(inv.kind, ("error", "response"))
        if inv.kind == "response":
            self.assertEqual(inv.body["statusCode"], 400)
        self.assertStatus(self.invoke(self.event()), 200)

    def test_sigterm_exits_cleanly(self):
        self.start_function()
        self.fn.signal(15)
        self.assertIsNotNone(self.fn.wait(3), "function ignored SIGTERM while polling")

    def test_many_invocations_one_process(self):
        self.params(HOST, {"headers/X-K": "many-secret-1"})
        self.start_function()
        for i in range(30):
            self.assertStatus(self.invoke(self.event(path="/n/%d" % i)), 200)
        self.assertEqual(len(self.origin.requests), 30)
        self.assertEqual(self.origin.requests[-1].path, "/n/29")
        self.assertIsNone(self.fn.poll())


if __name__ == "__main__":
    harness.main()
