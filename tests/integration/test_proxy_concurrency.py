#!/usr/bin/env python3
"""Many clients at once each get their own answer, a worker serves them
concurrently (it never blocks on one Lambda call), and IPv6 listen
addresses work."""

import socket
import threading
import time

import harness
from daemon_fixture import ProxyTestCase

TARGET = "http://api.example.test"
CLIENTS = 64
DELAY = 0.3


def token_echo(inv):
    """Answer with the caller's token after a short delay, so that all the
    calls overlap."""
    inv.standin._stopping.wait(DELAY)
    token = inv.event["headers"].get("x-token", "")
    return {"statusCode": 200, "headers": {"x-token": token}, "body": "token=" + token}


class ConcurrencyTest(ProxyTestCase):
    def run_clients(self, d, n):
        results = [None] * n
        errors = []

        def client(i):
            try:
                with d.connect(timeout=10) as c:
                    results[i] = c.request("GET %s/c/%d HTTP/1.1\r\nHost: api.example.test\r\nX-Token: t%d\r\n\r\n"
                                           % (TARGET, i, i))
            except Exception as e:  # collected and reported below
                errors.append("client %d: %r" % (i, e))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join(20)
        elapsed = time.monotonic() - t
        self.assertEqual(errors, [])
        for i, r in enumerate(results):
            self.assertIsNotNone(r, "client %d got nothing" % i)
            self.assertEqual(r.status, 200, "client %d: %r" % (i, r))
            self.assertEqual(r.body, b"token=t%d" % i, "client %d got another's answer" % i)
            self.assertEqual(r.header("X-Token"), "t%d" % i)
        return elapsed

    def test_64_clients_one_worker(self):
        """One worker, 64 clients whose calls each take 0.3 s: served at
        once, not one after another (that would take 19 s)."""
        d = self.start_daemon({"workers": 1, "limits": {"max_inflight": 256, "max_connections": 512}})
        self.lam.handler = token_echo
        elapsed = self.run_clients(d, CLIENTS)
        self.assertEqual(self.lam.count(), CLIENTS)
        self.assertLess(elapsed, 6.0, "64 overlapping calls took %.1fs" % elapsed)
        paths = sorted(inv.event["path"] for inv in self.lam.invocations)
        self.assertEqual(paths, sorted("/c/%d" % i for i in range(CLIENTS)))

    def test_64_clients_two_workers(self):
        """The same with the default limits: they must allow 64 at once."""
        d = self.start_daemon({"workers": 2})
        self.lam.handler = token_echo
        self.run_clients(d, CLIENTS)
        self.assertEqual(self.lam.count(), CLIENTS)


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class IPv6Test(ProxyTestCase):
    def setUp(self):
        super().setUp()
        if not have_ipv6():
            self.skipTest("no IPv6 loopback (::1) on this machine")

    def test_ipv6_listen(self):
        d = self.start_daemon(host="::1")
        self.assertEqual(d.proxy_url, "http://[::1]:%d" % d.port)
        r = d.raw("GET %s/six HTTP/1.1\r\nHost: api.example.test\r\n\r\n" % TARGET)
        self.assertEqual(r.status, 200, r)
        ev = self.lam.last().event
        self.assertEqual(ev["path"], "/six")
        self.assertEqual(ev["headers"]["x-forwarded-for"], "::1")
        r = d.curl(TARGET + "/six-curl")
        self.assertEqual(r.status, 200, r)

    def test_ipv4_and_ipv6_together(self):
        p4, p6 = harness.free_port(), harness.free_port("::1")
        d = self.start_daemon({"listen": ["127.0.0.1:%d" % p4, "[::1]:%d" % p6]}, port=p4)
        harness.wait_port(p6, host="::1", proc=d.proc)
        for url in ("http://127.0.0.1:%d" % p4, "http://[::1]:%d" % p6):
            r = d.session().get(TARGET + "/both", proxies={"http": url}, timeout=5)
            self.assertEqual(r.status_code, 200, url)
        self.assertEqual(self.lam.count(), 2)


if __name__ == "__main__":
    harness.main()
