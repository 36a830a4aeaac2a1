"""Local function mode with custom runtimes of our own (Python, shell): the
Runtime API the daemon serves, the function's environment, failures
(crash, timeout, never asking for work, init error, function error),
concurrency, and stopping without leaving a process behind."""

import concurrent.futures
import json
import os
import re
import signal
import time
import urllib.request

import daemon_fixture
import harness
from localfn_case import LocalFunctionCase, alive, get

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class RuntimeApi(LocalFunctionCase):
    def test_echo_through_python_runtime(self):
        d = self.start_local(self.python_runtime())
        t0 = time.time()
        r = d.raw(get("api.example.test", "/hello/w%2Fx?a=1&b=%2B"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Runtime"), "python")
        body = r.json()
        self.assertEqual(body["path"], "/hello/w%2Fx")
        self.assertEqual(body["query"], {"a": "1", "b": "%2B"})
        inv = {k.lower(): v for k, v in body["invocation"].items()}
        self.assertRegex(inv["lambda-runtime-aws-request-id"], UUID)
        self.assertEqual(inv["lambda-runtime-aws-request-id"], body["request_id"])
        # The deadline is now + timeout (2 s), in epoch milliseconds.
        deadline = int(inv["lambda-runtime-deadline-ms"]) / 1000.0
        self.assertGreater(deadline, t0 + 1.0)
        self.assertLess(deadline, t0 + 4.0)
        self.assertEqual(inv["lambda-runtime-invoked-function-arn"],
                         "arn:aws:lambda:us-east-1:000000000000:function:runtime.py")
        self.assertRegex(inv["lambda-runtime-trace-id"],
                         r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
        # The request id is the access log's too.
        d.wait_log(body["request_id"])
        # The function's output reaches the daemon's log, one prefixed line each.
        d.wait_log("function[%d]: invocation %s for /hello/w%%2Fx" % (body["pid"], body["request_id"]))

    def test_no_credentials_agent(self):
        # A local function needs no AWS credentials: the master starts no
        # credentials agent, so nothing logs "no AWS credentials found".
        d = self.start_local(self.python_runtime())
        r = d.raw(get("api.example.test", "/x"))
        self.assertEqual(r.status, 200, r)
        log = d.log()
        self.assertIn("local function", log)
        self.assertNotIn("credentials agent started", log)
        self.assertNotIn("no AWS credentials", log)

    def test_reload_to_lambda_starts_the_agent(self):
        d = self.start_local(self.python_runtime())
        self.assertEqual(d.raw(get("api.example.test", "/x")).status, 200)
        cfg = dict(d.config)
        del cfg["local_function"]
        cfg["function_name"] = "switched-to-lambda"
        with open(d.config_path, "w") as f:
            f.write(daemon_fixture.to_yaml(cfg))
        d.proc.signal(signal.SIGHUP)
        d.wait_log("credentials agent started")
        harness.wait_for(lambda: d.raw(get("api.example.test", "/y")).status == 200 and self.lam.count() > 0,
                         what="requests reach Lambda after the reload")
        self.assertEqual(self.lam.last().function, "switched-to-lambda")
        self.lam.reset()  # the local-mode check at cleanup is about the first half

    def test_post_body_and_keepalive(self):
        d = self.start_local(self.python_runtime())
        c = d.connect()
        for i in range(3):
            data = "payload %d" % i
            r = c.request("POST http://api.example.test/p HTTP/1.1\r\nHost: api.example.test\r\n"
                          "Content-Length: %d\r\n\r\n%s" % (len(data), data))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body"], data)
            self.assertEqual(r.json()["method"], "POST")

    def test_shell_runtime(self):
        d = self.start_local(self.shell_runtime())
        for path in ("/one", "/two"):
            r = d.raw(get("hooks.example.test", path))
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.header("X-Runtime"), "sh")
            self.assertEqual(r.text, "shell saw %s" % path)
        # The function's own output: labelled, its time stamp dropped.
        self.assertRegex(d.log(), r"info: function\[\d+\]: sh runtime up\n")
        self.assertNotIn("2026-11-30T10:00:00.123Z", d.log())

    def test_environment_is_lambdas_only(self):
        # The daemon has AWS credentials and other variables: none of them
        # may reach the function unless listed in local_function.environment.
        d = self.start_local(
            self.python_runtime(), timeout=3,
            environment={"AWS_ACCESS_KEY_ID": "AKIAFORTHEFUNCTION", "GREETING": "hello world"},
            env={"AWS_SESSION_TOKEN": "daemon-session-token", "DAEMON_ONLY": "x",
                 "http_proxy": "http://127.0.0.1:9"})
        r = d.raw(get("api.example.test", "/env"))
        self.assertEqual(r.status, 200, r)
        out = r.json()
        env = out["env"]
        command = os.path.join(self.tmp, "fn", "runtime.py")
        expected = {
            "AWS_LAMBDA_FUNCTION_NAME": "runtime.py",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": os.path.dirname(os.path.realpath(command)),
            "_HANDLER": "runtime.py",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "AWS_ACCESS_KEY_ID": "AKIAFORTHEFUNCTION",
            "GREETING": "hello world",
            "LF_PIDDIR": self.piddir,
        }
        api = env.pop("AWS_LAMBDA_RUNTIME_API")
        self.assertRegex(api, r"^127\.0\.0\.1:\d+$")
        self.assertEqual(env, expected)
        self.assertEqual(out["cwd"], expected["LAMBDA_TASK_ROOT"])

    def test_runtime_api_refuses_mistakes(self):
        d = self.start_local(self.python_runtime())
        r = d.raw(get("api.example.test", "/api-errors"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {
            "wrong_id": [400, "InvalidRequestID"],
            "get_response": [405, "MethodNotAllowed"],
            "unknown": [404, "NotFound"],
            "init_get": [405, "MethodNotAllowed"],
        })
        # The invocation was answered despite the mistakes; the process lives on.
        self.assertEqual(d.raw(get("api.example.test", "/ok")).status, 200)
        self.assertEqual(len(self.function_pids()), 1)

    def test_runtime_asking_again_for_next(self):
        # A runtime whose HTTP client timed out on GET /next asks again: the
        # newer request is the one served, and the process is not replaced.
        d = self.start_local(self.python_runtime(), mode="impatient")
        pid = self.wait_ready(1)[0]
        d.wait_log("function[%d]: gave up waiting; asking again" % pid)
        time.sleep(0.2)
        r = d.raw(get("api.example.test", "/x"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["pid"], pid)
        self.assertEqual(self.function_pids(), [pid])

    def test_function_name_from_config(self):
        d = self.start_local(self.python_runtime(),
                             config={"function_name": "arn:aws:lambda:eu-west-1:123456789012:function:my-fn:live",
                                     "region": "eu-west-1"})
        r = d.raw(get("api.example.test", "/x"))
        inv = {k.lower(): v for k, v in r.json()["invocation"].items()}
        self.assertEqual(inv["lambda-runtime-invoked-function-arn"],
                         "arn:aws:lambda:eu-west-1:000000000000:function:my-fn")


class Failures(LocalFunctionCase):
    def test_crash_gets_502_and_process_restarts(self):
        d = self.start_local(self.python_runtime())
        first = self.wait_ready(1)[0]
        r = d.raw(get("api.example.test", "/crash/segv"))
        self.assertEqual(r.status, 502, r)
        self.assertIn("crashed", r.text)
        self.assertIn("signal 11", r.text)
        # Restarted: the next request is served by a new process.
        r = d.raw(get("api.example.test", "/after"), timeout=5)
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json()["pid"], first)
        self.assertFalse(alive(first))
        r = d.raw(get("api.example.test", "/crash/exit"))
        self.assertEqual(r.status, 502, r)
        self.assertIn("exited with status 3", r.text)
        self.assertEqual(d.raw(get("api.example.test", "/again"), timeout=5).status, 200)
        self.assertIn("crashed during invocation", d.log())

    def test_timeout_gets_504_and_process_is_killed(self):
        d = self.start_local(self.python_runtime(), timeout=1)
        first = self.wait_ready(1)[0]
        t0 = time.monotonic()
        r = d.raw(get("api.example.test", "/sleep/30"), timeout=5)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 504, r)
        self.assertIn("timed out after 1s", r.text)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 2.5)
        harness.wait_for(lambda: not alive(first), timeout=2, what="the timed-out process to die")
        r = d.raw(get("api.example.test", "/after"), timeout=5)
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json()["pid"], first)

    def test_metrics_count_processes_restarts_and_timeouts(self):
        admin = harness.free_port()
        d = self.start_local(self.python_runtime(), concurrency=2, timeout=1,
                             config={"admin": {"listen": "127.0.0.1:%d" % admin}})
        self.wait_ready(2)
        harness.wait_port(admin)

        def metric(name):
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5) as r:
                text = r.read().decode()
            m = re.search(r"^%s (\S+)$" % name, text, re.M)
            return float(m.group(1)) if m else None
        harness.wait_for(lambda: metric("ssm_sign_proxy_local_function_processes") == 2,
                         what="2 processes counted")
        self.assertEqual(d.raw(get("api.example.test", "/crash/exit")).status, 502)
        self.assertEqual(d.raw(get("api.example.test", "/sleep/30"), timeout=5).status, 504)
        harness.wait_for(lambda: metric("ssm_sign_proxy_local_function_restarts_total") == 2
                         and metric("ssm_sign_proxy_local_function_processes") == 2,
                         what="2 restarts, 2 processes again")
        self.assertEqual(metric("ssm_sign_proxy_local_function_timeouts_total"), 1)
        self.assertIsNone(metric("ssm_sign_proxy_credentials_expiry_seconds"))
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin, timeout=5) as r:
            self.assertEqual(r.status, 200)

    def test_never_asks_for_work_gets_504(self):
        d = self.start_local(self.python_runtime(), timeout=1, mode="hang")
        first = self.wait_ready(1)[0]
        t0 = time.monotonic()
        r = d.raw(get("api.example.test", "/x"), timeout=5)
        self.assertEqual(r.status, 504, r)
        self.assertIn("no function process took the invocation", r.text)
        self.assertLess(time.monotonic() - t0, 2.5)
        # The stuck process is replaced.
        d.wait_log("did not ask for an invocation within 1s of starting")
        harness.wait_for(lambda: not alive(first), timeout=3, what="the stuck process to die")
        harness.wait_for(lambda: len(self.function_pids()) >= 2, timeout=3, what="a new process")

    def test_init_error_gets_502_saying_so(self):
        d = self.start_local(self.python_runtime(), mode="init_error")
        d.wait_log("failed to initialise")
        r = d.raw(get("api.example.test", "/x"), timeout=5)
        self.assertEqual(r.status, 502, r)
        self.assertIn("the function failed to initialise", r.text)
        self.assertIn("Runtime.ConfigError", r.text)
        self.assertIn("bad setting on line 3", d.log())
        # Restarted with back-off (respawn 0.1 s, cap 0.4 s): a few tries, not a storm.
        time.sleep(1.5)
        n = len(self.function_pids())
        self.assertGreaterEqual(n, 3)
        self.assertLessEqual(n, 12)

    def test_command_that_cannot_run(self):
        # A missing command is refused when the configuration is read (-t,
        # start, reload: see test_config_check.py); one that goes missing
        # while the daemon runs makes the restarted process fail to start.
        missing = os.path.join(self.tmp, "no-such-runtime")
        cfg = self.write_config(daemon_fixture.merge(
            self.default_config("127.0.0.1:%d" % harness.free_port()),
            {"function_name": None, "local_function": {"command": missing}}))
        rc, out = self.run_daemon(["-c", cfg])
        self.assertEqual(rc, 1, out)
        self.assertIn("local_function.command: %s: No such file or directory" % missing, out)

        runtime = self.python_runtime()
        d = self.start_local(runtime)
        self.wait_ready(1)
        os.rename(runtime, runtime + ".gone")
        for pid in self.function_pids():
            os.kill(pid, signal.SIGKILL)
        d.wait_log("cannot run")
        r = d.raw(get("api.example.test", "/x"), timeout=5)
        self.assertEqual(r.status, 502, r)
        self.assertIn("cannot run %s" % runtime, r.text)
        self.assertIn("No such file or directory", r.text)

    def test_function_error_gets_502(self):
        d = self.start_local(self.python_runtime())
        r = d.raw(get("api.example.test", "/error"))
        self.assertEqual(r.status, 502, r)
        self.assertIn("the function failed (Unhandled): TestError: it went wrong on purpose", r.text)
        self.assertIn("it went wrong on purpose", d.log())
        # The process is fine: it answers the next one.
        pids = self.function_pids()
        r = d.raw(get("api.example.test", "/ok"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.function_pids(), pids)

    def test_response_too_large_gets_502(self):
        d = self.start_local(self.python_runtime())
        r = d.raw(get("api.example.test", "/big"), timeout=10)
        self.assertEqual(r.status, 502, r)
        self.assertRegex(r.text, r"the function's response is \d+ bytes, more than Lambda's 6291456")
        self.assertEqual(d.raw(get("api.example.test", "/ok"), timeout=5).status, 200)

    def test_client_gone_while_function_works(self):
        d = self.start_local(self.python_runtime(), timeout=2)
        c = d.connect()
        c.send(get("api.example.test", "/sleep/0.5"))
        time.sleep(0.1)
        c.close()
        time.sleep(0.8)
        # The answer was dropped; the same process serves the next one.
        r = d.raw(get("api.example.test", "/next-one"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.function_pids()), 1)


class Concurrency(LocalFunctionCase):
    def test_32_clients_2_processes(self):
        d = self.start_local(self.python_runtime(), concurrency=2, timeout=2)
        self.wait_ready(2)

        def one(i):
            r = d.raw(get("api.example.test", "/sleep/0.02?client=%d" % i), timeout=10)
            return i, r

        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            results = list(ex.map(one, range(32)))
        pids = set()
        for i, r in results:
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], {"client": str(i)})
            pids.add(r.json()["pid"])
        self.assertEqual(len(pids), 2, "two function processes share the work")
        ids = {r.json()["request_id"] for _, r in results}
        self.assertEqual(len(ids), 32)

    def test_max_inflight_bounds_the_queue(self):
        d = self.start_local(self.python_runtime(), concurrency=1, timeout=2,
                             config={"limits": {"max_inflight": 2}})
        self.wait_ready(1)
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(d.raw, get("api.example.test", "/sleep/0.5"), 5) for _ in range(4)]
            statuses = sorted(f.result().status for f in futs)
        self.assertEqual(statuses, [200, 200, 503, 503])


