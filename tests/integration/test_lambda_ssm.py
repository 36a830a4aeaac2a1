#!/usr/bin/env python3
"""How the function reads Parameter Store: every page, the cache and its
TTL, retries on throttling and 5xx, and the signed request itself."""

import time

import harness
import lambda_case
import standin_runtime
from lambda_case import HOST


class TestSSM(lambda_case.FunctionTestCase):
    def _25(self):
        values = {"headers/X-H-%02d" % i: "value-%02d-secret" % i for i in range(25)}
        self.params(HOST, values, secure=True)
        return values

    def _check_25(self, values):
        req = self.origin.requests[-1]
        for k, v in values.items():
            self.assertEqual(req.header(k.split("/", 1)[1]), [v], k)

    def test_pagination_over_25_parameters(self):
        values = self._25()
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self._check_25(values)
        calls = [r for r in self.ssm.requests if r.target == "AmazonSSM.GetParametersByPath"]
        self.assertGreaterEqual(len(calls), 3, "25 parameters need at least 3 pages of 10")
        first = calls[0].body
        self.assertEqual(first["Path"], "/%s/%s" % (self.prefix, HOST))
        self.assertIs(first["Recursive"], True)
        self.assertIs(first["WithDecryption"], True)
        self.assertLessEqual(first.get("MaxResults", 10), 10)
        self.assertNotIn("NextToken", first)
        for c in calls[1:]:
            self.assertIn("NextToken", c.body)

    def test_short_and_empty_pages_are_followed(self):
        values = self._25()
        self.ssm.page_size = 3      # moto answers at most 3 per page...
        self.ssm.empty_pages(2)     # ...after two empty pages that still have a NextToken
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self._check_25(values)
        self.assertGreaterEqual(self.ssm.count, 2 + 9)

    def test_request_is_signed_for_ssm(self):
        self.params(HOST, {"headers/X-K": "k-secret-1"})
        self.start_function()
        self.assertStatus(self.invoke(self.event()), 200)
        r = self.ssm.requests[0]
        h = {k.lower(): v for k, v in r.headers}
        self.assertEqual(h.get("content-type"), "application/x-amz-json-1.1")
        self.assertEqual(h.get("x-amz-target"), "AmazonSSM.GetParametersByPath")
        auth = h.get("authorization", "")
        self.assertTrue(auth.startswith("AWS4-HMAC-SHA256 Credential=%s/" % standin_runtime.ACCESS_KEY), auth)
        self.assertIn("/us-east-1/ssm/aws4_request", auth)
        self.assertEqual(h.get("x-amz-security-token"), standin_runtime.SESSION_TOKEN)

    def test_cache_serves_second_request(self):
        self.params(HOST, {"headers/X-K": "cached-secret-1"})
        self.start_function(cache_ttl=300)
        self.assertStatus(self.invoke(self.event()), 200)
        n = self.ssm.count
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.ssm.count, n, "second request read Parameter Store again")
        self.assertEqual(self.origin.requests[-1].header("X-K"), ["cached-secret-1"])

    def test_ttl_expiry_picks_up_rotated_value(self):
        name = "/%s/%s/headers/X-Rotating" % (self.prefix, HOST)
        self.moto.put(name, "old-token-111", secure=True)
        self.secrets += ["old-token-111", "new-token-222"]
        self.start_function(cache_ttl=1)
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-Rotating"), ["old-token-111"])
        self.moto.delete(name)
        self.moto.put(name, "new-token-222", secure=True)
        # Within the TTL the cached value is still used...
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-Rotating"), ["old-token-111"])
        # ...and after it the rotated one.
        time.sleep(1.3)
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-Rotating"), ["new-token-222"])

    def test_ttl_zero_disables_cache(self):
        self.params(HOST, {"headers/X-K": "nocache-secret"})
        self.start_function(cache_ttl=0)
        self.assertStatus(self.invoke(self.event()), 200)
        n = self.ssm.count
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertGreater(self.ssm.count, n)

    def test_no_parameters_is_remembered_for_ttl(self):
        self.start_function(cache_ttl=300)
        self.assertStatus(self.invoke(self.event()), 407)
        n = self.ssm.count
        self.assertGreaterEqual(n, 1)
        self.assertStatus(self.invoke(self.event()), 407)
        self.assertEqual(self.ssm.count, n, "'no parameters' was not cached")

    def test_throttling_is_retried(self):
        self.params(HOST, {"headers/X-K": "throttle-secret"})
        self.ssm.throttle(2)
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].header("X-K"), ["throttle-secret"])
        self.assertEqual(sum(1 for r in self.ssm.requests if r.throttled), 2)
        self.assertGreaterEqual(self.ssm.count, 3)

    def test_namespaced_throttling_type_is_retried(self):
        self.params(HOST, {"headers/X-K": "throttle-secret-ns"})
        self.ssm.throttle_type = "com.amazonaws.ssm#ThrottlingException"
        self.ssm.throttle(1)
        self.start_function()
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-K"), ["throttle-secret-ns"])

    def test_5xx_is_retried(self):
        self.params(HOST, {"headers/X-K": "5xx-secret"})
        self.ssm.fail(2)
        self.start_function()
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-K"), ["5xx-secret"])

    def test_persistent_throttling_gives_up_with_an_error_status(self):
        self.ssm.throttle(1000)
        self.start_function(extra={"SSM_SIGN_PROXY_SSM_RETRIES": "3"})
        t = time.monotonic()
        resp = self.invoke(self.event(), timeout=5)
        self.assertLess(time.monotonic() - t, 3.0)
        self.assertIn(resp["statusCode"], (502, 503, 504), resp)
        self.assertEqual(self.ssm.count, 4, "1 attempt + 3 retries")
        self.assertEqual(self.origin.requests, [])
        self.assertIn("throttl", lambda_case.response_body(resp).decode().lower())

    def test_slow_ssm_answers_504_before_the_deadline(self):
        self.params(HOST, {"headers/X-K": "slow-secret"})
        self.ssm.delay = 2.5
        self.start_function(extra={"SSM_SIGN_PROXY_SSM_TIMEOUT": "10"})
        t = time.monotonic()
        inv = self.rt.invoke_raw(self.event(), timeout=4, deadline_s=1.5)
        took = time.monotonic() - t
        self.assertEqual(inv.kind, "response", inv.raw)
        self.assertEqual(inv.body["statusCode"], 504, inv.body)
        self.assertLess(took, 1.5, "answered after the deadline")
        self.assertEqual(self.origin.requests, [])
        # Once Parameter Store is fast again, the function works.
        self.ssm.delay = 0
        self.assertStatus(self.invoke(self.event()), 200)

    def test_ssm_unreachable_is_an_error_not_a_crash(self):
        import tls_origin
        port = tls_origin.closed_port()
        self.start_function(ssm_endpoint="http://127.0.0.1:%d" % port,
                            extra={"SSM_SIGN_PROXY_SSM_RETRIES": "1"})
        resp = self.invoke(self.event())
        self.assertIn(resp["statusCode"], (502, 503, 504), resp)
        self.assertIsNone(self.fn.poll(), "function exited")
        # It keeps serving.
        self.assertIn(self.invoke(self.event())["statusCode"], (502, 503, 504))


if __name__ == "__main__":
    harness.main()
