"""Local function mode with our own function (lambda/bootstrap) reading its
parameters file, against a TLS origin with a test CA: the whole product on
one machine, without AWS."""

import os
import time

import harness
import tls_origin
from localfn_case import LocalFunctionCase, get

TOKEN = "token ghp_localfnTESTtoken0123456789"


class Bootstrap(LocalFunctionCase):
    def setUp(self):
        super().setUp()
        if not os.access(harness.BOOTSTRAP, os.X_OK):
            self.skipTest("lambda/bootstrap is not built (%s)" % harness.BOOTSTRAP)
        self.origin = tls_origin.Origin()
        self.addCleanup(self.origin.close)
        self.params = os.path.join(self.tmp, "parameters.yaml")
        self.write_params({"/api.example.test/headers/Authorization": TOKEN})

    def write_params(self, params):
        tmp = self.params + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for k, v in params.items():
                f.write('"%s": "%s"\n' % (k, v))
        os.rename(tmp, self.params)

    def start_fn(self, **kw):
        ca = self.origin.ca
        env = {
            "SSM_SIGN_PROXY_PARAMETERS_FILE": self.params,
            "SSM_SIGN_PROXY_CONNECT_TO": ",".join(self.origin.connect_to(h) for h in
                                                  ("api.example.test", "other.example.test")),
            "AWS_CA_BUNDLE": ca.ca_file,
        }
        return self.start_local(harness.BOOTSTRAP, concurrency=2, timeout=2, environment=env,
                                credentials=False, **kw)

    def test_token_injected_and_host_without_token_407(self):
        d = self.start_fn()
        r = d.curl("http://api.example.test/user/repos?per_page=2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.text, "origin ok")
        req = self.origin.wait_requests(1)[0]
        self.assertEqual(req.target, "/user/repos?per_page=2")
        self.assertEqual(req.header("Authorization"), [TOKEN])
        self.assertEqual(req.tls_sni, "api.example.test")
        # A host with no parameters: 407, and nothing reaches the origin.
        r = d.curl("http://other.example.test/x")
        self.assertEqual(r.status, 407, r)
        self.assertIsNotNone(r.header("Proxy-Authenticate"))
        self.assertEqual(len(self.origin.requests), 1)
        # The token is never logged by the daemon or the function.
        self.assertNotIn("ghp_localfnTESTtoken", d.log())

    def test_rotation_is_picked_up(self):
        d = self.start_fn()
        self.assertEqual(d.curl("http://api.example.test/a").status, 200)
        # mtime granularity: make sure the new file looks different.
        time.sleep(0.05)
        self.write_params({"/api.example.test/headers/Authorization": "token rotated",
                           "/other.example.test/headers/X-Api-Key": "k2"})
        for _ in range(4):  # both function processes see it
            self.assertEqual(d.curl("http://api.example.test/b").status, 200)
        self.assertEqual(self.origin.requests[-1].header("Authorization"), ["token rotated"])
        r = d.curl("http://other.example.test/c")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.origin.requests[-1].header("X-Api-Key"), ["k2"])

    def test_malformed_parameters_file_is_an_init_error(self):
        fd = os.open(self.params, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w") as f:
            f.write('"/api.example.test/headers/Authorization": "ok"\n"unterminated: [\n')
        d = self.start_fn()
        r = d.curl("http://api.example.test/x")
        self.assertEqual(r.status, 502, r)
        self.assertIn("failed to initialise", r.text)
        self.assertIn("line", r.text)
        self.assertEqual(len(self.origin.requests), 0)

    def test_no_aws_credentials_needed(self):
        # credentials=False: the daemon has no AWS credentials at all, and
        # the function none either; local mode works regardless.
        d = self.start_fn()
        r = d.curl("http://api.example.test/x")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    harness.main()
