#!/usr/bin/env python3
"""The process lifecycle under faults (issue 11), one concern per test:

- the credentials agent is supervised in every generation: killed after any
  number of reloads, it is started again, and there is never more than one;
- a parked request fails at once (503 naming the agent) when the agent is
  not running and will not be for a while, instead of waiting out the
  invoke budget;
- a reload is a transaction: new workers that do not become ready (a local
  function that never asks for work, or one that crashes) are stopped after
  timeouts.start, and the old ones go on serving untouched;
- the binary upgrade (SIGURG): a new master takes the listening sockets
  over, and the old one retires once the new workers are ready; a new
  binary that fails leaves the old master serving;
- privileges: as root without user:, the workers drop to the build's
  default user (or nobody); user: root is logged as a warning.
"""

import ctypes
import os
import pwd
import signal
import threading
import time

import harness
import localfn_case
from daemon_fixture import ProxyTestCase, merge, to_yaml

TARGET = "http://api.example.test"


alive = harness.alive


def agents_of(pid):
    return sorted(p for p, comm in harness.proc_children(pid) if comm == "ssp-creds")


def become_subreaper():
    """Orphans (an upgraded-away master's successor) are reparented to this
    process, so that the tests can wait for them and see no zombie."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def reap(pid, timeout=10.0):
    """Wait for a child (or adopted orphan) pid to exit; its status, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None if alive(pid) else 0
        if got == pid:
            return status
        time.sleep(0.02)
    return None


