#!/usr/bin/env python3
"""The project's SigV4 signer (through tests/unit/sigv4_sign_cli) against
botocore's SigV4Auth, our independent reference, for the requests we really
send: Lambda Invoke with a full function ARN in the path (double-encoded in
the canonical URI), with and without a session token, with a query string,
and an SSM JSON POST."""

import datetime
import os
import subprocess
import unittest
from unittest import mock

import harness

try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:  # pragma: no cover - the test box has botocore
    botocore = None

CLI = os.path.join(harness.BUILDDIR, "tests", "unit", "sigv4_sign_cli")
AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2026, 11, 29, 10, 31, 27)
EPOCH = int(WHEN.replace(tzinfo=datetime.timezone.utc).timestamp())
ARN_PATH = ("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012"
            "%3Afunction%3Afoo/invocations")


class SigV4Botocore(harness.TestCase):
    def setUp(self):
        super().setUp()
        if botocore is None:
            self.skipTest("botocore is not installed")
        if not os.access(CLI, os.X_OK):
            self.fail("%s not built (make check builds it)" % CLI)

    def ours(self, method, host, path, query, headers, body, region, service, token):
        env = harness.clean_env({"AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK})
        if token:
            env["AWS_SESSION_TOKEN"] = token
        argv = [CLI, method, path, query or "", region, service, str(EPOCH),
                "Host:" + host] + ["%s:%s" % kv for kv in headers]
        p = subprocess.run(argv, input=body, env=env, capture_output=True, timeout=10)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, err)
        self.assertFalse([l for l in err.splitlines()
                          if any(m in l for m in harness.SANITIZER_MARKERS)], err)
        auth, amz_date = p.stdout.decode().splitlines()[:2]
        return auth, amz_date, err

    def botocore(self, method, host, path, query, params, headers, body, region, service,
                 token):
        url = "https://%s%s" % (host, path) + ("?" + query if query else "")
        req = AWSRequest(method=method, url=url, data=body, params=params,
                         headers=dict([("Host", host)] + list(headers)))
        auth = botocore.auth.SigV4Auth(Credentials(AK, SK, token), service, region)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN):
            auth.add_auth(req)
        creq = auth.canonical_request(req)
        return req.headers["Authorization"], req.headers["X-Amz-Date"], creq

    def check(self, method, host, path, query=None, headers=(), body=b"",
              region="us-east-1", service="lambda", token=None, params=None):
        """Sign with both. botocore takes a query in the URL as already
        canonical; params (decoded pairs) it encodes itself. We are given
        the raw query on the wire in both cases."""
        ours, our_date, our_creq = self.ours(method, host, path, query, headers, body,
                                             region, service, token)
        theirs, their_date, their_creq = self.botocore(
            method, host, path, None if params else query, params, headers, body, region,
            service, token)
        self.assertEqual(our_date, their_date)
        self.assertEqual(ours, theirs, "canonical requests:\nours:\n%s\nbotocore:\n%s"
                         % (our_creq, their_creq))
        return ours, our_creq

    def test_lambda_invoke_full_arn(self):
        auth, creq = self.check("POST", "lambda.us-east-1.amazonaws.com", ARN_PATH,
                                headers=[("X-Amz-Invocation-Type", "RequestResponse"),
                                         ("Content-Type", "application/json")],
                                body=b'{"httpMethod":"GET","path":"/"}')
        self.assertIn("arn%253Aaws%253Alambda", creq)
        self.assertIn("SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type,",
                      auth)

    def test_lambda_invoke_session_token(self):
        auth, creq = self.check("POST", "lambda.us-east-1.amazonaws.com", ARN_PATH,
                                headers=[("X-Amz-Invocation-Type", "RequestResponse")],
                                body=b'{"a":1}', token="FQoGZXIvYXdzEXAMPLE/+token==")
        self.assertIn("x-amz-security-token", auth)

    def test_lambda_invoke_qualifier_query(self):
        self.check("POST", "lambda.eu-west-1.amazonaws.com",
                   "/2015-03-31/functions/my-function/invocations",
                   query="Qualifier=prod", region="eu-west-1",
                   headers=[("X-Amz-Log-Type", "Tail")], body=b"{}")

    def test_query_sorting(self):
        self.check("GET", "lambda.us-east-1.amazonaws.com",
                   "/2015-03-31/functions/foo%3Aprod/configuration",
                   query="b=2&a=x%20y&a=%2B&A=1&c=&%E1%88%B4=~")

    def test_query_non_canonical_escapes(self):
        # On the wire: %7e for "~", a literal "+", raw UTF-8. We decode and
        # encode again; botocore encodes the decoded pairs itself.
        self.check("GET", "lambda.us-east-1.amazonaws.com", "/2015-03-31/functions",
                   query="Marker=%7e&a=x+y&b=%e1%88%b4",
                   params=[("Marker", "~"), ("a", "x+y"), ("b", "\u1234")])

    def test_ssm_json_post(self):
        body = (b'{"Path":"/ssp/api.example.com","Recursive":true,'
                b'"WithDecryption":true,"MaxResults":10}')
        self.check("POST", "ssm.us-east-1.amazonaws.com", "/", service="ssm",
                   headers=[("Content-Type", "application/x-amz-json-1.1"),
                            ("X-Amz-Target", "AmazonSSM.GetParametersByPath")],
                   body=body, token="SESSIONTOKEN")

    def test_loopback_endpoint_with_port(self):
        self.check("POST", "127.0.0.1:45123", ARN_PATH, body=b"{}")

    def test_binary_body(self):
        self.check("POST", "lambda.us-east-1.amazonaws.com", ARN_PATH,
                   body=bytes(range(256)))


if __name__ == "__main__":
    harness.main()
