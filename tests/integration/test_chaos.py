#!/usr/bin/env python3
"""The chaos test of issue 11: the daemon's lifecycle under faults, with
steady load, bounded in time, on loopback only.

Load: eight clients through the daemon to a stand-in Lambda (which answers
20 ms late, so that requests are in flight when something happens):
keep-alive GET, keep-alive POST, a fresh connection per GET, a fresh
connection per POST, two of each. Every request carries a unique path, so
that the access log says which requests the daemon answered. Credentials
come from a stand-in container endpoint and expire every 4 seconds.

1. 50 SIGHUPs cycling through two valid configurations (2 and 3 workers)
   and a broken one (a missing local function command, refused when
   loaded, or, every other time, a function that crashes at once, which
   the reload transaction abandons): zero failed requests.
2. 20 kill -9 of a random worker: the only failed requests are those the
   access log does not have (in flight on the killed worker): the client's
   and the log's counts match; the worker is back within a second.
3. 10 kill -9 of the credentials agent: zero failed requests, and never
   more than one agent alive at any sample (no agent only in the moment
   between a kill and its replacement).
4. 3 binary upgrades (SIGURG): zero refused connections, zero failures.
5. At the end: no zombie, the same descriptors in the master as before,
   no function process left, and the daemon stops cleanly.

The counts are printed (the "chaos:" lines).
"""

import ctypes
import http.client
import json
import os
import random
import re
import signal
import socket
import threading
import time

import creds_standins
import harness
import standin_lambda as sl
from daemon_fixture import ProxyTestCase, merge, to_yaml

HOST = "api.example.test"
CREDS = {"refresh_ahead": 1, "retry": 0.2, "retry_cap": 0.5, "timeout": 0.5,
         "imds_attempts": 1}


alive = harness.alive


def zombies_of(ppid):
    return [p for p, _ in harness.proc_children(ppid, zombies=True)]


def processes_with(text):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd:
            out.append(int(d))
    return out


def fds_of(pid):
    return sorted(os.readlink("/proc/%d/fd/%s" % (pid, fd)) if os.path.exists(
        "/proc/%d/fd/%s" % (pid, fd)) else "?" for fd in os.listdir("/proc/%d/fd" % pid))


def agents_of(pid):
    return [p for p, comm in harness.proc_children(pid) if comm == "ssp-creds"]


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