class LifecycleCase(ProxyTestCase):
    def start_workers(self, n=1, config=None, **kw):
        cfg = {"workers": n, "access_log": "off", "log_level": "info",
               "retry": {"respawn": 0.1, "respawn_cap": 0.4}}
        cfg = merge(cfg, config or {})
        d = self.start_daemon(config=cfg, **kw)
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == n, timeout=5,
                         what="%d workers" % n)
        return d

    def rewrite_config(self, d, **changes):
        d.config = merge(d.config, changes)
        with open(d.config_path, "w") as f:
            f.write(to_yaml(d.config))

    def reload_and_wait(self, d, outcome="configuration reloaded", timeout=10):
        n = d.log().count(outcome)
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: d.log().count(outcome) > n, timeout=timeout,
                         what="%r in the log" % outcome)

    def assert_serves(self, d):
        r = d.get(TARGET + "/ping")
        self.assertEqual(r.status_code, 200, r.text)

    def script(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path


class AgentSupervision(LifecycleCase):
    def test_agent_respawned_after_reloads(self):
        """The issue's reproduction: SIGHUP, then kill -9 the agent: it is
        started again, in every generation, and there is only ever one."""
        d = self.start_workers(1)
        harness.wait_for(lambda: len(agents_of(d.pid)) == 1, what="the agent")
        for gen in range(2, 5):
            self.reload_and_wait(d)
            self.assertEqual(len(agents_of(d.pid)), 1, d.log())
            victim = agents_of(d.pid)[0]
            os.kill(victim, signal.SIGKILL)
            harness.wait_for(lambda: agents_of(d.pid) and victim not in agents_of(d.pid),
                             timeout=5, what="a new agent after reload %d" % gen)
            # Never two, not even while the replacement starts.
            for _ in range(10):
                self.assertLessEqual(len(agents_of(d.pid)), 1)
                time.sleep(0.02)
        d.wait_log("took over the credentials store from an agent that died")
        self.assert_serves(d)

    def test_parked_request_fails_fast_when_agent_down(self):
        """No credentials and an agent that died right after it started (its
        replacement waits out a 30 s back-off): the request gets 503 naming
        the agent at once, not after timeouts.invoke."""
        d = self.start_workers(1, credentials=False,
                               config={"retry": {"respawn": 30, "respawn_cap": 60},
                                       "timeouts": {"invoke": 60}})
        harness.wait_for(lambda: len(agents_of(d.pid)) == 1, what="the agent")
        victim = agents_of(d.pid)[0]
        os.kill(victim, signal.SIGKILL)
        d.wait_log("starting another in 30.0s")
        r = d.get(TARGET + "/parked", timeout=30)
        self.assertEqual(r.status_code, 503, r.text)
        self.assertIn("the credentials agent is not running", r.text)
        self.assertIn("killed by signal 9", r.text)
        self.assertEqual(self.lam.count(), 0)


class ReloadTransaction(LifecycleCase):
    def serve_during(self, d, stop, results):
        while not stop.is_set():
            try:
                r = d.get(TARGET + "/during", timeout=10)
                results.append(r.status_code)
            except Exception as e:  # noqa: BLE001 - any failure counts
                results.append(repr(e))
            time.sleep(0.01)

    def abandoned_reload(self, command, why):
        d = self.start_workers(2, config={"timeouts": {"start": 1}})
        old = harness.workers_of(d.pid)
        stop, results = threading.Event(), []
        t = threading.Thread(target=self.serve_during, args=(d, stop, results))
        t.start()
        try:
            self.rewrite_config(d, function_name=None,
                                local_function={"command": command, "concurrency": 1})
            self.reload_and_wait(d, outcome="reload abandoned")
            log = d.log()
            self.assertIn(why, log)
            self.assertIn("the running configuration (generation 1) keeps serving", log)
            # The new workers go; the old ones were never told to.
            harness.wait_for(lambda: harness.workers_of(d.pid) == old, timeout=5,
                             what="only the old workers")
            time.sleep(0.2)
        finally:
            stop.set()
            t.join()
        self.assertTrue(results)
        self.assertEqual([r for r in results if r != 200], [])
        self.assertEqual(harness.workers_of(d.pid), old)
        self.assertEqual(self.lam.last().function, self.function_name)
        return d

    def test_function_never_ready(self):
        """Lambda -> local switch whose function never asks for work."""
        cmd = self.script("never-ready", "#!/bin/sh\nexec sleep 60\n")
        d = self.abandoned_reload(cmd, "were not ready within timeouts.start (1.0s): their "
                                       "local function processes did not ask for work")
        # No function process is left behind.
        harness.wait_for(lambda: not any(
            "never-ready" in open("/proc/%s/cmdline" % p, "rb").read().decode("utf-8", "replace")
            for p in os.listdir("/proc") if p.isdigit() and os.path.exists("/proc/%s/cmdline" % p)),
            timeout=5, what="no never-ready process")
        self.assert_serves(d)

    def test_function_crashes(self):
        cmd = self.script("crashes", "#!/bin/sh\nexit 1\n")
        self.abandoned_reload(cmd, "were not ready within timeouts.start")

    def test_missing_command_refused_at_load(self):
        d = self.start_workers(2)
        old = harness.workers_of(d.pid)
        missing = os.path.join(self.tmp, "no-such-function")
        self.rewrite_config(d, function_name=None, local_function={"command": missing})
        self.reload_and_wait(d, outcome="reload failed")
        self.assertIn("local_function.command: %s: No such file or directory" % missing, d.log())
        self.assertEqual(harness.workers_of(d.pid), old)
        self.assert_serves(d)

    def test_ready_workers_commit(self):
        """A good reload: the old workers retire only once the new ones
        reported ready, and the log says how long that took."""
        d = self.start_workers(2)
        old = harness.workers_of(d.pid)
        self.rewrite_config(d, workers=3)
        self.reload_and_wait(d)
        self.assertRegex(d.log(), r"configuration reloaded \(generation 2, 3 workers ready after")
        harness.wait_for(lambda: not any(alive(p) for p in old), timeout=5,
                         what="the old workers to exit")
        self.assertEqual(len(harness.workers_of(d.pid)), 3)
        self.assert_serves(d)

    def test_sighup_during_a_reload_is_done_after_it(self):
        """A configuration pushed twice in a row: the second SIGHUP comes
        while the first reload waits for its workers; it is not lost but
        done once the first is over."""
        d = self.start_workers(1, config={"timeouts": {"start": 5}})
        slow = self.script("slow.sh", "#!/bin/sh\nsleep 1\n" +
                           localfn_case.RUNTIME_SH.split("\n", 1)[1])
        self.rewrite_config(d, function_name=None,
                            local_function={"command": slow, "concurrency": 1})
        d.proc.signal(signal.SIGHUP)
        d.wait_log("waiting for 1 new workers to be ready")
        self.rewrite_config(d, function_name=self.function_name, local_function=None, workers=2)
        d.proc.signal(signal.SIGHUP)
        d.wait_log("SIGHUP: a reload is in progress; reloading once it is over")
        d.wait_log("configuration reloaded (generation 3, 2 workers ready", timeout=10)
        self.assertIn("configuration reloaded (generation 2, 1 workers ready", d.log())
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 2, timeout=5,
                         what="2 workers")
        self.assert_serves(d)

    def test_local_function_ready_commit(self):
        """Lambda -> local switch with a working function: committed once
        the function asked for work; requests then reach the function."""
        d = self.start_workers(1)
        fn = self.script("runtime.sh", localfn_case.RUNTIME_SH)
        self.rewrite_config(d, function_name=None,
                            local_function={"command": fn, "concurrency": 1})
        self.reload_and_wait(d)
        r = d.get(TARGET + "/local")
        self.assertEqual(r.status_code, 201, r.text)
        self.assertEqual(r.text, "shell saw /local")


