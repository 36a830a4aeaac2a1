#!/usr/bin/env python3
"""Real ALB target events (../shared/testdata/alb-events), single- and
multi-value, and the daemon-style event that carries both forms: the
function answers in the shape the event came in."""

import json

import harness
import lambda_case
from lambda_case import HOST


def _load(name):
    with open(harness.shared_path("testdata", "alb-events", name)) as f:
        return json.load(f)


class TestALB(lambda_case.FunctionTestCase):
    def setUp(self):
        super().setUp()
        self.params(HOST, {"headers/X-Api-Key": "alb-secret-1", "queries/sig": "a b&c"})

    def _retarget(self, ev, multi):
        """Point a sample event at the test origin (host), keep the rest."""
        if multi:
            ev["multiValueHeaders"]["host"] = [HOST]
            ev["multiValueQueryStringParameters"]["key"] = ["hello%20world"]
        else:
            ev["headers"]["host"] = HOST
            ev["queryStringParameters"]["key"] = "hello%20world"
        ev["path"] = "/alb/path"
        return ev

    def _check_request(self):
        req = self.origin.requests[-1]
        self.assertEqual(req.method, "GET")
        self.assertEqual(req.path, "/alb/path")
        self.assertEqual(req.query_pairs()[0], ("key", "hello%20world"))
        self.assertEqual(dict(req.query_pairs())["sig"], "a%20b%26c")
        self.assertEqual(req.header("X-Api-Key"), ["alb-secret-1"])
        self.assertEqual(req.header("X-Myheader"), ["123"])
        self.assertEqual(req.header("User-Agent"), ["curl/7.54.0"])
        return req

    def test_single_value_event(self):
        ev = self._retarget(_load("alb-lambda-target-request-headers-only.json"), multi=False)
        self.start_function()
        resp = self.invoke(ev)
        self.assertStatus(resp, 200)
        self.assertIn("headers", resp)
        self.assertNotIn("multiValueHeaders", resp)
        self.assertIsInstance(resp["headers"], dict)
        for k, v in resp["headers"].items():
            self.assertIsInstance(v, str, k)
        self.assertEqual(resp["statusDescription"], "200 OK")
        self.assertIn("isBase64Encoded", resp)
        self._check_request()

    def test_multi_value_event(self):
        ev = self._retarget(_load("alb-lambda-target-request-multivalue-headers.json"), multi=True)
        self.start_function()
        resp = self.invoke(ev)
        self.assertStatus(resp, 200)
        self.assertIn("multiValueHeaders", resp)
        self.assertNotIn("headers", resp)
        for k, v in resp["multiValueHeaders"].items():
            self.assertIsInstance(v, list, k)
        self.assertEqual(resp["statusDescription"], "200 OK")
        self._check_request()

    def test_multi_value_repeated_query_key(self):
        ev = self._retarget(_load("alb-lambda-target-request-multivalue-headers.json"), multi=True)
        ev["multiValueQueryStringParameters"]["k2"] = ["one", "two%2B"]
        self.start_function()
        self.assertStatus(self.invoke(ev), 200)
        pairs = self.origin.requests[-1].query_pairs()
        self.assertEqual([v for k, v in pairs if k == "k2"], ["one", "two%2B"])

    def test_error_answers_keep_the_shape(self):
        self.start_function()
        for multi in (False, True):
            with self.subTest(multi=multi):
                name = ("alb-lambda-target-request-multivalue-headers.json" if multi
                        else "alb-lambda-target-request-headers-only.json")
                ev = _load(name)  # the sample's own host: no parameters → 407
                resp = self.invoke(ev)
                self.assertStatus(resp, 407)
                self.assertIn("multiValueHeaders" if multi else "headers", resp)
                self.assertNotIn("headers" if multi else "multiValueHeaders", resp)

    def test_daemon_style_event_with_both_forms(self):
        ev = self._retarget(_load("alb-lambda-target-request-headers-only.json"), multi=False)
        del ev["requestContext"]["elb"]
        ev["requestContext"]["instance"] = {"hostname": "web-1", "id": "i-0123456789abcdef0"}
        ev["multiValueHeaders"] = {k: [v] for k, v in ev["headers"].items()}
        ev["multiValueQueryStringParameters"] = {k: [v] for k, v in ev["queryStringParameters"].items()}
        self.start_function()
        resp = self.invoke(ev)
        self.assertStatus(resp, 200)
        self._check_request()


if __name__ == "__main__":
    harness.main()
