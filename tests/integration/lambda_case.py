"""The common set-up of the function's integration tests: the real
`bootstrap` against the Runtime API stand-in, SSM from moto_server (behind a
counting/throttling stand-in) and the TLS origin with its test CA.

    class TestX(lambda_case.FunctionTestCase):
        def test_y(self):
            self.params("api.example.test", {"headers/X-Api-Key": "k"})
            self.start_function()
            resp = self.invoke(self.event(path="/v1"))
            self.assertEqual(resp["statusCode"], 200)
            req = self.origin.requests[0]

Per class: one moto_server, one origin. Per test: a fresh Runtime API
stand-in, a fresh SSM proxy, a parameter prefix of its own (so tests never
see each other's parameters) and an origin with an empty record.
"""

import os
import uuid

import harness
import moto_fixture
import standin_runtime
import tls_origin
from standin_runtime import alb_event, response_body, response_headers  # noqa: F401 (re-exported)

HOST = "api.example.test"

# Short timeouts for every knob the function has, so that no test waits long.
FAST_ENV = {
    "SSM_SIGN_PROXY_SSM_TIMEOUT": "2",
    "SSM_SIGN_PROXY_SSM_CONNECT_TIMEOUT": "1",
    "SSM_SIGN_PROXY_SSM_RETRIES": "3",
    "SSM_SIGN_PROXY_SSM_BACKOFF_MS": "10",
    "SSM_SIGN_PROXY_SSM_BACKOFF_MAX_MS": "100",
    "SSM_SIGN_PROXY_ORIGIN_CONNECT_TIMEOUT": "1",
    "SSM_SIGN_PROXY_ORIGIN_TIMEOUT": "3",
    "SSM_SIGN_PROXY_DEADLINE_MARGIN_MS": "200",
    "SSM_SIGN_PROXY_LOG_LEVEL": "debug",
}


class FunctionTestCase(harness.TestCase):
    moto = None
    origin = None

    @classmethod
    def setUpClass(cls):
        if not os.access(harness.BOOTSTRAP, os.X_OK):
            raise AssertionError("bootstrap not built: %s" % harness.BOOTSTRAP)
        cls.ca = tls_origin.test_ca()
        cls.moto = moto_fixture.Moto()
        cls.origin = tls_origin.Origin(cls.ca)

    @classmethod
    def tearDownClass(cls):
        if cls.origin is not None:
            cls.origin.close()
        if cls.moto is not None:
            cls.moto.stop()

    def setUp(self):
        super().setUp()
        self.rt = standin_runtime.RuntimeAPI()
        self.ssm = moto_fixture.SSMProxy(self.moto.endpoint)
        self.prefix = "ssp-" + uuid.uuid4().hex[:10]
        self.origin.reset()
        self.origin.handler = None
        self.origin.set_default(tls_origin.Response(200, headers=[("Content-Type", "text/plain")],
                                                    body=b"origin ok"))
        self.secrets = [standin_runtime.SECRET_KEY, standin_runtime.SESSION_TOKEN]
        self.fn = None

    def tearDown(self):
        try:
            super().tearDown()
            # Every test, whatever it does, also checks that no secret
            # reached the function's output.
            for p in self._procs:
                if p.name == "bootstrap":
                    self.assertNoSecrets(p)
        finally:
            self.rt.close()
            self.ssm.close()

    # --- parameters ----------------------------------------------------------
    def params(self, host, mapping, secure=False, prefix=None):
        """Put parameters /{prefix}/{host}/{key} = value. Values are
        remembered as secrets that must never show in the function's output."""
        items = mapping.items() if isinstance(mapping, dict) else mapping
        for k, v in items:
            self.moto.put("/%s/%s/%s" % (prefix or self.prefix, host, k), v, secure=secure)
            if len(v) >= 4:
                self.secrets.append(v)

    # --- the function ------------------------------------------------------------
    def function_env(self, connect_to=None, cache_ttl=300, extra=None, ssm_endpoint=None, ca_bundle=None,
                     prefix=None):
        connect = connect_to if connect_to is not None else [self.origin.connect_to(HOST),
                                                             self.origin.connect_to("hooks.example.test")]
        env_extra = dict(FAST_ENV)
        env_extra.update(extra or {})
        return self.rt.function_env(prefix=prefix if prefix is not None else self.prefix,
                                    ssm_endpoint=ssm_endpoint or self.ssm.endpoint,
                                    ca_bundle=ca_bundle if ca_bundle is not None else self.ca.ca_file,
                                    connect_to=connect, cache_ttl=cache_ttl, extra=env_extra)

    def start_function(self, env=None, argv=None, cwd=None, wait=True, **kw):
        """Start the bootstrap (harness.BOOTSTRAP unless argv is given) and,
        with wait, wait until it polls for an event."""
        env = env if env is not None else self.function_env(**kw)
        self.fn = self.start(argv or [harness.BOOTSTRAP], env=env, cwd=cwd, name="bootstrap")
        if wait:
            self.rt.wait_polling(timeout=5.0, proc=self.fn)
        return self.fn

    def event(self, method="GET", path="/", host=HOST, headers=None, query=None, body=b"", multi_value=False):
        return alb_event(method=method, path=path, host=host, headers=headers, query=query, body=body,
                         multi_value=multi_value)

    def invoke(self, event, timeout=5.0, **kw):
        return self.rt.invoke(event, timeout=timeout, **kw)

    # --- assertions --------------------------------------------------------------
    def assertStatus(self, resp, status):
        self.assertEqual(resp.get("statusCode"), status, "response: %r" % (resp,))

    def assertNoSecrets(self, proc=None, extra=()):
        """None of the secrets (parameter values, AWS secret key, session
        token) appears in the function's output."""
        p = proc or self.fn
        with open(p.log_path, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        for s in list(self.secrets) + list(extra):
            self.assertNotIn(s, out, "a secret appears in the function's output")

    def header(self, resp, name):
        n = name.lower()
        return [v for k, v in response_headers(resp) if k == n]
