#!/usr/bin/env python3
"""The function finds the CA bundle at run time: AWS_CA_BUNDLE, then
SSL_CERT_FILE, then the distributions' known places, Amazon Linux's
/etc/pki/tls/certs/ca-bundle.crt first. Debian's libcurl has
/etc/ssl/certs compiled in, which does not exist in Lambda: the last test
runs the function in a private mount namespace where Debian's store is gone
and the test CA sits where Amazon Linux keeps its bundle."""

import os
import shutil
import subprocess
import tempfile

import harness
import lambda_case
from lambda_case import HOST

# Runs inside `unshare --mount`: an overlay over /etc (the real /etc is not
# touched) without Debian's CA store, optionally with a bundle at Amazon
# Linux's path, then the function.  $1 bootstrap, $2 CA file or "", $3 a
# scratch directory.
NAMESPACE_SCRIPT = r'''
set -e
mount -t tmpfs tmpfs "$3"
mkdir "$3/upper" "$3/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$3/upper,workdir=$3/work" /etc
rm -rf /etc/ssl/certs /etc/ssl/cert.pem /etc/ssl/ca-bundle.pem /etc/pki
if [ -n "$2" ]; then
	mkdir -p /etc/pki/tls/certs
	cp "$2" /etc/pki/tls/certs/ca-bundle.crt
fi
[ "${SSP_PROBE:-}" = 1 ] && exit 0
exec "$1"
'''


class TestCABundle(lambda_case.FunctionTestCase):
    def setUp(self):
        super().setUp()
        self.params(HOST, {"headers/X-Api-Key": "ca-secret-1"})

    def test_ssl_cert_file_used_without_aws_ca_bundle(self):
        env = self.function_env(ca_bundle="", extra={"SSL_CERT_FILE": self.ca.ca_file})
        env.pop("AWS_CA_BUNDLE", None)
        self.start_function(env=env)
        self.assertStatus(self.invoke(self.event()), 200)
        self.assertEqual(self.origin.requests[-1].header("X-Api-Key"), ["ca-secret-1"])

    def test_system_store_does_not_trust_test_ca(self):
        # The control for the other tests: without the test CA, TLS fails.
        env = self.function_env(ca_bundle="")
        env.pop("AWS_CA_BUNDLE", None)
        env.pop("SSL_CERT_FILE", None)
        self.start_function(env=env)
        resp = self.invoke(self.event())
        self.assertStatus(resp, 502)
        self.assertEqual(self.origin.requests, [])

    def test_aws_ca_bundle_wins_over_ssl_cert_file(self):
        sysca = "/etc/ssl/certs/ca-certificates.crt"
        if not os.path.exists(sysca):
            self.skipTest("no %s" % sysca)
        env = self.function_env(extra={"SSL_CERT_FILE": sysca})  # AWS_CA_BUNDLE = test CA
        self.start_function(env=env)
        self.assertStatus(self.invoke(self.event()), 200)

    def test_missing_aws_ca_bundle_fails_closed(self):
        env = self.function_env(ca_bundle=os.path.join(self.tmp, "missing.pem"))
        self.start_function(env=env)
        self.assertStatus(self.invoke(self.event()), 502)
        self.assertEqual(self.origin.requests, [])

    def _namespace_argv(self, ca):
        scratch = tempfile.mkdtemp(prefix="ns-", dir=self.tmp)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT, "sh",
                harness.BOOTSTRAP, ca or "", scratch]

    def _require_namespaces(self):
        if shutil.which("unshare") is None:
            self.skipTest("unshare(1) is not installed")
        argv = self._namespace_argv(self.ca.ca_file)
        r = subprocess.run(argv, env=dict(os.environ, SSP_PROBE="1"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        if r.returncode != 0:
            self.skipTest("cannot make a private mount namespace with an overlay over /etc here: %s"
                          % r.stdout.decode("utf-8", "replace").strip()[-300:])

    def _namespace_env(self):
        env = self.function_env(ca_bundle="")
        env.pop("AWS_CA_BUNDLE", None)
        env.pop("SSL_CERT_FILE", None)
        env.pop("SSL_CERT_DIR", None)
        return env

    def test_amazon_linux_path_without_debian_store(self):
        self._require_namespaces()
        self.start_function(env=self._namespace_env(), argv=self._namespace_argv(self.ca.ca_file))
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].header("X-Api-Key"), ["ca-secret-1"])

    def test_no_store_at_all_fails_closed(self):
        # The same namespace without the Amazon Linux bundle: proves the
        # previous test passed because of /etc/pki, not a leftover store.
        self._require_namespaces()
        self.start_function(env=self._namespace_env(), argv=self._namespace_argv(None))
        self.assertStatus(self.invoke(self.event()), 502)
        self.assertEqual(self.origin.requests, [])


if __name__ == "__main__":
    harness.main()
