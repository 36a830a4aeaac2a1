"""Shared fixture for the credentials tests: runs tests/unit/creds_cli (the
chain and the store with its real agent process) against the loopback
stand-ins of creds_standins.py, in a clean environment with an empty HOME.
"""

import os
import socket
import subprocess
import threading
import time

import harness
import creds_standins

CREDS_CLI = os.path.join(harness.BUILDDIR, "tests", "unit", "creds_cli")


class CliResult:
    def __init__(self, rc, out, err, elapsed):
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed

    def lines(self, prefix):
        return [l[len(prefix):] for l in self.out.splitlines() if l.startswith(prefix)]

    def fields(self, line):
        return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)

    def __repr__(self):
        return "rc=%r elapsed=%.2f\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.elapsed, self.out, self.err)


class BlackHole:
    """A port that accepts connections and never answers (a host whose
    metadata service hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port

    def close(self):
        self.sock.close()


class CredsCase(harness.TestCase):
    def setUp(self):
        super().setUp()
        if not os.path.exists(CREDS_CLI):
            self.fail("%s not built (make check builds it)" % CREDS_CLI)
        self.keyring = creds_standins.Keyring()
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self._stop = []

    def tearDown(self):
        for s in reversed(self._stop):
            s.stop()
        super().tearDown()

    def imds(self, **kw):
        s = creds_standins.ImdsStandin(keyring=self.keyring, **kw).start()
        self._stop.append(s)
        return s

    def ecs(self, auth=None):
        s = creds_standins.EcsStandin(auth=auth, keyring=self.keyring).start()
        self._stop.append(s)
        return s

    def sts(self, role_arn, token):
        s = creds_standins.StsStandin(role_arn, token, keyring=self.keyring).start()
        self._stop.append(s)
        return s

    def blackhole(self):
        b = BlackHole()
        self.addCleanup(b.close)
        return b

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def env(self, extra=None):
        """Clean: no credentials anywhere, IMDS disabled, unless extra says."""
        env = harness.clean_env()
        env.update({
            "HOME": self.home,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.home, "no-credentials"),
            "AWS_CONFIG_FILE": os.path.join(self.home, "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def imds_env(self, imds, extra=None):
        e = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}
        e.update(extra or {})
        return self.env(e)

    def cli(self, *args, env=None, timeout=20):
        argv = [CREDS_CLI] + [str(a) for a in args]
        t0 = time.monotonic()
        p = subprocess.run(argv, env=env or self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        r = CliResult(p.returncode, p.stdout.decode("utf-8", "replace"),
                      p.stderr.decode("utf-8", "replace"), time.monotonic() - t0)
        reports = [l for l in (r.out + r.err).splitlines()
                   if any(m in l for m in harness.SANITIZER_MARKERS)]
        if reports:
            self.fail("sanitizer reports from creds_cli:\n%s" % "\n".join(reports[:20]))
        self.assertNoSecrets(r.out + r.err)
        return r

    def assertNoSecrets(self, text):
        for s in self.keyring.secrets():
            if s in text:
                self.fail("a secret or token appeared in the output: %r...\n%s" % (s[:10], text))

    def resolve(self, env, *args, **kw):
        return self.cli("resolve", "--timeout", "0.5", "--attempts", "2", *args, env=env, **kw)
