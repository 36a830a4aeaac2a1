#!/usr/bin/env python3
"""The function tests' fixtures checked on their own, with Python clients in
place of the bootstrap: a fixture that lies would make every function test
meaningless."""

import gzip
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.request

import harness
import moto_fixture
import standin_runtime
import tls_origin


def _https(origin, method, target, headers=None, body=None, host="api.example.test"):
    ctx = ssl.create_default_context(cafile=origin.ca.ca_file)
    raw = socket.create_connection(("127.0.0.1", origin.port), timeout=5)
    conn = http.client.HTTPSConnection(host, 443, context=ctx, timeout=5)
    conn.sock = ctx.wrap_socket(raw, server_hostname=host)
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host)
    for k, v in headers or []:
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


class TestOrigin(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.origin = tls_origin.Origin()

    def tearDown(self):
        self.origin.close()
        super().tearDown()

    def test_records_exact_request_and_verifies_against_test_ca(self):
        target = "/very/%20secret%2f/path?a=%20b&q=very%20secret%25%21%23WE%5ET%26%2A&flag"
        r, data = _https(self.origin, "POST", target, [("X-One", "1"), ("X-One", "2")], b"\x00\xff\x01")
        self.assertEqual(r.status, 200)
        self.assertEqual(data, b"origin ok")
        req = self.origin.requests[0]
        self.assertEqual(req.raw_line, b"POST " + target.encode() + b" HTTP/1.1")
        self.assertEqual(req.path, "/very/%20secret%2f/path")
        self.assertEqual(req.query_pairs()[1], ("q", "very%20secret%25%21%23WE%5ET%26%2A"))
        self.assertEqual(req.query_pairs()[2], ("flag", None))
        self.assertEqual(req.header("x-one"), ["1", "2"])
        self.assertEqual(req.body, b"\x00\xff\x01")
        self.assertEqual(req.tls_sni, "api.example.test")

    def test_scripted_responses(self):
        self.origin.push(tls_origin.Response(302, headers=[("Location", "/next"), ("Set-Cookie", "a=1"),
                                                           ("Set-Cookie", "b=2")]),
                         tls_origin.Response(200, body=b"hello " * 100, gzip=True))
        r, _ = _https(self.origin, "GET", "/")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.getheader("Location"), "/next")
        self.assertEqual(r.msg.get_all("Set-Cookie"), ["a=1", "b=2"])
        r, data = _https(self.origin, "GET", "/")
        self.assertEqual(r.getheader("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(data), b"hello " * 100)
        r, data = _https(self.origin, "GET", "/")
        self.assertEqual(data, b"origin ok")

    def test_delay(self):
        self.origin.push(tls_origin.Response(200, delay=0.3))
        t = time.monotonic()
        _https(self.origin, "GET", "/")
        self.assertGreaterEqual(time.monotonic() - t, 0.3)

    def test_untrusted_without_test_ca(self):
        ctx = ssl.create_default_context()
        with socket.create_connection(("127.0.0.1", self.origin.port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname="api.example.test")

    def test_wrong_name_refused(self):
        ctx = ssl.create_default_context(cafile=self.origin.ca.ca_file)
        with socket.create_connection(("127.0.0.1", self.origin.port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname="evil.example.org")


class TestRuntimeStandin(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.rt = standin_runtime.RuntimeAPI()
        self.base = "http://%s/2018-06-01" % self.rt.address

    def tearDown(self):
        self.rt.close()
        super().tearDown()

    def _fake_function(self, reply):
        """A Python 'function' doing one loop iteration."""
        def run():
            r = urllib.request.urlopen(self.base + "/runtime/invocation/next", timeout=10)
            ev = json.loads(r.read())
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            self.seen = dict(r.headers.items())
            what, body = reply(ev)
            req = urllib.request.Request("%s/runtime/invocation/%s/%s" % (self.base, rid, what),
                                         data=json.dumps(body).encode(), method="POST")
            urllib.request.urlopen(req, timeout=5).read()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def test_long_poll_and_response(self):
        t = self._fake_function(lambda ev: ("response", {"statusCode": 200, "body": ev["path"]}))
        self.rt.wait_polling(timeout=2)
        time.sleep(0.2)
        self.assertIsNone(getattr(self, "seen", None), "next answered before an event was enqueued")
        resp = self.rt.invoke(standin_runtime.alb_event(path="/p"), timeout=2, deadline_s=3)
        t.join(2)
        self.assertEqual(resp, {"statusCode": 200, "body": "/p"})
        dl = int(self.seen["Lambda-Runtime-Deadline-Ms"])
        self.assertAlmostEqual(dl / 1000.0, time.time() + 3, delta=1.0)
        self.assertEqual(self.seen["Lambda-Runtime-Invoked-Function-Arn"], standin_runtime.FUNCTION_ARN)
        self.assertTrue(self.seen["Lambda-Runtime-Trace-Id"].startswith("Root=1-"))
        self.assertTrue(self.seen["Lambda-Runtime-Aws-Request-Id"])

    def test_error(self):
        self._fake_function(lambda ev: ("error", {"errorMessage": "boom", "errorType": "X"}))
        with self.assertRaises(standin_runtime.FunctionError) as cm:
            self.rt.invoke({"x": 1}, timeout=2)
        self.assertEqual(cm.exception.invocation.body["errorMessage"], "boom")

    def test_init_error_and_unknown_id(self):
        req = urllib.request.Request(self.base + "/runtime/init/error", method="POST",
                                     data=b'{"errorMessage":"bad prefix","errorType":"Runtime.Config"}')
        urllib.request.urlopen(req, timeout=2).read()
        body, _ = self.rt.wait_init_error(timeout=1)
        self.assertEqual(body["errorMessage"], "bad prefix")
        req = urllib.request.Request(self.base + "/runtime/invocation/nope/response", method="POST", data=b"{}")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=2)
        self.assertEqual(cm.exception.code, 400)

    def test_no_answer_times_out(self):
        with self.assertRaises(AssertionError):
            self.rt.invoke({"x": 1}, timeout=0.2)


class TestSSM(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto = moto_fixture.Moto()

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def _client(self, endpoint):
        import boto3
        import botocore.config
        return boto3.client("ssm", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="a",
                            aws_secret_access_key="b",
                            config=botocore.config.Config(retries={"total_max_attempts": 1}))

    def test_put_rotate_and_secure(self):
        self.moto.put("/fx/h/basic/password", "pw1", secure=True)
        self.assertEqual(self.moto.get("/fx/h/basic/password"), "pw1")
        self.moto.put("/fx/h/basic/password", "pw2", secure=True)
        self.assertEqual(self.moto.get("/fx/h/basic/password"), "pw2")
        self.moto.delete("/fx/h/basic/password")
        with self.assertRaises(Exception):
            self.moto.get("/fx/h/basic/password")

    def test_proxy_throttles_counts_and_pages(self):
        for i in range(25):
            self.moto.put("/fx/p/headers/X-H-%02d" % i, "v%d" % i)
        px = moto_fixture.SSMProxy(self.moto.endpoint)
        try:
            c = self._client(px.endpoint)
            px.throttle(2)
            import botocore.exceptions
            for _ in range(2):
                with self.assertRaises(botocore.exceptions.ClientError) as cm:
                    c.get_parameters_by_path(Path="/fx/p", Recursive=True)
                self.assertEqual(cm.exception.response["Error"]["Code"], "ThrottlingException")
            px.page_size = 3
            px.empty_pages(1)
            names, token, pages = [], None, 0
            while True:
                kw = {"NextToken": token} if token else {}
                r = c.get_parameters_by_path(Path="/fx/p", Recursive=True, MaxResults=10, **kw)
                pages += 1
                names += [p["Name"] for p in r["Parameters"]]
                token = r.get("NextToken")
                if not token:
                    break
            self.assertEqual(len(names), 25)
            self.assertEqual(pages, 1 + 9)  # one empty page, then 9 short pages of <= 3
            self.assertEqual(px.count, 2 + pages)
            self.assertEqual(set(px.targets()), {"AmazonSSM.GetParametersByPath"})
        finally:
            px.close()


if __name__ == "__main__":
    harness.main()
