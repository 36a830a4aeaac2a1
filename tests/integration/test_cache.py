#!/usr/bin/env python3
"""The response cache through the real daemon: one cache for all workers
(hits on other workers than the one that stored, fresh connections spread
over workers: 4), TTL and max-age expiry, what is not stored (no-store,
private, Set-Cookie, Authorization, POST), Vary, the 407 negative cache,
request collapsing (N concurrent identical misses make one invocation, also
across workers; a fill that is not storable lets the waiters go at once),
the memory bound under a flood of distinct URLs, a reload keeping the cache
and a size change dropping it, and cache.ttl: 0 storing nothing.

The stand-in Lambda counts invocations; the daemon's debug log says which
process stored or served an entry ("ssm-sign-proxy[PID] ... cache: hit")."""

import os
import re
import signal
import threading
import time

import harness
from daemon_fixture import ProxyTestCase

HOST = "api.example.test"


alive = harness.alive


class Counter:
    """A stand-in behaviour answering "n=<call number>" with the given
    headers, after an optional delay (so that concurrent calls overlap)."""

    def __init__(self, status=200, headers=None, delay=0.0, by_header=None):
        self.n = 0
        self.lock = threading.Lock()
        self.status = status
        self.headers = dict(headers or {})
        self.delay = delay
        self.by_header = by_header

    def __call__(self, inv):
        with self.lock:
            self.n += 1
            n = self.n
        if self.delay:
            inv.standin._stopping.wait(self.delay)
        body = "n=%d" % n
        if self.by_header:
            body += " %s=%s" % (self.by_header, inv.event["headers"].get(self.by_header.lower(), ""))
        return {"statusCode": self.status, "headers": dict(self.headers), "body": body,
                "isBase64Encoded": False}


