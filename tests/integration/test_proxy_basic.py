#!/usr/bin/env python3
"""The request path, end to end: clients (curl the way the README shows it,
requests, raw sockets) send plain HTTP through the real daemon; the
stand-in Lambda checks the signature and records the ALB event; its ALB
answer comes back to the client. Each test asserts what the function saw
and what the client got."""

import base64
import json
import socket

import harness
import standin_lambda as sl
from daemon_fixture import ProxyTestCase

TARGET = "http://api.example.test"


def ev_headers(inv):
    return inv.event.get("headers") or {}


def ev_multi(inv):
    return inv.event.get("multiValueHeaders") or {}


class BasicTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.start_daemon()

    # -- the README's way: http_proxy=... curl http://... --
    def test_curl_get(self):
        r = self.d.curl(TARGET + "/v1/items?limit=5", "-H", "Accept: application/json")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.status, 200, r)
        inv = self.lam.last()
        self.assertEqual(inv.function, self.function_name)
        self.assertEqual(inv.header("X-Amz-Invocation-Type", "RequestResponse"), "RequestResponse")
        ev = inv.event
        self.assertEqual(ev["httpMethod"], "GET")
        self.assertEqual(ev["path"], "/v1/items")
        self.assertEqual(ev["queryStringParameters"], {"limit": "5"})
        self.assertEqual(ev["multiValueQueryStringParameters"], {"limit": ["5"]})
        self.assertEqual(ev_headers(inv)["host"], "api.example.test")
        self.assertEqual(ev_headers(inv)["accept"], "application/json")
        self.assertEqual(ev_multi(inv)["accept"], ["application/json"])
        self.assertFalse(ev["isBase64Encoded"])
        self.assertIn(ev.get("body"), ("", None))
        # The echo handler's body is the event: what the client got is what
        # the function answered.
        self.assertEqual(r.json(), ev)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(int(r.header("Content-Length")), len(r.body))

    def test_curl_readme_style_proxy(self):
        """http_proxy=localhost:PORT (no scheme), exactly as fleets export it."""
        r = self.d.curl(TARGET + "/readme", proxy="localhost:%d" % self.d.port)
        self.assertEqual((r.returncode, r.status), (0, 200), r)
        self.assertEqual(self.lam.last().event["path"], "/readme")

    def test_curl_post(self):
        body = '{"name": "widget", "note": "h\u00e9llo \u2713"}'
        r = self.d.curl(TARGET + "/v1/items", "-H", "Content-Type: application/json",
                        "--data-binary", "@-", data=body.encode("utf-8"))
        self.assertEqual((r.returncode, r.status), (0, 200), r)
        ev = self.lam.last().event
        self.assertEqual(ev["httpMethod"], "POST")
        self.assertEqual(ev["path"], "/v1/items")
        self.assertEqual(ev["body"], body)
        self.assertFalse(ev["isBase64Encoded"])
        self.assertEqual(ev["headers"]["content-type"], "application/json")
        self.assertEqual(ev["headers"]["content-length"], str(len(body.encode("utf-8"))))

    def test_requests_put_json(self):
        r = self.d.request("PUT", TARGET + "/v1/items/7", json={"a": [1, 2]})
        self.assertEqual(r.status_code, 200, r.text)
        ev = self.lam.last().event
        self.assertEqual((ev["httpMethod"], ev["path"]), ("PUT", "/v1/items/7"))
        self.assertEqual(json.loads(ev["body"]), {"a": [1, 2]})

    def test_other_methods_reach_the_function(self):
        """evhttp refuses PATCH/OPTIONS/DELETE unless told: each must reach
        the function as sent."""
        for method in ("PATCH", "OPTIONS", "DELETE", "HEAD"):
            r = self.d.raw("%s %s/m HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 0\r\n\r\n"
                           % (method, TARGET))
            self.assertEqual(r.status, 200, "%s: %r" % (method, r))
            self.assertEqual(self.lam.last().event["httpMethod"], method)
        # HEAD: no body.
        self.assertEqual(r.body, b"")

    # -- the event: exactly what the client sent --
    def test_path_escapes_kept_exactly(self):
        r = self.d.raw("GET %s/a%%2Fb/%%20c/%%7Euser/x+y HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.lam.last().event["path"], "/a%2Fb/%20c/%7Euser/x+y")
        # The same through curl (--path-as-is keeps it from normalizing).
        r = self.d.curl(TARGET + "/a%2Fb/%20c")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.lam.last().event["path"], "/a%2Fb/%20c")

    def test_multi_value_query_raw(self):
        r = self.d.raw("GET %s/q?a=1&a=2&b=%%2B&c=+&d HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 200, r)
        ev = self.lam.last().event
        # Keys and values exactly as sent (an ALB does not decode: %2B and +
        # stay different); the single-value form keeps the last value.
        self.assertEqual(ev["multiValueQueryStringParameters"],
                         {"a": ["1", "2"], "b": ["%2B"], "c": ["+"], "d": [""]})
        self.assertEqual(ev["queryStringParameters"], {"a": "2", "b": "%2B", "c": "+", "d": ""})
        self.assertEqual(ev["path"], "/q")

    def test_no_query(self):
        self.d.raw("GET %s/plain HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        ev = self.lam.last().event
        self.assertIn(ev.get("queryStringParameters"), ({}, None))
        self.assertIn(ev.get("multiValueQueryStringParameters"), ({}, None))

    def test_multi_value_headers(self):
        r = self.d.raw("GET %s/h HTTP/1.1\r\nHost: api.example.test\r\nX-Multi: one\r\nX-Multi: two\r\n"
                       "X-Single: Value With Case\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 200, r)
        inv = self.lam.last()
        self.assertEqual(ev_multi(inv)["x-multi"], ["one", "two"])
        self.assertEqual(ev_headers(inv)["x-multi"], "two")
        self.assertEqual(ev_headers(inv)["x-single"], "Value With Case")
        for name in list(ev_headers(inv)) + list(ev_multi(inv)):
            self.assertEqual(name, name.lower())

    def test_host_is_the_target_host(self):
        """A proxy request's Host is the absolute URL's authority, whatever
        Host header the client added."""
        self.d.raw("GET http://api.example.test:8080/p HTTP/1.1\r\nHost: other.example\r\n\r\n")
        inv = self.lam.last()
        self.assertEqual(ev_headers(inv)["host"], "api.example.test:8080")
        self.assertEqual(ev_multi(inv)["host"], ["api.example.test:8080"])
        self.assertEqual(inv.event["path"], "/p")

    def test_origin_form_with_host(self):
        """Local "ALB" mode: an origin-form request is served with its Host."""
        with self.d.connect() as c:
            r = c.request("GET /local/path?x=%20 HTTP/1.1\r\nHost: app.internal\r\n\r\n")
        self.assertEqual(r.status, 200, r)
        ev = self.lam.last().event
        self.assertEqual(ev["path"], "/local/path")
        self.assertEqual(ev["headers"]["host"], "app.internal")
        self.assertEqual(ev["queryStringParameters"], {"x": "%20"})

    def test_hop_by_hop_removed_from_request(self):
        raw = ("POST %s/hop HTTP/1.1\r\nHost: api.example.test\r\n"
               "Connection: keep-alive, X-Named-Hop\r\n"
               "X-Named-Hop: secret-hop\r\n"
               "Keep-Alive: timeout=5\r\n"
               "Proxy-Connection: keep-alive\r\n"
               "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
               "TE: deflate\r\n"
               "Trailer: X-Checksum\r\n"
               "Upgrade: websocket\r\n"
               "X-Kept: yes\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" % TARGET)
        r = self.d.raw(raw)
        self.assertEqual(r.status, 200, r)
        ev = self.lam.last().event
        for h in (ev["headers"], ev["multiValueHeaders"]):
            for gone in ("connection", "x-named-hop", "keep-alive", "proxy-connection",
                         "proxy-authorization", "te", "trailer", "upgrade", "transfer-encoding"):
                self.assertNotIn(gone, h)
            self.assertIn("x-kept", h)
        # The chunked body arrives whole.
        self.assertEqual(ev["body"], "hello world")
        self.assertNotIn("basic dxnlcjpwyxnz", json.dumps(ev).lower())

    def test_te_trailers_kept(self):
        """TE is hop-by-hop except "trailers" (what gRPC-style clients
        send); any other coding goes."""
        self.d.raw("GET %s/te HTTP/1.1\r\nHost: api.example.test\r\nTE: trailers\r\n\r\n" % TARGET)
        self.assertEqual(self.lam.last().event["headers"].get("te"), "trailers")
        self.d.raw("GET %s/te HTTP/1.1\r\nHost: api.example.test\r\nTE: gzip\r\n\r\n" % TARGET)
        self.assertNotIn("te", self.lam.last().event["headers"])

    def test_hop_by_hop_removed_from_response(self):
        self.lam.handler = sl.respond(200, "ok", headers={
            "connection": "X-Resp-Hop", "x-resp-hop": "1", "keep-alive": "timeout=99",
            "proxy-authenticate": "Basic realm=x", "upgrade": "h2c", "trailer": "X-T",
            "transfer-encoding": "chunked", "proxy-connection": "close", "x-kept": "yes"})
        r = self.d.raw("GET %s/r HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual((r.status, r.body), (200, b"ok"), r)
        for gone in ("X-Resp-Hop", "Proxy-Authenticate", "Upgrade", "Trailer", "Transfer-Encoding",
                     "Proxy-Connection"):
            self.assertIsNone(r.header(gone), "%s leaked: %r" % (gone, r.headers))
        self.assertNotIn("x-resp-hop", (r.header("Connection") or "").lower())
        self.assertNotEqual(r.header("Keep-Alive"), "timeout=99")
        self.assertEqual(r.header("X-Kept"), "yes")
        self.assertEqual(r.header("Content-Length"), "2")

    def test_407_keeps_proxy_authenticate(self):
        self.lam.handler = sl.respond(407, "auth", headers={"proxy-authenticate": "Basic realm=x"})
        r = self.d.raw("GET %s/auth HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 407)
        self.assertEqual(r.header("Proxy-Authenticate"), "Basic realm=x")

    def test_x_forwarded_for_appended(self):
        self.d.raw("GET %s/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(self.lam.last().event["headers"]["x-forwarded-for"], "127.0.0.1")
        self.d.raw("GET %s/x HTTP/1.1\r\nHost: api.example.test\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n" % TARGET)
        inv = self.lam.last()
        self.assertEqual(ev_headers(inv)["x-forwarded-for"], "10.1.2.3, 127.0.0.1")

    def test_binary_request_body_is_base64(self):
        body = bytes(range(256)) * 4
        r = self.d.post(TARGET + "/upload", data=body, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status_code, 200, r.text)
        ev = self.lam.last().event
        self.assertTrue(ev["isBase64Encoded"])
        self.assertEqual(base64.b64decode(ev["body"]), body)

    def test_invalid_utf8_is_base64(self):
        body = b"caf\xe9 \xc3\x28"
        self.d.post(TARGET + "/latin1", data=body, headers={"Content-Type": "text/plain"})
        ev = self.lam.last().event
        self.assertTrue(ev["isBase64Encoded"])
        self.assertEqual(base64.b64decode(ev["body"]), body)

    def test_binary_response_body(self):
        payload = bytes(range(256))[::-1] * 3
        self.lam.handler = sl.respond(200, payload, headers={"content-type": "image/png"})
        r = self.d.get(TARGET + "/img")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.content, payload)
        self.assertEqual(r.headers["Content-Type"], "image/png")
        self.assertEqual(r.headers["Content-Length"], str(len(payload)))

    def test_set_cookie_twice(self):
        self.lam.handler = sl.respond(200, "c", multi_value_headers={
            "set-cookie": ["a=1; Path=/", "b=2; HttpOnly"], "x-one": ["v"]})
        r = self.d.raw("GET %s/c HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1; Path=/", "b=2; HttpOnly"])
        self.assertEqual(r.header("X-One"), "v")

    def test_invalid_response_header_names_dropped(self):
        """Field names that are not tokens never reach the client: the
        reply stays well-formed and the valid headers survive."""
        self.lam.handler = sl.respond(200, "n", headers={"Bad Name": "1", "x-colon:": "2", "": "3",
                                                         "x-a\r\nX-Injected: yes\r\nx-b": "4", "x-ok": "5"})
        r = self.d.raw("GET %s/names HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual((r.status, r.body), (200, b"n"), r)
        names = [k for k, _ in r.headers]
        for bad in ("Bad Name", "x-colon", "", "X-Injected"):
            self.assertNotIn(bad, names)
        for line in r.head.split(b"\r\n")[1:]:
            self.assertRegex(line, rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+: ")
        self.assertEqual(r.header("X-Ok"), "5")
        # Nor into the daemon's log: no line may start with the injected text.
        self.assertFalse([l for l in self.d.log().splitlines() if l.startswith("X-Injected")], self.d.log())

    def test_single_value_headers_form(self):
        self.lam.handler = sl.respond(200, "s", headers={"x-a": "1", "set-cookie": "only=1"})
        r = self.d.raw("GET %s/s HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual((r.header("X-A"), r.header_all("Set-Cookie")), ("1", ["only=1"]))

    def test_status_description(self):
        self.lam.handler = sl.respond(299, "x", description="299 Custom Reason")
        r = self.d.raw("GET %s/s HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual((r.status, r.reason), (299, "Custom Reason"))

    def test_no_default_content_type(self):
        self.lam.handler = sl.respond(200, "plain", headers={"x-a": "1"})
        r = self.d.raw("GET %s/n HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.body, b"plain")
        self.assertIsNone(r.header("Content-Type"), r.headers)
        self.lam.handler = sl.respond(204, "")
        r = self.d.raw("GET %s/n HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("Content-Type"), r.headers)

    def test_function_status_passed_through(self):
        for status, body in ((404, "no such item"), (500, "app failed"), (301, ""), (418, "teapot")):
            self.lam.handler = sl.respond(status, body, headers={"location": "/moved"} if status == 301 else {})
            r = self.d.raw("GET %s/p HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
            self.assertEqual((r.status, r.text), (status, body))
        self.lam.handler = sl.respond(301, "", headers={"location": "/moved"})
        r = self.d.get(TARGET + "/p")
        self.assertEqual((r.status_code, r.headers["Location"]), (301, "/moved"))

    def test_client_keepalive(self):
        """Several requests on one client connection, each answered."""
        with self.d.connect() as c:
            for i in range(5):
                r = c.request("GET %s/k%d HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % (TARGET, i))
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.body)["path"], "/k%d" % i)
        self.assertEqual(self.lam.count(), 5)

    def test_pipelined_requests_answered_in_order(self):
        with self.d.connect() as c:
            c.send("GET %s/p1 HTTP/1.1\r\nHost: a\r\n\r\nGET %s/p2 HTTP/1.1\r\nHost: a\r\n\r\n" % (TARGET, TARGET))
            r1, r2 = c.read_response(), c.read_response()
        self.assertEqual([json.loads(r.body)["path"] for r in (r1, r2)], ["/p1", "/p2"])

    def test_http10_client(self):
        """An HTTP/1.0 client without keep-alive gets its answer and the
        connection closed (it may read to EOF)."""
        with self.d.connect() as c:
            r = c.request("GET %s/ten HTTP/1.0\r\n\r\n" % TARGET)
            self.assertEqual(r.status, 200)
            self.assertEqual(self.lam.last().event["headers"]["host"], "api.example.test")
            self.assertTrue(c.closed_by_peer(2.0))

    def test_client_gone_mid_call(self):
        """A client that hangs up while its call is in flight costs nothing:
        the worker goes on serving."""
        self.lam.push(sl.delay(0.5))
        c = self.d.connect()
        c.send("GET %s/abort HTTP/1.1\r\nHost: a\r\n\r\n" % TARGET)
        self.lam.wait_invocations(1)
        c.close()
        r = self.d.raw("GET %s/after HTTP/1.1\r\nHost: a\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 200)
        self.assertTrue(self.d.running())

    def test_large_response(self):
        payload = bytes(range(256)) * (4 * 4096)  # 4 MiB, binary
        self.lam.handler = sl.respond(200, payload)
        r = self.d.get(TARGET + "/big")
        self.assertEqual((r.status_code, len(r.content)), (200, len(payload)))
        self.assertEqual(r.content, payload)

    def test_curl_large_post_expect_continue(self):
        """curl sends Expect: 100-continue for a large body: the body must
        arrive whole and Expect must not reach the function."""
        data = b"0123456789abcdef" * (128 * 1024)  # 2 MiB
        r = self.d.curl(TARGET + "/upload", "--data-binary", "@-", "-H", "Content-Type: text/plain", data=data)
        self.assertEqual((r.returncode, r.status), (0, 200), r)
        ev = self.lam.last().event
        self.assertEqual(ev["body"], data.decode("ascii"))
        self.assertNotIn("expect", ev["headers"])

    def test_response_header_injection_refused(self):
        """A header value with CR/LF from the function must not become a
        second header (response splitting)."""
        self.lam.handler = sl.respond(200, "inj", headers={"x-a": "1\r\nX-Injected: yes", "x-b": "ok"})
        r = self.d.raw("GET %s/inj HTTP/1.1\r\nHost: a\r\n\r\n" % TARGET)
        self.assertIsNone(r.header("X-Injected"), r.headers)
        self.assertNotIn(b"X-Injected", r.head)
        self.assertEqual(r.header("X-B"), "ok")

    def test_request_context(self):
        self.d.raw("GET %s/ctx HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        ctx = self.lam.last().event["requestContext"]
        self.assertIn("elb", ctx)
        self.assertEqual(ctx["instance"]["hostname"], socket.gethostname())

    def test_access_log_line(self):
        self.lam.handler = sl.respond(201, "made")
        resp = self.d.raw("GET %s/logged/path?secret=x HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        req_id = self.lam.last().request_id

        def line():
            found = [l for l in self.d.log().splitlines() if req_id in l]
            return found[-1] if found else None
        fields = harness.wait_for(line, timeout=3, what="an access log line naming %s" % req_id).split()
        # TIME CLIENT METHOD HOST PATH STATUS BYTES DURATION_MS REQUEST_ID CACHE ID (accesslog.h)
        i = fields.index("127.0.0.1")
        self.assertEqual(fields[i:i + 4], ["127.0.0.1", "GET", "api.example.test", "/logged/path"])
        self.assertEqual(fields[i + 4:i + 6], ["201", "4"])
        self.assertEqual(fields[i + 7], req_id)
        # The request's own id, as the client got it in X-Request-Id.
        self.assertEqual(fields[i + 9], resp.header("X-Request-Id"))
        self.assertRegex(fields[i + 9], r"^[0-9a-f]{32}$")
        self.assertNotIn("secret=x", " ".join(fields))
        self.assertNotIn(sl.SECRET_KEY, self.d.log())


class ConfigVariantsTest(ProxyTestCase):
    def test_forwarded_for_false(self):
        d = self.start_daemon({"forwarded_for": False})
        d.raw("GET %s/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertNotIn("x-forwarded-for", self.lam.last().event["headers"])
        d.raw("GET %s/x HTTP/1.1\r\nHost: api.example.test\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n" % TARGET)
        self.assertEqual(self.lam.last().event["headers"]["x-forwarded-for"], "10.1.2.3")

    def test_function_arn_region_wins(self):
        """A full ARN names its region: the call is signed for it even when
        the config and the environment say another."""
        arn = "arn:aws:lambda:us-east-1:123456789012:function:ssm-sign-proxy-Proxy-ABC:live"
        d = self.start_daemon({"function_name": arn, "region": "eu-west-1"}, env={"AWS_REGION": "eu-west-1"})
        r = d.get(TARGET + "/arn")
        self.assertEqual(r.status_code, 200, r.text)
        inv = self.lam.last()
        self.assertEqual(inv.function, arn)
        self.assertIn("%3A", inv.raw_path)
        self.assertIn("/us-east-1/lambda/aws4_request", inv.header("Authorization"))

    def test_session_token_signed(self):
        self.lam.stop()
        self.lam = sl.StandinLambda(token="IQoJb3JpZ2luX2VjEXAMPLE/+=token", region=self.region).start()
        d = self.start_daemon(env={"AWS_SESSION_TOKEN": self.lam.token})
        r = d.get(TARGET + "/tok")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.last().header("X-Amz-Security-Token"), self.lam.token)
        self.assertNotIn(self.lam.token, d.log())

    def test_ignores_proxy_environment(self):
        """Fleets export http_proxy to everything, the daemon included: its
        own calls to Lambda must not go through it (it would loop)."""
        port = harness.free_port()
        env = {k: "http://127.0.0.1:%d" % port for k in
               ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")}
        env["no_proxy"] = ""
        d = self.start_daemon(port=port, env=env)
        r = d.get(TARGET + "/through")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.count(), 1)

    def test_go_tool_flags_serve(self):
        """The original Go tool's command line, no -c: the daemon serves."""
        port = harness.free_port()
        proc = self.start([harness.DAEMON, "-function-name=go-style-fn", "-address=localhost:%d" % port],
                          env=self.daemon_env())
        harness.wait_port(port, proc=proc)
        r = self.d_session_get(port, TARGET + "/go")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.last().function, "go-style-fn")

    def d_session_get(self, port, url):
        import requests
        with requests.Session() as s:
            s.trust_env = False
            return s.get(url, proxies={"http": "http://127.0.0.1:%d" % port}, timeout=5)

    def test_listen_list(self):
        p1, p2 = harness.free_port(), harness.free_port()
        d = self.start_daemon({"listen": ["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2]}, port=p1)
        harness.wait_port(p2, proc=d.proc)
        for p in (p1, p2):
            r = d.session().get(TARGET + "/l", proxies={"http": "http://127.0.0.1:%d" % p}, timeout=5)
            self.assertEqual(r.status_code, 200)
        self.assertEqual(self.lam.count(), 2)


if __name__ == "__main__":
    harness.main()
