#!/usr/bin/env python3
"""ssp-curl, the command-line user of libssm-sign-proxy, against the
stand-in Lambda: curl's option names (-X, -H, -d, --data-binary @FILE, -i,
-s, -f), the function from SSM_SIGN_PROXY_FUNCTION, and its exit statuses
(0 for any answer, 22 with -f for >= 400, non-zero with one line of reason
when no answer came)."""

import base64
import json
import os
import subprocess

import harness
import standin_lambda as sl

SSP_CURL = os.path.join(harness.BUILDDIR, "tools", "ssp-curl")


class SspCurlTest(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.lam = sl.StandinLambda().start()
        self.addCleanup(self.lam.stop)

    def tearDown(self):
        super().tearDown()
        self.assertEqual(self.lam.signature_failures, [])

    def run_curl(self, *args, env_extra=None):
        env = harness.clean_env({
            "AWS_ENDPOINT_URL_LAMBDA": self.lam.url,
            "AWS_ACCESS_KEY_ID": sl.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": sl.SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "SSM_SIGN_PROXY_FUNCTION": "signer",
        })
        env.update(env_extra or {})
        return subprocess.run([SSP_CURL] + list(args), env=env, capture_output=True, timeout=60)

    def test_get_body_to_stdout(self):
        p = self.run_curl("http://api.example.test/user/repos?per_page=2")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = json.loads(p.stdout)
        self.assertEqual(ev["httpMethod"], "GET")
        self.assertEqual(ev["path"], "/user/repos")
        self.assertEqual(ev["queryStringParameters"], {"per_page": "2"})
        self.assertEqual(p.stderr, b"")
        self.assertEqual(self.lam.last().function, "signer")

    def test_function_option_wins(self):
        p = self.run_curl("--function", "other:live", "http://api.example.test/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.lam.last().function, "other:live")

    def test_no_function(self):
        p = self.run_curl("http://api.example.test/", env_extra={"SSM_SIGN_PROXY_FUNCTION": ""})
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"SSM_SIGN_PROXY_FUNCTION", p.stderr)

    def test_method_headers_data(self):
        p = self.run_curl("-X", "PATCH", "-H", "X-One: 1", "-H", "Content-Type: text/plain",
                          "-d", "hello", "http://api.example.test/p")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.lam.last().event
        self.assertEqual(ev["httpMethod"], "PATCH")
        mh = {k.lower(): v for k, v in ev["multiValueHeaders"].items()}
        self.assertEqual(mh["x-one"], ["1"])
        self.assertEqual(mh["content-type"], ["text/plain"])
        self.assertEqual(ev["body"], "hello")

    def test_data_is_a_form_post(self):
        p = self.run_curl("-d", "a=1&b=2", "http://api.example.test/f")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.lam.last().event
        self.assertEqual(ev["httpMethod"], "POST")
        mh = {k.lower(): v for k, v in ev["multiValueHeaders"].items()}
        self.assertEqual(mh["content-type"], ["application/x-www-form-urlencoded"])

    def test_data_binary_file(self):
        path = os.path.join(self.tmp, "body.bin")
        data = bytes(range(256))
        with open(path, "wb") as f:
            f.write(data)
        p = self.run_curl("--data-binary", "@" + path, "-X", "PUT", "http://api.example.test/b")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.lam.last().event
        self.assertTrue(ev["isBase64Encoded"])
        self.assertEqual(base64.b64decode(ev["body"]), data)
        p = self.run_curl("--data-binary", "@/nonexistent/file", "http://api.example.test/b")
        self.assertEqual(p.returncode, 26)

    def test_include_headers(self):
        self.lam.handler = sl.respond(404, "nope", headers={"X-Why": "missing"})
        p = self.run_curl("-i", "http://api.example.test/missing")
        self.assertEqual(p.returncode, 0, "a 404 is an answer: exit 0 without -f")
        head, body = p.stdout.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 404")
        self.assertIn(b"X-Why: missing", lines)
        self.assertEqual(body, b"nope")

    def test_fail_exit_22(self):
        self.lam.handler = sl.respond(403, "denied")
        p = self.run_curl("-f", "http://api.example.test/x")
        self.assertEqual(p.returncode, 22)
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"403", p.stderr)
        p = self.run_curl("-f", "-s", "http://api.example.test/x")
        self.assertEqual((p.returncode, p.stderr), (22, b""))

    def test_no_response(self):
        self.lam.handler = sl.throttle()
        p = self.run_curl("--max-time", "1", "http://api.example.test/x")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"")
        lines = p.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("throttling", lines[0])
        p = self.run_curl("-s", "http://api.example.test/x")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stderr, b"", "-s must keep the reason quiet")

    def test_no_credentials(self):
        p = self.run_curl("--max-time", "1", "http://api.example.test/x",
                          env_extra={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
        self.assertEqual(p.returncode, 7)
        self.assertIn(b"no AWS credentials", p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1)

    def test_timeout_exit_28(self):
        self.lam.handler = sl.delay(3, sl.echo)
        p = self.run_curl("--max-time", "0.5", "http://api.example.test/slow")
        self.assertEqual(p.returncode, 28, p.stderr)


if __name__ == "__main__":
    harness.main()
