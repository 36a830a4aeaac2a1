/*
 * invoke.c: the Lambda Invoke client (see invoke.h).
 *
 * One invocation is a small state machine driven by its loop's event_base:
 *
 *   STEP ──> RUNNING ──> done: 200 ───────────────────────> finish
 *     ^  │        │      throttled / retryable failure ──> BACKOFF ─┐
 *     │  │        │      signature expired (clock skew) ─> STEP     │
 *     │  │        │      expired token ──────────────────> PARKED   │
 *     │  └─ credentials missing or expired ─────────────> PARKED    │
 *     └──────────── timer ───────────────────────────────────────────┘
 *
 * STEP signs and sends one attempt with whatever is left of the budget as
 * its timeout; BACKOFF waits a capped exponential delay with full jitter
 * (or Retry-After); PARKED polls the credentials generation until the
 * provider (the daemon's agent, the caller's, or credprov.c) publishes new
 * credentials. Every state checks the budget, so retries fit
 * inside timeouts.invoke.
 *
 * A streaming invocation is the same machine with another path and another
 * answer: a 200 is an event stream, decoded as it arrives (eventstream.h);
 * its PayloadChunks go to the caller, which may pause the transfer
 * (CURL_WRITEFUNC_PAUSE) and resume it. Before the first byte a failure is
 * retried like any other; after it, it ends the call. Its own timer bounds
 * the wait for the first byte (the budget), then the silence between bytes
 * (the idle limit), never the length of the whole stream.
 */
#include <sys/queue.h>
#include <sys/random.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>

#include "awsenv.h"
#include "curlev.h"
#include "eventstream.h"
#include "httputil.h"
#include "invoke.h"
#include "kvlist.h"
#include "sigv4.h"
#include "sspint.h"
#include "xmalloc.h"

/* The function's response is at most 6 MB; allow for encoding, refuse
 * anything much larger rather than buffering without bound. */
#define INVOKE_MAX_RESPONSE (8 * 1024 * 1024)
/* The largest event stream message accepted (PayloadChunks are far
 * smaller); the decoder holds at most one. */
#define INVOKE_STREAM_MAX_MESSAGE (16 * 1024 * 1024)
/* How often a parked invocation looks for new credentials. */
#define INVOKE_PARK_POLL_MS 25
/* Easy handles kept for reuse. */
#define INVOKE_POOL 16

enum invoke_state {
	INVOKE_STEP,    /* about to send an attempt (timer pending) */
	INVOKE_RUNNING, /* an attempt is in libcurl */
	INVOKE_BACKOFF, /* waiting before the next attempt */
	INVOKE_PARKED,  /* waiting for new credentials */
};

/* Why the last attempt failed, to choose the final answer. */
enum invoke_fail {
	FAIL_NONE,
	FAIL_THROTTLED,
	FAIL_SERVER,
	FAIL_UNREACHABLE,
	FAIL_BROKEN,
};

struct invoke_ctx {
	struct event_base *base;
	struct curlev *cev;
	struct ssp_client *client;
	const struct ssp_options *o; /* the client's */
	unsigned seed;               /* back-off jitter when getrandom() fails */
	/* The last target worked out (invoke_prepare_target), for its region:
	 * parsing the endpoint for every invocation showed in the profile. */
	char target_region[64];
	char *target_url, *target_host, *target_path;
	int target_stream; /* the target is the streaming API's */
	CURL *pool[INVOKE_POOL];
	int npool;
	TAILQ_HEAD(, invoke) calls;
	unsigned ncalls;
};

struct invoke {
	struct invoke_ctx *ctx;
	TAILQ_ENTRY(invoke) entry;
	enum invoke_state state;
	char *payload;
	size_t payload_len;
	void (*payload_free)(void *);
	int idempotent;
	/* invoke_start_failed(): the outcome, given at the first step. */
	enum ssp_error_kind preset_kind;
	int preset_status;
	char *preset_msg;
	char method[16];
	struct timespec deadline;
	struct event *timer;

	char *url;
	char *host; /* Host header: host[:port] */
	char *path; /* the path as sent, for the signature */
	char region[64];

	unsigned sent;     /* attempts sent */
	unsigned failures; /* retryable failures so far */
	int skew_retried;
	int token_retried;
	enum invoke_fail last_fail;
	char last_msg[600];
	uint64_t park_generation;
	int parked_once;
	char cred_err[600];

	/* The attempt in libcurl. */
	CURL *easy;
	struct curl_slist *hdrs;
	struct evbuffer *body;
	struct kvlist resp_headers;
	size_t sent_bytes; /* of the payload, in this attempt */
	int too_large;
	char curl_err[CURL_ERROR_SIZE];
	char request_id[128];

	/* Streaming (InvokeWithResponseStream): the answer is an event stream
	 * whose PayloadChunk bytes go to sdata as they come. */
	int stream;
	invoke_data_fn sdata;
	double idle;            /* seconds without a byte that end a started stream; 0: none */
	struct eventstream *es; /* the attempt's decoder */
	struct event *stimer;   /* the budget until the first byte, then the idle limit */
	int started;            /* bytes went to sdata: no retry any more */
	size_t delivered;
	int pause_next;       /* sdata asked to wait: pause at the next write */
	int paused;           /* the transfer is paused */
	int complete;         /* InvokeComplete arrived */
	int stream_failed;    /* malformed stream or an exception: stream_err says */
	char stream_code[64]; /* InvokeComplete's ErrorCode */
	char stream_err[600];

	invoke_done_cb cb;
	void *arg;
};

static void invoke_step(evutil_socket_t, short, void *);

/* The clock correction all loops of the client share. */
static time_t
invoke_skew(struct ssp_client *client)
{
	time_t skew;

	pthread_mutex_lock(&client->mu);
	skew = client->skew;
	pthread_mutex_unlock(&client->mu);
	return skew;
}

static double
invoke_remaining(const struct invoke *inv)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(inv->deadline.tv_sec - now.tv_sec) +
	       (double)(inv->deadline.tv_nsec - now.tv_nsec) / 1e9;
}

static void
invoke_timer_in(struct invoke *inv, double seconds, enum invoke_state state)
{
	struct timeval tv;

	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	inv->state = state;
	evtimer_add(inv->timer, &tv);
}

