#!/usr/bin/env python3
"""The Host header decides which parameters are read and where the request
goes: hostile values are refused before Parameter Store is touched; a port
is part of the key (`host_PORT`) and of the connection."""

import harness
import lambda_case
from lambda_case import HOST

HOSTILE = [
    "", "/", "..", ".", "*", "_x", "a b", "api.example.test/..", "api\r\nx: y",
    "api\t.example.test", "\x7f", "[::1]", "::1", "[::1]:443", "foo..bar", ".api.example.test", "-api.example.test",
    "api-.example.test", "a" * 64 + ".example.test", ("a" * 60 + ".") * 5 + "test", "api.example.test:0", "api.example.test:65536", "api.example.test:8x", "api.example.test:-1",
    "user@api.example.test", "api.example.test#frag", "api.example.test?x", "api%2eexample.test",
    "../../etc/passwd", "api.example.test/../../x", "*.example.test", "api_x.example.test",
]


class TestHost(lambda_case.FunctionTestCase):
    def test_hostile_hosts_are_400_and_ssm_untouched(self):
        self.start_function()
        for host in HOSTILE:
            with self.subTest(host=host):
                before = self.ssm.count
                resp = self.invoke(self.event(host=host))
                self.assertEqual(self.ssm.count, before, "Parameter Store was asked for host %r" % host)
                self.assertStatus(resp, 400)
        self.assertEqual(self.origin.requests, [])
        self.assertIsNone(self.fn.poll(), "function exited")

    def test_nul_in_host_is_400(self):
        self.start_function()
        resp = self.invoke(self.event(host="api\x00.example.test"))
        self.assertEqual(self.ssm.count, 0, "Parameter Store was asked for a host cut at NUL")
        self.assertStatus(resp, 400)

    def test_missing_host_header_is_400(self):
        self.start_function()
        ev = self.event(host=None)
        resp = self.invoke(ev)
        self.assertStatus(resp, 400)
        self.assertEqual(self.ssm.count, 0)

    def test_host_is_lowercased_and_default_ports_dropped(self):
        self.params(HOST, {"headers/X-K": "lower-secret"})
        self.start_function()
        for host in ("API.Example.TEST", "api.example.test:443", "api.example.test:80", "Api.Example.Test."):
            with self.subTest(host=host):
                resp = self.invoke(self.event(host=host))
                if host.endswith(".") and resp["statusCode"] == 400:
                    continue  # a trailing dot may be refused; it must not be keyed differently
                self.assertStatus(resp, 200)
                self.assertEqual(self.origin.requests[-1].header("X-K"), ["lower-secret"])
                self.assertEqual(self.origin.requests[-1].header("Host"), [HOST])
        paths = {r.body["Path"] for r in self.ssm.requests if r.body}
        self.assertEqual(paths, {"/%s/%s" % (self.prefix, HOST)})

    def test_host_with_port_is_keyed_and_reached_on_that_port(self):
        self.params(HOST + "_8443", {"headers/X-K": "port-secret-8443"})
        self.params(HOST, {"headers/X-K": "no-port-secret"})
        self.start_function(connect_to=[self.origin.connect_to(HOST, 8443)])
        resp = self.invoke(self.event(host=HOST + ":8443"))
        self.assertStatus(resp, 200)
        req = self.origin.requests[-1]
        self.assertEqual(req.header("X-K"), ["port-secret-8443"])
        self.assertEqual(req.header("Host"), [HOST + ":8443"])
        self.assertEqual([r.body["Path"] for r in self.ssm.requests if r.body][0],
                         "/%s/%s_8443" % (self.prefix, HOST))

    def test_port_443_route_does_not_serve_8443(self):
        # Only a connect-to entry for port 443: a request for :8443 must not
        # be routed to it (it goes to the real api.example.test:8443, which
        # does not resolve here) and so fails as unreachable.
        self.params(HOST + "_8443", {"headers/X-K": "port-secret-2"})
        self.start_function(connect_to=[self.origin.connect_to(HOST, 443)])
        resp = self.invoke(self.event(host=HOST + ":8443"))
        self.assertEqual(resp["statusCode"], 502, resp)
        self.assertEqual(self.origin.requests, [])

    def test_ipv4_literal_is_accepted(self):
        self.params("127.0.0.1", {"headers/X-K": "ip-secret-1"})
        # The test certificate has IP:127.0.0.1, so TLS verification passes.
        self.start_function(connect_to=["127.0.0.1:443:127.0.0.1:%d" % self.origin.port])
        resp = self.invoke(self.event(host="127.0.0.1"))
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].header("X-K"), ["ip-secret-1"])


if __name__ == "__main__":
    harness.main()
