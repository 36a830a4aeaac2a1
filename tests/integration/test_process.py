#!/usr/bin/env python3
"""The process model: the master forks `workers` workers, replaces one that
dies (backing off when they keep dying), reloads on SIGHUP without failing
a request, stops on SIGTERM after the requests in flight are answered,
reopens the access log on SIGUSR1, writes and removes its pid file, and
leaves no worker behind even when it is killed outright.

Workers are counted through /proc: children of the master whose name
(comm) is "ssp-worker"."""

import os
import signal
import socket
import threading
import time

import harness
import requests
import standin_lambda as sl
from daemon_fixture import Conn, ProxyTestCase, merge, to_yaml

TARGET = "http://api.example.test"
WORKER_COMM = "ssp-worker"


alive = harness.alive


class ProcessTest(ProxyTestCase):
    def start_workers(self, n=2, config=None, **kw):
        cfg = {"workers": n, "access_log": "off", "log_level": "info",
               "retry": {"respawn": 0.1, "respawn_cap": 0.4}}
        cfg.update(config or {})
        d = self.start_daemon(config=cfg, **kw)
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == n, timeout=5,
                         what="%d workers" % n)
        return d

    def rewrite_config(self, d, **changes):
        """Write d's config again with changes (deep-merged by the fixture's
        rules: None deletes a key)."""
        d.config = merge(d.config, changes)
        with open(d.config_path, "w") as f:
            f.write(to_yaml(d.config))

    def reload(self, d):
        n = d.log().count("configuration reloaded")
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: d.log().count("configuration reloaded") > n, timeout=5,
                         what="the reload to be logged")

    def assert_serves(self, d, function=None):
        r = d.get(TARGET + "/ping")
        self.assertEqual(r.status_code, 200, r.text)
        if function is not None:
            self.assertEqual(self.lam.last().function, function)

    # -- workers ---------------------------------------------------------
    def test_three_workers(self):
        d = self.start_workers(3)
        self.assertEqual(len(harness.workers_of(d.pid)), 3)
        self.assert_serves(d, self.function_name)
        for pid in harness.workers_of(d.pid):
            self.assertIn("worker", d.log())
            self.assertIn("pid %d" % pid, d.log())

    def test_respawn_after_sigkill(self):
        d = self.start_workers(2)
        before = harness.workers_of(d.pid)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            now = harness.workers_of(d.pid)
            return len(now) == 2 and victim not in now

        harness.wait_for(replaced, timeout=5, what="a replacement worker")
        after = harness.workers_of(d.pid)
        self.assertNotIn(victim, after)
        self.assertIn(before[1], after)
        d.wait_log("(pid %d) killed by signal 9" % victim)
        for _ in range(4):
            self.assert_serves(d)

    def test_respawn_backs_off(self):
        """A worker that keeps dying right after it started is replaced
        later and later (retry.respawn doubling up to retry.respawn_cap)."""
        d = self.start_workers(1, config={"retry": {"respawn": 0.2, "respawn_cap": 0.4}})
        for _ in range(3):
            old = harness.workers_of(d.pid)
            os.kill(old[0], signal.SIGKILL)

            def replaced():
                now = harness.workers_of(d.pid)
                return len(now) == 1 and now != old

            harness.wait_for(replaced, timeout=5, what="a replacement worker")
        log = d.log()
        delays = [line.rsplit(" in ", 1)[1] for line in log.splitlines()
                  if "killed by signal 9" in line and "starting another in" in line]
        self.assertEqual(delays, ["0.2s", "0.4s", "0.4s"], log)
        self.assert_serves(d)

    # -- reload ----------------------------------------------------------
    def test_reload_new_function_name(self):
        d = self.start_workers(2)
        self.assert_serves(d, self.function_name)
        old = harness.workers_of(d.pid)
        self.rewrite_config(d, function_name="another-function")
        self.reload(d)
        harness.wait_for(lambda: not any(alive(p) for p in old), timeout=5,
                         what="the old workers to exit")
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 2, timeout=5, what="2 new workers")
        self.assertFalse(set(old) & set(harness.workers_of(d.pid)))
        self.assert_serves(d, "another-function")
        self.assertEqual(d.log().count("exited with status 0"), 2, d.log())

    def test_reload_changes_worker_count(self):
        d = self.start_workers(1)
        self.rewrite_config(d, workers=3)
        self.reload(d)
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 3, timeout=5, what="3 workers")
        self.rewrite_config(d, workers=2)
        self.reload(d)
        harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 2, timeout=5, what="2 workers")
        self.assert_serves(d)

    def test_reload_invalid_config_keeps_serving(self):
        d = self.start_workers(2)
        old = harness.workers_of(d.pid)
        with open(d.config_path, "w") as f:
            f.write("function_name: [unclosed\nworkers: two\n")
        d.proc.signal(signal.SIGHUP)
        d.wait_log("reload failed")
        self.assertIn(d.config_path, d.log())
        self.assertTrue(d.running())
        self.assertEqual(harness.workers_of(d.pid), old)
        self.assert_serves(d, self.function_name)

    def test_reload_changes_listen_address(self):
        d = self.start_workers(1)
        port2 = harness.free_port()
        self.rewrite_config(d, listen=["127.0.0.1:%d" % d.port, "127.0.0.1:%d" % port2])
        self.reload(d)
        harness.wait_port(port2, timeout=5)
        s = requests.Session()
        s.trust_env = False
        self.addCleanup(s.close)
        r = s.get(TARGET + "/two", proxies={"http": "http://127.0.0.1:%d" % port2}, timeout=5)
        self.assertEqual(r.status_code, 200)
        # Dropped again: closed once the workers that used it are gone.
        self.rewrite_config(d, listen=["127.0.0.1:%d" % d.port])
        self.reload(d)
        d.wait_log("no longer listening on 127.0.0.1:%d" % port2)
        with self.assertRaises(ConnectionRefusedError, msg=d.log()):
            socket.create_connection(("127.0.0.1", port2), timeout=1).close()
        self.assert_serves(d)

    def test_reload_under_load(self):
        """Five reloads while clients hammer the daemon with new connections
        and keep-alive requests: not one request may fail."""
        d = self.start_workers(2)
        stop = threading.Event()
        results = {"ok": 0, "failed": []}
        lock = threading.Lock()

        def record(ok, what):
            with lock:
                if ok:
                    results["ok"] += 1
                else:
                    results["failed"].append(what)

        def new_connections():
            while not stop.is_set():
                c = None
                try:
                    c = Conn(d.host, d.port, timeout=5)
                    r = c.request("GET %s/new HTTP/1.1\r\nHost: api.example.test\r\n"
                              "Connection: close\r\n\r\n" % TARGET)
                    record(r.status == 200, "new connection: %d %r" % (r.status, r.body[:100]))
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    record(False, "new connection at %.3f: %r" % (time.time(), e))
                finally:
                    if c is not None:
                        c.close()

        def keep_alive():
            s = requests.Session()
            s.trust_env = False
            try:
                while not stop.is_set():
                    try:
                        r = s.get(TARGET + "/keepalive", proxies={"http": d.proxy_url}, timeout=5)
                        record(r.status_code == 200, "keep-alive: %d" % r.status_code)
                    except Exception as e:  # noqa: BLE001
                        record(False, "keep-alive at %.3f: %r" % (time.time(), e))
            finally:
                s.close()

        threads = [threading.Thread(target=f, daemon=True)
                   for f in (new_connections, new_connections, keep_alive, keep_alive)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            for i in range(5):
                self.rewrite_config(d, function_name="fn-%d" % i)
                self.reload(d)
                time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(results["failed"], [], "%d ok; log:\n%s" % (results["ok"], d.log()))
        self.assertGreater(results["ok"], 50)
        self.assert_serves(d, "fn-4")

    # -- stop --------------------------------------------------------------
    def test_sigterm_answers_request_in_flight(self):
        d = self.start_workers(2)
        workers = harness.workers_of(d.pid)
        self.lam.push(sl.delay(1.0, sl.respond(200, "slow answer")))
        box = {}

        def client():
            try:
                box["r"] = d.get(TARGET + "/slow", timeout=5)
            except Exception as e:  # noqa: BLE001
                box["e"] = e

        t = threading.Thread(target=client, daemon=True)
        t.start()
        self.lam.wait_invocations(1, timeout=5)
        d.proc.signal(signal.SIGTERM)
        t.join(5)
        self.assertNotIn("e", box)
        self.assertEqual(box["r"].status_code, 200)
        self.assertEqual(box["r"].text, "slow answer")
        self.assertEqual(d.proc.wait(5), 0, d.log())
        for pid in workers:
            self.assertFalse(alive(pid), "worker %d left behind" % pid)
        self.assertEqual(harness.proc_children(d.pid), [])

    def test_sigint_and_sigquit_stop_too(self):
        for sig in (signal.SIGINT, signal.SIGQUIT):
            d = self.start_workers(1)
            workers = harness.workers_of(d.pid)
            d.proc.signal(sig)
            self.assertEqual(d.proc.wait(5), 0, d.log())
            self.assertIn("%s: stopping" % sig.name, d.log())
            for pid in workers:
                self.assertFalse(alive(pid))

    def test_master_killed_workers_exit(self):
        d = self.start_workers(2)
        workers = harness.workers_of(d.pid)
        d.proc.signal(signal.SIGKILL)
        harness.wait_for(lambda: not any(alive(p) for p in workers), timeout=5,
                         what="the workers to exit after the master was killed")

    def test_sigterm_bounded_by_shutdown_timeout(self):
        """A request the function never answers does not keep the daemon:
        it exits 0 after timeouts.shutdown, with no worker left."""
        d = self.start_workers(1, config={"timeouts": {"shutdown": 0.5, "invoke": 10}})
        workers = harness.workers_of(d.pid)
        self.lam.push(sl.delay(5.0))

        def client():
            try:
                d.get(TARGET + "/stuck", timeout=8)
            except Exception:  # noqa: BLE001 - whatever it gets, it must not hang
                pass

        t = threading.Thread(target=client, daemon=True)
        t.start()
        self.lam.wait_invocations(1, timeout=5)
        start = time.monotonic()
        d.proc.signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(5), 0, d.log())
        self.assertLess(time.monotonic() - start, 2.5)
        for pid in workers:
            self.assertFalse(alive(pid))
        t.join(5)

    def test_agent_is_supervised(self):
        """The credentials agent is a child of the master and is replaced
        like a worker when it dies."""
        d = self.start_workers(1)

        def agents():
            return [p for p, comm in harness.proc_children(d.pid) if comm != WORKER_COMM]

        harness.wait_for(lambda: len(agents()) == 1, timeout=5, what="the credentials agent")
        old = agents()[0]
        os.kill(old, signal.SIGKILL)
        harness.wait_for(lambda: [p for p in agents() if p != old], timeout=5,
                         what="a new credentials agent")
        d.wait_log("credentials agent (pid %d) killed by signal 9" % old)
        self.assert_serves(d)

    def test_max_connections_pauses_accepting(self):
        """limits.max_connections: a worker holding that many connections,
        each with a request in progress, leaves the next ones in the
        kernel's queue until one closes (here: its client_header deadline
        runs out, answered 408)."""
        d = self.start_workers(1, config={"limits": {"max_connections": 2},
                                          "timeouts": {"client_header": 2}})
        req = "GET %s/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET
        c1, c2 = d.connect(), d.connect()
        c1.send("GET %s/x HTTP/1.1\r\n" % TARGET)   # a head that never ends
        c2.send("GET %s/x HTTP/1.1\r\n" % TARGET)
        time.sleep(0.3)
        c3 = d.connect(timeout=0.5)
        c3.send(req)
        with self.assertRaises(socket.timeout):
            c3.read_response()
        c3.sock.settimeout(10)
        self.assertEqual(c3.read_response().status, 200)
        c1.sock.settimeout(5)
        self.assertEqual(c1.read_response().status, 408)

    def test_max_connections_closes_idle_first(self):
        """At limits.max_connections a new client gets in at once: the
        longest idle keep-alive connection is closed to make room (as
        nginx does), not the new client kept waiting."""
        d = self.start_workers(1, config={"limits": {"max_connections": 2}})
        req = "GET %s/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET
        c1, c2 = d.connect(), d.connect()
        self.assertEqual(c1.request(req).status, 200)
        self.assertEqual(c2.request(req).status, 200)
        c3 = d.connect(timeout=5)
        self.assertEqual(c3.request(req).status, 200)
        self.assertTrue(c1.closed_by_peer(2.0))
        self.assertEqual(c2.request(req).status, 200)

    def test_closed_connections_are_released(self):
        """A connection the front door has finished with gives its socket back
        within a couple of seconds, even when no new client comes."""
        d = self.start_workers(1)
        worker = harness.workers_of(d.pid)[0]
        for _ in range(5):
            r = d.raw("GET %s/x HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n"
                      % TARGET)
            self.assertEqual(r.status, 200)

        def client_sockets():
            """The worker's sockets that no longer carry a connection (a
            socket kept after both sides closed shows in no table of
            /proc/net: its connection is in TIME_WAIT, detached)."""
            live = set()
            for table in ("tcp", "tcp6", "udp", "udp6", "unix", "netlink"):
                try:
                    with open("/proc/net/" + table) as f:
                        lines = f.readlines()[1:]
                except OSError:
                    continue
                col = 6 if table == "unix" else 9
                live.update(line.split()[col] for line in lines if len(line.split()) > col)
            n = 0
            for fd in os.listdir("/proc/%d/fd" % worker):
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (worker, fd))
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] not in live:
                    n += 1
            return n

        harness.wait_for(lambda: client_sockets() == 0, timeout=3,
                         what="the worker to close the sockets of finished connections")

    def test_workers_run_as_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch the workers to another user")
        import pwd
        nobody = pwd.getpwnam("nobody")
        path = os.path.join(self.tmp, "logs", "access.log")
        os.makedirs(os.path.dirname(path))
        # The workers reopen the log by its path: they must reach it.
        os.chmod(self.tmp, 0o755)
        os.chmod(os.path.dirname(path), 0o755)
        d = self.start_workers(2, config={"user": "nobody", "access_log": path})

        def ids(pid):
            with open("/proc/%d/status" % pid) as f:
                return [line.split()[1:] for line in f if line.startswith(("Uid:", "Gid:"))]
        want = [[str(nobody.pw_uid)] * 4, [str(nobody.pw_gid)] * 4]
        for pid in harness.workers_of(d.pid):
            # A worker names itself just before it drops privileges: the
            # name alone does not say it is done (seen under ASan).
            harness.wait_for(lambda: ids(pid) == want, timeout=5,
                             what="worker %d running as nobody" % pid)
        with open("/proc/%d/status" % d.pid) as f:
            self.assertIn("Uid:\t0\t", f.read())
        # The master (root) creates the log for the workers; after a
        # rotation they can reopen it.
        self.assert_serves(d)
        os.rename(path, path + ".1")
        d.proc.signal(signal.SIGUSR1)
        harness.wait_for(lambda: os.path.exists(path), timeout=5, what="a new access log")
        self.assertEqual(os.stat(path).st_uid, nobody.pw_uid)
        time.sleep(0.2)
        for _ in range(4):
            self.assert_serves(d)
        harness.wait_for(lambda: open(path).read().count("/ping") == 4, timeout=5,
                         what="four lines in the new access log")
        self.assertNotIn("cannot", d.log())

    # -- start-up --------------------------------------------------------
    def test_config_check_flag(self):
        path = self.write_config({"function_name": "f", "listen": "127.0.0.1:%d" % harness.free_port()})
        rc, out = self.run_daemon(["-c", path, "-t"])
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration %s ok" % path, out)
        bad = self.write_config(text="function_name: f\nworkers: many\n", name="bad.yaml")
        rc, out = self.run_daemon(["-c", bad, "-t"])
        self.assertEqual(rc, 1, out)
        self.assertIn("%s:2: workers:" % bad, out)

    def test_config_error_at_start(self):
        bad = self.write_config(text="function_name: f\nno_such_key: 1\n", name="bad.yaml")
        rc, out = self.run_daemon(["-c", bad])
        self.assertEqual(rc, 1, out)
        self.assertIn("%s:2: no_such_key:" % bad, out)

    def test_address_in_use_at_start(self):
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        path = self.write_config({"function_name": "f", "listen": "127.0.0.1:%d" % port,
                                  "timeouts": {"shutdown": 1}})
        rc, out = self.run_daemon(["-c", path])
        self.assertEqual(rc, 1, out)
        self.assertIn("127.0.0.1:%d" % port, out)
        self.assertIn("in use", out)

    def test_reload_with_busy_address_keeps_running(self):
        d = self.start_workers(1)
        old = harness.workers_of(d.pid)
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.rewrite_config(d, listen=["127.0.0.1:%d" % d.port, "127.0.0.1:%d" % busy.getsockname()[1]],
                            function_name="not-taken")
        d.proc.signal(signal.SIGHUP)
        d.wait_log("reload failed")
        self.assertEqual(harness.workers_of(d.pid), old)
        self.assert_serves(d, self.function_name)

    def test_unconfigured_daemon_starts(self):
        """Without function_name the daemon still starts (the request path
        answers that it is not configured)."""
        d = self.start_workers(2, config={"function_name": None})
        self.assertEqual(len(harness.workers_of(d.pid)), 2)
        self.assertIn("not configured", d.log())

    # -- files -----------------------------------------------------------
    def test_pid_file(self):
        path = os.path.join(self.tmp, "run", "ssm-sign-proxy.pid")
        os.makedirs(os.path.dirname(path))
        d = self.start_workers(1, config={"pid_file": path})
        with open(path) as f:
            self.assertEqual(f.read().strip(), str(d.pid))
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_sigusr1_reopens_access_log(self):
        path = os.path.join(self.tmp, "access.log")
        d = self.start_workers(2, config={"access_log": path})
        r = d.get(TARGET + "/first?token=sekrit")
        self.assertEqual(r.status_code, 200)
        harness.wait_for(lambda: os.path.exists(path) and "/first" in open(path).read(),
                         timeout=5, what="the first access-log line")
        os.rename(path, path + ".1")
        d.proc.signal(signal.SIGUSR1)
        harness.wait_for(lambda: os.path.exists(path), timeout=5, what="a new access log")
        # Every worker has reopened once the log says so (or soon after):
        # send enough requests that both workers write.
        time.sleep(0.2)
        for i in range(6):
            self.assertEqual(d.get(TARGET + "/second/%d" % i).status_code, 200)
        harness.wait_for(lambda: open(path).read().count("/second/") == 6, timeout=5,
                         what="six lines in the new access log")
        with open(path + ".1") as f:
            old = f.read()
        self.assertIn("GET api.example.test /first 200", old)
        self.assertNotIn("/second/", old)
        # The query string (a token, here) never reaches the log.
        self.assertNotIn("sekrit", old)
        self.assertNotIn("token", old)


if __name__ == "__main__":
    harness.main()