/* Tell the client's observer, if any. */
static void
invoke_observe(struct invoke *inv, enum ssp_event_kind kind, int status, const char *reason,
               const char *message)
{
	struct ssp_event ev;

	if (inv->ctx->o->observer == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.status = status;
	ev.reason = reason;
	ev.message = message;
	ev.request_id = inv->request_id;
	ev.attempt = inv->sent;
	client_observe(inv->ctx->client, &ev);
}

/*
 * Copy an error text from Lambda into dst for the log and the client's
 * body: printable ASCII only (no injected lines or control bytes), the
 * first line only, and never what could be a credential. AWS's
 * signature-mismatch message goes on with the canonical request, whose
 * signed headers include X-Amz-Security-Token: that part is cut. Access key
 * ids (AKIA..., ASIA...) keep their first four characters.
 */
static void
invoke_clean_copy(char *dst, size_t len, const char *s)
{
	static const char *const cut[] = {"The Canonical String", "Canonical String",
	                                  "The String-to-Sign"};
	size_t i = 0, j, n;
	char *p;

	if (len == 0)
		return;
	for (; s != NULL && *s != '\0' && *s != '\n' && *s != '\r' && i + 1 < len; s++)
		dst[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : ' ';
	dst[i] = '\0';
	for (j = 0; j < sizeof cut / sizeof cut[0]; j++) {
		if ((p = strstr(dst, cut[j])) != NULL)
			*p = '\0';
	}
	for (p = dst; (p = strstr(p, "A")) != NULL; p++) {
		if (strncmp(p, "AKIA", 4) != 0 && strncmp(p, "ASIA", 4) != 0 &&
		    strncmp(p, "AKID", 4) != 0)
			continue;
		for (n = 4; isupper((unsigned char)p[n]) || isdigit((unsigned char)p[n]); n++)
			;
		if (n < 12)
			continue;
		/* "AKIA" + "..." in place of the rest. */
		memmove(p + 7, p + n, strlen(p + n) + 1);
		memcpy(p + 4, "...", 3);
	}
	n = strlen(dst);
	while (n > 0 && dst[n - 1] == ' ')
		dst[--n] = '\0';
}

static size_t invoke_header_cb(char *, size_t, size_t, void *);
static size_t invoke_write_cb(char *, size_t, size_t, void *);
static size_t invoke_read_cb(char *, size_t, size_t, void *);
static int invoke_seek_cb(void *, curl_off_t, int);

/* Options that never change for a handle of the pool, set when it is made
 * (a curl_easy_reset() and twenty options per attempt showed in the
 * daemon's profile). */
static CURL *
invoke_easy_get(struct invoke_ctx *ctx)
{
	CURL *easy;

	if (ctx->npool > 0)
		return ctx->pool[--ctx->npool];
	if ((easy = curl_easy_init()) == NULL)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, invoke_header_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, invoke_write_cb);
	curl_easy_setopt(easy, CURLOPT_READFUNCTION, invoke_read_cb);
	curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, invoke_seek_cb);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	return easy;
}

static void
invoke_easy_put(struct invoke_ctx *ctx, CURL *easy)
{
	if (ctx->npool < INVOKE_POOL) {
		/* Drop references to what is about to be freed. */
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(easy, CURLOPT_READDATA, NULL);
		curl_easy_setopt(easy, CURLOPT_SEEKDATA, NULL);
		curl_easy_setopt(easy, CURLOPT_HEADERDATA, NULL);
		curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
		ctx->pool[ctx->npool++] = easy;
	} else
		curl_easy_cleanup(easy);
}

/* Release what one attempt used (the easy handle goes back to the pool). */
static void
invoke_attempt_clear(struct invoke *inv)
{
	if (inv->easy != NULL) {
		/* A streaming handle may have been paused: not worth reusing. */
		if (inv->stream)
			curl_easy_cleanup(inv->easy);
		else
			invoke_easy_put(inv->ctx, inv->easy);
		inv->easy = NULL;
	}
	curl_slist_free_all(inv->hdrs);
	inv->hdrs = NULL;
	if (inv->body != NULL) {
		evbuffer_free(inv->body);
		inv->body = NULL;
	}
	kvlist_free(&inv->resp_headers);
	inv->too_large = 0;
	inv->sent_bytes = 0;
	inv->curl_err[0] = '\0';
	if (inv->es != NULL) {
		eventstream_free(inv->es);
		inv->es = NULL;
	}
	if (inv->stimer != NULL)
		evtimer_del(inv->stimer);
	inv->pause_next = inv->paused = 0;
	inv->complete = 0;
}

static void
invoke_free(struct invoke *inv)
{
	struct invoke_ctx *ctx = inv->ctx;

	if (inv->state == INVOKE_RUNNING && inv->easy != NULL)
		curlev_remove(ctx->cev, inv->easy);
	invoke_attempt_clear(inv);
	event_free(inv->timer);
	if (inv->stimer != NULL)
		event_free(inv->stimer);
	TAILQ_REMOVE(&ctx->calls, inv, entry);
	ctx->ncalls--;
	if (inv->payload_free != NULL)
		inv->payload_free(inv->payload);
	free(inv->preset_msg);
	free(inv->url);
	free(inv->host);
	free(inv->path);
	free(inv);
}

/* Report and free. */
static void
invoke_finish(struct invoke *inv, int status, enum ssp_error_kind kind, const char *message,
              const char *payload, size_t payload_len, const char *function_error)
{
	struct invoke_result r;

	memset(&r, 0, sizeof r);
	r.status = status;
	r.kind = kind;
	r.message = message;
	r.payload = payload;
	r.payload_len = payload_len;
	r.request_id = inv->request_id;
	r.function_error = function_error;
	r.attempts = inv->sent;
	r.stream_bytes = inv->delivered;
	inv->cb(&r, inv->arg);
	invoke_free(inv);
}