class CacheTest(ProxyTestCase):
    def start_cached(self, cache=None, **kw):
        cfg = {"cache": {"ttl": 0, "negative_ttl": 10, "lock_timeout": 2,
                         "hosts": {HOST: 60}}}
        if cache is not None:
            cfg["cache"].update(cache)
        cfg.update(kw)
        return self.start_daemon(cfg)

    def get(self, d, path, headers=(), method="GET", host=HOST, body=None):
        """One request on a fresh connection (so that it may land on any
        worker)."""
        extra = "".join("%s: %s\r\n" % h for h in headers)
        if body is not None:
            extra += "Content-Length: %d\r\n" % len(body)
        req = "%s http://%s%s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n%s" % (
            method, host, path, host, extra, body or "")
        return d.raw(req, timeout=5)

    def concurrently(self, fn, n):
        results = [None] * n
        errors = []

        def run(i):
            try:
                results[i] = fn(i)
            except Exception as e:  # reported below
                errors.append("%d: %r" % (i, e))
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(errors, [])
        return results

    def pids(self, d, what):
        """PIDs of the processes that logged "cache: WHAT"."""
        return [int(p) for p in re.findall(r"ssm-sign-proxy\[(\d+)\] \[worker \d+\] debug: cache: %s"
                                           % re.escape(what), d.log())]

    def stats(self, d):
        n = d.log().count("cache: hits ")
        d.proc.signal(signal.SIGUSR2)
        harness.wait_for(lambda: d.log().count("cache: hits ") > n, timeout=5, what="the stats line")
        line = [l for l in d.log().splitlines() if "cache: hits " in l][-1]
        return {k: int(v) for k, v in re.findall(r"([a-z-]+) (\d+)", line.split("cache: ", 1)[1])}

    # -- one cache for every worker --------------------------------------
    def test_hits_across_workers(self):
        d = self.start_cached(workers=4)
        self.lam.handler = Counter(headers={"content-type": "text/plain", "x-origin": "yes"})
        r = self.get(d, "/shared?page=1")
        self.assertEqual((r.status, r.text), (200, "n=1"))
        self.assertEqual(r.header("Cache-Status"), "ssm-sign-proxy; fwd=uri-miss; stored")
        self.assertIsNone(r.header("Age"))
        # 80 fresh connections, 8 at a time: every one a hit.
        for _ in range(10):
            res = self.concurrently(lambda i: self.get(d, "/shared?page=1"), 8)
            for r in res:
                self.assertEqual((r.status, r.text), (200, "n=1"), r)
                self.assertRegex(r.header("Cache-Status"), r"^ssm-sign-proxy; hit; ttl=\d+$")
                self.assertRegex(r.header("Age"), r"^\d+$")
                self.assertEqual(r.header("X-Origin"), "yes")
                self.assertEqual(r.header("Content-Type"), "text/plain")
        self.assertEqual(self.lam.count(), 1)
        stored_by = set(self.pids(d, "stored GET %s/shared" % HOST))
        hit_by = set(self.pids(d, "hit GET %s/shared" % HOST))
        self.assertEqual(len(stored_by), 1)
        # Fresh connections spread over the workers, and the workers that
        # did not store the entry serve it too.
        self.assertGreaterEqual(len(hit_by), 2, "hits all served by %s" % hit_by)
        self.assertTrue(hit_by - stored_by, "no hit on another worker than %s" % stored_by)
        # The access log says hit or miss. A worker writes the line after
        # the answer went out: wait for all 81.
        def shared_lines():
            return [l for l in d.log().splitlines() if " GET %s /shared " % HOST in l]
        harness.wait_for(lambda: len(shared_lines()) >= 81, timeout=10, what="81 access-log lines")
        lines = shared_lines()
        # ... CACHE ID: the cache status is the next to last field (accesslog.h).
        self.assertEqual(sum(1 for l in lines if l.split()[-2] == "MISS"), 1, lines[:3])
        self.assertEqual(sum(1 for l in lines if l.split()[-2] == "HIT"), 80)
        st = self.stats(d)
        self.assertEqual((st["hits"], st["misses"], st["stores"], st["entries"]), (80, 1, 1, 1))

    def test_query_and_method_are_keys(self):
        d = self.start_cached()
        self.lam.handler = Counter()
        self.assertEqual(self.get(d, "/q?a=1").text, "n=1")
        self.assertEqual(self.get(d, "/q?a=2").text, "n=2")
        self.assertEqual(self.get(d, "/q").text, "n=3")
        self.assertEqual(self.get(d, "/q?a=1").text, "n=1")
        r = self.get(d, "/q?a=1", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.lam.count(), 4)
        r = self.get(d, "/q?a=1", method="HEAD")
        self.assertIn("hit", r.header("Cache-Status"))
        self.assertEqual(r.body, b"")
        self.assertEqual(self.lam.count(), 4)
        # Another host without a TTL: nothing stored, no Cache-Status.
        r1 = self.get(d, "/q", host="other.example.test")
        r2 = self.get(d, "/q", host="other.example.test")
        self.assertEqual((r1.text, r2.text), ("n=5", "n=6"))
        self.assertIsNone(r2.header("Cache-Status"))

    # -- freshness ---------------------------------------------------------
    def test_ttl_expiry(self):
        d = self.start_cached(cache={"hosts": {HOST: 1}})
        self.lam.handler = Counter()
        self.assertEqual(self.get(d, "/t").text, "n=1")
        self.assertEqual(self.get(d, "/t").text, "n=1")
        time.sleep(1.2)
        r = self.get(d, "/t")
        self.assertEqual(r.text, "n=2")
        self.assertIn("fwd=uri-miss", r.header("Cache-Status"))
        self.assertEqual(self.lam.count(), 2)

    def test_max_age_below_host_ttl(self):
        d = self.start_cached()
        self.lam.handler = Counter(headers={"cache-control": "public, max-age=1"})
        self.assertEqual(self.get(d, "/m").text, "n=1")
        r = self.get(d, "/m")
        self.assertEqual(r.text, "n=1")
        self.assertRegex(r.header("Cache-Status"), r"hit; ttl=[01]$")
        time.sleep(1.2)
        self.assertEqual(self.get(d, "/m").text, "n=2")

    # -- what is not stored --------------------------------------------------
    def assert_not_stored(self, d, path, headers=(), detail=None):
        before = self.lam.count()
        r1 = self.get(d, path, headers)
        r2 = self.get(d, path, headers)
        self.assertEqual(self.lam.count(), before + 2, "%s was served from the cache" % path)
        self.assertNotEqual(r1.text, r2.text)
        if detail is not None:
            self.assertEqual(r2.header("Cache-Status"), "ssm-sign-proxy; fwd=uri-miss; detail=" + detail)
        return r2

    def assert_stored(self, d, path, headers=()):
        before = self.lam.count()
        r1 = self.get(d, path, headers)
        r2 = self.get(d, path, headers)
        self.assertEqual(self.lam.count(), before + 1, "%s was not stored" % path)
        self.assertEqual(r1.text, r2.text)
        self.assertIn("hit", r2.header("Cache-Status"))

    def test_not_stored(self):
        d = self.start_cached(cache={"hosts": {HOST: 60,
                                               "optin.example.test": {"ttl": 60, "private": True,
                                                                      "cookies": True}}})
        c = Counter()
        self.lam.handler = c
        c.headers = {"cache-control": "no-store"}
        self.assert_not_stored(d, "/no-store", detail="no-store")
        c.headers = {"cache-control": "no-cache"}
        self.assert_not_stored(d, "/no-cache", detail="no-cache")
        c.headers = {"cache-control": "private, max-age=60"}
        self.assert_not_stored(d, "/private", detail="private")
        c.headers = {"set-cookie": "session=1"}
        self.assert_not_stored(d, "/cookie", detail="set-cookie")
        c.headers = {"vary": "*"}
        self.assert_not_stored(d, "/vary-star")
        c.headers = {}
        c.status = 500
        self.assert_not_stored(d, "/error", detail="status")
        c.status = 302
        self.assert_not_stored(d, "/redirect", detail="status")
        c.status = 200
        # The request carried credentials of its own: not stored, not served.
        self.assert_not_stored(d, "/auth", headers=[("Authorization", "token x")])
        self.assert_stored(d, "/auth")
        r = self.get(d, "/auth", headers=[("Authorization", "token x")])
        self.assertIsNone(r.header("Cache-Status"))
        # The opt-ins.
        c.headers = {"cache-control": "private"}
        d_host = "optin.example.test"
        n = self.lam.count()
        r1 = self.get(d, "/p", host=d_host)
        r2 = self.get(d, "/p", host=d_host)
        self.assertEqual((self.lam.count(), r1.text), (n + 1, r2.text))
        c.headers = {"set-cookie": "a=b"}
        r1 = self.get(d, "/c", host=d_host)
        r2 = self.get(d, "/c", host=d_host)
        self.assertEqual((self.lam.count(), r1.text), (n + 2, r2.text))
        self.assertEqual(r2.header("Set-Cookie"), "a=b")
        # 404 is heuristically cacheable.
        c.headers = {}
        c.status = 404
        self.assert_stored(d, "/missing")

    def test_vary(self):
        d = self.start_cached()
        self.lam.handler = Counter(headers={"vary": "Accept-Language"}, by_header="Accept-Language")
        en = [("Accept-Language", "en")]
        fr = [("Accept-Language", "fr")]
        self.assertEqual(self.get(d, "/v", en).text, "n=1 Accept-Language=en")
        self.assertEqual(self.get(d, "/v", fr).text, "n=2 Accept-Language=fr")
        self.assertEqual(self.get(d, "/v", en).text, "n=1 Accept-Language=en")
        self.assertEqual(self.get(d, "/v", fr).text, "n=2 Accept-Language=fr")
        self.assertEqual(self.get(d, "/v").text, "n=3 Accept-Language=")
        self.assertEqual(self.get(d, "/v", [("Accept-Language", "de")]).text, "n=4 Accept-Language=de")
        self.assertEqual(self.lam.count(), 4)

    def test_negative_407(self):
        d = self.start_cached(cache={"hosts": {}, "negative_ttl": 1})
        self.lam.handler = Counter(status=407, headers={"proxy-authenticate": "Basic realm=x"})
        r1 = self.get(d, "/a", host="unconfigured.example.test")
        r2 = self.get(d, "/b?x=1", host="unconfigured.example.test")
        self.assertEqual((r1.status, r2.status), (407, 407))
        self.assertEqual(r2.text, "n=1")
        self.assertEqual(r2.header("Proxy-Authenticate"), "Basic realm=x")
        self.assertIn("hit", r2.header("Cache-Status"))
        self.assertEqual(self.lam.count(), 1)
        # Another host is another entry; the entry expires after negative_ttl.
        self.assertEqual(self.get(d, "/a", host="other.example.test").text, "n=2")
        time.sleep(1.2)
        self.assertEqual(self.get(d, "/a", host="unconfigured.example.test").text, "n=3")

    def test_ttl_zero_stores_nothing(self):
        d = self.start_daemon({"workers": 2, "cache": {"ttl": 0, "negative_ttl": 0}})
        self.lam.handler = Counter(headers={"cache-control": "max-age=60"})
        texts = [self.get(d, "/z").text for _ in range(4)]
        self.assertEqual(texts, ["n=1", "n=2", "n=3", "n=4"])
        self.assertIsNone(self.get(d, "/z").header("Cache-Status"))
        # Neither do 407s with negative_ttl: 0.
        self.lam.handler = Counter(status=407)
        self.get(d, "/n")
        self.get(d, "/n")
        self.assertEqual(self.lam.count(), 7)
        self.assertIn("cache: off", self.stats_line(d))

    def stats_line(self, d):
        n = d.log().count("cache: ")
        d.proc.signal(signal.SIGUSR2)
        harness.wait_for(lambda: d.log().count("cache: ") > n, timeout=5, what="the stats line")
        return [l for l in d.log().splitlines() if "] info: cache: " in l][-1]

    def test_default_ttl_for_every_host(self):
        d = self.start_cached(cache={"ttl": 60, "hosts": {"nocache.example.test": 0}})
        self.lam.handler = Counter()
        self.assert_stored(d, "/d")
        n = self.lam.count()
        self.get(d, "/d", host="nocache.example.test")
        self.get(d, "/d", host="nocache.example.test")
        self.assertEqual(self.lam.count(), n + 2)

    # -- POST and collapsing -------------------------------------------------
    def test_post_not_cached_nor_collapsed(self):
        d = self.start_cached(workers=2)
        self.lam.handler = Counter(headers={"cache-control": "max-age=60"}, delay=0.5)
        t = time.monotonic()
        res = self.concurrently(lambda i: self.get(d, "/hook", method="POST", body="x"), 6)
        elapsed = time.monotonic() - t
        self.assertEqual(sorted(r.text for r in res), ["n=%d" % i for i in range(1, 7)])
        self.assertEqual(self.lam.count(), 6)
        self.assertLess(elapsed, 2.0, "POSTs waited for each other (%.1fs)" % elapsed)
        r = self.get(d, "/hook", method="POST", body="x")
        self.assertEqual(r.text, "n=7")
        self.assertIsNone(r.header("Cache-Status"))
        # A GET of the same URL is not answered with a POST's response.
        self.assertEqual(self.get(d, "/hook").text, "n=8")

    def test_unsafe_methods_invalidate(self):
        d = self.start_cached()
        c = Counter()
        self.lam.handler = c
        self.assertEqual(self.get(d, "/doc?v=1").text, "n=1")
        self.assertEqual(self.get(d, "/doc?v=1").text, "n=1")
        self.assertEqual(self.get(d, "/other").text, "n=2")
        # A failed write changes nothing.
        c.status = 500
        self.get(d, "/doc?v=1", method="POST", body="x")
        c.status = 200
        self.assertEqual(self.get(d, "/doc?v=1").text, "n=1")
        # A successful one: the URL is read again.
        self.get(d, "/doc?v=1", method="POST", body="x")
        self.assertEqual(self.get(d, "/doc?v=1").text, "n=5")
        # PUT elsewhere, naming /other in Location: both invalidated.
        c.headers = {"location": "http://%s/other" % HOST}
        self.get(d, "/elsewhere", method="PUT", body="y")
        c.headers = {}
        self.assertEqual(self.get(d, "/other").text, "n=7")
        self.assertEqual(self.get(d, "/doc?v=1").text, "n=5")

    def test_collapsing_across_workers(self):
        d = self.start_cached(workers=4)
        c = Counter(delay=0.6)
        self.lam.handler = c
        # Which worker accepts a connection is the kernel's choice: rounds
        # (each a new URL) until waiters sat in another worker than the
        # filler; every round must make exactly one invocation.
        for k in range(6):
            before = self.lam.count()
            path = "/slow/%d" % k
            res = self.concurrently(lambda i: self.get(d, path), 16)
            texts = {r.text for r in res}
            self.assertEqual(len(texts), 1, texts)
            self.assertEqual(self.lam.count(), before + 1, "round %d: %d invocations"
                             % (k, self.lam.count() - before))
            what = "GET %s%s" % (HOST, path)
            waited = set(self.pids(d, "waiting for another request's fill of " + what))
            stored = set(self.pids(d, "stored " + what))
            self.assertEqual(len(stored), 1)
            self.assertGreaterEqual(len(self.pids(d, "hit %s (collapsed)" % what)), 1)
            if waited - stored:
                break
        else:
            self.fail("in 6 rounds no request waited in another worker than the filler")

    def test_unstorable_fill_releases_waiters(self):
        """A fill whose answer cannot be stored lets the waiters go at once
        (together), not one after another nor after lock_timeout."""
        d = self.start_cached(workers=2, cache={"lock_timeout": 2})
        self.lam.handler = Counter(headers={"cache-control": "no-store"}, delay=0.5)
        t = time.monotonic()
        res = self.concurrently(lambda i: self.get(d, "/nostore"), 8)
        elapsed = time.monotonic() - t
        self.assertEqual(sorted(r.text for r in res), sorted("n=%d" % i for i in range(1, 9)))
        self.assertLess(elapsed, 1.8, "waiters were not released together (%.1fs)" % elapsed)

    def test_dead_filler_releases_waiters(self):
        """The worker filling a key is killed: waiters in the other worker
        go to Lambda at once, not after lock_timeout."""
        d = self.start_cached(workers=2, cache={"lock_timeout": 2},
                              retry={"respawn": 0.05, "respawn_cap": 0.1})
        self.lam.handler = Counter(delay=0.6)
        for k in range(8):
            # The worker killed in the round before is back.
            harness.wait_for(lambda: len(harness.workers_of(d.pid)) == 2, timeout=5, what="2 workers")
            path = "/dies/%d" % k
            what = "GET %s%s" % (HOST, path)
            done = []
            t0 = time.monotonic()

            def client(i):
                try:
                    r = self.get(d, path)
                    done.append((r.status, time.monotonic() - t0))
                except (OSError, EOFError):
                    pass  # on the killed worker
            threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
            for t in threads:
                t.start()
            harness.wait_for(lambda: self.pids(d, "filling " + what), timeout=2,
                             what="a filler for " + path)
            filler = self.pids(d, "filling " + what)[0]
            # Give the others time to reach the daemon and wait.
            time.sleep(0.15)
            os.kill(filler, signal.SIGKILL)
            for t in threads:
                t.join(10)
            waiters = set(self.pids(d, "waiting for another request's fill of " + what)) - {filler}
            if not waiters:
                continue  # every request landed on the killed worker: again
            self.assertTrue(done, "no waiter was answered")
            for status, t in done:
                self.assertEqual(status, 200)
                self.assertLess(t, 1.7, "a waiter was answered after %.2fs: it waited for "
                                "the dead filler's lock_timeout" % t)
            return
        self.fail("in 8 rounds no request waited in the other worker")

    def test_lock_timeout(self):
        """The filler is slower than lock_timeout: the waiters go to Lambda
        themselves after it."""
        d = self.start_cached(cache={"lock_timeout": 0.3})
        self.lam.handler = Counter(delay=1.0)
        t = time.monotonic()
        res = self.concurrently(lambda i: self.get(d, "/stuck"), 3)
        elapsed = time.monotonic() - t
        self.assertEqual(self.lam.count(), 3)
        self.assertLess(elapsed, 1.9)
        self.assertEqual(len(res), 3)

    # -- memory bound, reload --------------------------------------------------
    def test_memory_bound(self):
        size = 256 * 1024
        d = self.start_cached(workers=2, cache={"max_size": "256K"})
        self.lam.handler = lambda inv: {"statusCode": 200, "body": "x" * 2000 + inv.event["path"]}
        for batch in range(30):
            self.concurrently(lambda i: self.get(d, "/flood/%d/%d" % (batch, i)), 10)
        st = self.stats(d)
        self.assertEqual(st["stores"], 300)
        self.assertLessEqual(st["bytes"], size)
        self.assertGreater(st["evictions"], 100)
        self.assertEqual(st["size"], size)
        # The newest are there, the oldest gone.
        n = self.lam.count()
        self.assertEqual(self.get(d, "/flood/29/9").text, "x" * 2000 + "/flood/29/9")
        self.assertEqual(self.lam.count(), n)
        self.get(d, "/flood/0/0")
        self.assertEqual(self.lam.count(), n + 1)

    def reload(self, d, config=None):
        if config is not None:
            self.write_config(config)
        n = d.log().count("configuration reloaded")
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: d.log().count("configuration reloaded") > n, timeout=5,
                         what="the reload")

    def test_reload_keeps_cache(self):
        d = self.start_cached(workers=2)
        self.lam.handler = Counter()
        self.assertEqual(self.get(d, "/r").text, "n=1")
        old = set(self.pids(d, "stored GET %s/r" % HOST))
        self.reload(d)
        # Wait until the old workers are gone: the hits come from new ones.
        harness.wait_for(lambda: not any(alive(p) for p in old), timeout=5,
                         what="the old workers to exit")
        for _ in range(6):
            r = self.get(d, "/r")
            self.assertEqual(r.text, "n=1")
        hits = set(self.pids(d, "hit GET %s/r" % HOST))
        self.assertTrue(hits - old)
        self.assertEqual(self.lam.count(), 1)
        # Another max_size: a new, empty cache.
        cfg = dict(d.config)
        cfg["cache"] = dict(cfg["cache"], max_size="1M")
        self.reload(d, cfg)
        time.sleep(0.3)
        self.assertEqual(self.get(d, "/r").text, "n=2")


if __name__ == "__main__":
    harness.main()
