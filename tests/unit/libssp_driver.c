/*
 * libssp_driver: drives libssm-sign-proxy's public API (and only that: it
 * links the shared library and includes ssm-sign-proxy.h alone) for
 * integration/test_library.py, which runs it against the stand-in Lambda.
 * Every outcome is one JSON line on stdout.
 *
 *   libssp_driver call METHOD URL [BODY] [NAME:VALUE]...   one blocking call
 *   libssp_driver threads THREADS CALLS URL      blocking calls from threads
 *   libssp_driver async N URL                    N calls on one loop, one cancelled
 *   libssp_driver loop SECONDS URL               sequential calls for a while
 *   libssp_driver invoke PAYLOAD                 ssp_invoke_start() with a raw payload
 *   libssp_driver api                            argument checks, no network
 *   libssp_driver stream METHOD URL              a streamed call (head, body pieces, done)
 *   libssp_driver rawstream PAYLOAD              ssp_invoke_stream_start() with a raw payload
 *   libssp_driver gone URL                       credentials from callbacks that give
 *                                                none, then say none is coming
 *   libssp_driver bench N URL                    N sequential calls: CPU and time per call
 *
 * The function comes from SSP_TEST_FUNCTION (default "signer"); the rest
 * (endpoint, credentials, region) from the environment as the SDKs read
 * it. SSP_TEST_LOG=1 sends the library's log to stderr. "call" also lists
 * the observer's events (ssp_options_set_observer()) in its output.
 */
#include <sys/resource.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "ssm-sign-proxy.h"

static const char *const kinds[] = {"",       "invalid",     "too_large", "function",
                                    "lambda", "unreachable", "throttled", "credentials",
                                    "config", "timeout",     "resources"};

static const char *const event_kinds[] = {"", "attempt", "retry", "throttled", "function_error"};

/* The observer's events of the calls of "call" (NULL: not recorded). */
static pthread_mutex_t events_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *events;

static void
observe(const ssp_event *ev, void *arg)
{
	unsigned k = ssp_event_kind(ev);

	pthread_mutex_lock(&events_mu);
	if (events != NULL)
		json_array_append_new(
		    events,
		    json_pack("{s:s,s:i,s:s,s:s,s:s,s:i}", "kind",
		              k < sizeof event_kinds / sizeof event_kinds[0] ? event_kinds[k]
		                                                             : "unknown",
		              "status", ssp_event_status(ev), "reason", ssp_event_reason(ev),
		              "message", ssp_event_message(ev), "request_id",
		              ssp_event_request_id(ev), "attempt", (int)ssp_event_attempt(ev)));
	pthread_mutex_unlock(&events_mu);
}

static void
log_stderr(enum ssp_log_level level, const char *msg, void *arg)
{
	fprintf(stderr, "libssp[%d]: %s\n", (int)level, msg);
}

static ssp_client *
client_new(void)
{
	const char *fn = getenv("SSP_TEST_FUNCTION"), *budget = getenv("SSP_TEST_BUDGET");
	ssp_options *o = ssp_options_new();
	ssp_client *c;
	char err[256];

	ssp_options_set_function(o, fn != NULL ? fn : "signer");
	ssp_options_set_retry(o, 4, 0.02, 0.1);
	if (budget != NULL)
		ssp_options_set_timeouts(o, 2, atof(budget));
	if (getenv("SSP_TEST_STREAM_IDLE") != NULL)
		ssp_options_set_stream_idle(o, atof(getenv("SSP_TEST_STREAM_IDLE")));
	if (getenv("SSP_TEST_LOG") != NULL)
		ssp_options_set_log(o, SSP_LOG_DEBUG, log_stderr, NULL);
	ssp_options_set_observer(o, observe, NULL);
	c = ssp_client_new(o, err, sizeof err);
	ssp_options_free(o);
	if (c == NULL) {
		fprintf(stderr, "client: %s\n", err);
		exit(2);
	}
	return c;
}