static void invoke_fail(struct invoke *inv, enum ssp_error_kind kind, int status, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void
invoke_fail(struct invoke *inv, enum ssp_error_kind kind, int status, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	invoke_finish(inv, status, kind, msg, NULL, 0, NULL);
}

/* The final answer for the last retryable failure. */
static void
invoke_give_up(struct invoke *inv)
{
	switch (inv->last_fail) {
	case FAIL_THROTTLED:
		invoke_fail(inv, SSP_ERR_THROTTLED, 503,
		            "Lambda is throttling the function (%s); gave up after %u attempts",
		            inv->last_msg, inv->sent);
		break;
	case FAIL_UNREACHABLE:
		invoke_fail(inv, SSP_ERR_UNREACHABLE, 502, "cannot reach the Lambda endpoint: %s",
		            inv->last_msg);
		break;
	case FAIL_BROKEN:
		invoke_fail(inv, SSP_ERR_UNREACHABLE, 502,
		            "the connection to the Lambda endpoint failed: %s", inv->last_msg);
		break;
	case FAIL_SERVER:
	case FAIL_NONE:
	default:
		invoke_fail(inv, SSP_ERR_LAMBDA, 502, "lambda invoke failed: %s", inv->last_msg);
		break;
	}
}

/* Full-jitter back-off: a uniform delay in [0, min(cap, base * 2^n)]. */
static double
invoke_backoff(struct invoke_ctx *ctx, unsigned failures)
{
	double ceiling = ctx->o->backoff_base;
	uint32_t r;
	unsigned i;

	for (i = 1; i < failures && ceiling < ctx->o->backoff_cap; i++)
		ceiling *= 2;
	if (ceiling > ctx->o->backoff_cap)
		ceiling = ctx->o->backoff_cap;
	/* getrandom(), not libevent's RNG: that one is only thread-safe
	 * after evthread_use_pthreads(), which is the caller's business. */
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint32_t)rand_r(&ctx->seed);
	return ceiling * ((double)r / (double)UINT32_MAX);
}

/* A retryable failure: wait and try again if attempts and budget allow,
 * else give the final answer. retry_after < 0 when the server gave none;
 * reason names the retry for the observer (ssp_event_reason()). */
static void
invoke_retry_later(struct invoke *inv, enum invoke_fail why, const char *reason, double retry_after)
{
	struct invoke_ctx *ctx = inv->ctx;
	double delay, left;

	inv->last_fail = why;
	inv->failures++;
	if (inv->failures >= (unsigned)ctx->o->attempts) {
		invoke_give_up(inv);
		return;
	}
	delay = invoke_backoff(ctx, inv->failures);
	if (retry_after > delay)
		delay = retry_after;
	left = invoke_remaining(inv);
	/* An attempt needs some time too: do not wake up only to time out. */
	if (delay + 0.05 >= left) {
		invoke_give_up(inv);
		return;
	}
	client_log(ctx->client, SSP_LOG_DEBUG,
	           "invoke: attempt %u failed (%s); retrying in %.0f ms", inv->sent, inv->last_msg,
	           delay * 1000);
	invoke_observe(inv, SSP_EVENT_RETRY, 0, reason, inv->last_msg);
	invoke_timer_in(inv, delay, INVOKE_BACKOFF);
}

/* libcurl: response headers, one line at a time (a new status line starts
 * a new set: 100 Continue, proxies). */
static size_t
invoke_header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct invoke *inv = arg;
	size_t len = size * n, nlen;
	const char *colon, *v, *end;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		kvlist_free(&inv->resp_headers);
		return len;
	}
	colon = memchr(data, ':', len);
	if (colon == NULL)
		return len;
	nlen = (size_t)(colon - data);
	v = colon + 1;
	end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	kvlist_addn(&inv->resp_headers, data, nlen, v, (size_t)(end - v));
	return len;
}

static size_t
invoke_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct invoke *inv = arg;
	size_t len = size * n;

	if (evbuffer_get_length(inv->body) + len > INVOKE_MAX_RESPONSE) {
		inv->too_large = 1;
		return 0;
	}
	evbuffer_add(inv->body, data, len);
	return len;
}

/* The budget until the first byte, then the idle limit (none while the
 * consumer holds the stream paused: a slow consumer is not Lambda's
 * silence). */
static void
invoke_stream_arm(struct invoke *inv)
{
	double t = inv->started ? inv->idle : invoke_remaining(inv);
	struct timeval tv;

	if (inv->started && (inv->idle <= 0 || inv->paused)) {
		evtimer_del(inv->stimer);
		return;
	}
	if (t < 0.001)
		t = 0.001;
	tv.tv_sec = (time_t)t;
	tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
	evtimer_add(inv->stimer, &tv);
}

/* A string field of a small JSON payload, cleaned, into dst. */
static void
invoke_json_field(const unsigned char *p, size_t len, const char *const *names, char *dst,
                  size_t dlen)
{
	json_t *root = json_loadb((const char *)p, len, 0, NULL), *v;

	dst[0] = '\0';
	for (; root != NULL && *names != NULL; names++) {
		if (json_is_string(v = json_object_get(root, *names))) {
			invoke_clean_copy(dst, dlen, json_string_value(v));
			break;
		}
	}
	json_decref(root);
}

/* One event stream message. -1 when the stream failed (stream_err says). */
static int
invoke_stream_message(struct invoke *inv, const struct eventstream_message *m)
{
	static const char *const msg_fields[] = {"message", "Message", "ErrorMessage", NULL};
	static const char *const code_fields[] = {"ErrorCode", NULL};
	static const char *const detail_fields[] = {"ErrorDetails", NULL};
	const struct eventstream_header *h;
	char raw[128], type[128], msg[400];

	if (eventstream_header_is(m, ":message-type", "exception") ||
	    eventstream_header_is(m, ":message-type", "error")) {
		h = eventstream_header(m, ":exception-type");
		if (h == NULL)
			h = eventstream_header(m, ":error-code");
		snprintf(raw, sizeof raw, "%.*s",
		         h != NULL && h->type == EVENTSTREAM_STRING ? (int)h->data_len : 5,
		         h != NULL && h->type == EVENTSTREAM_STRING ? (const char *)h->data
		                                                    : "error");
		invoke_clean_copy(type, sizeof type, raw);
		invoke_json_field(m->payload, m->payload_len, msg_fields, msg, sizeof msg);
		snprintf(inv->stream_err, sizeof inv->stream_err,
		         "Lambda ended the response stream with %s%s%s", type, msg[0] ? ": " : "",
		         msg);
		inv->stream_failed = 1;
		return -1;
	}
	if (eventstream_header_is(m, ":event-type", "PayloadChunk")) {
		if (m->payload_len == 0 || inv->complete)
			return 0;
		inv->started = 1;
		inv->delivered += m->payload_len;
		if (inv->sdata(m->payload, m->payload_len, inv->arg) != 0)
			inv->pause_next = 1;
		return 0;
	}
	if (eventstream_header_is(m, ":event-type", "InvokeComplete")) {
		inv->complete = 1;
		invoke_json_field(m->payload, m->payload_len, code_fields, inv->stream_code,
		                  sizeof inv->stream_code);
		if (inv->stream_code[0] != '\0')
			invoke_json_field(m->payload, m->payload_len, detail_fields,
			                  inv->stream_err, sizeof inv->stream_err);
	}
	return 0;
}

/* libcurl: the answer of a streaming attempt. A 200 is an event stream,
 * decoded as it comes; anything else is an error body as for Invoke. */
