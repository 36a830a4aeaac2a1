#!/usr/bin/env python3
"""The daemon's Lambda Invoke client (src/invoke.c, src/curlev.c) against the
stand-in Lambda: retries and their budget (throttling, 5xx, broken
connections, idempotent methods only), error mapping (function error,
unknown function, endpoint down, timeout), clock-skew correction, the proxy
environment, concurrency inside one worker (a stalled invocation does not
hold up others), keep-alive reuse, and the limits checked before invoking
(413, max_inflight). The request/response translation itself is covered by
test_proxy_*.py."""

import calendar
import http.server
import socket
import socketserver
import threading
import time
import urllib.request

import daemon_fixture
import harness
import standin_lambda as sl

# Fast retries: the budget (timeouts.invoke = 2 s) holds several of them.
RETRY = {"attempts": 4, "base": 0.05, "cap": 0.2}


class _Forwarder(http.server.BaseHTTPRequestHandler):
    """A minimal forward proxy for plain http: counts what it relays."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.server.seen.append(self.path)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "keep-alive")}
        req = urllib.request.Request(self.path, data=body, headers=headers, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            resp = opener.open(req, timeout=5)
            status, rheaders, rbody = resp.status, resp.getheaders(), resp.read()
        except urllib.error.HTTPError as e:
            status, rheaders, rbody = e.code, e.headers.items(), e.read()
        self.send_response(status)
        for k, v in rheaders:
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(rbody)))
        self.end_headers()
        self.wfile.write(rbody)


class _ForwarderServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class InvokeTest(daemon_fixture.ProxyTestCase):

    def daemon(self, config=None, **kw):
        cfg = {"retry": dict(RETRY)}
        cfg = daemon_fixture.merge(cfg, config or {})
        return self.start_daemon(config=cfg, **kw)

    # -- throttling --

    def test_throttled_then_success(self):
        d = self.daemon()
        self.lam.push(sl.throttle(), sl.throttle())
        r = d.get("http://api.example.test/retry")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["path"], "/retry")
        # Two 429s and the call that went through, all with valid signatures.
        self.assertEqual(self.lam.count(), 3)

    def test_throttled_until_503_within_budget(self):
        d = self.daemon()
        self.lam.handler = sl.throttle()
        t0 = time.monotonic()
        r = d.get("http://api.example.test/busy")
        took = time.monotonic() - t0
        self.assertEqual(r.status_code, 503, r.text)
        self.assertIn("TooManyRequestsException", r.text)
        self.assertEqual(self.lam.count(), RETRY["attempts"])
        # Inside timeouts.invoke (2 s), well before it with these back-offs.
        self.assertLess(took, 2.0)

    def test_retry_after_beyond_budget_gives_up_at_once(self):
        d = self.daemon()
        self.lam.handler = sl.throttle(retry_after=30)
        t0 = time.monotonic()
        r = d.get("http://api.example.test/busy")
        self.assertEqual(r.status_code, 503, r.text)
        self.assertEqual(self.lam.count(), 1)
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_retry_after_within_budget_is_honoured(self):
        d = self.daemon()
        self.lam.push(sl.throttle(retry_after=1))
        r = d.get("http://api.example.test/later")
        self.assertEqual(r.status_code, 200, r.text)
        invs = self.lam.wait_invocations(2)
        self.assertGreaterEqual(invs[1].time - invs[0].time, 0.9)

    # -- 5xx and broken connections: idempotent methods only --

    def test_post_not_retried_after_5xx(self):
        d = self.daemon()
        self.lam.push(sl.service_error())
        r = d.post("http://api.example.test/hook", data=b"fire once")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertIn("ServiceException", r.text)
        time.sleep(0.3)  # a retry would have come by now
        self.assertEqual(self.lam.count(), 1)

    def test_get_retried_after_5xx(self):
        d = self.daemon()
        self.lam.push(sl.service_error())
        r = d.get("http://api.example.test/read")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.count(), 2)

    def test_5xx_until_attempts_run_out(self):
        d = self.daemon()
        self.lam.handler = sl.service_error()
        r = d.request("PUT", "http://api.example.test/x", data=b"v")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertEqual(self.lam.count(), RETRY["attempts"])

    def test_broken_connection_post_not_retried_get_retried(self):
        d = self.daemon()
        self.lam.push(sl.drop())
        r = d.post("http://api.example.test/hook", data=b"x")
        self.assertEqual(r.status_code, 502, r.text)
        time.sleep(0.3)
        self.assertEqual(self.lam.count(), 1)
        self.lam.reset()
        self.lam.push(sl.drop())
        r = d.request("DELETE", "http://api.example.test/thing")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.count(), 2)

    # -- error mapping --

    def test_function_error_is_502_and_logged(self):
        d = self.daemon()
        self.lam.handler = sl.function_error("database exploded", "KaboomError")
        r = d.get("http://api.example.test/x")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertIn("KaboomError", r.text)
        self.assertEqual(self.lam.count(), 1)  # a function error is not retried
        d.wait_log("database exploded")

    def test_unknown_function_is_502_naming_the_error(self):
        d = self.daemon()
        self.lam.handler = sl.not_found()
        r = d.get("http://api.example.test/x")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertIn("ResourceNotFoundException", r.text)
        self.assertIn("Function not found", r.text)
        self.assertEqual(self.lam.count(), 1)

    def test_access_denied_and_too_large_are_502(self):
        d = self.daemon()
        self.lam.push(sl.access_denied(), sl.too_large())
        r = d.get("http://api.example.test/a")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertIn("AccessDeniedException", r.text)
        r = d.get("http://api.example.test/b")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertIn("RequestTooLargeException", r.text)

    def test_lambda_error_text_never_leaks_credentials(self):
        # AWS's signature-mismatch message quotes the canonical request, whose
        # signed headers include the session token; other messages name the
        # access key id. Neither may reach the client or the log.
        token = "IQoJb3JpZ2luX2VjEXAMPLEsessiontoken"
        akid = "AKIAIOSFODNN7EXAMPLE"
        mismatch = ("The request signature we calculated does not match the signature you "
                    "provided. The Canonical String for this request should have been\n'POST\n"
                    "/2015-03-31/functions/f/invocations\n\nhost:x\nx-amz-security-token:%s\n'"
                    % token)
        self.lam.push(lambda inv: sl.aws_error(403, "InvalidSignatureException", mismatch),
                      lambda inv: sl.aws_error(403, "AccessDeniedException",
                                               "Access key %s is not authorized to perform: "
                                               "lambda:InvokeFunction" % akid))
        d = self.daemon()
        for _ in range(2):
            r = d.get("http://api.example.test/x")
            self.assertEqual(r.status_code, 502, r.text)
            self.assertNotIn(token, r.text)
            self.assertNotIn(akid, r.text)
        self.assertIn("InvalidSignatureException", d.log() + r.text)
        self.assertNotIn(token, d.log())
        self.assertNotIn(akid, d.log())

    def test_endpoint_down_then_recovery(self):
        d = self.daemon()
        r = d.get("http://api.example.test/up")
        self.assertEqual(r.status_code, 200, r.text)
        self.lam.stop()
        t0 = time.monotonic()
        r = d.get("http://api.example.test/down")
        self.assertEqual(r.status_code, 502, r.text)
        self.assertIn("cannot reach the Lambda endpoint", r.text)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.lam.start()  # the same port
        r = d.get("http://api.example.test/again")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["path"], "/again")

    def test_invoke_timeout_is_504(self):
        d = self.daemon({"timeouts": {"invoke": 1}})
        self.lam.push(sl.delay(3))
        t0 = time.monotonic()
        r = d.get("http://api.example.test/slow")
        took = time.monotonic() - t0
        self.assertEqual(r.status_code, 504, r.text)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 1.8)
        # The worker is fine afterwards.
        r = d.get("http://api.example.test/fast")
        self.assertEqual(r.status_code, 200, r.text)

    # -- clock skew --

    def test_clock_skew_corrected_from_date(self):
        # The stand-in's clock is 10 minutes ahead: the first signature is
        # "expired" to it; the daemon must learn the offset from the Date
        # header, sign again with it, and keep using it.
        self.expect_signature_failures = True
        self.lam.clock_offset = 600
        d = self.daemon()
        r = d.get("http://api.example.test/skew")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(len(self.lam.signature_failures), 1)
        self.assertIn("Signature expired", self.lam.signature_failures[0].signature_error)
        good = self.lam.last()
        amz = calendar.timegm(time.strptime(good.header("X-Amz-Date"), "%Y%m%dT%H%M%SZ"))
        self.assertAlmostEqual(amz, time.time() + 600, delta=5)
        # Later requests are signed with the corrected clock at once.
        r = d.get("http://api.example.test/skew2")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(len(self.lam.signature_failures), 1)

    # -- the daemon's own proxy settings --

    def trap(self):
        """A listening socket nobody should connect to; returns (url, count())."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.setblocking(False)
        self.addCleanup(s.close)

        def count():
            n = 0
            while True:
                try:
                    c, _ = s.accept()
                except BlockingIOError:
                    return n
                c.close()
                n += 1
        return "http://127.0.0.1:%d" % s.getsockname()[1], count

    def test_egress_proxy_used_and_http_proxy_ignored(self):
        trap_url, trapped = self.trap()
        fwd = _ForwarderServer(("127.0.0.1", 0), _Forwarder)
        fwd.seen = []
        threading.Thread(target=fwd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self.addCleanup(fwd.server_close)
        self.addCleanup(fwd.shutdown)
        env = {"http_proxy": trap_url, "HTTP_PROXY": trap_url, "https_proxy": trap_url,
               "all_proxy": trap_url, "ALL_PROXY": trap_url}
        d = self.daemon({"egress_proxy": "http://127.0.0.1:%d" % fwd.server_address[1]}, env=env)
        r = d.get("http://api.example.test/via")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(len(fwd.seen), 1)
        self.assertTrue(fwd.seen[0].startswith(self.lam.url + "/2015-03-31/functions/"),
                        fwd.seen[0])
        self.assertEqual(self.lam.count(), 1)
        self.assertEqual(trapped(), 0)

    # -- one worker, many requests --

    def test_stalled_invocation_does_not_delay_another(self):
        d = self.daemon({"workers": 1})
        self.lam.push(sl.delay(1.5))
        results = {}

        def slow():
            results["slow"] = d.raw("GET http://api.example.test/slow HTTP/1.1\r\n"
                                    "Host: api.example.test\r\nConnection: close\r\n\r\n").status

        t = threading.Thread(target=slow)
        t.start()
        self.lam.wait_invocations(1)
        t0 = time.monotonic()
        # A separate client (its own connection to the daemon).
        r = d.raw("GET http://api.example.test/quick HTTP/1.1\r\nHost: api.example.test\r\n"
                  "Connection: close\r\n\r\n")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertLess(took, 0.5)
        t.join(5)
        self.assertEqual(results.get("slow"), 200)

    def test_client_gone_abandons_invocation(self):
        # evhttp does not read a connection whose request is being answered;
        # the daemon watches for EOF itself, drops the invocation and logs
        # 499 at once rather than when the function answers.
        d = self.daemon({"workers": 1, "timeouts": {"invoke": 2}})
        self.lam.push(sl.delay(1.5))
        c = d.connect(timeout=3)
        c.send("GET http://api.example.test/gone HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
        self.lam.wait_invocations(1)
        t0 = time.monotonic()
        c.close()
        d.wait_log(" /gone 499 ", timeout=1.0)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertIn("went away", d.log())
        r = d.get("http://api.example.test/after")
        self.assertEqual(r.status_code, 200, r.text)

    def test_sequential_requests_reuse_connections(self):
        d = self.daemon({"workers": 1})
        for i in range(100):
            r = d.get("http://api.example.test/n/%d" % i)
            self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.count(), 100)
        ports = self.lam.client_ports()
        self.assertLessEqual(len(ports), 4, "connections to Lambda: %d" % len(ports))

    # -- limits checked before invoking --

    def test_event_over_6mb_is_413_without_invoking(self):
        d = self.daemon({"limits": {"max_body": 16 * 1024 * 1024}})
        body = b"a" * (6 * 1024 * 1024 + 1024)
        r = d.post("http://api.example.test/upload", data=body, timeout=10)
        self.assertEqual(r.status_code, 413, r.text[:300])
        self.assertEqual(self.lam.count(), 0)
        # Just under the limit goes through.
        r = d.post("http://api.example.test/upload", data=b"b" * (5 * 1024 * 1024), timeout=10)
        self.assertEqual(r.status_code, 200, r.text[:300])
        self.assertEqual(self.lam.count(), 1)

    def test_max_inflight_503_at_once(self):
        d = self.daemon({"workers": 1, "limits": {"max_inflight": 2}})
        self.lam.handler = sl.delay(1.0, sl.echo)
        results = []

        def slow():
            results.append(d.raw("GET http://api.example.test/slow HTTP/1.1\r\n"
                                 "Host: api.example.test\r\nConnection: close\r\n\r\n").status)

        threads = [threading.Thread(target=slow) for _ in range(2)]
        for t in threads:
            t.start()
        self.lam.wait_invocations(2)
        t0 = time.monotonic()
        r = d.raw("GET http://api.example.test/third HTTP/1.1\r\nHost: api.example.test\r\n"
                  "Connection: close\r\n\r\n")
        self.assertEqual(r.status, 503, r)
        self.assertIn(b"max_inflight", r.body)
        self.assertLess(time.monotonic() - t0, 0.5)
        for t in threads:
            t.join(5)
        self.assertEqual(results, [200, 200])
        self.assertEqual(self.lam.count(), 2)


class ClientTimeoutsTest(daemon_fixture.ProxyTestCase):
    """The client-side timeouts proxy_init() gives evhttp (libevent 2.1 has
    one per connection: client_header/client_body until the first request,
    then keepalive)."""

    REQ = "GET http://api.example.test/1 HTTP/1.1\r\nHost: api.example.test\r\n\r\n"

    def test_keepalive_idle_timeout(self):
        d = self.start_daemon({"timeouts": {"keepalive": 0.5, "client_header": 2, "client_body": 2}})
        with d.connect(timeout=3) as c:
            self.assertEqual(c.request(self.REQ).status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.closed_by_peer(2.0))
            self.assertLess(time.monotonic() - t0, 1.2)

    def test_keepalive_zero_closes_after_each_reply(self):
        d = self.start_daemon({"timeouts": {"keepalive": 0}})
        with d.connect(timeout=3) as c:
            r = c.request(self.REQ)
            self.assertEqual(r.status, 200)
            self.assertTrue(r.closed, r.headers)
            self.assertTrue(c.closed_by_peer(1.0))

    def test_slow_request_header_times_out(self):
        d = self.start_daemon({"timeouts": {"client_header": 0.5, "client_body": 0.5,
                                            "keepalive": 2}})
        with d.connect(timeout=3) as c:
            c.send("GET http://api.example.test/1 HTTP/1.1\r\nHost: api.example.test\r\n")
            t0 = time.monotonic()
            self.assertTrue(c.closed_by_peer(2.0))
            self.assertLess(time.monotonic() - t0, 1.2)
        self.assertEqual(self.lam.count(), 0)


class RequestTargetTest(daemon_fixture.ProxyTestCase):
    """Hosts that are not hosts are refused before anything is invoked."""

    def test_bad_hosts_are_400(self):
        d = self.start_daemon()
        for target, host in (("/x", ":80"), ("/x", ":"), ("/x", "-bad"), ("/x", "a b"),
                             ("http://:80/x", "ignored"), ("http:///x", "ignored")):
            r = d.raw("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host))
            self.assertEqual(r.status, 400, "%s / Host %r: %r" % (target, host, r))
        self.assertEqual(self.lam.count(), 0)
        # The default port is dropped, another one kept.
        d.raw("GET /x HTTP/1.1\r\nHost: API.Example.test:80\r\n\r\n")
        self.assertEqual(self.lam.last().event["headers"]["host"], "api.example.test")
        d.raw("GET http://api.example.test:8080/x HTTP/1.1\r\nHost: other\r\n\r\n")
        self.assertEqual(self.lam.last().event["headers"]["host"], "api.example.test:8080")


class ReplyFramingTest(daemon_fixture.ProxyTestCase):
    """Replies without a body must not carry one: evhttp 2.1 writes what it
    is given even after HEAD, and a kept-alive client then reads those
    bytes as the start of the next response."""

    def test_head_and_204_leave_keepalive_in_step(self):
        d = self.start_daemon()
        get = "GET http://api.example.test/g HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
        with d.connect(timeout=3) as c:
            self.lam.handler = sl.respond(200, "abc", headers={"content-length": "99"})
            r = c.request("HEAD http://api.example.test/h HTTP/1.1\r\nHost: api.example.test\r\n"
                          "\r\n", method="HEAD")
            self.assertEqual(r.status, 200)
            # HEAD keeps the length the origin announced.
            self.assertEqual(r.header("Content-Length"), "99")
            r = c.request(get)
            self.assertEqual((r.status, r.body), (200, b"abc"))
            self.lam.handler = sl.respond(204, "ignored")
            self.assertEqual(c.request(get).status, 204)
            self.lam.handler = sl.respond(200, "next")
            self.assertEqual(c.request(get).body, b"next")
            # An error answered by the daemon itself to HEAD: no body either.
            r = c.request("HEAD https://api.example.test/h HTTP/1.1\r\nHost: api.example.test\r\n"
                          "\r\n", method="HEAD")
            self.assertEqual(r.status, 400)
            self.assertEqual(c.request(get).body, b"next")


if __name__ == "__main__":
    harness.main()
