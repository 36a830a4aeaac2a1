#!/usr/bin/env python3
"""Secrets never reach the function's output (its CloudWatch log), even at
debug level and on every error path. (Every function test also checks this
in tearDown; this file drives the paths most likely to leak.)"""

import base64

import harness
import lambda_case
import tls_origin
from lambda_case import HOST

PARAMS = {
    "headers/X-Api-Key": "hdr-TOKEN-0a1b2c3d",
    "headers/Authorization": "Bearer bearer-TOKEN-4e5f6a7b",
    "basic/username": "basic-USER-8c9d",
    "basic/password": "basic-PASS-0e1f2a3b",
    "rewrite/path": "/hooks/path-TOKEN-4c5d6e7f",
    "queries/api_key": "query-TOKEN-8a9b0c1d",
}


class TestSecrets(lambda_case.FunctionTestCase):
    def setUp(self):
        super().setUp()
        self.params(HOST, PARAMS, secure=True)
        self.secrets.append(base64.b64encode(b"basic-USER-8c9d:basic-PASS-0e1f2a3b").decode())

    def _output(self):
        with open(self.fn.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_debug_log_of_success_and_errors(self):
        self.start_function(extra={"SSM_SIGN_PROXY_LOG_LEVEL": "debug"})
        self.origin.push(tls_origin.Response(500, body=b"origin failed"),
                         tls_origin.Response(302, headers=[("Location", "/x?api_key=query-TOKEN-8a9b0c1d")]))
        for _ in range(3):
            self.invoke(self.event(path="/p", query=[("a", "1")], headers=[("x-api-key", "client")]))
        self.invoke(self.event(method="TRACE"))
        self.invoke(self.event(host="bad host"))
        # SSM errors (after the cache expired: TTL 300 here, so another host).
        self.ssm.throttle(100)
        self.invoke(self.event(host="hooks.example.test"))
        out = self._output()
        self.assertTrue(out.strip(), "no output at debug level: the check below would prove nothing")
        for s in self.secrets:
            self.assertNotIn(s, out)

    def test_unreachable_origin_error_hides_the_url_secrets(self):
        port = tls_origin.closed_port()
        self.start_function(connect_to=["%s:443:127.0.0.1:%d" % (HOST, port)],
                            extra={"SSM_SIGN_PROXY_LOG_LEVEL": "debug"})
        resp = self.invoke(self.event())
        self.assertStatus(resp, 502)
        body = lambda_case.response_body(resp).decode("utf-8", "replace")
        for s in self.secrets:
            self.assertNotIn(s, body, "a secret appears in the error body")
            self.assertNotIn(s, self._output())

    def test_origin_timeout_error_hides_secrets(self):
        self.origin.push(tls_origin.Response(200, delay=2.5))
        self.start_function(extra={"SSM_SIGN_PROXY_LOG_LEVEL": "debug", "SSM_SIGN_PROXY_ORIGIN_TIMEOUT": "1"})
        resp = self.invoke(self.event())
        self.assertStatus(resp, 504)
        body = lambda_case.response_body(resp).decode("utf-8", "replace")
        for s in self.secrets:
            self.assertNotIn(s, body)


if __name__ == "__main__":
    harness.main()