static size_t
invoke_stream_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct invoke *inv = arg;
	struct eventstream_message m;
	const unsigned char *p = (const unsigned char *)data;
	const char *v;
	size_t len = size * n;
	long status = 0;
	char err[256];
	int r;

	curl_easy_getinfo(inv->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return invoke_write_cb(data, size, n, arg);
	/* The request id now, for the consumer's head (ssp_start_stream()). */
	if (inv->request_id[0] == '\0' &&
	    (v = kvlist_get(&inv->resp_headers, "X-Amzn-RequestId")) != NULL)
		invoke_clean_copy(inv->request_id, sizeof inv->request_id, v);
	if (inv->pause_next) {
		/* The consumer is full: libcurl keeps these bytes until
		 * invoke_resume(). */
		inv->pause_next = 0;
		inv->paused = 1;
		invoke_stream_arm(inv);
		return CURL_WRITEFUNC_PAUSE;
	}
	while ((r = eventstream_decode(inv->es, &p, &len, &m, err, sizeof err)) == 1)
		if (invoke_stream_message(inv, &m) != 0)
			return 0;
	if (r < 0) {
		snprintf(inv->stream_err, sizeof inv->stream_err,
		         "the response stream from Lambda is malformed (%s)", err);
		inv->stream_failed = 1;
		return 0;
	}
	if (inv->started)
		invoke_stream_arm(inv);
	return size * n;
}

/* libcurl: the payload, for an upload through the read callback. */
static size_t
invoke_read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct invoke *inv = arg;
	size_t len = size * n, left = inv->payload_len - inv->sent_bytes;

	if (len > left)
		len = left;
	memcpy(buf, inv->payload + inv->sent_bytes, len);
	inv->sent_bytes += len;
	return len;
}

/*
 * libcurl: start the payload again. libcurl silently resends a request
 * whose reused connection died without an answer; that is harmless for an
 * idempotent method, but for POST or PATCH the function may already have
 * run, so only an attempt that has not sent any of its body may start over
 * (CURLE_SEND_FAIL_REWIND otherwise, answered 502 without a retry).
 */
static int
invoke_seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct invoke *inv = arg;

	if (origin != SEEK_SET || offset != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (!inv->idempotent && inv->sent_bytes > 0)
		return CURL_SEEKFUNC_FAIL;
	inv->sent_bytes = 0;
	return CURL_SEEKFUNC_OK;
}

/* The error name and message of a Lambda API error: the name from
 * X-Amzn-ErrorType (without its ":http://..." suffix) or the body's
 * __type, the message from the body's message/Message. */
static void
invoke_api_error(struct invoke *inv, const char *body, size_t len, char *type, size_t tlen,
                 char *msg, size_t mlen)
{
	const char *t, *m = NULL, *colon;
	json_t *root, *v;

	type[0] = msg[0] = '\0';
	root = json_loadb(body, len, 0, NULL);
	t = kvlist_get(&inv->resp_headers, "X-Amzn-ErrorType");
	if ((t == NULL || *t == '\0') && root != NULL &&
	    json_is_string(v = json_object_get(root, "__type")))
		t = json_string_value(v);
	if (t != NULL) {
		/* "Name:http://internal..." and "ns#Name" both name Name. */
		colon = strchr(t, '#');
		if (colon != NULL)
			t = colon + 1;
		colon = strchr(t, ':');
		snprintf(type, tlen, "%.*s", (int)(colon ? (size_t)(colon - t) : strlen(t)), t);
	}
	if (root != NULL) {
		if (json_is_string(v = json_object_get(root, "message")) ||
		    json_is_string(v = json_object_get(root, "Message")) ||
		    json_is_string(v = json_object_get(root, "errorMessage")))
			m = json_string_value(v);
	}
	invoke_clean_copy(msg, mlen, m);
	if (type[0] == '\0') {
		long status = 0;

		curl_easy_getinfo(inv->easy, CURLINFO_RESPONSE_CODE, &status);
		snprintf(type, tlen, "HTTP %ld %s", status, http_reason((int)status));
	}
	json_decref(root);
}

/* Seconds from a Retry-After header (delta-seconds or an HTTP date), or -1. */
static double
invoke_retry_after(const struct invoke *inv)
{
	const char *v = kvlist_get(&inv->resp_headers, "Retry-After");
	char *end;
	double d;
	time_t t;

	if (v == NULL || *v == '\0')
		return -1;
	d = strtod(v, &end);
	if (end != v && *end == '\0' && d >= 0)
		return d;
	t = curl_getdate(v, NULL);
	if (t == -1)
		return -1;
	d = difftime(t, time(NULL) + invoke_skew(inv->ctx->client));
	return d < 0 ? 0 : d;
}

static int
invoke_is_skew_error(const char *type, const char *msg)
{
	if (strcmp(type, "RequestTimeTooSkewed") == 0 || strcmp(type, "RequestExpired") == 0)
		return 1;
	if (strcmp(type, "InvalidSignatureException") == 0 ||
	    strcmp(type, "SignatureDoesNotMatch") == 0)
		return strstr(msg, "Signature expired") != NULL ||
		       strstr(msg, "Signature not yet current") != NULL ||
		       strstr(msg, "too skewed") != NULL;
	return 0;
}

/* The retry reason of a connection that failed: "timeout" when the
 * system or libcurl said it timed out, else "connection". */
static const char *
invoke_conn_reason(const struct invoke *inv)
{
	return strstr(inv->last_msg, "timed out") != NULL ? "timeout" : "connection";
}

/* A function error: 200 from Lambda with X-Amz-Function-Error. */
static void
invoke_function_error(struct invoke *inv, const char *kind, const char *body, size_t len)
{
	char type[128], msg[512], text[768];
	json_t *root, *v;

	type[0] = msg[0] = '\0';
	root = json_loadb(body, len, 0, NULL);
	if (root != NULL) {
		if (json_is_string(v = json_object_get(root, "errorType")))
			invoke_clean_copy(type, sizeof type, json_string_value(v));
		if (json_is_string(v = json_object_get(root, "errorMessage")))
			invoke_clean_copy(msg, sizeof msg, json_string_value(v));
		json_decref(root);
	}
	/* The function's failure, not ours: a warning. */
	client_log(inv->ctx->client, SSP_LOG_WARN, "function %s failed (%s, request %s): %s: %s",
	           inv->ctx->o->function, kind, inv->request_id[0] ? inv->request_id : "-",
	           type[0] ? type : "-", msg[0] ? msg : "-");
	snprintf(text, sizeof text, "the function failed (%s): %s%s%s", kind,
	         type[0] ? type : "error", msg[0] ? ": " : "", msg);
	invoke_observe(inv, SSP_EVENT_FUNCTION_ERROR, 0, kind, text);
	invoke_finish(inv, 502, SSP_ERR_FUNCTION, text, NULL, 0, kind);
}