class Load:
    """The clients. Each request is recorded as (path, phase, outcome):
    outcome "ok", or the failure ("refused" for a refused connection)."""

    def __init__(self, port):
        self.port = port
        self.phase = "warmup"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.threads = []

    def record(self, path, phase, outcome):
        with self.lock:
            self.records.append((path, phase, outcome))

    def one(self, conn, cid, seq, method):
        path = "/chaos/%s/%d" % (cid, seq)
        phase = self.phase
        body = json.dumps({"n": seq}).encode() if method == "POST" else None
        try:
            conn.request(method, "http://%s%s" % (HOST, path), body=body,
                         headers={"Host": HOST, "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status == 200:
                self.record(path, phase, "ok")
            else:
                self.record(path, phase, "status %d: %s" % (r.status, data[:200]))
            return r.getheader("Connection", "").lower() != "close"
        except ConnectionRefusedError:
            self.record(path, phase, "refused")
        except Exception as e:  # noqa: BLE001 - every failure is recorded
            self.record(path, phase, repr(e))
        conn.close()
        return False

    def client(self, cid, method, keepalive):
        seq = 0
        conn = None
        while not self.stop.is_set():
            seq += 1
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            keep = self.one(conn, cid, seq, method)
            if not (keepalive and keep):
                conn.close()
                conn = None
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def start(self):
        kinds = [("ka-get", "GET", True), ("ka-post", "POST", True),
                 ("new-get", "GET", False), ("new-post", "POST", False)]
        for i in range(2):
            for name, method, ka in kinds:
                t = threading.Thread(target=self.client, args=("%s-%d" % (name, i), method, ka),
                                     daemon=True)
                t.start()
                self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def failures(self, phase=None):
        with self.lock:
            return [r for r in self.records if r[2] != "ok" and (phase is None or r[1] == phase)]

    def count(self, phase=None):
        with self.lock:
            return len([r for r in self.records if phase is None or r[1] == phase])


class Chaos(ProxyTestCase):
    def setUp(self):
        super().setUp()
        # An upgraded-away master's successor is reparented to us: we reap it.
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        self.keyring = creds_standins.Keyring()
        creds_standins.keyring_verifier(self.lam, self.keyring)
        self.ecs = creds_standins.EcsStandin(auth="Bearer chaos", keyring=self.keyring)
        self.ecs.lifetime = 4
        self.ecs.start()
        self.addCleanup(self.ecs.stop)
        self.lam.handler = sl.delay(0.02, sl.echo)

    def config(self, variant):
        cfg = {
            "workers": 2,
            "log_level": "info",
            "access_log": self.access_log,
            "pid_file": self.pid_file,
            "credentials": dict(CREDS),
            "retry": {"respawn": 0.1, "respawn_cap": 0.4},
            "timeouts": {"start": 2, "shutdown": 3, "keepalive": 5, "invoke": 5,
                         "client_header": 5, "client_body": 5},
        }
        if variant == "b":
            cfg["workers"] = 3
        elif variant == "missing":
            cfg["function_name"] = None
            cfg["local_function"] = {"command": os.path.join(self.tmp, "no-such-function")}
        elif variant == "crash":
            cfg["function_name"] = None
            cfg["local_function"] = {"command": self.crash_fn, "concurrency": 1}
            cfg["timeouts"]["start"] = 1
        return cfg

    def write(self, d, variant):
        d.config = merge(self.base, self.config(variant))
        with open(d.config_path, "w") as f:
            f.write(to_yaml(d.config))

    def log_outcomes(self, d):
        log = d.log()
        return sum(log.count(s) for s in ("configuration reloaded", "reload failed",
                                          "reload abandoned"))

    def test_chaos(self):
        t_start = time.monotonic()
        self.access_log = os.path.join(self.tmp, "access.log")
        self.pid_file = os.path.join(self.tmp, "ssp.pid")
        self.crash_fn = os.path.join(self.tmp, "chaos-crash-fn")
        with open(self.crash_fn, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(self.crash_fn, 0o755)
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.ecs.url + "/creds",
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer chaos"}
        d = self.start_daemon(config=self.config("a"), env=env, credentials=False)
        self.base = dict(d.config)
        master = d.pid
        harness.wait_for(lambda: len(harness.workers_of(master)) == 2, what="2 workers")
        harness.wait_for(lambda: len(agents_of(master)) == 1, what="the agent")
        load = Load(d.port)
        load.start()
        harness.wait_for(lambda: load.count() > 20 and not load.failures(), timeout=10,
                         what="the load to run")
        fds_before = fds_of(master)
        report = {}

        # 1. 50 reloads.
        load.phase = "reload"
        variants = []
        for i in range(50):
            if i % 3 == 2:
                v = "missing" if (i // 3) % 2 == 0 else "crash"
            else:
                v = "a" if i % 3 == 0 else "b"
            variants.append(v)
            n = self.log_outcomes(d)
            self.write(d, v)
            os.kill(master, signal.SIGHUP)
            harness.wait_for(lambda: self.log_outcomes(d) > n, timeout=15,
                             what="reload %d (%s) to end" % (i + 1, v))
        log = d.log()
        report["reloads"] = {"sent": 50, "committed": log.count("configuration reloaded"),
                             "refused at load": log.count("reload failed"),
                             "abandoned": log.count("reload abandoned"),
                             "requests": load.count("reload"),
                             "failed": len(load.failures("reload"))}
        self.assertEqual(load.failures("reload"), [])
        self.assertEqual(report["reloads"]["committed"], variants.count("a") + variants.count("b"))
        self.assertEqual(report["reloads"]["refused at load"], variants.count("missing"))
        self.assertEqual(report["reloads"]["abandoned"], variants.count("crash"))
        self.assertEqual(processes_with("chaos-crash-fn"), [])
        # The last one written was valid ("b", 3 workers) or broken (then the
        # one before it runs): settle on "a" for what follows.
        load.phase = "settle"
        n = self.log_outcomes(d)
        self.write(d, "a")
        os.kill(master, signal.SIGHUP)
        harness.wait_for(lambda: self.log_outcomes(d) > n, timeout=15, what="the last reload")
        harness.wait_for(lambda: len(harness.workers_of(master)) == 2, timeout=10,
                         what="2 workers after the reloads")

        # 2. 20 kill -9 of a random worker. (Requests of the previous phase
        # still in flight finish first: they must not fail.)
        load.phase = "kill-worker"
        time.sleep(0.5)
        back = []
        rnd = random.Random(11)
        for i in range(20):
            workers = harness.workers_of(master)
            victim = rnd.choice(workers)
            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)

            def replaced():
                now = harness.workers_of(master)
                return len(now) == 2 and victim not in now and all(alive(p) for p in now)

            harness.wait_for(replaced, timeout=5, interval=0.005,
                             what="worker %d replaced" % victim)
            back.append(time.monotonic() - t0)
            time.sleep(0.8)
        # Requests in flight on a killed worker never reach the access log.
        # The phase's requests as the clients saw them first (a worker logs
        # a request before the client can have the answer), then the log.
        load.phase = "agent"
        time.sleep(1.0)
        with load.lock:
            phase2 = [r for r in load.records if r[1] == "kill-worker"]
        with open(self.access_log) as f:
            logged = set(re.findall(r" (/chaos/[^ ]+) ", f.read()))
        failed = {r[0] for r in phase2 if r[2] != "ok"}
        unlogged = {r[0] for r in phase2 if r[0] not in logged}
        report["worker kills"] = {"kills": 20, "requests": len(phase2),
                                  "failed (client)": len(failed),
                                  "missing from the access log": len(unlogged),
                                  "slowest replacement s": round(max(back), 3)}
        # SIGKILL can land between the answer's write(2) and the access
        # log's: that request reached its client and has no line. The other
        # way round cannot happen (the line is written after the answer), so
        # every client failure must be missing from the log, and the log may
        # miss at most one answered request per kill.
        self.assertLessEqual(failed, unlogged, "a failed request has an access-log line")
        report["worker kills"]["answered in the instant of a kill"] = len(unlogged - failed)
        self.assertLessEqual(len(unlogged - failed), 20,
                             "answered requests missing from the access log: %s" %
                             sorted(unlogged - failed))
        self.assertLess(max(back), 1.0, "a worker took %.2fs to come back" % max(back))

        # 3. 10 kill -9 of the credentials agent, credentials expiring every 4 s.
        samples, kills = [], []
        sampling = threading.Event()

        def sampler():
            while not sampling.is_set():
                n = len(agents_of(master))
                # Stamped after the look: a kill during it counts as before.
                samples.append((time.monotonic(), n))
                time.sleep(0.01)

        st = threading.Thread(target=sampler, daemon=True)
        st.start()
        fetches_before = self.ecs.count()
        for i in range(10):
            harness.wait_for(lambda: len(agents_of(master)) == 1, timeout=5, what="one agent")
            # An agent that lived over 2 s is replaced at once (no back-off).
            time.sleep(2.2)
            victim = agents_of(master)[0]
            kills.append(time.monotonic())
            os.kill(victim, signal.SIGKILL)
            harness.wait_for(lambda: agents_of(master) and victim not in agents_of(master),
                             timeout=5, what="agent %d replaced" % victim)
        time.sleep(1.0)
        sampling.set()
        st.join()

        def after_kill(t):
            return any(0 <= t - k < 0.5 for k in kills)

        two = [s for s in samples if s[1] > 1]
        none_late = [s for s in samples if s[1] == 0 and not after_kill(s[0])]
        report["agent kills"] = {"kills": 10, "requests": load.count("agent"),
                                 "failed": len(load.failures("agent")),
                                 "samples": len(samples),
                                 "samples with one agent": len([s for s in samples if s[1] == 1]),
                                 "samples with none (just after a kill)":
                                     len([s for s in samples if s[1] == 0]),
                                 "samples with two or more": len(two),
                                 "credential fetches": self.ecs.count() - fetches_before}
        self.assertEqual(load.failures("agent"), [])
        self.assertEqual(two, [])
        self.assertEqual(none_late, [])
        fds_after = fds_of(master)
        self.assertEqual(zombies_of(master), [])

        # 4. 3 binary upgrades.
        load.phase = "upgrade"
        masters = [master]
        for i in range(3):
            old = masters[-1]
            os.kill(old, signal.SIGURG)
            harness.wait_for(lambda: read_pid(self.pid_file) not in (0, old), timeout=15,
                             what="upgrade %d: the new master's pid file" % (i + 1))
            new = read_pid(self.pid_file)
            masters.append(new)
            if old == d.pid:
                self.assertEqual(d.proc.wait(15), 0, d.log()[-3000:])
            else:
                harness.wait_for(lambda: os.waitpid(old, os.WNOHANG)[0] == old, timeout=15,
                                 what="upgrade %d: the old master to exit" % (i + 1))
            harness.wait_for(lambda: len(harness.workers_of(new)) == 2, timeout=10,
                             what="the new master's workers")
            time.sleep(0.5)
        load.phase = "end"
        time.sleep(0.3)
        load.finish()
        final = masters[-1]
        refused = [r for r in load.records if r[2] == "refused"]
        report["upgrades"] = {"upgrades": 3, "requests": load.count("upgrade"),
                              "failed": len(load.failures("upgrade")),
                              "refused connections (whole run)": len(refused)}
        self.assertEqual(load.failures("upgrade"), [])
        self.assertEqual(refused, [])

        # 5. The end state.
        self.assertEqual(fds_before, fds_after, "the master's descriptors")
        self.assertEqual(len(fds_of(final)), len(fds_before),
                         "the upgraded master's descriptors: %s vs %s"
                         % (fds_of(final), fds_before))
        self.assertEqual(zombies_of(final), [])
        self.assertEqual(len(agents_of(final)), 1)
        workers = harness.workers_of(final)
        os.kill(final, signal.SIGTERM)
        harness.wait_for(lambda: os.waitpid(final, os.WNOHANG)[0] == final, timeout=15,
                         what="the last master to stop")
        harness.wait_for(lambda: not any(alive(p) for p in workers), timeout=5,
                         what="its workers to exit")
        self.assertEqual(zombies_of(os.getpid()), [])
        self.assertEqual(processes_with("chaos-crash-fn"), [])
        self.assertFalse(os.path.exists(self.pid_file))
        report["total"] = {"requests": load.count(), "failed": len(load.failures()),
                           "seconds": round(time.monotonic() - t_start, 1),
                           "fds in the master": len(fds_before)}
        unexpected = [r for r in load.failures() if r[1] != "kill-worker"]
        self.assertEqual(unexpected, [])
        for k, v in report.items():
            print("chaos: %s: %s" % (k, json.dumps(v)), flush=True)


if __name__ == "__main__":
    harness.main()
