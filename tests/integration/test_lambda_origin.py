#!/usr/bin/env python3
"""The call to the origin and what comes back: bodies as bytes both ways,
gzip untouched, redirects not followed, every header value, errors and
deadlines, TLS verified for the original name, connections kept alive."""

import base64
import gzip
import os
import time

import harness
import lambda_case
import tls_origin
from lambda_case import HOST


class TestOrigin(lambda_case.FunctionTestCase):
    def setUp(self):
        super().setUp()
        self.params(HOST, {"headers/X-Api-Key": "origin-secret-1"})

    def test_binary_bodies_both_ways(self):
        blob_in = bytes(range(256)) * 40 + b"\xff\xfe\x00"
        blob_out = os.urandom(5000) + b"\x80\x81"
        self.origin.push(tls_origin.Response(201, headers=[("Content-Type", "application/octet-stream")],
                                             body=blob_out))
        self.start_function()
        resp = self.invoke(self.event(method="PUT", path="/upload", body=blob_in,
                                      headers=[("content-type", "application/octet-stream")]))
        self.assertStatus(resp, 201)
        self.assertTrue(resp.get("isBase64Encoded"), "binary body not base64-encoded")
        self.assertEqual(lambda_case.response_body(resp), blob_out)
        req = self.origin.requests[-1]
        self.assertEqual(req.method, "PUT")
        self.assertEqual(req.body, blob_in)
        self.assertEqual(req.header("Content-Length"), [str(len(blob_in))])

    def test_text_body_stays_text(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "application/json")],
                                             body='{"name":"Zoë ✓"}'.encode()))
        self.start_function()
        resp = self.invoke(self.event(method="POST", body='{"q":"é"}'))
        self.assertStatus(resp, 200)
        self.assertFalse(resp.get("isBase64Encoded"))
        self.assertEqual(resp["body"], '{"name":"Zoë ✓"}')
        self.assertEqual(self.origin.requests[-1].body, '{"q":"é"}'.encode())

    def test_gzip_passes_through(self):
        text = b"compressible " * 500
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "text/plain")], body=text, gzip=True))
        self.start_function()
        resp = self.invoke(self.event(headers=[("accept-encoding", "gzip")]))
        self.assertStatus(resp, 200)
        self.assertEqual(self.header(resp, "content-encoding"), ["gzip"])
        body = lambda_case.response_body(resp)
        self.assertEqual(body[:2], b"\x1f\x8b", "body was decoded")
        self.assertEqual(gzip.decompress(body), text)
        self.assertEqual(self.origin.requests[-1].header("Accept-Encoding"), ["gzip"])

    def test_no_accept_encoding_added(self):
        # The function must not ask for compression the client did not.
        self.start_function()
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("Accept-Encoding"), [])

    def test_redirect_not_followed(self):
        self.origin.push(tls_origin.Response(302, headers=[("Location", "https://api.example.test/elsewhere")],
                                             body=b"moved"))
        self.start_function()
        resp = self.invoke(self.event(path="/old"))
        self.assertStatus(resp, 302)
        self.assertEqual(self.header(resp, "location"), ["https://api.example.test/elsewhere"])
        self.assertEqual(len(self.origin.requests), 1)

    def test_two_set_cookies_stay_two(self):
        self.origin.push(tls_origin.Response(200, headers=[("Set-Cookie", "a=1; Path=/"),
                                                           ("Set-Cookie", "b=2; Secure"),
                                                           ("X-Multi", "one"), ("X-Multi", "two")]))
        self.start_function()
        for multi in (True, False):
            with self.subTest(multi_value=multi):
                if not multi:
                    self.origin.push(tls_origin.Response(200, headers=[("Set-Cookie", "a=1; Path=/"),
                                                                       ("Set-Cookie", "b=2; Secure")]))
                resp = self.invoke(self.event(multi_value=multi))
                self.assertStatus(resp, 200)
                if multi:
                    self.assertIn("multiValueHeaders", resp)
                    self.assertEqual(self.header(resp, "set-cookie"), ["a=1; Path=/", "b=2; Secure"])
                    self.assertEqual(self.header(resp, "x-multi"), ["one", "two"])
                else:
                    # The single-value shape cannot repeat a name: an ALB
                    # keeps the last one; what must not happen is a merged
                    # "a=1, b=2" cookie.
                    vals = self.header(resp, "set-cookie")
                    self.assertEqual(len(vals), 1)
                    self.assertIn(vals[0], ("a=1; Path=/", "b=2; Secure"))

    def test_status_and_reason(self):
        self.origin.push(tls_origin.Response(418, body=b"teapot"))
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 418)
        self.assertTrue(resp.get("statusDescription", "").startswith("418"), resp)
        self.assertEqual(lambda_case.response_body(resp), b"teapot")

    def test_hop_by_hop_headers_not_forwarded(self):
        self.start_function()
        resp = self.invoke(self.event(headers=[("connection", "keep-alive, x-drop"), ("keep-alive", "timeout=5"),
                                               ("te", "gzip"), ("upgrade", "h2c"), ("x-drop", "1"),
                                               ("proxy-authorization", "Basic Zm9vOmJhcg=="),
                                               ("x-keep", "1")]))
        self.assertStatus(resp, 200)
        req = self.origin.requests[-1]
        for h in ("Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "X-Drop"):
            self.assertEqual(req.header(h), [], h)
        self.assertEqual(req.header("X-Keep"), ["1"])

    def test_chunked_origin_response(self):
        self.origin.push(tls_origin.Response(200, body=b"x" * 200000, chunked=True))
        self.start_function()
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self.assertEqual(lambda_case.response_body(resp), b"x" * 200000)
        self.assertEqual(self.header(resp, "transfer-encoding"), [])

    def test_head_request(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Length", "1234")]))
        self.start_function()
        resp = self.invoke(self.event(method="HEAD"))
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].method, "HEAD")
        self.assertEqual(lambda_case.response_body(resp), b"")

    def test_trace_is_405_and_never_sent(self):
        self.start_function()
        resp = self.invoke(self.event(method="TRACE"))
        self.assertStatus(resp, 405)
        self.assertEqual(self.origin.requests, [])
        self.assertNotIn("origin-secret-1", lambda_case.response_body(resp).decode("utf-8", "replace"))

    def test_unreachable_origin_is_502(self):
        port = tls_origin.closed_port()
        self.start_function(connect_to=["%s:443:127.0.0.1:%d" % (HOST, port)])
        t = time.monotonic()
        resp = self.invoke(self.event())
        self.assertLess(time.monotonic() - t, 3)
        self.assertStatus(resp, 502)
        body = lambda_case.response_body(resp).decode().lower()
        self.assertTrue("connect" in body or "reach" in body, body)
        self.assertNotIn("origin-secret-1", body)

    def test_deadline_is_504(self):
        self.origin.push(tls_origin.Response(200, body=b"late", delay=2.5))
        self.start_function(extra={"SSM_SIGN_PROXY_ORIGIN_TIMEOUT": "0"})
        t = time.monotonic()
        inv = self.rt.invoke_raw(self.event(), timeout=4, deadline_s=1.5)
        took = time.monotonic() - t
        self.assertEqual(inv.kind, "response", inv.raw)
        self.assertEqual(inv.body["statusCode"], 504, inv.body)
        self.assertLess(took, 1.5, "answered after the deadline")
        self.assertIn("time", lambda_case.response_body(inv.body).decode().lower())
        # The function is usable afterwards.
        self.assertStatus(self.invoke(self.event()), 200)

    def test_origin_timeout_is_504(self):
        self.origin.push(tls_origin.Response(200, body=b"late", delay=2.5))
        self.start_function(extra={"SSM_SIGN_PROXY_ORIGIN_TIMEOUT": "1"})
        resp = self.invoke(self.event(), deadline_s=10)
        self.assertStatus(resp, 504)

    def test_response_over_6mb_is_502(self):
        self.origin.push(tls_origin.Response(200, headers=[("Content-Type", "application/octet-stream")],
                                             body=os.urandom(7 * 1024 * 1024)))
        self.start_function()
        resp = self.invoke(self.event(), timeout=10)
        self.assertStatus(resp, 502)
        self.assertIn("large", lambda_case.response_body(resp).decode().lower())
        self.assertIsNone(self.fn.poll())
        self.assertStatus(self.invoke(self.event()), 200)

    def test_tls_verified_for_original_name(self):
        # Routed to the origin, but for a name the test certificate does not
        # cover: verification must fail although the TCP connection works.
        self.params("evil.example.org", {"headers/X-Api-Key": "evil-secret-1"})
        self.start_function(connect_to=["evil.example.org:443:127.0.0.1:%d" % self.origin.port])
        resp = self.invoke(self.event(host="evil.example.org"))
        self.assertStatus(resp, 502)
        self.assertEqual(self.origin.requests, [])

    def test_untrusted_ca_is_refused(self):
        # The system store does not know the test CA.
        sysca = "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.exists(sysca):
            self.skipTest("no system CA bundle at %s" % sysca)
        self.start_function(ca_bundle=sysca)
        resp = self.invoke(self.event())
        self.assertStatus(resp, 502)
        self.assertEqual(self.origin.requests, [])
        self.assertTrue(self.origin.tls_failures or self.origin.connections >= 1)

    def test_connection_kept_alive_across_invocations(self):
        self.start_function()
        for _ in range(3):
            self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(len(self.origin.requests), 3)
        self.assertEqual(self.origin.connections, 1, "a new TLS connection per invocation")

    def test_second_connect_to_entry_is_used(self):
        self.params("hooks.example.test", {"rewrite/path": "/services/T000/B000/hook-secret"})
        self.start_function()
        resp = self.invoke(self.event(method="POST", host="hooks.example.test", path="/hook", body=b"{}"))
        self.assertStatus(resp, 200)
        req = self.origin.requests[-1]
        self.assertEqual(req.path, "/services/T000/B000/hook-secret")
        self.assertEqual(req.tls_sni, "hooks.example.test")

    def test_response_body_base64_roundtrip_of_event(self):
        # A base64 event body (isBase64Encoded) is decoded before sending.
        ev = self.event(method="POST", body=b"plain")
        ev["body"] = base64.b64encode(b"\x00\x01binary").decode()
        ev["isBase64Encoded"] = True
        self.start_function()
        self.assertStatus(self.invoke(ev), 200)
        self.assertEqual(self.origin.requests[-1].body, b"\x00\x01binary")


if __name__ == "__main__":
    harness.main()
