#!/usr/bin/env python3
"""The daemon's HTTP/1.1 front door (src/httpconn.c, src/http1.c), probed
with raw sockets as an attacker on the host would: exact bytes in, exact
status and connection state out. Request smuggling (RFC 9112 section 6),
field and target syntax, Host rules, methods, timeouts with nginx's
meaning, limits, 100-continue, pipelining, stop, dual-stack listening and
what the function may return. The hostile requests also go to nginx (the
Debian package, started here on loopback with its own prefix) and nginx's
verdict is the reference where both refuse."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import harness
import standin_lambda as sl
from daemon_fixture import Conn, ProxyTestCase

TARGET = "http://api.example.test"
HOST = "Host: api.example.test\r\n"


def answer(d, data, wait_close=1.0, timeout=3.0):
    """Send data on a new connection, read one response; return it and
    whether the daemon closed the connection after it."""
    with Conn(d.host, d.port, timeout=timeout) as c:
        c.send(data)
        r = c.read_response()
        closed = c.closed_by_peer(wait_close)
        return r, closed


def text_one_line(tc, r):
    """A daemon-made answer: text/plain, one line."""
    tc.assertTrue(r.header("Content-Type", "").startswith("text/plain"), r)
    tc.assertTrue(r.body.endswith(b"\n") and r.body.count(b"\n") == 1, r)


# (name, request bytes, our status, closed after it). Each must never reach
# the function.
HOSTILE = [
    ("space before colon in Content-Length",
     "POST /x HTTP/1.1\r\n" + HOST + "Content-Length : 59\r\n\r\n", 400, True),
    ("space before colon in Transfer-Encoding",
     "POST /x HTTP/1.1\r\n" + HOST + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("Transfer-Encoding xchunked",
     "POST /x HTTP/1.1\r\n" + HOST + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     501, True),
    ("Transfer-Encoding gzip, chunked",
     "POST /x HTTP/1.1\r\n" + HOST + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, True),
    ("Transfer-Encoding with Content-Length",
     "POST /x HTTP/1.1\r\n" + HOST + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n", 400, True),
    ("Content-Length +5",
     "POST /x HTTP/1.1\r\n" + HOST + "Content-Length: +5\r\n\r\nhello", 400, True),
    ("Content-Length with a NUL",
     "POST /x HTTP/1.1\r\n" + HOST + "Content-Length: 5\x0099\r\n\r\nhello", 400, True),
    ("two Content-Length values",
     "POST /x HTTP/1.1\r\n" + HOST + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     400, True),
    ("NUL in Host",
     "GET /x HTTP/1.1\r\nHost: evil.example\x00.good.example\r\n\r\n", 400, True),
    ("obs-fold",
     "GET /x HTTP/1.1\r\n" + HOST + "X-A: 1\r\n folded\r\n\r\n", 400, True),
    ("bare CR in a value",
     "GET /x HTTP/1.1\r\n" + HOST + "X-A: 1\r2\r\n\r\n", 400, True),
    ("space in a field name",
     "GET /x HTTP/1.1\r\n" + HOST + "Bad Name: 1\r\n\r\n", 400, True),
    ("non-ASCII in a field name",
     "GET /x HTTP/1.1\r\n" + HOST + "X-\xe9: 1\r\n\r\n", 400, True),
    ("control byte in a value",
     "GET /x HTTP/1.1\r\n" + HOST + "X-A: a\x01b\r\n\r\n", 400, True),
    ("space in the target",
     "GET /x y HTTP/1.1\r\n" + HOST + "\r\n", 400, True),
    ("control byte in the target",
     "GET /x\x01y HTTP/1.1\r\n" + HOST + "\r\n", 400, True),
    ("HTTP/1.10", "GET /x HTTP/1.10\r\n" + HOST + "\r\n", 400, True),
    ("HTTP/2.0", "GET /x HTTP/2.0\r\n" + HOST + "\r\n", 505, True),
    ("HTTP/1.2", "GET /x HTTP/1.2\r\n" + HOST + "\r\n", 505, True),
    ("lower-case version", "GET /x http/1.1\r\n" + HOST + "\r\n", 400, True),
    ("two Host headers",
     "GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400, True),
    ("no Host on HTTP/1.1", "GET /x HTTP/1.1\r\n\r\n", 400, False),
    ("userinfo in Host", "GET /x HTTP/1.1\r\nHost: user:pw@evil.example\r\n\r\n", 400, False),
    ("bad chunk size",
     "POST /x HTTP/1.1\r\n" + HOST + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, True),
    ("overflowing chunk size",
     "POST /x HTTP/1.1\r\n" + HOST + "Transfer-Encoding: chunked\r\n\r\n"
     "fffffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400, True),
    ("chunk longer than its size",
     "POST /x HTTP/1.1\r\n" + HOST + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
     400, True),
    ("Transfer-Encoding in HTTP/1.0",
     "POST /x HTTP/1.0\r\n" + HOST + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("unknown expectation",
     "POST /x HTTP/1.1\r\n" + HOST + "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417, True),
]


class FrontDoorSyntaxTest(ProxyTestCase):
    def test_hostile_requests(self):
        d = self.start_daemon()
        for name, data, status, closed in HOSTILE:
            with self.subTest(name):
                r, was_closed = answer(d, data)
                self.assertEqual(r.status, status, "%s: %r" % (name, r))
                text_one_line(self, r)
                if closed:
                    self.assertTrue(was_closed, "%s: connection left open" % name)
                    self.assertEqual(r.header("Connection"), "close", r)
        self.assertEqual(self.lam.count(), 0)
        # Each got an access-log line with its status.
        log = d.log()
        for status in (400, 501, 505, 417):
            self.assertIn(" %d " % status, log)

    def test_smuggled_body_is_not_a_request(self):
        """Content-Length with whitespace before the colon used to leave the
        body to be run as a second request; now the connection closes."""
        d = self.start_daemon()
        body = "GET %s/smuggled HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)
        with d.connect() as c:
            c.send("POST %s/x HTTP/1.1\r\n%sContent-Length : %d\r\n\r\n%s"
                   % (TARGET, HOST, len(body), body))
            self.assertEqual(c.read_response().status, 400)
            self.assertTrue(c.closed_by_peer(2.0))
        self.assertEqual(self.lam.count(), 0)

    def test_body_on_get_and_head_is_read_by_its_framing(self):
        """A body on GET or HEAD is read (and forwarded), never taken for the
        next request; the pipelined request after it is answered next."""
        d = self.start_daemon()
        for method in ("GET", "HEAD", "DELETE"):
            with self.subTest(method), d.connect() as c:
                c.send("%s %s/a HTTP/1.1\r\n%sContent-Length: 24\r\n\r\nGET /b HTTP/1.1\r\nX: y\r\n\r\n"
                       "GET %s/second HTTP/1.1\r\n%s\r\n" % (method, TARGET, HOST, TARGET, HOST))
                self.assertEqual(c.read_response(method).status, 200)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(self.lam.last().event["path"], "/second")
        self.assertEqual(self.lam.count(), 6)

    def test_chunked_body_forwarded(self):
        """A chunked body is de-chunked into the event; extensions are
        ignored (RFC 9112 7.1.1) and trailers dropped."""
        d = self.start_daemon()
        with d.connect() as c:
            r = c.request("POST %s/c HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                          "5;ext=1\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                          % (TARGET, HOST))
            self.assertEqual(r.status, 200, r)
            ev = self.lam.last().event
            self.assertEqual(ev["body"], "hello world")
            self.assertNotIn("transfer-encoding", ev["multiValueHeaders"])
            self.assertNotIn("x-trailer", ev["multiValueHeaders"])
            # The connection goes on.
            self.assertEqual(c.request("GET %s/next HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).status,
                             200)

    def test_absolute_form_wins_over_host(self):
        d = self.start_daemon()
        r = d.raw("GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.lam.last().event["headers"]["host"], "a.example")
        r, _ = answer(d, "GET http://u:p@a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n")
        self.assertEqual(r.status, 400)
        self.assertEqual(self.lam.count(), 1)


class FrontDoorMethodsTest(ProxyTestCase):
    def test_any_token_method_is_forwarded(self):
        d = self.start_daemon()
        for m in ("PROPFIND", "PURGE", "FOO", "MKCOL", "get"):
            with self.subTest(m):
                r = d.raw("%s %s/m HTTP/1.1\r\n%sContent-Length: 0\r\n\r\n" % (m, TARGET, HOST))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.lam.last().event["httpMethod"], m)

    def test_connect_405_closes_and_ignores_pipelined(self):
        d = self.start_daemon()
        with d.connect() as c:
            c.send("CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n"
                   "GET %s/after HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
            r = c.read_response()
            self.assertEqual(r.status, 405)
            self.assertIn("GET", r.header("Allow", ""))
            text_one_line(self, r)
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer(2.0))
            self.assertEqual(c.buf, b"")
        self.assertEqual(self.lam.count(), 0)

    def test_trace_405(self):
        d = self.start_daemon()
        r = d.raw("TRACE %s/t HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.assertEqual(r.status, 405)
        self.assertTrue(r.header("Allow"))
        text_one_line(self, r)
        self.assertEqual(self.lam.count(), 0)


class FrontDoorLimitsTest(ProxyTestCase):
    def test_max_headers(self):
        d = self.start_daemon({"limits": {"max_headers": 20}})
        fields = "".join("X-F%d: v\r\n" % i for i in range(19))
        r = d.raw("GET %s/h HTTP/1.1\r\n%s%s\r\n" % (TARGET, HOST, fields))
        self.assertEqual(r.status, 200, r)
        fields = "".join("X-F%d: v\r\n" % i for i in range(20))
        r, closed = answer(d, "GET %s/h HTTP/1.1\r\n%s%s\r\n" % (TARGET, HOST, fields))
        self.assertEqual(r.status, 431, r)
        text_one_line(self, r)
        self.assertTrue(closed)
        self.assertEqual(self.lam.count(), 1)

    def test_many_distinct_names(self):
        """7,600 distinct header names in 60 KB (the issue's quadratic case)
        are answered, and the next request on another connection too."""
        d = self.start_daemon({"limits": {"max_headers": 10000, "max_header": 131072}})
        fields = "".join("x%x:v\r\n" % i for i in range(7600))
        r = d.raw("GET %s/many HTTP/1.1\r\n%s%s\r\n" % (TARGET, HOST, fields), timeout=20)
        self.assertEqual(r.status, 200, r)
        # Each name once, plus host, x-forwarded-for and x-request-id.
        self.assertEqual(len(self.lam.last().event["multiValueHeaders"]), 7600 + 3)
        self.assertEqual(d.raw("GET %s/x HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).status, 200)

    def test_request_line_too_long_414(self):
        d = self.start_daemon({"limits": {"max_header": 2048}})
        r, closed = answer(d, "GET /%s HTTP/1.1\r\n%s\r\n" % ("a" * 4096, HOST))
        self.assertEqual(r.status, 414)
        self.assertTrue(closed)

    def test_body_over_max_body_413_closes(self):
        d = self.start_daemon({"limits": {"max_body": 10}})
        r, closed = answer(d, "POST %s/b HTTP/1.1\r\n%sContent-Length: 11\r\n\r\nhello world"
                           % (TARGET, HOST))
        self.assertEqual(r.status, 413)
        self.assertTrue(closed)
        r, closed = answer(d, "POST %s/b HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                           "b\r\nhello world\r\n0\r\n\r\n" % (TARGET, HOST))
        self.assertEqual(r.status, 413)
        self.assertTrue(closed)
        self.assertEqual(self.lam.count(), 0)


class FrontDoorExpectTest(ProxyTestCase):
    def test_100_continue(self):
        d = self.start_daemon()
        with d.connect() as c:
            c.send("POST %s/e HTTP/1.1\r\n%sExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
                   % (TARGET, HOST))
            r = c.read_response()
            self.assertEqual(r.status, 100)
            c.send("hello")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(self.lam.last().event["body"], "hello")
            self.assertNotIn("expect", self.lam.last().event["multiValueHeaders"])

    def test_refused_before_the_body(self):
        """max_body, allow and max_inflight are checked before 100 Continue:
        the refusal comes without the body being asked for."""
        d = self.start_daemon({"limits": {"max_body": 100, "max_inflight": 1},
                               "allow": ["127.0.0.2/32"], "timeouts": {"invoke": 10}})
        head = ("POST %s/e HTTP/1.1\r\n%sExpect: 100-continue\r\nContent-Length: %%d\r\n\r\n"
                % (TARGET, HOST))
        with d.connect(source="127.0.0.2") as c:
            c.send(head % 5000000)
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertTrue(c.closed_by_peer(2.0))
        with d.connect(source="127.0.0.3") as c:
            c.send(head % 5)
            r = c.read_response()
            self.assertEqual(r.status, 403)
            self.assertTrue(c.closed_by_peer(2.0))
        # One request in flight fills max_inflight.
        self.lam.handler = sl.delay(2.0, sl.echo)
        slow = d.connect(source="127.0.0.2", timeout=10)
        slow.send("GET %s/slow HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.lam.wait_invocations(1)
        with d.connect(source="127.0.0.2") as c:
            c.send(head % 5)
            r = c.read_response()
            self.assertEqual(r.status, 503)
            self.assertTrue(c.closed_by_peer(2.0))
        self.assertEqual(slow.read_response().status, 200)
        self.assertEqual(self.lam.count(), 1)

    def test_allow_checked_at_accept(self):
        """A client outside allow gets 403 without sending a byte."""
        d = self.start_daemon({"allow": ["127.0.0.2/32"]})
        with d.connect(source="127.0.0.3") as c:
            r = c.read_response()
            self.assertEqual(r.status, 403)
            text_one_line(self, r)
            self.assertTrue(c.closed_by_peer(2.0))


class FrontDoorConnectionTest(ProxyTestCase):
    def test_pipelined_in_order(self):
        d = self.start_daemon()
        reqs = "".join("GET %s/p%d HTTP/1.1\r\n%s\r\n" % (TARGET, i, HOST) for i in range(5))
        with d.connect() as c:
            c.send(reqs)
            for i in range(5):
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertIn(b'"/p%d"' % i, r.body)

    def test_http10(self):
        d = self.start_daemon()
        with d.connect() as c:
            r = c.request("GET %s/a HTTP/1.0\r\n\r\n" % TARGET)
            self.assertEqual(r.status, 200)
            self.assertTrue(c.closed_by_peer(2.0))
        with d.connect() as c:
            r = c.request("GET %s/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % TARGET)
            self.assertEqual(r.header("Connection"), "keep-alive")
            self.assertEqual(c.request("GET %s/b HTTP/1.0\r\n\r\n" % TARGET).status, 200)

    def test_timeouts(self):
        d = self.start_daemon({"timeouts": {"client_header": 1, "client_body": 1,
                                            "keepalive": 30}})
        # A drip of one byte every 0.2 s does not extend client_header: the
        # 408 comes while the drip goes on (it would last 10 s).
        with d.connect(timeout=10) as c:
            c.send("GET %s/drip HTTP/1.1\r\n" % TARGET)
            got = None
            for _ in range(50):
                try:
                    c.send("X")
                except OSError:
                    break
                c.sock.settimeout(0.2)
                try:
                    got = c.read_response()
                    break
                except socket.timeout:
                    continue
            self.assertIsNotNone(got, "no answer during the drip")
            self.assertEqual(got.status, 408)
            text_one_line(self, got)
        # A connection that sends nothing gets 408 too.
        with d.connect(timeout=5) as c:
            self.assertEqual(c.read_response().status, 408)
        # A half-sent second request on a kept-alive connection is governed
        # by client_header (1 s), not keepalive (30 s).
        with d.connect(timeout=5) as c:
            self.assertEqual(c.request("GET %s/a HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).status, 200)
            c.send("GET %s/b HTTP/1.1\r\n" % TARGET)
            self.assertEqual(c.read_response().status, 408)
        # A body that stops arriving: 408.
        with d.connect(timeout=5) as c:
            c.send("POST %s/b HTTP/1.1\r\n%sContent-Length: 10\r\n\r\nabc" % (TARGET, HOST))
            self.assertEqual(c.read_response().status, 408)
            self.assertTrue(c.closed_by_peer(2.0))
        self.assertEqual(self.lam.count(), 1)
        self.assertIn(" 408 ", d.log())

    def test_stray_line_ends_keep_the_connection_idle(self):
        """CRLF after a body (old clients send it) does not start a request:
        the connection stays idle under keepalive, no 408 comes."""
        d = self.start_daemon({"timeouts": {"client_header": 0.5, "keepalive": 30}})
        with d.connect(timeout=5) as c:
            r = c.request("POST %s/a HTTP/1.1\r\n%sContent-Length: 2\r\n\r\nhi\r\n"
                          % (TARGET, HOST))
            self.assertEqual(r.status, 200)
            self.assertFalse(c.closed_by_peer(1.5))
            self.assertEqual(c.buf, b"")
            self.assertEqual(c.request("GET %s/b HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).status,
                             200)

    def test_send_timeout(self):
        """A client that stops reading a large answer is cut off after
        timeouts.send."""
        d = self.start_daemon({"timeouts": {"send": 1, "invoke": 20}})
        size = 5 * 1024 * 1024
        self.lam.handler = sl.respond(200, "a" * size)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((d.host, d.port))
        self.addCleanup(s.close)
        s.sendall(("GET %s/big HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).encode())
        d.wait_log("stopped reading (timeouts.send)", timeout=15)
        got = 0
        s.settimeout(5)
        try:
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                got += len(b)
        except ConnectionResetError:
            pass
        self.assertLess(got, size)

    def test_drips_at_max_connections_cost_a_new_client_one_deadline(self):
        """Connections that hold max_connections with heads that never end
        are cut off at their client_header deadline, so a new client is
        served after at most that long, not never."""
        d = self.start_daemon({"limits": {"max_connections": 40},
                               "timeouts": {"client_header": 1}})
        drips = []
        for _ in range(60):
            try:
                c = Conn(d.host, d.port, timeout=10)
            except OSError:
                break
            self.addCleanup(c.close)
            try:
                c.send("GET %s/drip HTTP/1.1\r\nX-A: " % TARGET)
            except OSError:
                pass
            drips.append(c)
        with d.connect(timeout=15) as c:
            r = c.request("GET %s/new HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
            self.assertEqual(r.status, 200)
        self.assertEqual(self.lam.count(), 1)

    def test_keepalive_idle_closes_silently(self):
        d = self.start_daemon({"timeouts": {"keepalive": 0.5}})
        with d.connect(timeout=5) as c:
            self.assertEqual(c.request("GET %s/a HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).status, 200)
            self.assertTrue(c.closed_by_peer(5.0))
            self.assertEqual(c.buf, b"")

    def test_client_leaving_is_499(self):
        d = self.start_daemon()
        self.lam.handler = sl.delay(1.0, sl.echo)
        c = d.connect()
        c.send("GET %s/gone HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.lam.wait_invocations(1)
        c.close()
        d.wait_log(" 499 ")


class FrontDoorStopTest(ProxyTestCase):
    def test_stop_refuses_new_and_flushes_503(self):
        """On SIGTERM the listening socket closes at once (a new connection
        is refused, not queued); a request still waiting at the deadline
        gets its 503 before the worker exits."""
        d = self.start_daemon({"timeouts": {"shutdown": 1}})
        self.lam.handler = sl.delay(10.0, sl.echo)
        c = d.connect(timeout=10)
        c.send("GET %s/slow HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.lam.wait_invocations(1)
        d.proc.signal(signal.SIGTERM)
        d.wait_log("no longer accepting")
        harness.wait_for(lambda: not self._connects(d), timeout=3, what="connections refused")
        r = c.read_response()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("Connection"), "close")

    def test_stop_answers_in_flight_with_close(self):
        d = self.start_daemon({"timeouts": {"shutdown": 5}})
        self.lam.handler = sl.delay(1.0, sl.echo)
        c = d.connect(timeout=10)
        c.send("GET %s/slow HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.lam.wait_invocations(1)
        d.proc.signal(signal.SIGTERM)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection"), "close")

    @staticmethod
    def _connects(d):
        try:
            s = socket.create_connection((d.host, d.port), timeout=1)
        except OSError:
            return False
        s.close()
        return True


class FrontDoorListenTest(ProxyTestCase):
    def test_port_only_is_dual_stack(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        port = harness.free_port()
        d = self.start_daemon({"listen": ":%d" % port, "allow": ["127.0.0.0/8", "::1/128"]},
                              port=port)
        for host in ("127.0.0.1", "::1"):
            with Conn(host, port) as c:
                self.assertEqual(c.request("GET %s/v HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).status,
                                 200)
        self.assertEqual(self.lam.last().event["headers"]["x-forwarded-for"], "::1")


class FunctionResponseTest(ProxyTestCase):
    def test_response_hygiene(self):
        d = self.start_daemon()
        self.lam.handler = sl.respond(200, "ok", headers={"x-ctl": "a\x01b", "x-good": "a\tb"},
                                      description="200 Fine\x07")
        r = d.raw("GET %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.assertEqual((r.status, r.reason), (200, "OK"))
        self.assertIsNone(r.header("x-ctl"))
        self.assertEqual(r.header("x-good"), "a\tb")
        self.lam.handler = sl.respond(200, "ok", description="200 " + "x" * 129)
        r = d.raw("GET %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.assertEqual(r.reason, "OK")
        self.lam.handler = sl.respond(200, "ok", description="200 Quite Fine")
        self.assertEqual(d.raw("GET %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).reason, "Quite Fine")

    def test_no_body_on_205_and_head(self):
        d = self.start_daemon()
        self.lam.handler = sl.respond(205, "should not be sent")
        with d.connect() as c:
            r = c.request("GET %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
            self.assertEqual((r.status, r.body), (205, b""))
            self.lam.handler = sl.respond(200, "body", headers={"content-length": "4"})
            r = c.request("HEAD %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
            self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", "4"))
            # The connection is still in step.
            self.assertEqual(c.request("GET %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST)).body,
                             b"body")

    def test_conflicting_content_length_replaced(self):
        d = self.start_daemon()
        self.lam.handler = sl.respond(200, "hello", multi_value_headers={
            "content-length": ["3", "99"]})
        r = d.raw("GET %s/r HTTP/1.1\r\n%s\r\n" % (TARGET, HOST))
        self.assertEqual(r.header_all("Content-Length") if hasattr(r, "header_all") else
                         [v for k, v in r.headers if k.lower() == "content-length"], ["5"])
        self.assertEqual(r.body, b"hello")


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location / { return 200 "ok\\n"; }
    }
}
"""


class DifferentialTest(ProxyTestCase):
    """The same hostile requests through nginx: where nginx refuses, we
    refuse too, with nginx's status unless noted."""

    # Where nginx 1.22 answers and we refuse, on purpose (the issue asks
    # for the stricter rule); the test checks that nginx still differs.
    DIFFERS = {
        "unknown expectation": "nginx ignores Expect; RFC 9110 10.1.1 allows 417",
        "HTTP/1.10": "nginx reads it as 1.10; RFC 9112 2.3 has one digit each",
        "HTTP/1.2": "nginx answers any 1.x; only 1.0 and 1.1 exist",
        "control byte in a value": "nginx passes it on; RFC 9110 5.5 forbids it",
        "userinfo in Host": "nginx takes it as a name; RFC 9110 4.2.4",
        "non-ASCII in a field name": "nginx drops the field (ignore_invalid_headers)",
    }

    def setUp(self):
        super().setUp()
        self.nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                               else None)
        if self.nginx is None:
            self.skipTest("nginx is not installed (tests/deps.sh installs it)")

    def start_nginx(self):
        prefix = os.path.join(self.tmp, "nginx")
        os.makedirs(prefix, exist_ok=True)
        port = harness.free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"prefix": prefix, "port": port})
        p = self.start([self.nginx, "-p", prefix, "-c", conf, "-e", prefix + "/error.log"],
                       name="nginx")
        harness.wait_port(port, timeout=10, proc=p)
        return port

    def test_same_verdicts(self):
        port = self.start_nginx()
        d = self.start_daemon()

        class N:
            host = "127.0.0.1"
        n = N()
        n.port = port
        for name, data, status, _ in HOSTILE:
            with self.subTest(name):
                # nginx serves origin-form only: the same request to it.
                try:
                    theirs, _ = answer(n, data)
                    ns = theirs.status
                except EOFError:
                    ns = "closed"
                ours, _ = answer(d, data)
                self.assertEqual(ours.status, status)
                if name in self.DIFFERS:
                    self.assertNotEqual(ns, ours.status, "%s: nginx agrees now" % name)
                    continue
                self.assertEqual(ours.status, ns, "%s: nginx %s, we %s" % (name, ns, ours.status))
        self.assertEqual(self.lam.count(), 0)


if __name__ == "__main__":
    harness.main()
