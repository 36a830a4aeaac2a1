"""The README's first command, ./demo.sh, as a user runs it (without the
dependency/build step: make check has built everything already): exit 0
and the key lines; twice in a row; --keep leaves a daemon that works, with
the command to try, and --stop removes every process it started."""

import os
import re
import subprocess

import harness
from localfn_case import alive

DEMO = os.path.join(harness.SRCDIR, "demo.sh")


class Demo(harness.TestCase):
    def setUp(self):
        super().setUp()
        if not os.access(harness.BOOTSTRAP, os.X_OK) or not os.access(harness.DAEMON, os.X_OK):
            self.skipTest("the daemon or lambda/bootstrap is not built")
        self.dir = os.path.join(self.tmp, "demo")
        self.addCleanup(self.stop_kept)

    def env(self):
        env = harness.clean_env()
        env.update({"SSP_DEMO_NO_BUILD": "1", "SSP_DEMO_BUILDDIR": harness.BUILDDIR,
                    "SSP_DEMO_DIR": self.dir})
        # A user's proxy settings must not derail the demo.
        env["no_proxy"] = "*"
        env["https_proxy"] = "http://127.0.0.1:9"
        return env

    def run_demo(self, *args, timeout=60):
        p = subprocess.run([DEMO] + list(args), env=self.env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def pids(self):
        out = []
        for name in ("daemon.pid", "origin.pid"):
            try:
                with open(os.path.join(self.dir, name)) as f:
                    out.append(int(f.read().strip()))
            except (FileNotFoundError, ValueError):
                pass
        return out

    def function_pids(self):
        """The demo's function processes: their environment names its
        parameters file."""
        mark = ("SSM_SIGN_PROXY_PARAMETERS_FILE=%s" % os.path.join(self.dir, "parameters.yaml")).encode()
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if mark in f.read().split(b"\0") and alive(int(d)):
                        out.append(int(d))
            except OSError:
                pass
        return out

    def stop_kept(self):
        if os.path.isdir(self.dir):
            self.run_demo("--stop")

    def check_output(self, rc, out):
        self.assertEqual(rc, 0, out)
        self.assertIn("HTTP 200; the origin received:", out)
        self.assertRegex(out, r"\n    Authorization: token demo-\d+-not-a-real-secret\n")
        self.assertIn("HTTP 407", out)
        self.assertIn("ok    api.example.test: 200", out)
        self.assertIn("ok    other.example.test: 407", out)
        self.assertNotIn("FAIL", out)

    def test_demo_twice(self):
        for _ in range(2):
            rc, out = self.run_demo()
            self.check_output(rc, out)
            self.assertIn("everything worked", out)
            # Cleaned up: its files and its processes are gone.
            self.assertFalse(os.path.exists(self.dir), out)

    def test_failure_is_reported(self):
        # A build directory without the programs: the demo says so, exits 1
        # and leaves nothing running.
        env = self.env()
        env["SSP_DEMO_BUILDDIR"] = os.path.join(self.tmp, "empty-build")
        p = subprocess.run([DEMO], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 1, out)
        self.assertIn("demo: FAILED: %s/src/ssm-sign-proxy is not built" % env["SSP_DEMO_BUILDDIR"], out)
        self.assertEqual(self.pids(), [])

    def test_keep_then_stop(self):
        rc, out = self.run_demo("--keep")
        self.check_output(rc, out)
        m = re.search(r"^    http_proxy=(http://127\.0\.0\.1:\d+) curl (http://api\.example\.test/\S+)$",
                      out, re.M)
        self.assertIsNotNone(m, out)
        self.assertIn("./demo.sh --stop", out)
        pids = self.pids()
        self.assertEqual(len(pids), 2)
        fns = self.function_pids()
        self.assertEqual(len(fns), 2, "concurrency 2: two function processes")
        pids += fns
        for pid in pids:
            self.assertTrue(alive(pid))
        # The printed command works, as the user would type it.
        env = harness.clean_env({"http_proxy": m.group(1)})
        r = subprocess.run(["curl", "-sS", "--max-time", "10", m.group(2)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Authorization: token demo-", r.stdout)
        # A second run replaces the kept one.
        rc, out = self.run_demo()
        self.check_output(rc, out)
        for pid in pids:
            self.assertFalse(alive(pid), "pid %d of the kept run survived" % pid)
        rc, out = self.run_demo("--keep")
        self.check_output(rc, out)
        pids = self.pids() + self.function_pids()
        self.assertEqual(len(pids), 4)
        rc, out = self.run_demo("--stop")
        self.assertEqual(rc, 0, out)
        for pid in pids:
            harness.wait_for(lambda: not alive(pid), timeout=5, what="pid %d to stop" % pid)
        self.assertFalse(os.path.exists(self.dir))


if __name__ == "__main__":
    harness.main()
