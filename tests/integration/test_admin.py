"""Operating the daemon: the admin listener (/metrics after a mixed workload,
counted exactly and accepted by `promtool check metrics`; /healthz; /readyz
flipping to 503 on expiring credentials or an all-failing Lambda, and back;
a unix socket), request ids, error bodies, and JSON logs that parse line by
line and hold no secret, query string or session token."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import creds_standins
import daemon_fixture
import harness
import standin_lambda as sl

HOST = "api.example.test"
CACHED = "cache.example.test"


def scrape(port, path="/metrics"):
    """GET the admin listener: (status, content type, body text)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def total(s, name, **labels):
    """Sum over every series of name whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in s.items() if n == name and want <= set(ls))


class AdminTest(daemon_fixture.ProxyTestCase):
    session_token = "session-token-for-admin-tests"

    def start_admin(self, config=None, **kw):
        self.admin_port = harness.free_port()
        cfg = {"admin": {"listen": "127.0.0.1:%d" % self.admin_port,
                         "metrics_hosts": [HOST]},
               "retry": {"attempts": 3, "base": 0.001, "cap": 0.002}}
        cfg = daemon_fixture.merge(cfg, config or {})
        d = self.start_daemon(config=cfg, **kw)
        harness.wait_port(self.admin_port)
        return d

    def metrics(self):
        status, ctype, body = scrape(self.admin_port)
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        return body

    def test_metrics_count_a_mixed_workload_exactly(self):
        d = self.start_admin({"allow": ["127.0.0.1/32"], "workers": 2,
                              "cache": {"hosts": {CACHED: 60}}})
        base = "http://%s" % HOST
        # 3 plain answers from the function.
        for _ in range(3):
            self.assertEqual(d.get(base + "/ok?token=q").status_code, 200)
        # A miss then a hit.
        self.assertEqual(d.get("http://%s/c" % CACHED).status_code, 200)
        r = d.get("http://%s/c" % CACHED)
        self.assertEqual(r.status_code, 200)
        # A function error: 502 of our own.
        self.lam.push(sl.function_error("boom"))
        self.assertEqual(d.get(base + "/fnerr").status_code, 502)
        # Throttled once, then answered.
        self.lam.push(sl.throttle())
        self.assertEqual(d.get(base + "/throttled-once").status_code, 200)
        # A 500 retried (GET is idempotent), then answered.
        self.lam.push(sl.service_error())
        self.assertEqual(d.get(base + "/5xx-once").status_code, 200)
        # Throttled on every attempt: 503.
        self.lam.push(sl.throttle(), sl.throttle(), sl.throttle())
        self.assertEqual(d.get(base + "/throttled").status_code, 503)
        # A POST with a body.
        self.assertEqual(d.post(base + "/post", data=b"x" * 100).status_code, 200)
        # Denied (not in the allow list) and rejected (CONNECT).
        self.assertEqual(d.raw("GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (HOST, HOST),
                               source="127.0.0.2").status, 403)
        self.assertEqual(d.raw("CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (HOST, HOST)).status,
                         405)

        def settled():
            s = samples(self.metrics())
            return s if total(s, "ssm_sign_proxy_requests_total") == 12 else None
        s = harness.wait_for(settled, what="12 requests counted")
        req = "ssm_sign_proxy_requests_total"
        self.assertEqual(value(s, req, method="GET", status="2xx", outcome="function", host=HOST), 5)
        self.assertEqual(value(s, req, method="GET", status="2xx", outcome="function", host="other"), 1)
        self.assertEqual(value(s, req, method="GET", status="2xx", outcome="cache_hit", host="other"), 1)
        self.assertEqual(value(s, req, method="GET", status="5xx", outcome="error", host=HOST), 2)
        self.assertEqual(value(s, req, method="POST", status="2xx", outcome="function", host=HOST), 1)
        self.assertEqual(total(s, req, outcome="denied", status="4xx"), 1)
        self.assertEqual(total(s, req, method="other", outcome="rejected", status="4xx"), 1)
        # Lambda's side, against what the stand-in saw.
        calls = self.lam.count()
        self.assertEqual(calls, 3 + 1 + 1 + 2 + 2 + 3 + 1)
        self.assertEqual(value(s, "ssm_sign_proxy_invoke_attempts_total"), calls)
        self.assertEqual(value(s, "ssm_sign_proxy_invoke_retries_total", reason="throttled"), 1 + 2)
        self.assertEqual(value(s, "ssm_sign_proxy_invoke_retries_total", reason="5xx"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_invoke_retries_total", reason="connection"), 0)
        self.assertEqual(value(s, "ssm_sign_proxy_lambda_api_errors_total", status="429"), 4)
        self.assertEqual(value(s, "ssm_sign_proxy_lambda_api_errors_total", status="500"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_function_errors_total", kind="Unhandled"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_invocations_total", result="ok"), 3 + 1 + 1 + 1 + 1)
        self.assertEqual(value(s, "ssm_sign_proxy_invocations_total", result="failed"), 2)
        self.assertEqual(value(s, "ssm_sign_proxy_invoke_duration_seconds_count"), 9)
        self.assertEqual(value(s, "ssm_sign_proxy_request_duration_seconds_count"), 12)
        self.assertEqual(value(s, "ssm_sign_proxy_request_duration_seconds_bucket", le="+Inf"), 12)
        self.assertEqual(value(s, "ssm_sign_proxy_request_body_bytes_total"), 100)
        self.assertEqual(value(s, "ssm_sign_proxy_cache_hits_total"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_cache_misses_total"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_cache_stores_total"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_cache_objects"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_workers"), 2)
        self.assertEqual(value(s, "ssm_sign_proxy_requests_in_flight"), 0)
        build = [(ls, v) for (n, ls), v in s.items() if n == "ssm_sign_proxy_build_info"]
        self.assertEqual(len(build), 1)
        self.assertRegex(dict(build[0][0])["version"], r"^\d+\.\d+\.\d+")
        self.assertEqual(build[0][1], 1)
        self.assertEqual(value(s, "ssm_sign_proxy_region_info", region=self.region), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_credentials_info", source="environment"), 1)
        self.assertEqual(value(s, "ssm_sign_proxy_credentials_expiry_seconds"), -1)
        self.assertEqual(value(s, "ssm_sign_proxy_ready"), 1)
        # The scrapes themselves are not requests.
        s = samples(self.metrics())
        self.assertEqual(total(s, req), 12)

        # A reload counts, and leaves the counters alone.
        d.proc.signal(signal.SIGHUP)
        s = harness.wait_for(lambda: (lambda s: s if value(s, "ssm_sign_proxy_reloads_total", result="ok") == 1
                                      else None)(samples(self.metrics())), what="a reload counted")
        self.assertEqual(total(s, req), 12)

        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool not installed (Debian package prometheus; tests/deps.sh installs it)")
        p = subprocess.run([promtool, "check", "metrics"], input=self.metrics().encode(),
                           capture_output=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.decode() + p.stderr.decode()), (0, ""))

    def test_healthz_readyz_and_not_found(self):
        d = self.start_admin()
        harness.wait_for(lambda: scrape(self.admin_port, "/readyz")[0] == 200, what="ready")
        status, ctype, body = scrape(self.admin_port, "/healthz")
        self.assertEqual((status, ctype, json.loads(body)), (200, "application/json", {"status": "ok"}))
        self.assertEqual(json.loads(scrape(self.admin_port, "/readyz")[2]), {"status": "ready"})
        self.assertEqual(scrape(self.admin_port, "/nope")[0], 404)
        # The admin listener never proxies.
        self.assertEqual(d.get("http://%s/x" % HOST).status_code, 200)
        n = self.lam.count()
        c = daemon_fixture.Conn("127.0.0.1", self.admin_port)
        c.send("GET http://%s/x HTTP/1.1\r\nHost: %s\r\n\r\n" % (HOST, HOST))
        self.assertEqual(c.read_response().status, 404)
        self.assertEqual(self.lam.count(), n)

    def test_admin_allow_and_methods(self):
        self.start_admin({"admin": {"allow": ["127.0.0.1/32"]}})
        c = daemon_fixture.Conn("127.0.0.1", self.admin_port, source="127.0.0.2")
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.json()["reason"]), (403, "not_allowed"))
        c = daemon_fixture.Conn("127.0.0.1", self.admin_port)
        c.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD"))
        c = daemon_fixture.Conn("127.0.0.1", self.admin_port)
        c.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertGreater(int(r.header("Content-Length")), 0)

    def test_readyz_flips_when_lambda_fails_every_call(self):
        d = self.start_admin({"admin": {"ready_invocations": 3}, "retry": {"attempts": 1}})
        harness.wait_for(lambda: scrape(self.admin_port, "/readyz")[0] == 200, what="ready")
        self.lam.handler = sl.service_error()
        for i in range(3):
            self.assertEqual(d.get("http://%s/fail" % HOST).status_code, 502)
        status, _, body = harness.wait_for(
            lambda: (lambda r: r if r[0] == 503 else None)(scrape(self.admin_port, "/readyz")),
            what="/readyz 503")
        doc = json.loads(body)
        self.assertEqual(doc["status"], "not_ready")
        self.assertEqual(doc["reason"], "invocations_failing")
        self.assertIn("last 3 invocations failed", doc["message"])
        # The log says the same.
        d.wait_log("not ready: the last 3 invocations failed")
        # /healthz is about processes: still fine.
        self.assertEqual(scrape(self.admin_port, "/healthz")[0], 200)
        self.lam.handler = sl.echo
        self.assertEqual(d.get("http://%s/ok" % HOST).status_code, 200)
        harness.wait_for(lambda: scrape(self.admin_port, "/readyz")[0] == 200, what="ready again")
        d.wait_log("ready again")

    def test_readyz_flips_on_expiring_credentials(self):
        keyring = creds_standins.Keyring()
        creds_standins.keyring_verifier(self.lam, keyring)
        ecs = creds_standins.EcsStandin(keyring=keyring)
        ecs.lifetime = 30           # less than admin.ready_margin
        ecs.start()
        self.addCleanup(ecs.stop)
        d = self.start_admin({"admin": {"ready_margin": 120},
                              "credentials": {"refresh_ahead": 1, "retry": 0.2, "retry_cap": 0.5}},
                             credentials=False, env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds"})
        status, _, body = harness.wait_for(
            lambda: (lambda r: r if r[0] == 503 and "credentials_expiring" in r[2] else None)(
                scrape(self.admin_port, "/readyz")), what="/readyz 503 (credentials)")
        self.assertIn("expire in", json.loads(body)["message"])
        s = samples(self.metrics())
        self.assertEqual(value(s, "ssm_sign_proxy_ready"), 0)
        self.assertGreater(value(s, "ssm_sign_proxy_credentials_expiry_seconds"), 0)
        self.assertLessEqual(value(s, "ssm_sign_proxy_credentials_expiry_seconds"), 30)
        self.assertEqual(total(s, "ssm_sign_proxy_credentials_info"), 1)
        # Longer-lived credentials; a reload makes the agent fetch at once.
        ecs.lifetime = 3600
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: scrape(self.admin_port, "/readyz")[0] == 200, what="ready again")
        self.assertGreater(value(samples(self.metrics()), "ssm_sign_proxy_credentials_refreshes_total",
                                 result="ok"), 1)

    def test_readyz_flips_when_credentials_expire(self):
        keyring = creds_standins.Keyring()
        creds_standins.keyring_verifier(self.lam, keyring)
        ecs = creds_standins.EcsStandin(keyring=keyring)
        ecs.lifetime = 4
        ecs.start()
        self.addCleanup(ecs.stop)
        d = self.start_admin({"admin": {"ready_margin": 0},
                              "credentials": {"refresh_ahead": 1, "retry": 0.2, "retry_cap": 0.5}},
                             credentials=False, env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.url + "/creds"})
        harness.wait_for(lambda: scrape(self.admin_port, "/readyz")[0] == 200, what="ready")
        # The endpoint starts refusing: the credentials run out.
        ecs.auth = "Bearer something-else"
        status, _, body = harness.wait_for(
            lambda: (lambda r: r if r[0] == 503 else None)(scrape(self.admin_port, "/readyz")),
            timeout=15, what="/readyz 503 once the credentials expired")
        doc = json.loads(body)
        self.assertIn(doc["reason"], ("credentials_missing", "credentials_expiring"), doc)
        # /readyz compares whole seconds and the worker its own clock: the
        # request path can lag the probe by a fraction of a second.
        harness.wait_for(lambda: d.get("http://%s/x" % HOST).status_code == 503, timeout=5,
                         what="a request answered 503 once the credentials expired")
        ecs.auth = None
        ecs.lifetime = 3600
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: scrape(self.admin_port, "/readyz")[0] == 200, timeout=10,
                         what="ready again")
        self.assertEqual(d.get("http://%s/x" % HOST).status_code, 200)
        self.assertGreaterEqual(value(samples(self.metrics()), "ssm_sign_proxy_credentials_refreshes_total",
                                      result="failed"), 1)

    def test_alert_rules(self):
        """doc/prometheus-alerts.yml: promtool accepts it, and every metric it
        names is one the daemon exports (the rules cannot drift silently)."""
        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool not installed (Debian package prometheus; tests/deps.sh installs it)")
        rules = os.path.join(harness.SRCDIR, "doc", "prometheus-alerts.yml")
        p = subprocess.run([promtool, "check", "rules", rules], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.start_admin()
        exported = set(re.findall(r"^# TYPE (\S+) ", self.metrics(), re.M))
        with open(rules) as f:
            used = set(re.findall(r"ssm_sign_proxy_\w+", f.read()))
        self.assertTrue(used)
        for name in used:
            self.assertIn(re.sub(r"_(bucket|count|sum)$", "", name), exported)

    def test_unix_socket(self):
        path = os.path.join(self.tmp, "admin.sock")
        self.start_daemon(config={"admin": {"listen": path, "socket_mode": "0600"}})
        harness.wait_for(lambda: os.path.exists(path), what="the admin socket")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

        def healthz():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            return data
        # The socket answers before the workers run ("no_workers", 503):
        # under ASan that moment can last.
        data = harness.wait_for(lambda: (lambda d: d if d.startswith(b"HTTP/1.1 200") else None)(
            healthz()), timeout=10, what="/healthz 200 on the unix socket")
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)

    def test_request_ids_and_error_bodies(self):
        d = self.start_admin({"cache": {"hosts": {CACHED: 60}}})
        r = d.get("http://%s/x" % HOST, headers={"X-Request-Id": "client-id.1_A"})
        self.assertEqual(r.headers["X-Request-Id"], "client-id.1_A")
        self.assertEqual(self.lam.last().event["headers"]["x-request-id"], "client-id.1_A")
        r = d.get("http://%s/x" % HOST, headers={"X-Request-Id": "bad id!"})
        made = r.headers["X-Request-Id"]
        self.assertRegex(made, r"^[0-9a-f]{32}$")
        self.assertEqual(self.lam.last().event["headers"]["x-request-id"], made)
        # Once per response, whatever the function echoes or the cache stored.
        self.lam.push(sl.respond(200, "x", headers={"X-Request-Id": "from-the-function"}))
        r = d.raw("GET http://%s/echoing HTTP/1.1\r\nHost: %s\r\nX-Request-Id: mine-1\r\n\r\n"
                  % (HOST, HOST))
        self.assertEqual(r.header_all("X-Request-Id"), ["mine-1"])
        for rid in ("fill-1", "hit-2"):
            r = d.raw("GET http://%s/cached HTTP/1.1\r\nHost: %s\r\nX-Request-Id: %s\r\n\r\n"
                      % (CACHED, CACHED, rid))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header_all("X-Request-Id"), [rid])
        self.assertRegex(r.header("Cache-Status"), r"; hit;")
        # An error of our own: one line, the request id, no account id.
        self.lam.push(sl.not_found())
        r = d.get("http://%s/missing" % HOST)
        self.assertEqual(r.status_code, 502)
        rid = r.headers["X-Request-Id"]
        self.assertTrue(r.text.endswith(" (request id %s)\n" % rid), r.text)
        self.assertEqual(r.text.count("\n"), 1)
        self.assertNotIn("123456789012", r.text)
        self.assertIn("************", r.text)


class JsonLogTest(daemon_fixture.ProxyTestCase):
    session_token = "session-token-must-not-be-logged"

    def test_every_line_parses_and_holds_no_secret(self):
        d = self.start_daemon(config={"log_format": "json", "access_log_format": "json",
                                      "retry": {"attempts": 2, "base": 0.001, "cap": 0.002}})
        d.get("http://%s/a?access_token=query-secret" % HOST, headers={"User-Agent": "ua/1"})
        self.lam.push(sl.function_error("boom"))
        d.get("http://%s/b?x=query-secret" % HOST)
        self.lam.push(sl.throttle(), sl.throttle())
        d.get("http://%s/c" % HOST)
        d.raw("CONNECT %s:443 HTTP/1.1\r\nHost: x\r\n\r\n" % HOST)
        d.proc.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded")
        d.stop()
        log = d.log()
        lines = [l for l in log.splitlines() if l.strip()]
        self.assertGreater(len(lines), 10)
        access, daemon = [], []
        for l in lines:
            doc = json.loads(l)         # every line, or the test fails here
            (access if "status" in doc and "method" in doc else daemon).append(doc)
        for secret in (sl.SECRET_KEY, self.session_token, "query-secret", "access_token"):
            self.assertNotIn(secret, log)
        self.assertEqual(len(access), 4)
        a = access[0]
        for key in ("time", "client", "method", "host", "path", "status", "bytes_in", "bytes_out",
                    "duration_ms", "attempts", "outcome", "request_id", "lambda_request_id",
                    "user_agent", "invoke_ms"):
            self.assertIn(key, a)
        self.assertEqual((a["path"], a["status"], a["user_agent"], a["outcome"]), ("/a", 200, "ua/1", "function"))
        self.assertEqual(access[2]["attempts"], 2)
        for doc in daemon:
            for key in ("time", "level", "role", "pid", "msg"):
                self.assertIn(key, doc)
        # A function error is a warning, with the function's message.
        self.assertTrue(any(doc["level"] == "warn" and "boom" in doc["msg"] for doc in daemon), daemon)
        self.assertTrue(any(doc["role"] == "worker" and doc.get("worker") == 1 for doc in daemon))
        # A failure carries its fields: request id, host, status, error kind.
        failed = [doc for doc in daemon if doc.get("error") == "function error"]
        self.assertEqual(len(failed), 1, daemon)
        self.assertEqual((failed[0]["level"], failed[0]["host"], failed[0]["status"],
                          failed[0]["request_id"]),
                         ("warn", HOST, "502", access[1]["request_id"]))
        # Throttling is a warning (its repeats are counted, see test_log.c).
        self.assertTrue(any(doc["level"] == "warn" and doc["msg"].startswith("throttled by Lambda")
                            for doc in daemon))
        self.assertTrue(any(doc["role"] == "master" for doc in daemon))

    def test_log_file_reopened_on_sigusr1(self):
        path = os.path.join(self.tmp, "daemon.log")
        d = self.start_daemon(config={"log": path, "log_format": "json"})
        harness.wait_for(lambda: os.path.exists(path) and "worker 1 started" in open(path).read(),
                         what="the log file written")
        os.rename(path, path + ".1")
        d.proc.signal(signal.SIGUSR1)
        harness.wait_for(lambda: os.path.exists(path), what="the log file reopened")
        self.assertEqual(d.get("http://%s/x" % HOST).status_code, 200)
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: "configuration reloaded" in open(path).read(), what="new lines in the new file")
        for name in (path, path + ".1"):
            with open(name) as f:
                for line in f:
                    json.loads(line)
        with open(path + ".1") as f:
            self.assertNotIn("configuration reloaded", f.read())


if __name__ == "__main__":
    harness.main()
