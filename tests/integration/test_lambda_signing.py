#!/usr/bin/env python3
"""The function applies the signing parameters (the original project's
cases): headers, basic auth, rewrite path, queries; no parameters → 407."""

import base64
import re
import urllib.parse

import harness
import lambda_case
from lambda_case import HOST

SECRET_QUERY = "very secret%!#WE^T&*"


def _is_percent_encoded(s):
    """Only RFC 3986 unreserved characters and %XX escapes."""
    return re.fullmatch(r"(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*", s) is not None


class TestSigning(lambda_case.FunctionTestCase):
    def test_header_replaces_client_value(self):
        self.params(HOST, {"headers/X-Api-Key": "hdr-secret-1", "headers/X-Other": "other-secret-2"},
                    secure=True)
        self.start_function()
        resp = self.invoke(self.event(path="/v1/items", headers=[("x-api-key", "client-value"),
                                                                ("accept", "application/json")]))
        self.assertStatus(resp, 200)
        self.assertEqual(lambda_case.response_body(resp), b"origin ok")
        req = self.origin.requests[-1]
        self.assertEqual(req.header("X-Api-Key"), ["hdr-secret-1"])
        self.assertEqual(req.header("X-Other"), ["other-secret-2"])
        self.assertEqual(req.header("Accept"), ["application/json"])
        self.assertEqual(req.header("Host"), [HOST])
        self.assertEqual(req.raw_line, b"GET /v1/items HTTP/1.1")
        self.assertEqual(req.tls_sni, HOST)

    def test_header_value_case_of_client_name_does_not_duplicate(self):
        self.params(HOST, {"headers/Authorization": "Bearer tok-abcdef"})
        self.start_function()
        resp = self.invoke(self.event(headers=[("authorization", "Bearer client")], multi_value=True))
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].header("authorization"), ["Bearer tok-abcdef"])

    def test_basic_auth(self):
        self.params(HOST, {"basic/username": "user-name", "basic/password": "p@ss:w0rd/secret"}, secure=True)
        expected = "Basic " + base64.b64encode(b"user-name:p@ss:w0rd/secret").decode()
        self.secrets.append(expected.split()[1])
        self.start_function()
        resp = self.invoke(self.event(headers=[("authorization", "Basic Y2xpZW50OmNsaWVudA==")]))
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].header("Authorization"), [expected])

    def test_rewrite_path(self):
        self.params(HOST, {"rewrite/path": "/very/%20secret%2f/path"})
        self.start_function()
        resp = self.invoke(self.event(path="/public/path", query=[("a", "1"), ("b", "x%20y")]))
        self.assertStatus(resp, 200)
        req = self.origin.requests[-1]
        self.assertEqual(req.path, "/very/%20secret%2f/path")
        # The client's query is kept, byte for byte.
        self.assertEqual(req.query, "a=1&b=x%20y")

    def test_rewrite_path_without_leading_slash(self):
        # The original project's value; a request target needs the slash.
        self.params(HOST, {"rewrite/path": "very/%20secret%2f/path"})
        self.start_function()
        resp = self.invoke(self.event(path="/x"))
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].raw_line, b"GET /very/%20secret%2f/path HTTP/1.1")

    def test_query_parameter_encoded_and_client_query_kept(self):
        self.params(HOST, {"queries/api_key": SECRET_QUERY, "queries/new param": "v2-secret"})
        self.start_function()
        client = [("a", "1%202"), ("api_key", "client-key"), ("b", "x+y"), ("c", "%E2%82%AC"),
                  ("d", "%2F%3F%26")]
        resp = self.invoke(self.event(path="/search", query=client))
        self.assertStatus(resp, 200)
        req = self.origin.requests[-1]
        self.assertEqual(req.path, "/search")
        pairs = req.query_pairs()
        keys = [k for k, _ in pairs]
        self.assertEqual(keys.count("api_key"), 1, "query: %r" % req.query)
        value = dict(pairs)["api_key"]
        self.assertTrue(_is_percent_encoded(value), "not percent-encoded: %r" % value)
        self.assertEqual(urllib.parse.unquote(value), SECRET_QUERY)
        newkeys = [k for k in keys if urllib.parse.unquote(k) == "new param"]
        self.assertEqual(len(newkeys), 1, "query: %r" % req.query)
        self.assertTrue(_is_percent_encoded(newkeys[0]))
        self.assertEqual(urllib.parse.unquote(dict(pairs)[newkeys[0]]), "v2-secret")
        # Every other client parameter reaches the origin byte for byte, in
        # order, never encoded a second time.
        others = [(k, v) for k, v in pairs if k not in ("api_key", newkeys[0])]
        self.assertEqual(others, [("a", "1%202"), ("b", "x+y"), ("c", "%E2%82%AC"), ("d", "%2F%3F%26")])
        self.assertNotIn("%25", req.query.replace(value, ""))

    def test_all_parameters_together_multi_value(self):
        self.params(HOST, {"headers/X-Api-Key": "k-123456", "basic/username": "u1",
                           "basic/password": "pw-123456", "rewrite/path": "/v2/real",
                           "queries/token": "t-123456"})
        self.start_function()
        resp = self.invoke(self.event(method="POST", path="/v1", body=b'{"a":1}',
                                      headers=[("content-type", "application/json")],
                                      query=[("q", "1")], multi_value=True))
        self.assertStatus(resp, 200)
        self.assertIn("multiValueHeaders", resp)
        req = self.origin.requests[-1]
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.path, "/v2/real")
        self.assertEqual(req.query, "q=1&token=t-123456")
        self.assertEqual(req.body, b'{"a":1}')
        self.assertEqual(req.header("Content-Type"), ["application/json"])
        self.assertEqual(req.header("X-Api-Key"), ["k-123456"])
        self.assertEqual(req.header("Authorization"), ["Basic " + base64.b64encode(b"u1:pw-123456").decode()])

    def test_no_parameters_is_407_without_calling_origin(self):
        self.params("hooks.example.test", {"headers/X-Unrelated": "unrelated-1"})
        self.start_function()
        before = self.origin.connections
        resp = self.invoke(self.event())
        self.assertStatus(resp, 407)
        body = lambda_case.response_body(resp).decode()
        self.assertIn("no signing parameters", body.lower())
        self.assertTrue(any(v.startswith("text/plain") for v in self.header(resp, "content-type")), resp)
        self.assertEqual(self.origin.requests, [])
        self.assertEqual(self.origin.connections, before)

    def test_host_of_another_prefix_is_not_used(self):
        # Parameters under a different prefix must not apply.
        self.params(HOST, {"headers/X-Api-Key": "foreign-secret"}, prefix=self.prefix + "-other")
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 407)
        self.assertEqual(self.origin.requests, [])


if __name__ == "__main__":
    harness.main()