class Stopping(LocalFunctionCase):
    def test_sigterm_leaves_no_process(self):
        d = self.start_local(self.python_runtime(), concurrency=2, mode="spawn_child",
                             config={"workers": 2, "timeouts": {"shutdown": 1}})
        pids = self.wait_ready(4)
        harness.wait_for(lambda: len(self.function_pids(children=True)) >= 4, timeout=5,
                         what="the runtimes' children")
        self.assertEqual(d.raw(get("api.example.test", "/x")).status, 200)
        kids = self.function_pids(children=True)
        d.proc.signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(5), 0)
        # The runtimes were reaped by the daemon; their children were killed
        # with their process group and may take a moment to go.
        for pid in pids:
            self.assertFalse(alive(pid), "process %d survived the daemon" % pid)
        for pid in kids:
            harness.wait_for(lambda: not alive(pid), timeout=2,
                             what="child process %d to die with its group" % pid)

    def test_runtime_ignoring_sigterm_is_killed(self):
        d = self.start_local(self.python_runtime(), mode="ignore_term",
                             config={"timeouts": {"shutdown": 0.5}})
        pids = self.wait_ready(1)
        self.assertEqual(d.raw(get("api.example.test", "/x")).status, 200)
        t0 = time.monotonic()
        d.proc.signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(5), 0)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertFalse(alive(pids[0]))
        self.assertIn("did not stop within", d.log())

    def test_reload_replaces_the_processes(self):
        d = self.start_local(self.python_runtime(), concurrency=1)
        old = self.wait_ready(1)
        d.proc.signal(signal.SIGHUP)
        harness.wait_for(lambda: len(self.function_pids()) >= 2, timeout=5, what="new processes")
        harness.wait_for(lambda: not alive(old[0]), timeout=5, what="the old process to stop")
        r = d.raw(get("api.example.test", "/after-reload"), timeout=5)
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json()["pid"], old[0])


if __name__ == "__main__":
    harness.main()
