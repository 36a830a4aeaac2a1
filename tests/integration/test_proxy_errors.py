#!/usr/bin/env python3
"""What the daemon does when something is wrong: the client's request, the
config, the credentials, the function or the Lambda endpoint. Each case
gets a clear status and body, nobody hangs, and a bad config stops the
daemon with FILE:LINE: KEY: message and exit code 1."""

import re
import time

import harness
import standin_lambda as sl
from daemon_fixture import ProxyTestCase

TARGET = "http://api.example.test"
GET = "GET %s/e HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET


class RequestErrorsTest(ProxyTestCase):
    def test_connect_is_405_with_explanation(self):
        d = self.start_daemon()
        with d.connect(timeout=3) as c:
            r = c.request("CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n")
            self.assertEqual(r.status, 405, r)
            self.assertIn("http://", r.text)
            # Length-delimited or closed: either way the read above ended
            # without waiting for a timeout; a tunnel must not be opened.
            self.assertTrue(r.header("Content-Length") is not None or r.closed or c.eof, r)
        self.assertEqual(self.lam.count(), 0)

    def test_malformed_request_line(self):
        d = self.start_daemon()
        for line in ("GARBAGE\r\n\r\n", "GET http://api.example.test/ HTTP/1.1 extra\r\n\r\n"):
            with d.connect(timeout=3) as c:
                c.send(line)
                r = c.read_response()
                self.assertEqual(r.status, 400, "%r: %r" % (line, r))
        self.assertEqual(self.lam.count(), 0)
        self.assertTrue(d.running())

    def test_conflicting_content_length(self):
        """Two Content-Length values: 400 and the connection closed, so the
        bytes after the shorter body are never taken for a request
        (request smuggling), and the function is not called."""
        d = self.start_daemon()
        with d.connect(timeout=3) as c:
            c.send("POST %s/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                   "helloXGET %s/smuggled HTTP/1.1\r\nHost: a\r\n\r\n" % (TARGET, TARGET))
            r = c.read_response()
            self.assertEqual(r.status, 400, r)
            self.assertTrue(c.closed_by_peer(2.0))
        self.assertEqual(self.lam.count(), 0)
        # The same value twice is one length (RFC 9112 allows folding it).
        r = d.raw("POST %s/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
                  % TARGET)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.lam.last().event["body"], "hello")

    def test_oversized_header(self):
        d = self.start_daemon({"limits": {"max_header": 8192}})
        with d.connect(timeout=3) as c:
            c.send("GET %s/big HTTP/1.1\r\nHost: api.example.test\r\nX-Big: %s\r\n\r\n" % (TARGET, "a" * 16384))
            r = c.read_response()
        self.assertIn(r.status, (431, 400), r)
        self.assertEqual(self.lam.count(), 0)
        # A request under the limit still works.
        r = d.raw("GET %s/ok HTTP/1.1\r\nHost: api.example.test\r\nX-Big: %s\r\n\r\n" % (TARGET, "a" * 2000))
        self.assertEqual(r.status, 200)

    def test_https_url_refused_with_explanation(self):
        d = self.start_daemon()
        r = d.raw("GET https://api.example.test/s HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
        self.assertEqual(r.status, 400, r)
        self.assertIn("http://", r.text)
        self.assertEqual(self.lam.count(), 0)

    def test_origin_form_without_host(self):
        d = self.start_daemon()
        r = d.raw("GET /nohost HTTP/1.1\r\n\r\n")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.lam.count(), 0)

    def test_client_outside_allow_is_403(self):
        """allow: [127.0.0.2/32]; a client bound to 127.0.0.3 is outside it,
        one bound to 127.0.0.2 inside."""
        d = self.start_daemon({"allow": ["127.0.0.2/32"]})
        r = d.raw(GET, source="127.0.0.3")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.lam.count(), 0)
        r = d.raw(GET, source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.lam.count(), 1)
        self.assertEqual(self.lam.last().event["headers"]["x-forwarded-for"], "127.0.0.2")

    def test_default_allow_is_loopback(self):
        d = self.start_daemon()
        self.assertEqual(d.raw(GET, source="127.0.0.5").status, 200)


