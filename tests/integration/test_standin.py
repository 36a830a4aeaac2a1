#!/usr/bin/env python3
"""The test fixtures themselves: the stand-in Lambda must accept exactly the
requests AWS would accept (AWS's SigV4 vectors, botocore-signed invokes) and
reject the rest, its canned behaviours must look like Lambda's answers on
the wire, and the config writer must emit the YAML we mean. The daemon
tests are only as good as this."""

import calendar
import json
import os
import socket
import threading
import time
import urllib.parse

import requests
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import daemon_fixture
import harness
import standin_lambda as sl

# Vectors whose requests the daemon can never send and botocore's Lambda
# signer does not model: S3-style unnormalized paths (normalize=false) and a
# raw UTF-8 query (the wire never carries one; it arrives percent-encoded).
SKIP_VECTORS = {"get-vanilla-utf8-query"}


def parse_vector_request(path):
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8")
    head, _, body = raw.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line.startswith((" ", "\t")):
            k, v = headers[-1]
            headers[-1] = (k, v + "\n" + line)
            continue
        k, _, v = line.partition(":")
        headers.append((k, v))
    return method, target, headers, body.encode("utf-8")


class StandinTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.lam = sl.StandinLambda().start()
        self.addCleanup(self.lam.stop)
        self.http = requests.Session()
        self.http.trust_env = False
        self.addCleanup(self.http.close)

    def invoke(self, name, body=b"{}", creds=None, qualifier=None, signer=SigV4Auth, tamper=None,
               lam=None, streaming=False):
        lam = lam or self.lam
        creds = creds or Credentials(sl.ACCESS_KEY, sl.SECRET_KEY, lam.token)
        if streaming:
            path = sl.STREAM_PREFIX + urllib.parse.quote(name, safe="") + sl.STREAM_SUFFIX
        else:
            path = sl.INVOKE_PREFIX + urllib.parse.quote(name, safe="") + sl.INVOKE_SUFFIX
        if qualifier:
            path += "?Qualifier=" + qualifier
        req = AWSRequest("POST", lam.url + path, data=body, headers={"Content-Type": "application/json"})
        signer(creds, "lambda", lam.region).add_auth(req)
        p = req.prepare()
        headers = dict(p.headers)
        data = p.body
        if tamper:
            data, headers = tamper(data, headers)
        return self.http.post(lam.url + path, data=data, headers=headers, timeout=5)

    def test_aws_vectors(self):
        """AWS's published vectors pass the stand-in's check, and the same
        requests with one signature digit changed fail it."""
        root = harness.shared_path("testdata", "aws-signing-test-suite", "v4")
        checked = 0
        for case in sorted(os.listdir(root)):
            with open(os.path.join(root, case, "context.json")) as f:
                ctx = json.load(f)
            if not ctx["normalize"] or case in SKIP_VECTORS:
                continue
            m, t, h, b = parse_vector_request(os.path.join(root, case, "header-signed-request.txt"))
            now = calendar.timegm(time.strptime(ctx["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            c = ctx["credentials"]
            args = (c["access_key_id"], c["secret_access_key"], c.get("token"), ctx["region"])
            err = sl.verify_signature(m, t, h, b, *args, service=ctx["service"], now=now, token_signed=False)
            self.assertIsNone(err, "%s: %s" % (case, err))
            bad = [(k, v[:-1] + ("0" if v[-1] != "0" else "1")) if k.lower() == "authorization" else (k, v)
                   for k, v in h]
            err = sl.verify_signature(m, t, bad, b, *args, service=ctx["service"], now=now, token_signed=False)
            self.assertIsNotNone(err, case)
            self.assertEqual(err[0], "InvalidSignatureException", case)
            checked += 1
        self.assertGreater(checked, 20)

    def test_signed_invoke_accepted_and_recorded(self):
        name = "arn:aws:lambda:us-east-1:123456789012:function:my-fn:live"
        r = self.invoke(name, b'{"path": "/x"}', qualifier="v2")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.lam.signature_failures, [])
        inv = self.lam.last()
        self.assertEqual(inv.function, name)
        self.assertIn("%3A", inv.raw_path)
        self.assertEqual(inv.query, {"Qualifier": ["v2"]})
        self.assertEqual(inv.event, {"path": "/x"})
        # The default handler echoes the event inside an ALB response.
        out = r.json()
        self.assertEqual(out["statusCode"], 200)
        self.assertEqual(json.loads(out["body"]), {"path": "/x"})

    def stream_events(self, r):
        """The answer's event stream as botocore reads it (AWS's decoder)."""
        from botocore.eventstream import EventStreamBuffer
        buf = EventStreamBuffer()
        buf.add_data(r.content)
        return [(m.headers.get(":message-type"), m.headers.get(":event-type") or
                 m.headers.get(":exception-type"), m.payload) for m in buf]

    def test_streaming_invoke(self):
        self.lam.handler = sl.stream_response(201, {"Content-Type": "text/plain"}, body=b"x" * 70000)
        r = self.invoke("fn:live", streaming=True)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["Content-Type"], "application/vnd.amazon.eventstream")
        self.assertEqual(self.lam.signature_failures, [])
        self.assertTrue(self.lam.last().streaming)
        self.assertEqual(self.lam.last().function, "fn:live")
        ev = self.stream_events(r)
        self.assertEqual([e[:2] for e in ev], [("event", "PayloadChunk")] * 3 + [("event", "InvokeComplete")])
        data = b"".join(e[2] for e in ev[:-1])
        prelude, _, body = data.partition(b"\0" * 8)
        self.assertEqual(json.loads(prelude)["statusCode"], 201)
        self.assertEqual(body, b"x" * 70000)
        self.assertEqual(json.loads(ev[-1][2]), {})

    def test_streaming_errors(self):
        self.lam.push(sl.stream_response(200, body=b"abc", end=sl.Complete("Unhandled", "boom")),
                      sl.stream_response(200, body=b"abc", end=sl.Exception_("ServiceException", "bad")),
                      sl.function_error("raised"), sl.throttle(), lambda inv: {"statusCode": 200, "body": "b"})
        ev = self.stream_events(self.invoke("fn", streaming=True))
        self.assertEqual(json.loads(ev[-1][2]), {"ErrorCode": "Unhandled", "ErrorDetails": "boom"})
        ev = self.stream_events(self.invoke("fn", streaming=True))
        self.assertEqual(ev[-1][:2], ("exception", "ServiceException"))
        ev = self.stream_events(self.invoke("fn", streaming=True))
        self.assertEqual(json.loads(ev[-1][2])["ErrorCode"], "Unhandled")
        r = self.invoke("fn", streaming=True)
        self.assertEqual(r.status_code, 429)
        ev = self.stream_events(self.invoke("fn", streaming=True))
        self.assertEqual(json.loads(ev[0][2]), {"statusCode": 200, "body": "b"})
        r = self.invoke("fn", streaming=True, tamper=lambda d, h: (d + b" ", h))
        self.assertEqual(r.status_code, 403)
        self.assertEqual(len(self.lam.signature_failures), 1)
        self.lam.signature_failures.clear()

    def test_session_token_required_when_configured(self):
        lam = sl.StandinLambda(token="FQoGZXIvYXdzEXAMPLE/token+=").start()
        self.addCleanup(lam.stop)
        r = self.invoke("fn", lam=lam)
        self.assertEqual(r.status_code, 200, r.text)
        r = self.invoke("fn", lam=lam, creds=Credentials(sl.ACCESS_KEY, sl.SECRET_KEY))
        self.assertEqual(r.status_code, 403)
        self.assertEqual(len(lam.signature_failures), 1)

    def test_bad_signatures_rejected_like_aws(self):
        cases = {
            "body changed": dict(tamper=lambda d, h: (d + b" ", h)),
            "wrong secret": dict(creds=Credentials(sl.ACCESS_KEY, "not-the-secret")),
            "wrong key id": dict(creds=Credentials("AKIDOTHER", sl.SECRET_KEY)),
            # S3's signer does not encode the path again: the classic
            # mistake with ARNs in the path (%3A must be signed as %253A).
            "path encoded once": dict(signer=S3SigV4Auth),
            "host changed": dict(tamper=lambda d, h: (d, dict(h, Host="lambda.example"))),
        }
        for what, kw in cases.items():
            before = len(self.lam.signature_failures)
            r = self.invoke("arn:aws:lambda:us-east-1:123456789012:function:f", **kw)
            self.assertEqual(r.status_code, 403, what)
            self.assertIn(r.headers.get("X-Amzn-ErrorType"),
                          ("InvalidSignatureException", "UnrecognizedClientException"), what)
            self.assertEqual(len(self.lam.signature_failures), before + 1, what)

    def test_clock_skew_is_signature_expired(self):
        self.lam.clock_offset = 3600
        r = self.invoke("fn")
        self.assertEqual(r.status_code, 403)
        self.assertEqual(r.headers["X-Amzn-ErrorType"], "InvalidSignatureException")
        self.assertIn("Signature expired", r.json()["message"])
        # The Date header carries the stand-in's (skewed) clock, which is
        # what a client corrects its offset from.
        date = calendar.timegm(time.strptime(r.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT"))
        self.assertAlmostEqual(date, time.time() + 3600, delta=5)

    def test_canned_behaviours_on_the_wire(self):
        self.lam.push(sl.throttle(retry_after=1), sl.function_error("boom"), sl.service_error(),
                      sl.not_found(), sl.access_denied(), sl.too_large(),
                      sl.respond(201, b"\x00\xff", headers={"x-a": "b"}, description="201 Created"))
        r = self.invoke("fn")
        self.assertEqual((r.status_code, r.headers["X-Amzn-ErrorType"], r.headers["Retry-After"]),
                         (429, "TooManyRequestsException", "1"))
        r = self.invoke("fn")
        self.assertEqual((r.status_code, r.headers["X-Amz-Function-Error"]), (200, "Unhandled"))
        self.assertEqual(r.json()["errorMessage"], "boom")
        r = self.invoke("fn")
        self.assertEqual((r.status_code, r.headers["X-Amzn-ErrorType"]), (500, "ServiceException"))
        r = self.invoke("fn")
        self.assertEqual((r.status_code, r.headers["X-Amzn-ErrorType"]), (404, "ResourceNotFoundException"))
        self.assertIn("function:fn", r.json()["message"])
        r = self.invoke("fn")
        self.assertEqual((r.status_code, r.headers["X-Amzn-ErrorType"]), (403, "AccessDeniedException"))
        r = self.invoke("fn")
        self.assertEqual((r.status_code, r.headers["X-Amzn-ErrorType"]), (413, "RequestTooLargeException"))
        r = self.invoke("fn")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json(), {"statusCode": 201, "statusDescription": "201 Created",
                                    "body": "AP8=", "isBase64Encoded": True, "headers": {"x-a": "b"}})
        # The queue is used up: back to the handler.
        self.assertEqual(self.invoke("fn").json()["statusCode"], 200)
        self.assertEqual(self.lam.count(), 8)

    def test_drop_closes_without_answer(self):
        self.lam.push(sl.drop())
        with self.assertRaises(requests.ConnectionError):
            self.invoke("fn")
        self.assertEqual(self.lam.count(), 1)

    def test_keepalive_and_client_ports(self):
        for _ in range(5):
            self.assertEqual(self.invoke("fn").status_code, 200)
        self.assertEqual(len(self.lam.client_ports()), 1)
        self.assertEqual(self.lam.connections_accepted, 1)

    def test_delay_and_fast_stop(self):
        self.lam.push(sl.delay(0.3))
        t = time.monotonic()
        self.assertEqual(self.invoke("fn").status_code, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        # A call stalled for 30 s must not hold up stop().
        self.lam.push(sl.delay(30))
        th = threading.Thread(target=lambda: self.assertRaises(requests.ConnectionError, self.invoke, "fn"))
        th.start()
        self.lam.wait_invocations(2)
        t = time.monotonic()
        self.lam.stop()
        self.assertLess(time.monotonic() - t, 1.0)
        th.join(3)
        self.assertFalse(th.is_alive())
        # Restart on the same port (endpoint down, then back).
        port = self.lam.port
        self.lam.start()
        self.assertEqual(self.lam.port, port)
        self.assertEqual(self.invoke("fn").status_code, 200)

    def test_not_an_invoke_path(self):
        r = self.http.get(self.lam.url + "/2015-03-31/functions/", timeout=5)
        self.assertEqual(r.status_code, 404)
        self.assertEqual(r.headers["X-Amzn-ErrorType"], "UnknownOperationException")


class FixtureTest(harness.TestCase):
    def test_yaml_emitter(self):
        cfg = {"function_name": "arn:aws:lambda:us-east-1:1:function:f", "listen": ["127.0.0.1:1", "[::1]:2"],
               "allow": [], "workers": 2, "forwarded_for": False, "timeouts": {"invoke": 1.5},
               "cache": {"hosts": {"api.github.com": 60}}, "quote": 'a "b"\n'}
        text = daemon_fixture.to_yaml(cfg)
        self.assertEqual(text, (
            'function_name: "arn:aws:lambda:us-east-1:1:function:f"\n'
            'listen:\n  - "127.0.0.1:1"\n  - "[::1]:2"\n'
            'allow: []\n'
            'workers: 2\n'
            'forwarded_for: false\n'
            'timeouts:\n  invoke: 1.5\n'
            'cache:\n  hosts:\n    api.github.com: 60\n'
            'quote: "a \\"b\\"\\n"\n'))
        try:
            import yaml
        except ImportError:
            return
        self.assertEqual(yaml.safe_load(text), cfg)

    def test_merge(self):
        base = {"a": 1, "t": {"x": 1, "y": 2}}
        self.assertEqual(daemon_fixture.merge(base, {"t": {"y": None, "z": 3}, "a": None, "b": [1]}),
                         {"t": {"x": 1, "z": 3}, "b": [1]})
        self.assertEqual(base, {"a": 1, "t": {"x": 1, "y": 2}})

    def test_raw_conn_reads_responses(self):
        """Conn parses length-delimited, chunked and close-delimited bodies
        and keeps the rest of the buffer for the next response."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        self.addCleanup(srv.close)
        answer = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nabc"
                  b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
                  b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nrest")

        def serve():
            c, _ = srv.accept()
            c.recv(100)
            c.sendall(answer)
            c.close()
        th = threading.Thread(target=serve)
        th.start()
        with daemon_fixture.Conn("127.0.0.1", srv.getsockname()[1]) as c:
            r1 = c.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = c.read_response()
            r3 = c.read_response()
        th.join()
        self.assertEqual((r1.status, r1.body, r1.header_all("x-a")), (200, b"abc", ["1", "2"]))
        self.assertEqual((r2.status, r2.reason, r2.body), (201, "Created", b"def"))
        self.assertEqual((r3.status, r3.body, r3.closed), (404, b"rest", True))


if __name__ == "__main__":
    harness.main()
