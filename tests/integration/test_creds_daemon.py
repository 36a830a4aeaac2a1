"""Credentials end to end: the real daemon (its credentials agent) gets its
keys from each source's loopback stand-in, and the stand-in Lambda checks
with botocore that requests are signed with exactly those keys. Also:
short-lived credentials replaced on the next requests, 64 concurrent
requests at expiry causing one fetch, the profile AWS_PROFILE names, a
clear 503 with no credentials at all (logged once, daemon up), and the
region from instance metadata."""

import concurrent.futures
import os
import time

import harness
import creds_standins
from creds_standins import signer
import daemon_fixture

NO_CREDS = ("no AWS credentials found: tried environment, shared files, web identity, "
            "container, instance metadata")
SHORT = {"refresh_ahead": 1, "retry": 0.2, "retry_cap": 0.5, "timeout": 0.5, "imds_attempts": 1}
URL = "http://api.example.test/creds?x=1"


class CredsDaemonTest(daemon_fixture.ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.keyring = creds_standins.Keyring()
        creds_standins.keyring_verifier(self.lam, self.keyring)
        self._standins = []

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            for s in self._standins:
                s.stop()

    def standin(self, s):
        s.start()
        self._standins.append(s)
        return s

    def start_creds(self, env, config=None, **kw):
        cfg = {"credentials": dict(SHORT)}
        cfg.update(config or {})
        d = self.start_daemon(config=cfg, env=env, credentials=False, **kw)
        self.addCleanup(self.assert_no_secrets, d)
        return d

    def assert_no_secrets(self, d):
        log = d.log()
        for s in self.keyring.secrets():
            if s in log:
                self.fail("a secret or token appeared in the daemon log: %r..." % s[:10])

    def get_ok(self, d, timeout=5):
        """GET through the daemon until it answers 200 (the agent may still be
        resolving), at most timeout seconds. Returns the signer's key id."""
        deadline = time.monotonic() + timeout
        while True:
            r = d.get(URL)
            if r.status_code == 200:
                return signer(self.lam.last())
            if time.monotonic() > deadline:
                self.fail("no 200 within %.1fs: %d %s\n%s" % (timeout, r.status_code, r.text, d.log()[-3000:]))
            time.sleep(0.1)

    # -- each source ------------------------------------------------------

    def test_environment(self):
        self.keyring.add("AKIAENVIRONMENT00001", "env/secret", "env-token")
        d = self.start_creds({"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001", "AWS_SECRET_ACCESS_KEY": "env/secret",
                        "AWS_SESSION_TOKEN": "env-token"})
        self.assertEqual(self.get_ok(d), "AKIAENVIRONMENT00001")
        self.assertEqual(self.lam.last().header("X-Amz-Security-Token"), "env-token")

    def test_shared_file_profile_named_by_aws_profile(self):
        self.keyring.add("AKIAPROFILEONE000001", "secret-one")
        self.keyring.add("AKIAPROFILETWO000002", "secret-two")
        path = os.path.join(self.tmp, "credentials")
        with open(path, "w") as f:
            f.write("# two profiles\n[default]\naws_access_key_id = AKIAPROFILEONE000001\n"
                    "aws_secret_access_key = secret-one\n\n"
                    "[two]\naws_access_key_id = AKIAPROFILETWO000002\n"
                    "aws_secret_access_key = secret-two\n")
        d = self.start_creds({"AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "two"})
        self.assertEqual(self.get_ok(d), "AKIAPROFILETWO000002")
        d.stop()
        d = self.start_creds({"AWS_SHARED_CREDENTIALS_FILE": path})
        self.assertEqual(self.get_ok(d), "AKIAPROFILEONE000001")

    def test_instance_metadata(self):
        imds = self.standin(creds_standins.ImdsStandin(keyring=self.keyring))
        d = self.start_creds({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
        self.assertEqual(self.get_ok(d), imds.issued[-1])
        self.assertEqual(imds.unauthorized, 0)
        inv = self.lam.last()
        self.assertEqual(inv.header("X-Amz-Security-Token"), self.keyring.get(imds.issued[-1])[1])

    def test_container(self):
        ecs = self.standin(creds_standins.EcsStandin(auth="Bearer ecs-auth", keyring=self.keyring))
        d = self.start_creds({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer ecs-auth"})
        self.assertEqual(self.get_ok(d), self.keyring.order[-1])
        self.assertEqual(ecs.refused, 0)
        self.assertNotIn("ecs-auth", d.log())

    def test_web_identity(self):
        role = "arn:aws:iam::123456789012:role/web"
        sts = self.standin(creds_standins.StsStandin(role, "web.identity.token", keyring=self.keyring))
        tok = os.path.join(self.tmp, "token")
        with open(tok, "w") as f:
            f.write("web.identity.token\n")
        d = self.start_creds({"AWS_WEB_IDENTITY_TOKEN_FILE": tok, "AWS_ROLE_ARN": role,
                        "AWS_ENDPOINT_URL_STS": sts.url})
        self.assertEqual(self.get_ok(d), self.keyring.order[-1])
        self.assertEqual(sts.problems, [])
        self.assertNotIn("web.identity.token", d.log())

    # -- refresh ------------------------------------------------------------

    def test_expiring_credentials_are_replaced(self):
        imds = self.standin(creds_standins.ImdsStandin(keyring=self.keyring))
        imds.lifetime = 3
        d = self.start_creds({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
        first = self.get_ok(d)
        used = [first]
        end = time.monotonic() + 5
        while time.monotonic() < end:
            r = d.get(URL)
            self.assertEqual(r.status_code, 200, r.text)
            used.append(signer(self.lam.last()))
            time.sleep(0.2)
        self.assertGreaterEqual(len(set(used)), 2, "credentials were never replaced")
        # Replaced in order, never going back to an older key.
        order = [k for i, k in enumerate(used) if i == 0 or used[i - 1] != k]
        self.assertEqual(order, sorted(order, key=imds.issued.index))
        self.assertLessEqual(imds.creds_calls(), 4, imds.fetches)

    def test_64_concurrent_requests_at_expiry_cause_one_fetch(self):
        imds = self.standin(creds_standins.ImdsStandin(keyring=self.keyring))
        imds.lifetime = 2
        d = self.start_creds({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url},
                       config={"workers": 2, "credentials": dict(SHORT, refresh_ahead=0),
                               "limits": {"max_inflight": 128}})
        self.get_ok(d)
        # Fire at the moment the current credentials expire.
        exp = imds.fetches[-1][1]
        time.sleep(max(0.0, exp - time.time()))
        calls_before = imds.creds_calls()
        with concurrent.futures.ThreadPoolExecutor(64) as ex:
            results = list(ex.map(lambda _: d.request("GET", URL, timeout=5), range(64)))
        codes = [r.status_code for r in results]
        self.assertEqual(codes.count(200), 64, [(r.status_code, r.text[:200]) for r in results if r.status_code != 200])
        self.assertLessEqual(imds.creds_calls() - calls_before, 1, imds.fetches)
        for (t0, exp0), (t1, _) in zip(imds.fetches, imds.fetches[1:]):
            self.assertGreater(t1, exp0 - 0.3, "fetched again while valid: %r" % imds.fetches)

    # -- failure --------------------------------------------------------------

    def no_credentials_daemon(self):
        d = self.start_creds({}, config={"credentials": dict(SHORT, retry=0.1, retry_cap=0.2)})
        for _ in range(10):
            r = d.get(URL)
            self.assertEqual(r.status_code, 503, r.text)
            self.assertIn(NO_CREDS, r.text)
        self.assertTrue(d.running())
        self.assertEqual(self.lam.count(), 0)
        time.sleep(0.5)  # several attempts by the agent meanwhile
        return d

    def test_no_credentials_clear_503_daemon_stays_up(self):
        d = self.no_credentials_daemon()
        # The agent kept trying and said so once.
        agent = [l for l in d.log().splitlines() if "[credentials]" in l and NO_CREDS in l]
        self.assertEqual(len(agent), 1, "the agent logs it once, not per attempt:\n" + d.log())
        self.assertIn("error:", agent[0])

    def test_no_credentials_not_logged_per_request(self):
        # The agent logs the failure once per change; proxy.c answers 503
        # with the message but does not log it again for every request.
        d = self.no_credentials_daemon()
        self.assertEqual(d.log().count(NO_CREDS + " ("), 1, d.log())

    def test_credentials_appearing_later_are_used(self):
        imds = self.standin(creds_standins.ImdsStandin(keyring=self.keyring))
        imds.role = None
        d = self.start_creds({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url},
                       config={"credentials": dict(SHORT, retry=0.1, retry_cap=0.3)})
        r = d.get(URL)
        self.assertEqual(r.status_code, 503, r.text)
        self.assertIn("no IAM role attached", r.text)
        imds.role = "attached-later"
        self.assertEqual(self.get_ok(d, timeout=3), imds.issued[-1])

    # -- region ---------------------------------------------------------------

    def test_region_from_instance_metadata(self):
        imds = self.standin(creds_standins.ImdsStandin(keyring=self.keyring))
        imds.region = self.region
        d = self.start_creds({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
                        "AWS_REGION": None, "AWS_DEFAULT_REGION": None},
                       config={"region": None})
        d.wait_log("instance metadata: instance i-0123456789abcdef0, region %s" % self.region)
        self.get_ok(d)
        inv = self.lam.last()
        self.assertIn("/%s/lambda/aws4_request" % self.region, inv.header("Authorization"))
        self.assertEqual(inv.event["requestContext"]["instance"]["instance_id"], "i-0123456789abcdef0")

    def test_no_region_503_names_the_setting(self):
        self.keyring.add("AKIAENVIRONMENT00001", "env/secret")
        d = self.start_creds({"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001", "AWS_SECRET_ACCESS_KEY": "env/secret",
                        "AWS_REGION": None, "AWS_DEFAULT_REGION": None},
                       config={"region": None})
        r = d.get(URL)
        self.assertEqual(r.status_code, 503, r.text)
        self.assertIn("no AWS region", r.text)
        self.assertIn("AWS_REGION", r.text)
        self.assertTrue(d.running())


if __name__ == "__main__":
    harness.main()