class FunctionErrorsTest(ProxyTestCase):
    def test_unconfigured_function_name(self):
        """No function_name, or the shipped placeholder: 503 saying what to
        configure, and no call to Lambda."""
        for cfg in ({"function_name": None}, {"function_name": "ssm-sign-proxy-Proxy-XXXXXXXX"}):
            d = self.start_daemon(cfg)
            r = d.raw(GET)
            self.assertEqual(r.status, 503, "%s: %r" % (cfg, r))
            self.assertIn("function_name", r.text)
            d.stop()
        self.assertEqual(self.lam.count(), 0)

    def test_function_error_is_502(self):
        d = self.start_daemon()
        self.lam.handler = sl.function_error("database is on fire", "RuntimeError")
        r = d.raw(GET)
        self.assertEqual(r.status, 502, r)
        d.wait_log("database is on fire", timeout=3)
        # A function error is not retried: the function ran.
        time.sleep(0.2)
        self.assertEqual(self.lam.count(), 1)

    def test_invalid_function_response_is_502(self):
        d = self.start_daemon()
        for bad in (b"not json", b"[1, 2]", b'{"body": "no status"}', b'{"statusCode": "abc"}',
                    b'{"statusCode": 99999}', b'{"statusCode": 200, "body": 5}',
                    b'{"statusCode": 200, "body": "!!", "isBase64Encoded": true}'):
            self.lam.handler = lambda inv, b=bad: sl.Reply(200, [("Content-Type", "application/json")], b)
            r = d.raw(GET)
            self.assertEqual(r.status, 502, "%r: %r" % (bad, r))
            self.assertIn("invalid", r.text.lower())
        self.assertTrue(d.running())

    def test_lambda_api_errors_are_502_naming_the_failure(self):
        d = self.start_daemon()
        for behaviour, words in ((sl.not_found(), ("ResourceNotFound", "not found")),
                                 (sl.access_denied(), ("AccessDenied", "not authorized", "denied"))):
            self.lam.handler = behaviour
            r = d.raw(GET)
            self.assertEqual(r.status, 502, r)
            self.assertTrue(any(w.lower() in r.text.lower() for w in words), r)

    def test_no_credentials_is_503(self):
        d = self.start_daemon(credentials=False)
        r = d.raw(GET)
        self.assertEqual(r.status, 503, r)
        self.assertIn("credential", r.text.lower())
        self.assertEqual(self.lam.count(), 0)
        self.assertTrue(d.running())


class ConfigErrorsTest(ProxyTestCase):
    def expect_config_error(self, text, line, key, args=("-c",)):
        path = self.write_config(text=text)
        rc, out = self.run_daemon(list(args) + [path])
        self.assertEqual(rc, 1, out)
        if line is None:
            pat = r"%s:\d+: " % re.escape(path)
        else:
            pat = r"%s:%d: %s: \S" % (re.escape(path), line, re.escape(key))
        self.assertRegex(out, pat)
        return out

    def test_non_loopback_listen_without_allow_refused(self):
        port = harness.free_port()
        out = self.expect_config_error("function_name: f\nlisten: 0.0.0.0:%d\n" % port, 2, "listen")
        self.assertIn("allow", out)
        # With an explicit allow it starts.
        d = self.start_daemon({"listen": "0.0.0.0:%d" % port, "allow": ["127.0.0.0/8"]}, port=port)
        self.assertEqual(d.raw(GET).status, 200)

    def test_bad_yaml(self):
        self.expect_config_error("function_name: f\nlisten: [127.0.0.1:1\nworkers: 1\n", None, None)

    def test_unknown_key(self):
        out = self.expect_config_error("function_name: f\nworkers: 1\nno_such_key: 1\n", 3, "no_such_key")
        self.assertNotIn("Traceback", out)

    def test_unknown_nested_key(self):
        out = self.expect_config_error("function_name: f\ntimeouts:\n  invoke: 1\n  bogus: 1\n", 4, "timeouts.bogus")
        self.assertIn("bogus", out)

    def test_wrong_type(self):
        self.expect_config_error("function_name: f\nworkers: many\n", 2, "workers")

    def test_bad_address(self):
        self.expect_config_error("function_name: f\nlisten: not-an-address\n", 2, "listen")

    def test_check_only(self):
        self.expect_config_error("function_name: f\nno_such_key: 1\n", 2, "no_such_key", args=("-t", "-c"))
        path = self.write_config({"function_name": "f", "listen": "127.0.0.1:%d" % harness.free_port()},
                                 name="good.yaml")
        rc, out = self.run_daemon(["-t", "-c", path])
        self.assertEqual(rc, 0, out)

    def test_missing_config_file(self):
        rc, out = self.run_daemon(["-c", "/nonexistent/ssm-sign-proxy.yaml"])
        self.assertEqual(rc, 1, out)
        self.assertIn("/nonexistent/ssm-sign-proxy.yaml", out)


if __name__ == "__main__":
    harness.main()