/* The stream's timer: no first byte within the budget, or silence. */
static void
invoke_stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct invoke *inv = arg;
	struct invoke_ctx *ctx = inv->ctx;

	if (inv->state != INVOKE_RUNNING || inv->easy == NULL)
		return;
	curlev_remove(ctx->cev, inv->easy);
	invoke_attempt_clear(inv);
	if (!inv->started)
		invoke_fail(inv, SSP_ERR_TIMEOUT, 504,
		            "the Lambda invocation timed out after %.1f s", ctx->o->budget);
	else
		invoke_fail(inv, SSP_ERR_TIMEOUT, 504,
		            "the response stream from Lambda stalled: no byte for %.1f s",
		            inv->idle);
}

/* A streaming attempt ended. 1 when handled here, 0 to go on with the
 * answer as any Invoke's (an error before the first byte: retries). */
static int
invoke_stream_done(struct invoke *inv, CURLcode res, long status)
{
	struct invoke_ctx *ctx = inv->ctx;
	char err[256], text[768];
	const char *why;

	if (inv->stream_failed) {
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_LAMBDA, 502, "%s", inv->stream_err);
		return 1;
	}
	if (res != CURLE_OK && inv->started) {
		why = inv->curl_err[0] ? inv->curl_err : curl_easy_strerror(res);
		invoke_clean_copy(inv->last_msg, sizeof inv->last_msg, why);
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_UNREACHABLE, 502,
		            "the response stream from Lambda broke: %s", inv->last_msg);
		return 1;
	}
	if (res != CURLE_OK || status != 200)
		return 0;
	if (eventstream_finish(inv->es, err, sizeof err) != 0) {
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_LAMBDA, 502, "the response stream from Lambda was cut: %s",
		            err);
		return 1;
	}
	if (!inv->complete) {
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_LAMBDA, 502,
		            "the response stream from Lambda ended without InvokeComplete");
		return 1;
	}
	invoke_attempt_clear(inv);
	if (inv->stream_code[0] != '\0') {
		/* The function's failure, not ours: a warning. */
		client_log(ctx->client, SSP_LOG_WARN,
		           "function %s failed while streaming (%s, request %s): %s",
		           ctx->o->function, inv->stream_code,
		           inv->request_id[0] ? inv->request_id : "-",
		           inv->stream_err[0] ? inv->stream_err : "-");
		snprintf(text, sizeof text, "the function failed (%s)%s%s", inv->stream_code,
		         inv->stream_err[0] ? ": " : "", inv->stream_err);
		invoke_observe(inv, SSP_EVENT_FUNCTION_ERROR, 0, inv->stream_code, text);
		invoke_finish(inv, 502, SSP_ERR_FUNCTION, text, NULL, 0, inv->stream_code);
		return 1;
	}
	invoke_finish(inv, 200, 0, NULL, NULL, 0, NULL);
	return 1;
}

/* curlev: an attempt ended. */
static void
invoke_done(CURL *easy, CURLcode res, void *arg)
{
	struct invoke *inv = arg;
	struct invoke_ctx *ctx = inv->ctx;
	char type[128], msg[400], *body;
	const char *v;
	size_t len;
	long status = 0;
	time_t date;

	inv->state = INVOKE_STEP;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	v = kvlist_get(&inv->resp_headers, "X-Amzn-RequestId");
	invoke_clean_copy(inv->request_id, sizeof inv->request_id, v ? v : "");
	invoke_observe(inv, SSP_EVENT_ATTEMPT, res == CURLE_OK ? (int)status : 0, NULL, NULL);
	if (inv->stream && invoke_stream_done(inv, res, status))
		return;

	if (res != CURLE_OK) {
		const char *why = inv->curl_err[0] ? inv->curl_err : curl_easy_strerror(res);

		if (res == CURLE_SEND_FAIL_REWIND)
			why = "the connection closed without an answer after the request was sent";

		invoke_clean_copy(inv->last_msg, sizeof inv->last_msg, why);
		switch (res) {
		case CURLE_WRITE_ERROR:
			if (inv->too_large) {
				invoke_attempt_clear(inv);
				invoke_fail(inv, SSP_ERR_FUNCTION, 502,
				            "the function's response is larger than %d bytes",
				            INVOKE_MAX_RESPONSE);
				return;
			}
			break;
		case CURLE_OPERATION_TIMEDOUT:
			invoke_attempt_clear(inv);
			if (invoke_remaining(inv) <= 0.05) {
				invoke_fail(inv, SSP_ERR_TIMEOUT, 504,
				            "the Lambda invocation timed out after %.1f s",
				            ctx->o->budget);
				return;
			}
			/* The connect timeout, not the budget: nothing was sent. */
			invoke_retry_later(inv, FAIL_UNREACHABLE, "timeout", -1);
			return;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
			/* The request never left: safe to retry for any method. */
			invoke_attempt_clear(inv);
			invoke_retry_later(inv, FAIL_UNREACHABLE, invoke_conn_reason(inv), -1);
			return;
		case CURLE_SEND_FAIL_REWIND:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			/* The function may have run: only idempotent methods. */
			invoke_attempt_clear(inv);
			if (inv->idempotent) {
				invoke_retry_later(inv, FAIL_BROKEN, invoke_conn_reason(inv), -1);
				return;
			}
			invoke_fail(
			    inv, SSP_ERR_UNREACHABLE, 502,
			    "the connection to the Lambda endpoint failed: %s (not retried: %s "
			    "is not idempotent)",
			    inv->last_msg, inv->method);
			return;
		default:
			break;
		}
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_LAMBDA, 502, "lambda invoke failed: %s", inv->last_msg);
		return;
	}

	len = evbuffer_get_length(inv->body);
	body = (char *)evbuffer_pullup(inv->body, -1);
	if (body == NULL)
		body = (char *)"";

	if (status == 200) {
		v = kvlist_get(&inv->resp_headers, "X-Amz-Function-Error");
		if (v != NULL) {
			char kind[64];

			invoke_clean_copy(kind, sizeof kind, v);
			invoke_function_error(inv, kind, body, len);
			return;
		}
		invoke_finish(inv, 200, 0, NULL, body, len, NULL);
		return;
	}

	invoke_api_error(inv, body, len, type, sizeof type, msg, sizeof msg);
	snprintf(inv->last_msg, sizeof inv->last_msg, "%s%s%s", type, msg[0] ? ": " : "", msg);
	client_log(ctx->client, SSP_LOG_DEBUG,
	           "lambda invoke: HTTP %ld %s (request %s, attempt %u)", status, inv->last_msg,
	           inv->request_id[0] ? inv->request_id : "-", inv->sent);

	if (status == 403 && !inv->skew_retried && invoke_is_skew_error(type, msg) &&
	    (v = kvlist_get(&inv->resp_headers, "Date")) != NULL &&
	    (date = curl_getdate(v, NULL)) != -1) {
		/* Correct the clock for the whole client and retry once at once. */
		time_t skew = date - time(NULL);

		pthread_mutex_lock(&ctx->client->mu);
		ctx->client->skew = skew;
		pthread_mutex_unlock(&ctx->client->mu);
		inv->skew_retried = 1;
		invoke_observe(inv, SSP_EVENT_RETRY, 0, "clock_skew", inv->last_msg);
		client_log(ctx->client, SSP_LOG_WARN,
		           "clock skew: Lambda's clock is %+lds from ours; signing with it",
		           (long)skew);
		invoke_attempt_clear(inv);
		invoke_timer_in(inv, 0, INVOKE_STEP);
		return;
	}
	if (status == 403 && !inv->token_retried &&
	    (strcmp(type, "ExpiredTokenException") == 0 ||
	     strcmp(type, "UnrecognizedClientException") == 0)) {
		/* The credentials went stale under us: ask for new ones. */
		inv->token_retried = 1;
		invoke_attempt_clear(inv);
		client_creds_refresh(ctx->client);
		inv->park_generation = client_creds_generation(ctx->client);
		inv->parked_once = 1;
		memcpy(inv->cred_err, inv->last_msg, sizeof inv->cred_err);
		invoke_timer_in(inv, INVOKE_PARK_POLL_MS / 1000.0, INVOKE_PARKED);
		return;
	}
	if (status == 429) {
		double ra = invoke_retry_after(inv);

		invoke_observe(inv, SSP_EVENT_THROTTLED, 0, NULL, inv->last_msg);
		invoke_attempt_clear(inv);
		if (ra > 0 && ra + 0.05 >= invoke_remaining(inv)) {
			inv->last_fail = FAIL_THROTTLED;
			invoke_give_up(inv);
			return;
		}
		invoke_retry_later(inv, FAIL_THROTTLED, "throttled", ra);
		return;
	}
	if (status >= 500) {
		invoke_attempt_clear(inv);
		if (inv->idempotent) {
			invoke_retry_later(inv, FAIL_SERVER, "5xx", -1);
			return;
		}
		invoke_fail(inv, SSP_ERR_LAMBDA, 502,
		            "lambda invoke failed: %s (not retried: %s is not idempotent)",
		            inv->last_msg, inv->method);
		return;
	}
	invoke_attempt_clear(inv);
	invoke_fail(inv, SSP_ERR_LAMBDA, 502, "lambda invoke failed: %s", inv->last_msg);
}

