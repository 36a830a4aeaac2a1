#!/usr/bin/env python3
"""The function's parameters file (SSM_SIGN_PROXY_PARAMETERS_FILE): the
same names and prefix rule as Parameter Store, no AWS needed, rotation
picked up on change, group/other access refused, malformed files reported
with their line (at start through /runtime/init/error, later as 502)."""

import os
import time

import harness
import lambda_case
import standin_runtime
from lambda_case import HOST


def write(path, text, mode=0o600):
    # Write then chmod: the function must never see a moment where the
    # content is new but the mode is not yet right (as in real rotations).
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


class TestParametersFile(lambda_case.FunctionTestCase):
    def file_env(self, path, prefix="", extra=None):
        e = {"SSM_SIGN_PROXY_PARAMETERS_FILE": path,
             # No AWS at all: the file mode must not need credentials or a region.
             "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
             "AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_ENDPOINT_URL_SSM": None}
        e.update(extra or {})
        return self.function_env(prefix=prefix, extra=e)

    def path(self):
        return os.path.join(self.tmp, "parameters.yaml")

    def test_signs_from_file_without_aws(self):
        p = self.path()
        write(p, '# tokens\n/%s/headers/Authorization: "token file-secret-1"\n'
                 '/%s/queries/key: "q secret&"\n' % (HOST, HOST))
        self.secrets += ["file-secret-1", "q secret&"]
        self.start_function(env=self.file_env(p))
        r = self.invoke(self.event(path="/v1", query=[("a", "%2F")]))
        self.assertStatus(r, 200)
        req = self.origin.requests[0]
        self.assertEqual(req.header("authorization"), ["token file-secret-1"])
        self.assertEqual(req.raw_line, b"GET /v1?a=%2F&key=q%20secret%26 HTTP/1.1")
        self.assertEqual(self.ssm.count, 0)
        self.assertNoSecrets()

    def test_prefix_and_port_keys(self):
        p = self.path()
        write(p, "/team/a/%s/headers/X-K: with-prefix\n/%s/headers/X-K: without-prefix\n"
                 "/team/a/%s_8443/headers/X-K: on-8443\n" % (HOST, HOST, HOST))
        self.start_function(env=self.file_env(p, prefix="/team/a/",
                                              extra={"SSM_SIGN_PROXY_CONNECT_TO": ",".join([
                                                  self.origin.connect_to(HOST),
                                                  self.origin.connect_to(HOST, 8443)])}))
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertStatus(self.invoke(self.event(host=HOST + ":8443")), 200)
        self.assertEqual([r.header("x-k") for r in self.origin.requests], [["with-prefix"], ["on-8443"]])
        # A host with no entry under the prefix: 407, origin untouched.
        r = self.invoke(self.event(host="hooks.example.test"))
        self.assertStatus(r, 407)
        self.assertEqual(len(self.origin.requests), 2)

    def test_rotation_is_picked_up(self):
        p = self.path()
        write(p, "/%s/headers/X-K: old-token\n" % HOST)
        self.start_function(env=self.file_env(p))
        self.assertStatus(self.invoke(self.event()), 200)
        write(p, "/%s/headers/X-K: new-token\n" % HOST)
        self.assertStatus(self.invoke(self.event()), 200)
        # Same size, same second: the inode changed (rename), still seen.
        write(p, "/%s/headers/X-K: newer-tok\n" % HOST)
        self.assertStatus(self.invoke(self.event()), 200)
        # Removing the host's entries: 407 at once, no stale answer.
        write(p, "/other.example.test/headers/X-K: x\n")
        self.assertStatus(self.invoke(self.event()), 407)
        self.assertEqual([r.header("x-k") for r in self.origin.requests],
                         [["old-token"], ["new-token"], ["newer-tok"]])

    def test_in_place_edit_is_picked_up(self):
        p = self.path()
        write(p, "/%s/headers/X-K: aaaa\n" % HOST)
        self.start_function(env=self.file_env(p))
        self.assertStatus(self.invoke(self.event()), 200)
        with open(p, "w") as f:  # same inode, new mtime
            f.write("/%s/headers/X-K: bbbbbb\n" % HOST)
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual([r.header("x-k") for r in self.origin.requests], [["aaaa"], ["bbbbbb"]])

    def test_permissions_become_too_open(self):
        p = self.path()
        write(p, "/%s/headers/X-K: tok-perm\n" % HOST)
        self.start_function(env=self.file_env(p))
        self.assertStatus(self.invoke(self.event()), 200)
        os.chmod(p, 0o640)
        r = self.invoke(self.event())
        self.assertStatus(r, 502)
        body = lambda_case.response_body(r).decode()
        self.assertIn("0640", body)
        self.assertIn("chmod 600", body)
        self.assertNotIn("tok-perm", body)
        self.assertEqual(len(self.origin.requests), 1, "no request went out with the refused file")
        os.chmod(p, 0o600)
        self.assertStatus(self.invoke(self.event()), 200)

    def test_file_broken_later_is_502_with_line(self):
        p = self.path()
        write(p, "/%s/headers/X-K: tok-good\n" % HOST)
        self.start_function(env=self.file_env(p))
        self.assertStatus(self.invoke(self.event()), 200)
        write(p, "/%s/headers/X-K: tok-good\n/%s/headers/Y: [1, 2]\n" % (HOST, HOST))
        r = self.invoke(self.event())
        self.assertStatus(r, 502)
        self.assertIn("line 2", lambda_case.response_body(r).decode())
        self.assertEqual(len(self.origin.requests), 1, "the old content must not be served")
        self.assertIsNone(self.fn.poll(), "function exited")

    def _init_error(self, env):
        fn = self.start([harness.BOOTSTRAP], env=env, name="bootstrap")
        body, headers = self.rt.wait_init_error(timeout=5)
        self.assertIsNotNone(fn.wait(5), "function kept running after an init error")
        self.assertEqual(fn.returncode, 1)
        return body if isinstance(body, dict) else {}

    def test_init_error_too_open(self):
        p = self.path()
        write(p, "/%s/headers/X-K: tok-open\n" % HOST, mode=0o644)
        body = self._init_error(self.file_env(p))
        self.assertEqual(body.get("errorType"), "Runtime.ConfigError")
        self.assertIn("0644", body.get("errorMessage", ""))
        self.assertIn(p, body.get("errorMessage", ""))

    def test_init_error_malformed_names_the_line(self):
        cases = [
            ("/a/headers/X: ok\n/a/headers/Y: \"unterminated\n", "line 2"),
            ("/a/headers/X: 1\n/a/headers/X: 2\n", "line 2"),
            ("/a/headers/X: 1\n\n/a:443/headers/Y: 2\n", "line 3"),
            ("- just\n- a list\n", "line 1"),
            ("/a/headers/X: 1\n/b:\n  nested: map\n", "line 2"),
        ]
        for text, line in cases:
            with self.subTest(text=text):
                self.rt.close()
                self.rt = standin_runtime.RuntimeAPI()
                p = self.path()
                write(p, text)
                body = self._init_error(self.file_env(p))
                self.assertIn(line + ":", body.get("errorMessage", ""))

    def test_init_error_missing_file(self):
        body = self._init_error(self.file_env(os.path.join(self.tmp, "absent.yaml")))
        self.assertIn("absent.yaml", body.get("errorMessage", ""))

    def test_empty_file_means_no_parameters(self):
        p = self.path()
        write(p, "")
        self.start_function(env=self.file_env(p))
        self.assertStatus(self.invoke(self.event()), 407)
        self.assertEqual(len(self.origin.requests), 0)


if __name__ == "__main__":
    harness.main()
