"""The Debian package on a real machine, as root: install, the init script's
every action with a request through the daemon between each step, the
workers' user, broken configs refused by start and reload, conffile
handling on upgrade, remove and purge leaving nothing behind.

This changes the machine (installs packages, starts services), so it runs
only when asked: as root with SSP_DEB_DIR naming a folder with the built
.deb files (tests/package/build-deb.sh makes them; .ci/run does both).
"""

import glob
import os
import pwd
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import standin_lambda  # noqa: E402

DEB_DIR = os.environ.get("SSP_DEB_DIR")
INIT = "/etc/init.d/ssm-sign-proxy"
CONF = "/etc/ssm-sign-proxy.yaml"
DEFAULT = "/etc/default/ssm-sign-proxy"
PIDFILE = "/run/ssm-sign-proxy.pid"
DAEMON = "/usr/sbin/ssm-sign-proxy"


def run(*argv, check=True, env=None):
    e = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    e.pop("http_proxy", None)
    if env:
        e.update(env)
    p = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=e, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(argv), p.returncode, out))
    return p.returncode, out


def daemon_pids():
    """Every process running the installed daemon binary."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % d)
        except OSError:
            continue
        if exe.startswith(DAEMON):
            pids.append(int(d))
    return pids


def proc_user(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return pwd.getpwuid(int(line.split()[1])).pw_name
    return None


def master_pid():
    with open(PIDFILE) as f:
        return int(f.read().strip())


def get(port, url="http://api.example.test/user/repos", timeout=5.0):
    """A request through the daemon, as curl sends it; (status, body)."""
    p = subprocess.run(["curl", "-sS", "--noproxy", "", "-x", "http://127.0.0.1:%d" % port,
                        "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout), url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 5)
    out = p.stdout.decode("utf-8", "replace")
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


@unittest.skipUnless(DEB_DIR and os.geteuid() == 0,
                     "needs root and SSP_DEB_DIR (run by .ci/run after tests/package/build-deb.sh)")
class DebianPackage(unittest.TestCase):
    def setUp(self):
        # Container images ship a policy-rc.d that forbids starting services
        # from maintainer scripts; a real machine has none. Put it aside.
        self.policy = "/usr/sbin/policy-rc.d"
        if os.path.exists(self.policy):
            os.rename(self.policy, self.policy + ".ssp-test")
            self.addCleanup(os.rename, self.policy + ".ssp-test", self.policy)
        # Without an init system (a container, a chroot) invoke-rc.d cannot
        # tell the runlevel and the maintainer scripts start nothing. Behave
        # like a sysvinit machine in runlevel 2 for the length of the test.
        self.runlevel = "/sbin/runlevel"
        if subprocess.run([self.runlevel], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            os.rename(self.runlevel, self.runlevel + ".ssp-test")
            self.addCleanup(os.rename, self.runlevel + ".ssp-test", self.runlevel)
            with open(self.runlevel, "w") as f:
                f.write("#!/bin/sh\necho N 2\n")
            os.chmod(self.runlevel, 0o755)
            self.addCleanup(os.unlink, self.runlevel)
        self.lam = standin_lambda.StandinLambda(region="us-east-1")
        self.lam.start()
        self.port = harness.free_port()
        self.debs = sorted(glob.glob(os.path.join(DEB_DIR, "ssm-sign-proxy_*.deb")))
        self.fn_debs = sorted(glob.glob(os.path.join(DEB_DIR, "ssm-sign-proxy-function_*.deb")))
        self.assertTrue(self.debs, "no ssm-sign-proxy_*.deb in %s" % DEB_DIR)

    def tearDown(self):
        run("apt-get", "purge", "-y", "-q", "ssm-sign-proxy", "ssm-sign-proxy-function", check=False)
        for pid in daemon_pids():
            os.kill(pid, 9)
        self.lam.stop()

    def write_config(self, function="pkg-test-fn", extra=""):
        with open(CONF, "w") as f:
            f.write("function_name: %s\nlisten: 127.0.0.1:%d\nuser: ssm-sign-proxy\n"
                    "workers: 2\ntimeouts: {invoke: 2, connect: 1, shutdown: 2}\n%s"
                    % (function, self.port, extra))

    def write_default(self):
        with open(DEFAULT, "w") as f:
            f.write("AWS_ENDPOINT_URL_LAMBDA=%s\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n"
                    "AWS_REGION=us-east-1\nAWS_EC2_METADATA_DISABLED=true\n"
                    % (self.lam.url, standin_lambda.ACCESS_KEY, standin_lambda.SECRET_KEY))

    def assert_serves(self, function):
        n = self.lam.count()
        status, body = get(self.port)
        self.assertEqual(status, 200, body)
        self.lam.wait_invocations(n + 1)
        self.assertEqual(self.lam.last().function, function)
        self.assertEqual(self.lam.signature_failures, [])

    def test_lifecycle(self):
        # Install on a machine that has not been configured: the daemon
        # starts with the shipped conffile and answers 503 naming the key.
        port_8000_free = harness.free_port() and _port_free(8000)
        rc, out = run("apt-get", "install", "-y", "-q", *self.debs, *self.fn_debs, check=False)
        self.assertEqual(rc, 0, out)
        self.assertTrue(os.path.exists("/usr/lib/ssm-sign-proxy/bootstrap"))
        # Where config management drops its pieces (include: in the config).
        self.assertTrue(os.path.isdir("/etc/ssm-sign-proxy.d"))
        if self.fn_debs:
            self.assertTrue(os.path.exists("/usr/lib/ssm-sign-proxy/ssm-sign-proxy-function.zip"))
            self.assertTrue(os.path.exists("/usr/lib/ssm-sign-proxy/template.yaml"))
        self.assertEqual(run(INIT, "status", check=False)[0], 0, "not running after install")
        if port_8000_free:
            status, body = get(8000)
            self.assertEqual(status, 503, body)
            self.assertIn("function_name", body)
        pwd.getpwnam("ssm-sign-proxy")

        # Configure it and restart: requests reach the function, signed.
        self.write_config()
        self.write_default()
        run(INIT, "restart")
        harness.wait_port(self.port)
        self.assert_serves("pkg-test-fn")
        master = master_pid()
        # Workers name themselves just after the fork: wait for both names.
        workers = harness.wait_for(lambda: len(harness.workers_of(master)) == 2 and harness.workers_of(master),
                                   what="2 workers named ssp-worker")
        # The master stays root to re-bind on reload; so does the
        # credentials agent (it reads root's ~/.aws); workers do not.
        self.assertEqual(proc_user(master), "root")
        for w in workers:
            self.assertEqual(proc_user(w), "ssm-sign-proxy")

        self.assertEqual(run(INIT, "status")[0], 0)
        # The signals the init script documents reach the master.
        self.assertEqual(run(INIT, "reopen-logs")[0], 0)
        self.assertEqual(run(INIT, "stats")[0], 0)
        self.assertEqual(master_pid(), master)

        # reload: new config picked up by the same master.
        self.write_config(function="pkg-test-fn-2")
        run(INIT, "reload")
        harness.wait_for(lambda: _serves(self, "pkg-test-fn-2"), timeout=10, what="reload applied")
        self.assertEqual(master_pid(), master)

        # A broken config: reload fails showing the error, daemon untouched.
        with open(CONF, "a") as f:
            f.write("no_such_key: 1\n")
        rc, out = run(INIT, "reload", check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("no_such_key", out)
        self.assert_serves("pkg-test-fn-2")
        self.assertEqual(master_pid(), master)

        # restart and start refuse it too, and say why.
        rc, out = run(INIT, "restart", check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("no_such_key", out)
        run(INIT, "stop")
        self.assertEqual(daemon_pids(), [])
        rc, out = run(INIT, "start", check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("no_such_key", out)
        self.assertEqual(daemon_pids(), [])

        self.write_config(function="pkg-test-fn-3")
        run(INIT, "start")
        harness.wait_port(self.port)
        self.assert_serves("pkg-test-fn-3")
        first = master_pid()
        run(INIT, "restart")
        harness.wait_port(self.port)
        self.assertNotEqual(master_pid(), first)
        self.assert_serves("pkg-test-fn-3")

        # Upgrade (the same version reinstalled): the modified conffile
        # survives, and the running daemon is not restarted but upgraded in
        # place (SIGURG: the new master takes the sockets over, no
        # connection is refused): the old master logs the new one's pid,
        # which is the pid file's now.
        before = master_pid()
        rc, out = run("dpkg", "-i", "--force-confold", *self.debs, check=False)
        self.assertEqual(rc, 0, out)
        with open(CONF) as f:
            self.assertIn("pkg-test-fn-3", f.read())
        harness.wait_port(self.port)
        self.assertNotEqual(master_pid(), before)
        with open("/var/log/ssm-sign-proxy.log") as f:
            log = f.read()
        self.assertIn("[%d] [master] info: upgrade: the new master (pid %d) is serving"
                      % (before, master_pid()), log)
        self.assert_serves("pkg-test-fn-3")
        # The init script's upgrade action, by hand.
        before = master_pid()
        run(INIT, "upgrade")
        self.assertNotEqual(master_pid(), before)
        self.assertIn(master_pid(), daemon_pids())
        self.assertNotIn(before, daemon_pids())
        self.assert_serves("pkg-test-fn-3")

        run(INIT, "stop")
        self.assertEqual(daemon_pids(), [])
        self.assertEqual(run(INIT, "status", check=False)[0], 3)
        run(INIT, "start")
        harness.wait_port(self.port)

        # remove stops it and keeps the conffile; purge removes everything.
        run("apt-get", "remove", "-y", "-q", "ssm-sign-proxy")
        harness.wait_for(lambda: daemon_pids() == [], timeout=10, what="no daemon after remove")
        self.assertTrue(os.path.exists(CONF))
        run("apt-get", "purge", "-y", "-q", "ssm-sign-proxy", "ssm-sign-proxy-function")
        self.assertEqual(daemon_pids(), [])
        for path in (CONF, DEFAULT, INIT, PIDFILE, "/usr/lib/ssm-sign-proxy",
                     "/var/log/ssm-sign-proxy.log"):
            self.assertFalse(os.path.exists(path), "%s left after purge" % path)
        with self.assertRaises(KeyError):
            pwd.getpwnam("ssm-sign-proxy")


def _port_free(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _serves(tc, function):
    n = tc.lam.count()
    status, _ = get(tc.port)
    if status != 200:
        return False
    tc.lam.wait_invocations(n + 1)
    return tc.lam.last().function == function


if __name__ == "__main__":
    harness.main()