/* The outcome as one JSON object (the caller decrefs). */
static json_t *
outcome(const ssp_response *resp, const ssp_error *e)
{
	json_t *o, *h, *body;
	const char *name, *value;
	const unsigned char *b;
	char *hex;
	size_t i, len;

	if (resp == NULL)
		return json_pack("{s:{s:s,s:i,s:s,s:s,s:i,s:s?}}", "error", "kind",
		                 kinds[ssp_error_kind(e)], "status", ssp_error_status(e), "message",
		                 ssp_error_message(e), "request_id", ssp_error_request_id(e),
		                 "attempts", (int)ssp_error_attempts(e), "function_error",
		                 ssp_error_function_error(e));
	h = json_array();
	for (i = 0; ssp_response_header(resp, i, &name, &value) == 0; i++)
		json_array_append_new(h, json_pack("[ss]", name, value));
	b = ssp_response_body(resp, &len);
	hex = malloc(len * 2 + 1);
	for (i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", b[i]);
	hex[2 * len] = '\0';
	o = json_pack("{s:i,s:o,s:s,s:b}", "status", ssp_response_status(resp), "headers", h,
	              "body_hex", hex, "nul_terminated", b[len] == '\0');
	/* The body as text too, when it is UTF-8. */
	if ((body = json_stringn((const char *)b, len)) != NULL)
		json_object_set_new(o, "body", body);
	json_object_set_new(o, "request_id", json_string(ssp_response_request_id(resp)));
	free(hex);
	return o;
}

static void
print(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static int
cmd_call(int argc, char **argv)
{
	ssp_client *c = client_new();
	ssp_request *req = ssp_request_new(argv[0], argv[1]);
	ssp_response *resp = NULL;
	ssp_error *e = NULL;
	json_t *out;
	int i, rc;

	if (argc > 2 && argv[2][0] != '\0')
		ssp_request_set_body(req, argv[2], strlen(argv[2]));
	for (i = 3; i < argc; i++) {
		char *colon = strchr(argv[i], ':');

		*colon = '\0';
		if (ssp_request_add_header(req, argv[i], colon + 1) != 0)
			return 2;
	}
	events = json_array();
	rc = ssp_roundtrip(c, req, &resp, &e);
	out = outcome(resp, e);
	pthread_mutex_lock(&events_mu);
	json_object_set_new(out, "events", events);
	events = NULL;
	pthread_mutex_unlock(&events_mu);
	print(out);
	ssp_response_free(resp);
	ssp_error_free(e);
	ssp_request_free(req);
	ssp_client_free(c);
	return rc == 0 ? 0 : 1;
}

struct worker {
	pthread_t t;
	ssp_client *c;
	const char *url;
	int id, calls, ok, wrong, failed;
	char first_error[256];
};

/* Each call asks for its own query (?t=thread&i=call): the echoed event
 * must carry it, so that a response given to the wrong caller shows. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char url[512], want[64], body[64];
	ssp_response *resp;
	ssp_error *e;
	ssp_request *req;
	const char *b;
	size_t len;
	int i;

	for (i = 0; i < w->calls; i++) {
		snprintf(url, sizeof url, "%s?t=%d&i=%d", w->url, w->id, i);
		snprintf(body, sizeof body, "body-%d-%d", w->id, i);
		snprintf(want, sizeof want, "\"t\": [\"%d\"]", w->id);
		req = ssp_request_new(i % 2 ? "GET" : "POST", url);
		ssp_request_add_header(req, "X-Caller", want);
		if (i % 2 == 0)
			ssp_request_set_body(req, body, strlen(body));
		if (ssp_roundtrip(w->c, req, &resp, &e) != 0) {
			if (w->failed++ == 0)
				snprintf(w->first_error, sizeof w->first_error, "%s",
				         ssp_error_message(e));
			ssp_error_free(e);
		} else {
			b = ssp_response_body(resp, &len);
			/* The echo handler answers the event as JSON: the query
			 * parameters and, for a POST, the body. */
			if (ssp_response_status(resp) == 200 && strstr(b, want) != NULL &&
			    (i % 2 == 1 || strstr(b, body) != NULL))
				w->ok++;
			else
				w->wrong++;
			ssp_response_free(resp);
		}
		ssp_request_free(req);
	}
	return NULL;
}