class BinaryUpgrade(LifecycleCase):
    def setUp(self):
        super().setUp()
        become_subreaper()
        # The binary at a path of the test's own: replaced like a package
        # upgrade does (a new file renamed over the old).
        self.exe = os.path.join(self.tmp, "ssm-sign-proxy")
        self.exe_env = harness.copy_daemon(self.exe)
        self.pid_file = os.path.join(self.tmp, "ssp.pid")

    def start_upgradable(self, config=None):
        cfg = merge({"pid_file": self.pid_file, "timeouts": {"start": 5}}, config or {})
        d = self.start_workers(2, config=cfg)
        # Start from the copy: argv[0] and /proc/self/exe name it.
        d.proc.stop()
        proc = self.start([self.exe, "-c", d.config_path], env=dict(self.daemon_env(), **self.exe_env),
                          name="upgradable")
        d.proc = proc
        harness.wait_port(d.port, timeout=10, proc=proc)
        harness.wait_for(lambda: len(harness.workers_of(proc.pid)) == 2, timeout=5,
                         what="2 workers")
        harness.wait_for(lambda: read_pid(self.pid_file) == proc.pid, what="the pid file")
        return d

    def test_upgrade_hands_over(self):
        d = self.start_upgradable()
        old = d.pid
        stop, results = threading.Event(), []

        def load():
            while not stop.is_set():
                try:
                    r = d.raw(b"GET %s/up HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n"
                              % TARGET.encode(), timeout=10)
                    results.append(r.status)
                except Exception as e:  # noqa: BLE001
                    results.append(repr(e))

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.3)
            os.kill(old, signal.SIGURG)
            harness.wait_for(lambda: read_pid(self.pid_file) not in (0, old), timeout=10,
                             what="the new master's pid file")
            new = read_pid(self.pid_file)
            self.assertEqual(d.proc.wait(10), 0, d.log())
            time.sleep(0.3)
        finally:
            stop.set()
            t.join()
        self.assertTrue(alive(new))
        self.assertEqual(len(harness.workers_of(new)), 2)
        self.assertIn("upgrade: the new master (pid %d) is serving; this one retires" % new,
                      d.log())
        self.assertGreater(len(results), 10)
        self.assertEqual([r for r in results if r != 200], [])
        r = d.get(TARGET + "/after")
        self.assertEqual(r.status_code, 200)
        os.kill(new, signal.SIGTERM)
        self.assertEqual(reap(new), 0)
        self.assertFalse(os.path.exists(self.pid_file))

    def test_upgrade_hands_the_admin_listener_over(self):
        """The admin listener is a socket of the master's: the new master
        adopts it (binding it again would fail while the old one has it)."""
        import urllib.request
        port = harness.free_port()
        d = self.start_upgradable(config={"admin": {"listen": "127.0.0.1:%d" % port}})
        old = d.pid
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.assertEqual(opener.open("http://127.0.0.1:%d/healthz" % port, timeout=5).status, 200)
        os.kill(old, signal.SIGURG)
        harness.wait_for(lambda: read_pid(self.pid_file) not in (0, old), timeout=10,
                         what="the new master's pid file")
        new = read_pid(self.pid_file)
        self.assertEqual(d.proc.wait(10), 0, d.log())
        self.assertEqual(opener.open("http://127.0.0.1:%d/healthz" % port, timeout=5).status, 200)
        self.assertNotIn("cannot bind", d.log())
        os.kill(new, signal.SIGTERM)
        self.assertEqual(reap(new), 0)

    def test_failed_upgrade_keeps_old(self):
        d = self.start_upgradable()
        broken = self.exe + ".new"
        with open(broken, "w") as f:
            f.write("#!/bin/sh\nexit 3\n")
        os.chmod(broken, 0o755)
        os.rename(broken, self.exe)
        os.kill(d.pid, signal.SIGURG)
        d.wait_log("upgrade failed: the new master")
        self.assertIn("exited with status 3 before it was ready; this one keeps serving",
                      d.log())
        self.assertTrue(d.running())
        self.assertEqual(read_pid(self.pid_file), d.pid)
        self.assert_serves(d)


class Privileges(LifecycleCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root: the default user applies to a master started as root")

    def uid_of(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
        return None

    def test_default_user(self):
        try:
            want = pwd.getpwnam("ssm-sign-proxy")
        except KeyError:
            want = pwd.getpwnam("nobody")
        d = self.start_daemon(config={"user": None, "access_log": "off"})
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 1, what="the worker")
        # The worker names itself before it drops privileges: wait for both.
        for pid in harness.workers_of(d.pid):
            harness.wait_for(lambda: self.uid_of(pid) == want.pw_uid, timeout=5,
                             what="worker %d to run as %s" % (pid, want.pw_name))
        self.assertIn("workers run as %s (no user: in the configuration" % want.pw_name, d.log())
        self.assert_serves(d)

    def test_root_is_a_warning(self):
        d = self.start_workers(1, config={"user": "root"})
        for pid in harness.workers_of(d.pid):
            self.assertEqual(self.uid_of(pid), 0)
        self.assertIn("user: root: workers and local functions run as root", d.log())


if __name__ == "__main__":
    harness.main()
