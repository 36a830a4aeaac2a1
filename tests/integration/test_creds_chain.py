"""The provider chain against loopback stand-ins, through creds_cli: IMDSv2
(token required, role, Code, unreachable service bounded by the attempts),
container credentials (Authorization from the variable or the file, refused
URLs), web identity (STS form, XML answer and XML errors), and the order of
the sources. No secret or token may appear in any output."""

import os
import time
import urllib.request
import urllib.error

import harness
from creds_case import CredsCase


class ImdsTest(CredsCase):
    def test_imdsv2_credentials(self):
        imds = self.imds()
        r = self.resolve(self.imds_env(imds))
        self.assertEqual(r.rc, 0, r)
        f = r.fields(r.out.strip())
        self.assertEqual(f["source"], "instance-metadata")
        self.assertEqual(f["key"], imds.issued[-1])
        self.assertEqual(f["token"], "yes")
        self.assertAlmostEqual(int(f["expiration"]), time.time() + 3600, delta=5)
        # The token came first and every GET carried it.
        self.assertEqual(imds.requests[0], ("PUT", "/latest/api/token"))
        self.assertEqual(imds.unauthorized, 0)
        self.assertEqual(imds.count("PUT"), 1, imds.requests)

    def test_standin_refuses_requests_without_token(self):
        # The stand-in must be strict for the test above to mean anything.
        imds = self.imds()
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(imds.url + "/latest/meta-data/iam/security-credentials/", timeout=2)
        self.assertEqual(cm.exception.code, 401)

    def test_no_role_attached(self):
        imds = self.imds()
        imds.role = None
        r = self.resolve(self.imds_env(imds))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("error=no AWS credentials found: tried environment, shared files, web identity, "
                      "container, instance metadata", r.out)
        self.assertIn("no IAM role attached", r.out)

    def test_code_not_success(self):
        imds = self.imds()
        imds.code = "Failure"
        r = self.resolve(self.imds_env(imds))
        self.assertEqual(r.rc, 1, r)
        self.assertIn('Code is "Failure"', r.out)

    def test_malformed_answers(self):
        imds = self.imds()
        for body, want in (("not json at all", "not a JSON object"),
                           ('{"Code": "Success", "AccessKeyId": "ASIAX"}', "lacks AccessKeyId or SecretAccessKey"),
                           ('{"Code": "Success", "AccessKeyId": "ASIAX", "SecretAccessKey": "s",'
                            ' "Token": "t", "Expiration": "tomorrow"}', "unreadable Expiration"),
                           ("[1, 2]", "not a JSON object")):
            imds.creds_body = body
            r = self.resolve(self.imds_env(imds))
            self.assertEqual(r.rc, 1, r)
            self.assertIn(want, r.out)

    def test_token_refused(self):
        imds = self.imds()
        imds.fail_status = 403
        r = self.resolve(self.imds_env(imds))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("HTTP 403", r.out)
        self.assertEqual(imds.count("PUT"), 1, "a 403 is final, not retried")

    def test_server_errors_are_retried_within_attempts(self):
        imds = self.imds()
        imds.fail_status = 500
        r = self.resolve(self.imds_env(imds))
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(imds.count("PUT"), 2, "two attempts: %r" % imds.requests)

    def test_unreachable_is_bounded(self):
        # A port nobody listens on, and one that accepts and never answers.
        port = harness.free_port()
        r = self.resolve(self.env({"AWS_EC2_METADATA_DISABLED": None,
                                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:%d" % port}))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("instance metadata: IMDS token", r.out)
        self.assertLess(r.elapsed, 2.0, r)
        hole = self.blackhole()
        r = self.resolve(self.env({"AWS_EC2_METADATA_DISABLED": None,
                                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": hole.url}))
        self.assertEqual(r.rc, 1, r)
        # Two attempts of 0.5 s plus the pause between them.
        self.assertLess(r.elapsed, 2.5, r)
        self.assertGreater(r.elapsed, 0.9, r)

    def test_disabled(self):
        imds = self.imds()
        r = self.resolve(self.imds_env(imds, {"AWS_EC2_METADATA_DISABLED": "true"}))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("instance metadata: disabled by AWS_EC2_METADATA_DISABLED", r.out)
        self.assertEqual(imds.requests, [])

    def test_ignores_http_proxy(self):
        imds = self.imds()
        hole = self.blackhole()
        r = self.resolve(self.imds_env(imds, {"http_proxy": hole.url, "HTTP_PROXY": hole.url,
                                              "all_proxy": hole.url}))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.fields(r.out.strip())["source"], "instance-metadata")


class ContainerTest(CredsCase):
    def test_full_uri_with_token_variable(self):
        ecs = self.ecs(auth="Bearer abc123")
        r = self.resolve(self.env({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds",
                                   "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer abc123"}))
        self.assertEqual(r.rc, 0, r)
        f = r.fields(r.out.strip())
        self.assertEqual(f["source"], "container")
        self.assertEqual(f["key"], self.keyring.order[-1])
        self.assertEqual(ecs.seen_auth, ["Bearer abc123"])
        self.assertNotIn("abc123", r.out + r.err)

    def test_token_file_wins_and_is_checked(self):
        ecs = self.ecs(auth="from-file")
        tok = self.write("ecs-token", "from-file\n")
        env = self.env({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tok,
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "from-variable"})
        r = self.resolve(env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(ecs.seen_auth, ["from-file"])
        # A wrong token: the endpoint's 401 is reported, the token is not.
        self.write("ecs-token", "wrong-token-value")
        r = self.resolve(env)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("AWS credentials from container failed", r.out)
        self.assertIn("HTTP 401", r.out)
        self.assertNotIn("wrong-token-value", r.out + r.err)

    def test_refuses_plain_http_to_other_hosts(self):
        r = self.resolve(self.env({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.11.12.13:1/creds"}))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("AWS_CONTAINER_CREDENTIALS_FULL_URI refused", r.out)
        self.assertIn("10.11.12.13", r.out)
        self.assertLess(r.elapsed, 1.0, "refused without connecting")

    def test_container_before_imds(self):
        ecs = self.ecs()
        imds = self.imds()
        r = self.resolve(self.imds_env(imds, {"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds"}))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.fields(r.out.strip())["source"], "container")
        self.assertEqual(imds.requests, [])


class WebIdentityTest(CredsCase):
    ROLE = "arn:aws:iam::123456789012:role/web-role"

    def wi_env(self, sts, token_text, extra=None):
        tok = self.write("wi-token", token_text)
        e = {"AWS_WEB_IDENTITY_TOKEN_FILE": tok, "AWS_ROLE_ARN": self.ROLE,
             "AWS_ENDPOINT_URL_STS": sts.url}
        e.update(extra or {})
        return self.env(e)

    def test_assume_role_with_web_identity(self):
        sts = self.sts(self.ROLE, "eyJ.web.identity")
        sts.session_name = "my-session"
        r = self.resolve(self.wi_env(sts, "eyJ.web.identity\n", {"AWS_ROLE_SESSION_NAME": "my-session"}),
                         "--region", "eu-west-1")
        self.assertEqual(r.rc, 0, r)
        f = r.fields(r.out.strip())
        self.assertEqual(f["source"], "web-identity")
        self.assertEqual(f["key"], self.keyring.order[-1])
        self.assertEqual(f["token"], "yes")
        self.assertAlmostEqual(int(f["expiration"]), time.time() + 3600, delta=5)
        self.assertEqual(sts.problems, [])
        form = sts.forms[-1]
        self.assertEqual(form["WebIdentityToken"], "eyJ.web.identity")
        self.assertEqual(form["RoleSessionName"], "my-session")
        self.assertNotIn("eyJ.web.identity", r.out + r.err)

    def test_default_session_name(self):
        sts = self.sts(self.ROLE, "tok")
        r = self.resolve(self.wi_env(sts, "tok"))
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(sts.forms[-1]["RoleSessionName"].startswith("ssm-sign-proxy-"), sts.forms)

    def test_sts_error_is_reported_without_the_token(self):
        sts = self.sts(self.ROLE, "right-token")
        r = self.resolve(self.wi_env(sts, "wrong-token-xyz"))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("AWS credentials from web identity failed", r.out)
        self.assertIn("HTTP 400: InvalidIdentityToken: Couldn't retrieve verification key", r.out)
        self.assertNotIn("wrong-token-xyz", r.out + r.err)

    def test_malformed_sts_answers(self):
        sts = self.sts(self.ROLE, "tok")
        env = self.wi_env(sts, "tok")
        for status, body, want in (
                (200, "<not xml", "unreadable answer"),
                (200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult/>"
                      "</AssumeRoleWithWebIdentityResponse>", "answer lacks Credentials"),
                (200, "<R><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
                      "<SessionToken>T</SessionToken><Expiration>soon</Expiration></Credentials></R>",
                 "unreadable Expiration"),
                (503, "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>",
                 "HTTP 503: ServiceUnavailable")):
            sts.raw_answer = (status, body)
            r = self.resolve(env)
            self.assertEqual(r.rc, 1, r)
            self.assertIn(want, r.out)

    def test_namespaced_xml(self):
        # Prefixed element names are matched by their local part.
        sts = self.sts(self.ROLE, "tok")
        self.keyring.add("ASIANAMESPACED000001", "ns-secret", "ns-token")
        sts.raw_answer = (200, '<a:R xmlns:a="urn:x"><a:Credentials><a:AccessKeyId>ASIANAMESPACED000001'
                               "</a:AccessKeyId><a:SecretAccessKey>ns-secret</a:SecretAccessKey>"
                               "<a:SessionToken>ns-token</a:SessionToken>"
                               "<a:Expiration>2030-01-01T00:00:00.000Z</a:Expiration></a:Credentials></a:R>")
        r = self.resolve(self.wi_env(sts, "tok"))
        self.assertEqual(r.rc, 0, r)
        f = r.fields(r.out.strip())
        self.assertEqual((f["key"], f["expiration"]), ("ASIANAMESPACED000001", "1893456000"))

    def test_missing_token_file(self):
        r = self.resolve(self.env({"AWS_WEB_IDENTITY_TOKEN_FILE": os.path.join(self.tmp, "nope"),
                                   "AWS_ROLE_ARN": self.ROLE}))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("cannot read web identity token file", r.out)


class OrderTest(CredsCase):
    def test_environment_first(self):
        imds = self.imds()
        self.keyring.add("AKIAENVIRONMENT00001", "envsecret")
        r = self.resolve(self.imds_env(imds, {"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001",
                                              "AWS_SECRET_ACCESS_KEY": "envsecret"}))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.fields(r.out.strip())["source"], "environment")
        self.assertEqual(imds.requests, [])

    def test_profile_named_by_aws_profile(self):
        imds = self.imds()
        self.keyring.add("AKIAPROFILEONE000001", "secret-one")
        self.keyring.add("AKIAPROFILETWO000002", "secret-two")
        path = self.write("credentials",
                          "[default]\naws_access_key_id = AKIAPROFILEONE000001\n"
                          "aws_secret_access_key = secret-one\n\n"
                          "[two]\naws_access_key_id = AKIAPROFILETWO000002\n"
                          "aws_secret_access_key = secret-two\n")
        env = self.imds_env(imds, {"AWS_SHARED_CREDENTIALS_FILE": path})
        r = self.resolve(env)
        self.assertEqual(r.fields(r.out.strip())["key"], "AKIAPROFILEONE000001", r)
        env["AWS_PROFILE"] = "two"
        r = self.resolve(env)
        f = r.fields(r.out.strip())
        self.assertEqual((f["source"], f["key"]), ("profile", "AKIAPROFILETWO000002"), r)
        self.assertIn("source=profile two ", r.out)
        self.assertEqual(imds.requests, [])

    def test_web_identity_before_container(self):
        sts = self.sts(WebIdentityTest.ROLE, "t")
        ecs = self.ecs()
        tok = self.write("wi", "t")
        r = self.resolve(self.env({"AWS_WEB_IDENTITY_TOKEN_FILE": tok, "AWS_ROLE_ARN": WebIdentityTest.ROLE,
                                   "AWS_ENDPOINT_URL_STS": sts.url,
                                   "AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds"}))
        self.assertEqual(r.fields(r.out.strip())["source"], "web-identity", r)
        self.assertEqual(ecs.requests, [])


if __name__ == "__main__":
    harness.main()