static int
cmd_threads(int argc, char **argv)
{
	int n = atoi(argv[0]), calls = atoi(argv[1]), i, ok = 0, wrong = 0, failed = 0;
	ssp_client *c = client_new();
	struct worker *w = calloc((size_t)n, sizeof *w);
	json_t *errs = json_array();

	for (i = 0; i < n; i++) {
		w[i].c = c;
		w[i].url = argv[2];
		w[i].id = i;
		w[i].calls = calls;
		pthread_create(&w[i].t, NULL, worker_main, &w[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		ok += w[i].ok;
		wrong += w[i].wrong;
		failed += w[i].failed;
		if (w[i].failed)
			json_array_append_new(errs, json_string(w[i].first_error));
	}
	print(json_pack("{s:i,s:i,s:i,s:o}", "ok", ok, "wrong", wrong, "failed", failed, "errors",
	                errs));
	ssp_client_free(c);
	free(w);
	return failed || wrong ? 1 : 0;
}

struct async_state {
	int left;
	json_t *results;
	struct event_base *base;
};

struct async_call {
	struct async_state *st;
	int i;
};

static void
async_done(const ssp_response *resp, const ssp_error *e, void *arg)
{
	struct async_call *ac = arg;
	json_t *o = outcome(resp, e);

	json_object_set_new(o, "i", json_integer(ac->i));
	json_array_append_new(ac->st->results, o);
	if (--ac->st->left == 0)
		event_base_loopbreak(ac->st->base);
}

static int
cmd_async(int argc, char **argv)
{
	int n = atoi(argv[0]), i;
	ssp_client *c = client_new();
	struct async_state st;
	struct async_call *calls = calloc((size_t)n, sizeof *calls);
	ssp_loop *loop;
	ssp_call *victim = NULL;
	char url[512];

	st.base = event_base_new();
	st.results = json_array();
	st.left = n - 1;
	loop = ssp_loop_new(c, st.base);
	for (i = 0; i < n; i++) {
		ssp_request *req;
		ssp_call *call;

		snprintf(url, sizeof url, "%s?i=%d", argv[1], i);
		req = ssp_request_new("GET", url);
		calls[i].st = &st;
		calls[i].i = i;
		call = ssp_start(loop, req, async_done, &calls[i]);
		/* The request is encoded at once: it may go now. */
		ssp_request_free(req);
		if (i == 0)
			victim = call;
	}
	/* Cancelled before the loop ran: its callback never comes. */
	ssp_cancel(victim);
	event_base_dispatch(st.base);
	print(json_pack("{s:o,s:i}", "results", st.results, "inflight", ssp_loop_inflight(loop)));
	ssp_loop_free(loop);
	event_base_free(st.base);
	ssp_client_free(c);
	free(calls);
	return 0;
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmd_loop(int argc, char **argv)
{
	double end = now_mono() + atof(argv[0]);
	ssp_client *c = client_new();
	int ok = 0, failed = 0;
	json_t *errs = json_array();

	while (now_mono() < end) {
		ssp_request *req = ssp_request_new("GET", argv[1]);
		ssp_response *resp;
		ssp_error *e;

		if (ssp_roundtrip(c, req, &resp, &e) == 0) {
			ok += ssp_response_status(resp) == 200;
			ssp_response_free(resp);
		} else {
			failed++;
			if (json_array_size(errs) < 5)
				json_array_append_new(errs, json_string(ssp_error_message(e)));
			ssp_error_free(e);
		}
		ssp_request_free(req);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	print(json_pack("{s:i,s:i,s:o}", "ok", ok, "failed", failed, "errors", errs));
	ssp_client_free(c);
	return failed ? 1 : 0;
}

static void
invoke_done(const ssp_response *resp, const ssp_error *e, void *arg)
{
	print(outcome(resp, e));
	event_base_loopbreak(arg);
}

static int
cmd_invoke(int argc, char **argv)
{
	ssp_client *c = client_new();
	struct event_base *base = event_base_new();
	ssp_loop *loop = ssp_loop_new(c, base);

	ssp_invoke_start(loop, "POST", argv[0], strlen(argv[0]), NULL, invoke_done, base);
	event_base_dispatch(base);
	ssp_loop_free(loop);
	event_base_free(base);
	ssp_client_free(c);
	return 0;
}

/* N sequential blocking calls on one client (bench/library.sh): the
 * process's CPU time and the wall time per call, after a first call that
 * opens the connection and finds the credentials. */
static int
cmd_bench(int argc, char **argv)
{
	int n = atoi(argv[0]), i, failed = 0;
	ssp_client *c = client_new();
	ssp_request *req = ssp_request_new("GET", argv[1]);
	ssp_response *resp;
	ssp_error *e;
	struct rusage r0, r1;
	double t0 = 0, cpu;

	for (i = -1; i < n; i++) {
		if (i == 0) {
			getrusage(RUSAGE_SELF, &r0);
			t0 = now_mono();
		}
		if (ssp_roundtrip(c, req, &resp, &e) == 0)
			ssp_response_free(resp);
		else {
			failed++;
			ssp_error_free(e);
		}
	}
	getrusage(RUSAGE_SELF, &r1);
	cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
	               r0.ru_stime.tv_sec) +
	      (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
	               r0.ru_stime.tv_usec) /
	          1e6;
	print(json_pack("{s:i,s:i,s:f,s:f}", "calls", n, "failed", failed, "cpu_us_per_call",
	                cpu * 1e6 / n, "wall_us_per_call", (now_mono() - t0) * 1e6 / n));
	ssp_request_free(req);
	ssp_client_free(c);
	return failed ? 1 : 0;
}

/* Argument checks and outcomes that need no network. */
static int
cmd_api(void)
{
	ssp_options *o = ssp_options_new();
	ssp_request *req;
	ssp_response *resp;
	ssp_error *e;
	ssp_client *c;
	char err[256], *big;
	json_t *out = json_object();

	err[0] = '\0';
	json_object_set_new(out, "no_function",
	                    json_boolean(ssp_client_new(o, err, sizeof err) == NULL && err[0]));
	json_object_set_new(out, "bad_timeouts", json_integer(ssp_options_set_timeouts(o, 1, 0)));
	json_object_set_new(out, "bad_retry", json_integer(ssp_options_set_retry(o, 0, 1, 2)));
	json_object_set_new(out, "bad_endpoint",
	                    json_integer(ssp_options_set_endpoint(o, "ftp://x")));
	ssp_options_free(o);
	json_object_set_new(out, "no_method",
	                    json_boolean(ssp_request_new("", "http://x/") == NULL));
	req = ssp_request_new("GET", "http://example.com/");
	json_object_set_new(out, "header_crlf",
	                    json_integer(ssp_request_add_header(req, "X-A", "a\r\nX-B: b")));
	json_object_set_new(out, "header_colon",
	                    json_integer(ssp_request_add_header(req, "X:A", "a")));
	ssp_request_free(req);

	c = client_new();
	req = ssp_request_new("GET", "ftp://example.com/");
	json_object_set_new(out, "bad_url_rc", json_integer(ssp_roundtrip(c, req, &resp, &e)));
	json_object_set_new(out, "bad_url", outcome(NULL, e));
	ssp_error_free(e);
	ssp_request_free(req);

	req = ssp_request_new("PUT", "http://example.com/upload");
	big = malloc(SSP_MAX_PAYLOAD);
	memset(big, 'a', SSP_MAX_PAYLOAD);
	ssp_request_set_body(req, big, SSP_MAX_PAYLOAD);
	free(big);
	ssp_roundtrip(c, req, &resp, &e);
	json_object_set_new(out, "too_large", outcome(NULL, e));
	ssp_error_free(e);
	ssp_request_free(req);
	json_object_set_new(out, "version", json_string(ssp_version()));
	ssp_client_free(c);
	print(out);
	return 0;
}

/* Streamed calls: what head, body and done saw. */
struct stream_state {
	struct event_base *base;
	ssp_call *call;
	int pause;  /* body returns 1 each time, resumed from a timer */
	int pauses; /* times it paused */
	int pieces;
	size_t total;
	uint32_t fnv; /* FNV-1a of the body */
	unsigned char raw[4096];
	size_t rawlen;
	json_t *head;
	int heads;
	json_t *out;
};

static void
stream_resume(evutil_socket_t fd, short what, void *arg)
{
	struct stream_state *st = arg;

	ssp_resume(st->call);
}

static void
stream_head(const ssp_response *h, void *arg)
{
	struct stream_state *st = arg;
	json_t *hdrs = json_array();
	const char *name, *value;
	size_t i;

	for (i = 0; ssp_response_header(h, i, &name, &value) == 0; i++)
		json_array_append_new(hdrs, json_pack("[ss]", name, value));
	st->heads++;
	json_decref(st->head);
	st->head = json_pack("{s:i,s:o,s:s,s:i}", "status", ssp_response_status(h), "headers", hdrs,
	                     "request_id", ssp_response_request_id(h), "pieces_before", st->pieces);
}

static int
stream_body(const void *data, size_t len, void *arg)
{
	struct stream_state *st = arg;
	const unsigned char *p = data;
	size_t i;

	st->pieces++;
	st->total += len;
	for (i = 0; i < len; i++)
		st->fnv = (st->fnv ^ p[i]) * 16777619u;
	for (i = 0; i < len && st->rawlen < sizeof st->raw; i++)
		st->raw[st->rawlen++] = p[i];
	if (!st->pause)
		return 0;
	st->pauses++;
	event_base_once(st->base, -1, EV_TIMEOUT, stream_resume, st, NULL);
	return 1;
}

static void
stream_done(const ssp_response *resp, const ssp_error *e, void *arg)
{
	struct stream_state *st = arg;
	char hex[2 * sizeof st->raw + 1];
	size_t i;

	for (i = 0; i < st->rawlen; i++)
		sprintf(hex + 2 * i, "%02x", st->raw[i]);
	hex[2 * st->rawlen] = '\0';
	st->out = outcome(resp, e);
	json_object_set_new(st->out, "head", st->head != NULL ? st->head : json_null());
	st->head = NULL;
	json_object_set_new(st->out, "heads", json_integer(st->heads));
	json_object_set_new(st->out, "pieces", json_integer(st->pieces));
	json_object_set_new(st->out, "total", json_integer((json_int_t)st->total));
	json_object_set_new(st->out, "fnv", json_integer(st->fnv));
	json_object_set_new(st->out, "pauses", json_integer(st->pauses));
	json_object_set_new(st->out, "raw_hex", json_string(hex));
	/* The kept-alive connection would keep the loop running. */
	event_base_loopbreak(st->base);
}

/* stream METHOD URL, or rawstream PAYLOAD (ssp_invoke_stream_start());
 * SSP_TEST_PAUSE=1 pauses after every piece. */
static int
cmd_stream(int raw, int argc, char **argv)
{
	ssp_client *c = client_new();
	struct stream_state st;
	ssp_loop *loop;
	ssp_request *req;

	memset(&st, 0, sizeof st);
	st.fnv = 2166136261u;
	st.pause = getenv("SSP_TEST_PAUSE") != NULL;
	st.base = event_base_new();
	loop = ssp_loop_new(c, st.base);
	pthread_mutex_lock(&events_mu);
	events = json_array();
	pthread_mutex_unlock(&events_mu);
	if (raw)
		st.call = ssp_invoke_stream_start(loop, "POST", argv[0], strlen(argv[0]), NULL,
		                                  stream_body, stream_done, &st);
	else {
		req = ssp_request_new(argv[0], argv[1]);
		st.call = ssp_start_stream(loop, req, stream_head, stream_body, stream_done, &st);
		ssp_request_free(req);
	}
	event_base_dispatch(st.base);
	pthread_mutex_lock(&events_mu);
	json_object_set_new(st.out, "events", events);
	events = NULL;
	pthread_mutex_unlock(&events_mu);
	json_object_set_new(st.out, "inflight", json_integer(ssp_loop_inflight(loop)));
	print(st.out);
	ssp_loop_free(loop);
	event_base_free(st.base);
	ssp_client_free(c);
	return 0;
}

/* A caller's provider that has no credentials yet, then (after a few polls
 * of a waiting call) says none is coming: the call must fail with its
 * reason then, not at the end of its budget. */
struct gone_provider {
	pthread_mutex_t mu;
	int gets, refreshes;
};

static int
gone_get(void *arg, ssp_credentials *c, char *err, size_t errlen)
{
	struct gone_provider *p = arg;
	int n;

	pthread_mutex_lock(&p->mu);
	n = ++p->gets;
	pthread_mutex_unlock(&p->mu);
	if (n < 4) {
		snprintf(err, errlen, "no credentials yet");
		return -1;
	}
	snprintf(err, errlen, "no credentials yet (the provider stopped)");
	return SSP_CREDENTIALS_GONE;
}

static void
gone_refresh(void *arg)
{
	struct gone_provider *p = arg;

	pthread_mutex_lock(&p->mu);
	p->refreshes++;
	pthread_mutex_unlock(&p->mu);
}

static uint64_t
gone_generation(void *arg)
{
	return 1;
}

static int
cmd_gone(int argc, char **argv)
{
	struct gone_provider p = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
	ssp_options *o = ssp_options_new();
	ssp_request *req = ssp_request_new("GET", argv[0]);
	ssp_response *resp = NULL;
	ssp_error *e = NULL;
	ssp_client *c;
	json_t *out;
	char err[256];
	int rc;

	ssp_options_set_function(o, "signer");
	ssp_options_set_region(o, "us-east-1");
	/* A budget the test would notice waiting out. */
	ssp_options_set_timeouts(o, 2, 120);
	ssp_options_set_credentials_provider(o, gone_get, gone_refresh, gone_generation, NULL, &p);
	c = ssp_client_new(o, err, sizeof err);
	ssp_options_free(o);
	if (c == NULL)
		return 2;
	rc = ssp_roundtrip(c, req, &resp, &e);
	out = outcome(resp, e);
	json_object_set_new(out, "gets", json_integer(p.gets));
	json_object_set_new(out, "refreshes", json_integer(p.refreshes));
	print(out);
	ssp_response_free(resp);
	ssp_error_free(e);
	ssp_request_free(req);
	ssp_client_free(c);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	int rc = 2;

	if (argc < 2 || ssp_global_init() != 0)
		return 2;
	if (strcmp(argv[1], "call") == 0 && argc >= 4)
		rc = cmd_call(argc - 2, argv + 2);
	else if (strcmp(argv[1], "threads") == 0 && argc == 5)
		rc = cmd_threads(argc - 2, argv + 2);
	else if (strcmp(argv[1], "async") == 0 && argc == 4)
		rc = cmd_async(argc - 2, argv + 2);
	else if (strcmp(argv[1], "loop") == 0 && argc == 4)
		rc = cmd_loop(argc - 2, argv + 2);
	else if (strcmp(argv[1], "invoke") == 0 && argc == 3)
		rc = cmd_invoke(argc - 2, argv + 2);
	else if (strcmp(argv[1], "bench") == 0 && argc == 4)
		rc = cmd_bench(argc - 2, argv + 2);
	else if (strcmp(argv[1], "api") == 0)
		rc = cmd_api();
	else if (strcmp(argv[1], "stream") == 0 && argc == 4)
		rc = cmd_stream(0, argc - 2, argv + 2);
	else if (strcmp(argv[1], "rawstream") == 0 && argc == 3)
		rc = cmd_stream(1, argc - 2, argv + 2);
	else if (strcmp(argv[1], "gone") == 0 && argc == 3)
		rc = cmd_gone(argc - 2, argv + 2);
	ssp_global_cleanup();
	return rc;
}