/* Where to send: the endpoint for the region and the URL-encoded name. */
static int
invoke_prepare_target(struct invoke *inv, char *err, size_t errlen)
{
	struct invoke_ctx *ctx = inv->ctx;
	char *endpoint, *name, *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	size_t plen;
	CURLU *u;
	int rc = -1;

	if (ctx->o->region != NULL)
		snprintf(inv->region, sizeof inv->region, "%s", ctx->o->region);
	else if (awsenv_region_from_arn(ctx->o->function, inv->region, sizeof inv->region) != 0 &&
	         client_region(ctx->client, inv->region, sizeof inv->region, err, errlen) != 0)
		return -1;
	if (ctx->target_url != NULL && ctx->target_stream == inv->stream &&
	    strcmp(ctx->target_region, inv->region) == 0) {
		inv->url = xstrdup(ctx->target_url);
		inv->host = xstrdup(ctx->target_host);
		inv->path = xstrdup(ctx->target_path);
		return 0;
	}
	endpoint = ctx->o->endpoint != NULL ? xstrdup(ctx->o->endpoint)
	                                    : awsenv_endpoint("lambda", inv->region);
	if (endpoint == NULL) {
		snprintf(err, errlen, "no Lambda endpoint for region %s", inv->region);
		return -1;
	}
	u = curl_url();
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "the Lambda endpoint %s is not a valid URL", endpoint);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	plen = path ? strlen(path) : 0;
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	name = sigv4_uri_encode(ctx->o->function, strlen(ctx->o->function), 0);
	if (inv->stream)
		xasprintf(&inv->path, "%.*s/2021-11-15/functions/%s/response-streaming-invocations",
		          (int)plen, path ? path : "", name);
	else
		xasprintf(&inv->path, "%.*s/2015-03-31/functions/%s/invocations", (int)plen,
		          path ? path : "", name);
	free(name);
	if ((strcmp(scheme, "http") == 0 && port != NULL && strcmp(port, "80") == 0) ||
	    (strcmp(scheme, "https") == 0 && port != NULL && strcmp(port, "443") == 0)) {
		curl_free(port);
		port = NULL;
	}
	xasprintf(&inv->host, "%s%s%s", host, port ? ":" : "", port ? port : "");
	xasprintf(&inv->url, "%s://%s%s", scheme, inv->host, inv->path);
	free(ctx->target_url);
	free(ctx->target_host);
	free(ctx->target_path);
	ctx->target_url = xstrdup(inv->url);
	ctx->target_host = xstrdup(inv->host);
	ctx->target_path = xstrdup(inv->path);
	snprintf(ctx->target_region, sizeof ctx->target_region, "%s", inv->region);
	ctx->target_stream = inv->stream;
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	free(endpoint);
	return rc;
}

/* Credentials are missing or expired (gen: the provider's generation seen
 * before asking it): ask the provider and wait for a new generation, or
 * give up when it already came and did not help, or when the provider said
 * none is coming (gone). */
