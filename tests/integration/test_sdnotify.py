"""Readiness notification (sd_notify protocol): what systemd's Type=notify
and start-stop-daemon --notify-await (the init script) wait for."""

import os
import signal
import socket

import daemon_fixture
import harness


class SdNotify(daemon_fixture.ProxyTestCase):
    def notify_socket(self):
        path = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(10)
        self.addCleanup(s.close)
        return s, path

    def recv(self, s):
        """The next state change; STATUS= lines (readiness, in words) are
        the admin watch's and are skipped here."""
        while True:
            m = s.recv(4096).decode()
            if not m.startswith("STATUS="):
                return m

    def test_ready_reloading_stopping(self):
        s, path = self.notify_socket()
        d = self.start_daemon(env={"NOTIFY_SOCKET": path}, wait=False)
        self.assertEqual(self.recv(s), "READY=1")
        # READY comes after the sockets are bound: a request works at once.
        self.assertEqual(d.get("http://api.example.test/").status_code, 200)

        d.proc.signal(signal.SIGHUP)
        self.assertEqual(self.recv(s), "RELOADING=1")
        self.assertEqual(self.recv(s), "READY=1")

        # A broken config: the reload is refused, the daemon is ready again.
        with open(d.config_path, "a") as f:
            f.write("no_such_key: 1\n")
        d.proc.signal(signal.SIGHUP)
        self.assertEqual(self.recv(s), "RELOADING=1")
        self.assertEqual(self.recv(s), "READY=1")

        d.proc.signal(signal.SIGTERM)
        self.assertEqual(self.recv(s), "STOPPING=1")
        self.assertEqual(d.proc.wait(10), 0)

    def test_upgrade_names_the_new_main_pid(self):
        """A binary upgrade (SIGURG): the new master tells systemd its pid
        and that it is ready, once its workers are; the old master then
        exits without STOPPING=1 (the service is not stopping)."""
        s, path = self.notify_socket()
        d = self.start_daemon(env={"NOTIFY_SOCKET": path}, wait=False)
        self.assertEqual(self.recv(s), "READY=1")
        harness.wait_port(d.port)
        d.proc.signal(signal.SIGURG)
        msg = self.recv(s)
        self.assertRegex(msg, r"^MAINPID=\d+\nREADY=1$")
        new = int(msg.split("\n")[0].split("=")[1])
        self.assertNotEqual(new, d.pid)
        self.assertEqual(d.proc.wait(10), 0, d.log())
        self.assertEqual(d.get("http://api.example.test/").status_code, 200)
        # Nothing from the old master on its way out.
        s.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            self.recv(s)
        s.settimeout(10)
        os.kill(new, signal.SIGTERM)
        self.assertEqual(self.recv(s), "STOPPING=1")

    def test_workers_do_not_notify(self):
        s, path = self.notify_socket()
        d = self.start_daemon(config={"workers": 2}, env={"NOTIFY_SOCKET": path}, wait=False)
        self.assertEqual(self.recv(s), "READY=1")
        harness.wait_port(d.port)
        # Kill a worker: the master respawns it (the new worker is forked
        # with NOTIFY_SOCKET still in its environment) and nothing but the
        # master's READY=1 came on the socket.
        # A worker names itself (ssp-worker) just after the fork, which may
        # be after READY=1: wait for both names.
        workers = harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 2 and harness.workers_of(d.pid),
                                   what="2 named workers")
        os.kill(workers[0], signal.SIGKILL)
        harness.wait_for(lambda: workers[0] not in harness.workers_of(d.pid)
                         and len(harness.workers_of(d.pid)) == 2, what="worker respawned")
        self.assertEqual(d.get("http://api.example.test/").status_code, 200)
        s.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            self.recv(s)

    def test_status_says_readiness(self):
        s, path = self.notify_socket()
        d = self.start_daemon(env={"NOTIFY_SOCKET": path}, wait=False)
        seen = []
        while "STATUS=ready" not in seen:
            seen.append(s.recv(4096).decode())
        self.assertIn("READY=1", seen)

    def test_no_socket_is_fine(self):
        d = self.start_daemon(env={"NOTIFY_SOCKET": os.path.join(self.tmp, "absent.sock")})
        self.assertEqual(d.get("http://api.example.test/").status_code, 200)


if __name__ == "__main__":
    harness.main()
