"""The credentials store and its agent process (creds_cli agent) against the
IMDSv2 and container stand-ins: refresh of short-lived credentials, one
fetch for many readers at expiry, a failed refresh keeping still-valid
credentials, "no credentials" logged once while the agent keeps trying, the
region from IMDS placement, and a slow IMDS not delaying start-up."""

import threading
import time

import harness
from creds_case import CredsCase

FAST = ["--timeout", "0.5", "--attempts", "1", "--retry", "0.2", "--retry-cap", "0.5"]


class AgentTest(CredsCase):
    def agent(self, env, watch, *args):
        return self.cli("agent", *FAST, "--watch", watch, *args, env=env, timeout=watch + 15)

    def keys(self, r):
        return [r.fields(l)["key"] for l in r.lines("creds ")]

    def test_short_lived_credentials_are_replaced(self):
        imds = self.imds()
        imds.lifetime = 3
        r = self.agent(self.imds_env(imds), 4.5, "--refresh-ahead", "1")
        self.assertIn("agent-exit=0", r.out, r)
        keys = self.keys(r)
        self.assertGreaterEqual(len(keys), 2, r)
        self.assertEqual(keys, imds.issued[:len(keys)], "published in the order issued")
        # Refreshed ahead of expiry (at 80% of a 3 s life), not in a loop.
        self.assertLessEqual(imds.creds_calls(), 3, imds.requests)
        self.assertNotIn("error=", r.out, "no gap without credentials")
        # One token for all of it.
        self.assertEqual(imds.count("PUT"), 1, imds.requests)

    def test_readers_at_expiry_cause_one_fetch(self):
        # refresh_ahead 0: the credentials really expire, and 64 readers
        # find them expired at once and all poke the agent.
        imds = self.imds()
        imds.lifetime = 2
        r = self.agent(self.imds_env(imds), 3.2, "--refresh-ahead", "0", "--readers", "64")
        self.assertIn("agent-exit=0", r.out, r)
        keys = self.keys(r)
        self.assertGreaterEqual(len(keys), 2, r)
        # One fetch at start, then one per expiry: never a second fetch
        # while the credentials just fetched are still valid.
        self.assertLessEqual(imds.creds_calls(), 3, imds.requests)
        for (t0, exp0), (t1, _) in zip(imds.fetches, imds.fetches[1:]):
            self.assertGreater(t1, exp0 - 0.3, "fetched again %.2fs after the previous fetch, "
                               "%.2fs before it expired: %r" % (t1 - t0, exp0 - t1, imds.fetches))

    def test_failed_refresh_keeps_valid_credentials(self):
        imds = self.imds()
        imds.lifetime = 3
        env = self.imds_env(imds)

        def break_then_heal():
            time.sleep(1.0)
            imds.fail_status = 500
            time.sleep(3.5)
            imds.fail_status = None

        t = threading.Thread(target=break_then_heal)
        t.start()
        r = self.agent(env, 6.5, "--refresh-ahead", "1")
        t.join()
        out = r.out.splitlines()
        first = [i for i, l in enumerate(out) if l.startswith("creds ")]
        errors = [i for i, l in enumerate(out) if l.startswith("error=")]
        self.assertGreaterEqual(len(first), 2, r)
        # Kept until they expired, then an error, then new ones.
        self.assertTrue(errors, r)
        # Either a reader saw them expired before the agent's next attempt,
        # or that attempt had already withdrawn them.
        self.assertTrue("expired at" in out[errors[0]] or "no AWS credentials found" in out[errors[0]],
                        out[errors[0]])
        self.assertIn("HTTP 500", out[errors[0]])
        self.assertTrue(first[0] < errors[0] < first[1], r)
        self.assertIn("keeping those from instance-metadata", r.err)
        self.assertEqual(r.err.count("keeping those from"), 1, "logged once per change:\n" + r.err)

    def test_no_credentials_logged_once_agent_keeps_trying(self):
        imds = self.imds()
        imds.role = None
        r = self.agent(self.imds_env(imds), 2.5, "--readers", "8")
        self.assertIn("agent-exit=0", r.out, r)
        msg = ("no AWS credentials found: tried environment, shared files, web identity, "
               "container, instance metadata")
        self.assertIn("error=" + msg, r.out)
        self.assertEqual(r.err.count(msg), 1, "logged once:\n" + r.err)
        # It kept trying (back-off 0.2 .. 0.5 s, pokes no faster than 0.2 s).
        listing = imds.count("GET", "/latest/meta-data/iam/security-credentials/")
        self.assertGreaterEqual(listing, 4, imds.requests)
        self.assertLessEqual(listing, 14, imds.requests)
        # The role appears: picked up on a following attempt.
        imds.role = "late-role"
        r = self.agent(self.imds_env(imds), 1.0)
        self.assertTrue(self.keys(r), r)

    def test_region_from_imds_placement(self):
        imds = self.imds()
        imds.region = "ap-southeast-2"
        self.keyring.add("AKIAENVIRONMENT00001", "envsecret")
        env = self.imds_env(imds, {"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001",
                                   "AWS_SECRET_ACCESS_KEY": "envsecret"})
        r = self.agent(env, 1.0)
        self.assertIn("region=ap-southeast-2", r.out, r)
        self.assertIn("instance=i-0123456789abcdef0", r.out, r)
        # Configured regions win over IMDS, and the environment's over the profile's.
        r = self.agent(env, 0.5, "--region", "eu-central-1")
        self.assertEqual(r.lines("region="), ["eu-central-1"], r)
        env["AWS_DEFAULT_REGION"] = "us-west-1"
        r = self.agent(env, 0.5)
        self.assertEqual(r.lines("region="), ["us-west-1"], r)
        r = self.agent(env, 0.5, "--function", "arn:aws:lambda:sa-east-1:123456789012:function:f",
                       "--region", "eu-central-1")
        self.assertEqual(r.lines("region="), ["sa-east-1"], r)

    def test_hanging_imds_does_not_delay_credentials(self):
        hole = self.blackhole()
        self.keyring.add("AKIAENVIRONMENT00001", "envsecret")
        env = self.env({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": hole.url,
                        "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001", "AWS_SECRET_ACCESS_KEY": "envsecret"})
        r = self.agent(env, 1.5)
        self.assertEqual(self.keys(r), ["AKIAENVIRONMENT00001"], r)
        self.assertNotIn("region=", r.out)
        self.assertIn("agent-exit=0", r.out, r)

    def test_unreachable_imds_given_up_when_region_known(self):
        imds = self.imds()
        imds.fail_status = 500
        self.keyring.add("AKIAENVIRONMENT00001", "envsecret")
        env = self.imds_env(imds, {"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001",
                                   "AWS_SECRET_ACCESS_KEY": "envsecret"})
        # Region known: three tries (0, 0.2, 0.6 s), then no more.
        r = self.agent(env, 2.0, "--region", "eu-central-1")
        self.assertEqual(imds.count("PUT"), 3, imds.requests)
        self.assertIn("instance metadata unreachable, not asking again", r.err)
        # Region unknown: IMDS is the only hope, so it keeps trying.
        puts = imds.count("PUT")
        r = self.agent(env, 2.0)
        self.assertGreater(imds.count("PUT") - puts, 3, imds.requests)
        self.assertNotIn("not asking again", r.err)
        self.assertNotIn("region=", r.out)

    def test_container_token_file_reread(self):
        ecs = self.ecs(auth="first")
        ecs.lifetime = 2
        tok = self.write("ecs-token", "first")
        env = self.env({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tok})

        def rotate():
            time.sleep(0.5)
            self.write("ecs-token", "second")
            ecs.auth = "second"

        t = threading.Thread(target=rotate)
        t.start()
        r = self.agent(env, 2.5, "--refresh-ahead", "1")
        t.join()
        self.assertGreaterEqual(len(self.keys(r)), 2, r)
        self.assertEqual(ecs.seen_auth[0], "first")
        self.assertEqual(ecs.seen_auth[-1], "second")
        self.assertEqual(ecs.refused, 0)


if __name__ == "__main__":
    harness.main()