static void
invoke_park(struct invoke *inv, uint64_t gen, int gone)
{
	struct invoke_ctx *ctx = inv->ctx;
	int bad;

	if (gone) {
		invoke_fail(inv, SSP_ERR_CREDENTIALS, 503, "%s", inv->cred_err);
		return;
	}
	if (inv->parked_once && gen != inv->park_generation) {
		/* The provider published and it is still unusable. */
		pthread_mutex_lock(&ctx->client->mu);
		ctx->client->bad_generation = gen;
		ctx->client->bad_generation_set = 1;
		pthread_mutex_unlock(&ctx->client->mu);
		invoke_fail(inv, SSP_ERR_CREDENTIALS, 503, "%s", inv->cred_err);
		return;
	}
	pthread_mutex_lock(&ctx->client->mu);
	bad = ctx->client->bad_generation_set && ctx->client->bad_generation == gen;
	pthread_mutex_unlock(&ctx->client->mu);
	if (!inv->parked_once && bad) {
		invoke_fail(inv, SSP_ERR_CREDENTIALS, 503, "%s", inv->cred_err);
		return;
	}
	if (!inv->parked_once) {
		client_creds_refresh(ctx->client);
		inv->park_generation = gen;
		inv->parked_once = 1;
		/* Not the message: the provider reports that. */
		client_log(ctx->client, SSP_LOG_DEBUG,
		           "invoke: no usable credentials yet; waiting for a refresh");
	}
	invoke_timer_in(inv, INVOKE_PARK_POLL_MS / 1000.0, INVOKE_PARKED);
}

/* Sign and send one attempt. */
static void
invoke_send(struct invoke *inv)
{
	struct invoke_ctx *ctx = inv->ctx;
	struct creds_ref *creds;
	uint64_t gen;
	int gone;
	struct sigv4_input in;
	struct sigv4_output out;
	struct kvlist h = KVLIST_INIT;
	char err[512], *line;
	double left = invoke_remaining(inv);
	long timeout_ms, connect_ms;
	size_t i;

	creds = client_creds_get(ctx->client, &gen, &gone, inv->cred_err, sizeof inv->cred_err);
	if (creds == NULL) {
		invoke_park(inv, gen, gone);
		return;
	}

	kvlist_add(&h, "Host", inv->host);
	kvlist_add(&h, "Content-Type", "application/json");
	kvlist_add(&h, "X-Amz-Invocation-Type", "RequestResponse");
	memset(&in, 0, sizeof in);
	memset(&out, 0, sizeof out);
	in.method = "POST";
	in.path = inv->path;
	in.headers = &h;
	in.body = inv->payload;
	in.body_len = inv->payload_len;
	in.region = inv->region;
	in.service = "lambda";
	in.when = time(NULL) + invoke_skew(ctx->client);
	if (sigv4_sign(&creds->c, &in, &out, err, sizeof err) != 0) {
		client_creds_release(ctx->client, creds);
		kvlist_free(&h);
		invoke_fail(inv, SSP_ERR_LAMBDA, 502, "cannot sign the Lambda request: %s", err);
		return;
	}
	sigv4_apply(&creds->c, &out, &h);
	sigv4_output_free(&out);
	client_creds_release(ctx->client, creds);

	/* No "Expect: 100-continue" round trip, no default Accept. */
	kvlist_add(&h, "Expect", "");
	kvlist_add(&h, "Accept", "");
	for (i = 0; i < h.n; i++) {
		if (h.v[i].value[0] == '\0')
			xasprintf(&line, "%s:", h.v[i].name);
		else
			xasprintf(&line, "%s: %s", h.v[i].name, h.v[i].value);
		inv->hdrs = curl_slist_append(inv->hdrs, line);
		xfree_secret(line);
	}
	/* The list held the signature and the session token. */
	for (i = 0; i < h.n; i++) {
		explicit_bzero(h.v[i].value, strlen(h.v[i].value));
	}
	kvlist_free(&h);

	inv->easy = invoke_easy_get(ctx);
	inv->body = evbuffer_new();
	if (inv->easy == NULL || inv->body == NULL || inv->hdrs == NULL) {
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_RESOURCES, 502,
		            "cannot start the Lambda request (out of resources)");
		return;
	}
	timeout_ms = (long)(left * 1000);
	if (timeout_ms < 1)
		timeout_ms = 1;
	connect_ms = (long)(ctx->o->connect_timeout * 1000);
	if (connect_ms <= 0 || connect_ms > timeout_ms)
		connect_ms = timeout_ms;

	awsenv_curl_setup(inv->easy, ctx->o->egress_proxy);
	if (ctx->o->ca_bundle != NULL)
		curl_easy_setopt(inv->easy, CURLOPT_CAINFO, ctx->o->ca_bundle);
	curl_easy_setopt(inv->easy, CURLOPT_URL, inv->url);
	/*
	 * The body of an idempotent method goes in the request's own write
	 * (CURLOPT_POSTFIELDS: one send for headers and body, not two).
	 * Otherwise through the read callback, to decide about libcurl's own
	 * resends on a reused connection that died (invoke_seek_cb): a POST
	 * must not run the function twice. libcurl resends POSTFIELDS by
	 * itself, which is harmless when the method is idempotent.
	 */
	curl_easy_setopt(inv->easy, CURLOPT_POSTFIELDS, inv->idempotent ? inv->payload : NULL);
	curl_easy_setopt(inv->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(inv->easy, CURLOPT_READDATA, inv);
	curl_easy_setopt(inv->easy, CURLOPT_SEEKDATA, inv);
	curl_easy_setopt(inv->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)inv->payload_len);
	curl_easy_setopt(inv->easy, CURLOPT_HTTPHEADER, inv->hdrs);
	curl_easy_setopt(inv->easy, CURLOPT_HEADERDATA, inv);
	curl_easy_setopt(inv->easy, CURLOPT_WRITEDATA, inv);
	curl_easy_setopt(inv->easy, CURLOPT_ERRORBUFFER, inv->curl_err);
	/* A stream's limits are ours (invoke_stream_arm): the budget until
	 * the first byte, then the idle limit, whatever the length. */
	if (!inv->stream)
		curl_easy_setopt(inv->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	else {
		curl_easy_setopt(inv->easy, CURLOPT_TIMEOUT_MS, 0L);
		curl_easy_setopt(inv->easy, CURLOPT_WRITEFUNCTION, invoke_stream_write_cb);
		inv->es = eventstream_new(INVOKE_STREAM_MAX_MESSAGE);
		inv->started = 0;
		inv->stream_code[0] = inv->stream_err[0] = '\0';
		invoke_stream_arm(inv);
	}
	curl_easy_setopt(inv->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	inv->curl_err[0] = '\0';
	inv->request_id[0] = '\0';
	if (curlev_add(ctx->cev, inv->easy, invoke_done, inv) != 0) {
		invoke_attempt_clear(inv);
		invoke_fail(inv, SSP_ERR_RESOURCES, 502,
		            "cannot start the Lambda request (libcurl refused it)");
		return;
	}
	inv->state = INVOKE_RUNNING;
	inv->sent++;
}

/* Timer: start (or resume) the invocation. */
static void
invoke_step(evutil_socket_t fd, short what, void *arg)
{
	struct invoke *inv = arg;
	char err[384];

	if (inv->preset_msg != NULL) {
		invoke_fail(inv, inv->preset_kind, inv->preset_status, "%s", inv->preset_msg);
		return;
	}
	if (inv->state == INVOKE_PARKED) {
		struct ssp_client *client = inv->ctx->client;
		int moved = client_creds_generation(client) != inv->park_generation;
		struct creds_ref *creds;

		if (invoke_remaining(inv) <= 0) {
			/* Out of time while waiting for credentials: that is the
			 * answer, unless usable ones came just now (a timeout). */
			creds = moved ? client_creds_get(client, NULL, NULL, inv->cred_err,
			                                 sizeof inv->cred_err)
			              : NULL;
			if (creds == NULL) {
				invoke_fail(inv, SSP_ERR_CREDENTIALS, 503,
				            "no usable AWS credentials within %.1f s: %s",
				            inv->ctx->o->budget, inv->cred_err);
				return;
			}
			client_creds_release(client, creds);
		} else if (!moved) {
			/* The provider may have stopped meanwhile: no refresh
			 * will come, so fail now rather than at the budget. */
			if (client_creds_gone(client, inv->cred_err, sizeof inv->cred_err)) {
				invoke_fail(inv, SSP_ERR_CREDENTIALS, 503, "%s", inv->cred_err);
				return;
			}
			invoke_timer_in(inv, INVOKE_PARK_POLL_MS / 1000.0, INVOKE_PARKED);
			return;
		}
		/* A new generation: try it (invoke_park() decides if it failed). */
	}
	if (invoke_remaining(inv) <= 0) {
		if (inv->last_fail != FAIL_NONE)
			invoke_give_up(inv);
		else
			invoke_fail(inv, SSP_ERR_TIMEOUT, 504,
			            "the Lambda invocation timed out after %.1f s",
			            inv->ctx->o->budget);
		return;
	}
	if (inv->url == NULL && invoke_prepare_target(inv, err, sizeof err) != 0) {
		invoke_fail(inv, SSP_ERR_CONFIG, 503, "%s", err);
		return;
	}
	invoke_send(inv);
}

struct invoke_ctx *
invoke_ctx_new(struct event_base *base, struct ssp_client *client)
{
	struct invoke_ctx *ctx;

	ctx = xcalloc(1, sizeof *ctx);
	ctx->base = base;
	ctx->client = client;
	ctx->o = &client->o;
	ctx->seed = (unsigned)(uintptr_t)ctx ^ (unsigned)time(NULL);
	ctx->cev = curlev_new(base, client->o.max_connections);
	if (ctx->cev == NULL) {
		free(ctx);
		return NULL;
	}
	TAILQ_INIT(&ctx->calls);
	return ctx;
}

void
invoke_ctx_free(struct invoke_ctx *ctx)
{
	struct invoke *inv;

	if (ctx == NULL)
		return;
	while ((inv = TAILQ_FIRST(&ctx->calls)) != NULL)
		invoke_free(inv);
	curlev_free(ctx->cev);
	while (ctx->npool > 0)
		curl_easy_cleanup(ctx->pool[--ctx->npool]);
	free(ctx->target_url);
	free(ctx->target_host);
	free(ctx->target_path);
	free(ctx);
}

unsigned
invoke_inflight(const struct invoke_ctx *ctx)
{
	return ctx->ncalls;
}

struct invoke *
invoke_start(struct invoke_ctx *ctx, const char *method, char *payload, size_t len,
             void (*free_fn)(void *), invoke_done_cb cb, void *arg)
{
	struct invoke *inv;
	struct timespec now;
	double b = ctx->o->budget;

	inv = xcalloc(1, sizeof *inv);
	inv->ctx = ctx;
	inv->payload = payload;
	inv->payload_len = len;
	inv->payload_free = free_fn;
	inv->idempotent = http_method_idempotent(method);
	snprintf(inv->method, sizeof inv->method, "%s", method);
	inv->cb = cb;
	inv->arg = arg;
	kvlist_init(&inv->resp_headers);
	clock_gettime(CLOCK_MONOTONIC, &now);
	inv->deadline.tv_sec = now.tv_sec + (time_t)b;
	inv->deadline.tv_nsec = now.tv_nsec + (long)((b - (double)(time_t)b) * 1e9);
	if (inv->deadline.tv_nsec >= 1000000000L) {
		inv->deadline.tv_sec++;
		inv->deadline.tv_nsec -= 1000000000L;
	}
	inv->timer = evtimer_new(ctx->base, invoke_step, inv);
	TAILQ_INSERT_TAIL(&ctx->calls, inv, entry);
	ctx->ncalls++;
	/* Start from the loop so that the callback never runs inside us. */
	invoke_timer_in(inv, 0, INVOKE_STEP);
	return inv;
}

struct invoke *
invoke_start_failed(struct invoke_ctx *ctx, enum ssp_error_kind kind, int status,
                    const char *message, invoke_done_cb cb, void *arg)
{
	struct invoke *inv = invoke_start(ctx, "GET", NULL, 0, NULL, cb, arg);

	inv->preset_kind = kind;
	inv->preset_status = status;
	inv->preset_msg = xstrdup(message);
	return inv;
}

struct invoke *
invoke_start_stream(struct invoke_ctx *ctx, const char *method, char *payload, size_t len,
                    void (*free_fn)(void *), double idle, invoke_data_fn data, invoke_done_cb cb,
                    void *arg)
{
	struct invoke *inv = invoke_start(ctx, method, payload, len, free_fn, cb, arg);

	inv->stream = 1;
	inv->sdata = data;
	inv->idle = idle;
	inv->stimer = evtimer_new(ctx->base, invoke_stream_timer_cb, inv);
	return inv;
}

void
invoke_resume(struct invoke *inv)
{
	if (inv == NULL || !inv->stream)
		return;
	inv->pause_next = 0;
	if (!inv->paused || inv->easy == NULL)
		return;
	inv->paused = 0;
	invoke_stream_arm(inv);
	curl_easy_pause(inv->easy, CURLPAUSE_CONT);
}

const char *
invoke_request_id(const struct invoke *inv)
{
	return inv->request_id;
}

void
invoke_cancel(struct invoke *inv)
{
	if (inv != NULL)
		invoke_free(inv);
}
