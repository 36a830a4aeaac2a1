/*
 * proxy.c: the request path inside a worker (see proxy.h). For every
 * request the front door (httpconn.c) hands us, parsed and checked: find
 * the target host (absolute-form "GET http://host/path" as a forward proxy,
 * or origin-form with a Host header as a local "ALB"), build the ALB event,
 * invoke the function (invoke.c), and write its ALB response back; one
 * access-log line per request.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "accesslog.h"
#include "alb.h"
#include "cache.h"
#include "config.h"
#include "credstore.h"
#include "httpconn.h"
#include "httputil.h"
#include "invoke.h"
#include "localfn.h"
#include "kvlist.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "stream.h"
#include "worker.h"
#include "xmalloc.h"

#define PROXY_TARGET_GROUP_ARN                                                                     \
	"arn:aws:elasticloadbalancing:local:000000000000:targetgroup/ssm-sign-proxy/"              \
	"0000000000000000"

/* One request waiting for the function. */
struct proxy_req {
	TAILQ_ENTRY(proxy_req) entry;
	struct httpreq *req; /* the front door's; NULL once answered */
	ssp_call *inv;
	struct localfn_call *lcall; /* local_function mode instead of inv */
	char *method;
	char client[64];
	char *host;
	char *path;
	char *query;             /* raw, or NULL */
	struct cache_req *cache; /* the response cache's state (cache.h) */
	struct timespec start;
	struct accesslog_req al; /* request id, user agent, invoke timing */
	struct pstream *ps;      /* invoke_mode stream: the streamed answer */
	size_t sbytes;           /* streaming from Lambda: the function's bytes so far */
};

static struct {
	struct event_base *base;
	const struct config *cfg;
	ssp_client *client;          /* libssm-sign-proxy's, for Lambda */
	ssp_loop *invoke;            /* the client on this worker's loop */
	struct localfn_ctx *localfn; /* local_function mode: used instead of invoke */
	TAILQ_HEAD(, proxy_req) reqs;
	unsigned nreqs;
	char hostname[256];
	time_t limit_logged; /* when max_inflight refusals were last logged */
	unsigned limit_suppressed;
	int ready;
} proxy;

static double
proxy_elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void
proxy_log_entry(const char *client, const char *method, const char *host, const char *path,
                int status, size_t bytes, const struct timespec *start, const char *request_id,
                const char *cache, const struct accesslog_req *al, int aborted)
{
	struct accesslog_entry e;

	memset(&e, 0, sizeof e);
	e.aborted = aborted;
	e.client = client;
	e.method = method;
	e.host = host;
	e.path = path;
	e.status = status;
	e.bytes = bytes;
	e.duration_ms = proxy_elapsed_ms(start);
	e.request_id = request_id != NULL && *request_id != '\0' ? request_id : NULL;
	e.cache = cache;
	e.req = al;
	accesslog_write(&e);
}

static void
proxy_log_cache(const char *client, const char *method, const char *host, const char *path,
                int status, size_t bytes, const struct timespec *start, const char *request_id,
                const char *cache, const struct accesslog_req *al)
{
	proxy_log_entry(client, method, host, path, status, bytes, start, request_id, cache, al, 0);
}

static void
proxy_log(const char *client, const char *method, const char *host, const char *path, int status,
          size_t bytes, const struct timespec *start, const char *request_id,
          const struct accesslog_req *al)
{
	proxy_log_cache(client, method, host, path, status, bytes, start, request_id, NULL, al);
}

/* The methods the daemon serves itself never; for a 405's Allow field.
 * Any other token method is forwarded as it is. */
#define PROXY_ALLOW "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

/* Send an error of our own: a short text body, length-delimited. */
static size_t proxy_send_error(struct httpreq *req, int status, int close, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t
proxy_send_error(struct httpreq *req, int status, int close, const char *fmt, ...)
{
	struct kvlist h = KVLIST_INIT;
	char line[2300];
	va_list ap;
	size_t len, bytes;

	/* One line that names the request id, with account ids and home
	 * paths masked (httputil.h). */
	va_start(ap, fmt);
	len = http_error_text(line, sizeof line, httpreq_get_header(req, "X-Request-Id"), fmt, ap);
	va_end(ap);
	kvlist_add(&h, "Content-Type", "text/plain; charset=utf-8");
	if (status == 405)
		kvlist_add(&h, "Allow", PROXY_ALLOW);
	if (close)
		httpreq_set_close(req);
	bytes = httpreq_send(req, status, NULL, &h, line, len);
	kvlist_free(&h);
	return bytes;
}

/* A copy of s fit for one log line: what the function sent may hold CR/LF
 * or control bytes, which would forge log lines; they become '?'. */
static const char *
proxy_printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && s[i] != '\0'; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* Is s an HTTP field name (a non-empty RFC 9110 token)? A function's
 * "Bad Name" or "x:" must not go out as is. */
static int
proxy_field_name_valid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	}
	return 1;
}

/* Is s a plausible host[:port] (no spaces, no control bytes, no '/', no
 * userinfo)? */
static int
proxy_host_valid(const char *s)
{
	/* A name or an IP literal: it starts with a letter, digit or '['. */
	if (!isalnum((unsigned char)*s) && *s != '[')
		return 0;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr("-._:[]%~!$&'()*+,;=", *s) == NULL)
			return 0;
	}
	return 1;
}

/* Normalize an authority into a Host value: no userinfo, lower case, no
 * default port. Returns a malloc'd string or NULL when it is not valid. */
static char *
proxy_host_from_authority(const char *a, size_t len)
{
	const char *at;
	char *host, *p;
	size_t n;

	/* "user:pw@host": credentials in a URL are refused (RFC 9110 4.2.4),
	 * and a Host holding them names two hosts. */
	at = memchr(a, '@', len);
	if (at != NULL)
		return NULL;
	host = xstrndup(a, len);
	for (p = host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	n = strlen(host);
	/* "host:80" and "host:" mean host; "[::1]:80" likewise. */
	if (n >= 4 && strcmp(host + n - 3, ":80") == 0 && host[n - 4] != ':')
		host[n - 3] = '\0';
	else if (n >= 1 && host[n - 1] == ':' && (n < 2 || host[n - 2] != ':'))
		host[n - 1] = '\0';
	if (!proxy_host_valid(host)) {
		free(host);
		return NULL;
	}
	return host;
}

static void
proxy_req_free(struct proxy_req *pr)
{
	TAILQ_REMOVE(&proxy.reqs, pr, entry);
	proxy.nreqs--;
	metrics_inflight(-1);
	pstream_free(pr->ps);
	cache_req_free(pr->cache);
	free(pr->method);
	free(pr->host);
	free(pr->path);
	free(pr->query);
	free(pr);
}

/* The client went away with our answer still pending (the front door
 * frees the request when this returns): stop the invocation. */
static void
proxy_req_gone(struct httpreq *req, void *arg)
{
	struct proxy_req *pr = arg;

	log_debug("client %s went away; abandoning %s %s", pr->client, pr->method, pr->host);
	pr->req = NULL;
	if (pr->ps != NULL)
		pstream_gone(pr->ps);
	if (pr->inv != NULL)
		ssp_cancel(pr->inv);
	if (pr->lcall != NULL)
		localfn_cancel(pr->lcall);
	/* 499, as nginx says: the client closed the connection. */
	proxy_log(pr->client, pr->method, pr->host, pr->path, 499, 0, &pr->start, NULL, &pr->al);
	proxy_req_free(pr);
}

/* Is v a field value we can send: no control byte but HTAB (a CR or LF
 * would split the header, the others break parsers downstream)? */
static int
proxy_value_valid(const char *v)
{
	for (; *v != '\0'; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return 0;
	return 1;
}

/* The reason phrase the function asked for ("200 OK" -> "OK"), or NULL for
 * the standard one: none, a bare number, more than 128 bytes, or control
 * bytes. */
static const char *
proxy_reason(const char *desc)
{
	const char *r;
	size_t i;

	if (desc == NULL)
		return NULL;
	r = desc;
	while (isdigit((unsigned char)*r))
		r++;
	while (*r == ' ')
		r++;
	if (*r == '\0' || strlen(r) > 128)
		return NULL;
	for (i = 0; r[i] != '\0'; i++)
		if (((unsigned char)r[i] < 0x20 && r[i] != '\t') || r[i] == 0x7f)
			return NULL;
	return r;
}

/* Write the function's ALB response. Returns the body bytes sent, or
 * (size_t)-1 when the response is unusable (err says why). */
static size_t
proxy_write_response(struct httpreq *req, struct cache_req *cache, const char *payload, size_t len,
                     int *status, char *err, size_t errlen)
{
	struct alb_response resp;
	struct kvlist out = KVLIST_INIT;
	size_t i, n, bytes;
	int head = req->head;

	alb_response_init(&resp);
	if (alb_any_response_decode(payload, len, &resp, err, errlen) != 0)
		return (size_t)-1;
	if (resp.status < 200 || resp.status > 599) {
		snprintf(err, errlen, "statusCode %d is not a final HTTP status", resp.status);
		alb_response_free(&resp);
		return (size_t)-1;
	}
	http_strip_hop_by_hop(&resp.headers, resp.status == 407);
	for (i = 0; i < resp.headers.n; i++) {
		const char *name = resp.headers.v[i].name;

		/* The front door computes the length of what it sends; a HEAD
		 * reply keeps the origin's, since it has no body to measure. */
		if (strcasecmp(name, "Content-Length") == 0 && !head)
			continue;
		/* The client gets the request's id once: ours, already set. */
		if (strcasecmp(name, "X-Request-Id") == 0)
			continue;
		if (!proxy_field_name_valid(name) || !proxy_value_valid(resp.headers.v[i].value)) {
			char shown[65];

			log_warn("dropping invalid response header \"%s\" from the function",
			         proxy_printable(name, shown, sizeof shown));
			continue;
		}
		kvlist_add(&out, name, resp.headers.v[i].value);
	}
	n = 0;
	/* No body after HEAD, 204, 205 or 304, even if the function gave one:
	 * a kept-alive client would read it as the start of the next response. */
	if (resp.body_len > 0 && !head && resp.status != 204 && resp.status != 205 &&
	    resp.status != 304)
		n = resp.body_len;
	*status = resp.status;
	cache_response(cache, &out, resp.status, n > 0 ? resp.body : NULL, n);
	bytes = httpreq_send(req, resp.status, proxy_reason(resp.status_description), &out,
	                     resp.body, n);
	kvlist_free(&out);
	alb_response_free(&resp);
	return bytes;
}

/* What a failure message is about, to count its repeats together. */
static const char *
proxy_failure_kind(const char *message)
{
	if (strstr(message, "the function failed") != NULL)
		return "function error";
	if (strstr(message, "throttling") != NULL)
		return "throttled by Lambda";
	if (strstr(message, "timed out") != NULL)
		return "Lambda invocation timed out";
	if (strstr(message, "cannot reach") != NULL || strstr(message, "connection") != NULL)
		return "Lambda endpoint unreachable";
	if (strstr(message, "region") != NULL)
		return "no AWS region";
	return "Lambda invocation failed";
}

/* invoke.c: the function answered, or the invocation failed. */
static void
proxy_invoke_done(const struct invoke_result *r, void *arg)
{
	struct proxy_req *pr = arg;
	struct httpreq *req = pr->req;
	const char *fields[] = {"request_id", NULL,    "host", NULL, "status",
	                        NULL,         "error", NULL,   NULL};
	char err[512], status_text[16];
	size_t bytes;
	int status = r->status;

	/* invoke.c or localfn.c: either way the call is over. */
	pr->inv = NULL;
	pr->lcall = NULL;
	accesslog_req_invoke_done(&pr->al, r->attempts);
	metrics_invocation(r->status == 200 && r->function_error == NULL, pr->al.invoke_ms / 1000);
	/* Answering ends the request: the front door owns it again. */
	pr->req = NULL;
	httpreq_set_callbacks(req, NULL, NULL, NULL);
	if (r->status == 200) {
		bytes = proxy_write_response(req, pr->cache, r->payload, r->payload_len, &status,
		                             err, sizeof err);
		if (bytes == (size_t)-1) {
			log_error("function %s returned an invalid response (request %s): %s",
			          proxy.cfg->function_name ? proxy.cfg->function_name : "(local)",
			          r->request_id[0] ? r->request_id : "-", err);
			status = 502;
			bytes = proxy_send_error(req, 502, 0,
			                         "function returned an invalid response: %s", err);
		} else
			pr->al.outcome = ACCESSLOG_FUNCTION;
	} else {
		/* The failure with this request's fields (its id, host,
		 * status, kind): a function error too, whose message the
		 * invoke path logged with Lambda's request id. The same failure
		 * again and again (no credentials, throttling, endpoint down)
		 * is counted and summarised once a minute. */
		snprintf(status_text, sizeof status_text, "%d", r->status);
		fields[1] = pr->al.id;
		fields[3] = pr->host;
		fields[5] = status_text;
		fields[7] =
		    r->credentials ? "no usable AWS credentials" : proxy_failure_kind(r->message);
		log_repeat(LOG_LVL_WARN, fields[7], fields, "%s %s%s: %d: %s (request %s)",
		           pr->method, pr->host, pr->path, r->status,
		           r->credentials ? "no usable AWS credentials" : r->message, pr->al.id);
		bytes = proxy_send_error(req, r->status, 0, "%s", r->message);
	}
	proxy_log_cache(pr->client, pr->method, pr->host, pr->path, status, bytes, &pr->start,
	                r->request_id, cache_req_logstatus(pr->cache), &pr->al);
	proxy_req_free(pr);
}

/* libssm-sign-proxy: the invocation ended. */
static void
proxy_ssp_done(const ssp_response *resp, const ssp_error *e, void *arg)
{
	struct invoke_result r;

	invoke_result_from(resp, e, &r);
	proxy_invoke_done(&r, arg);
}

/* Fill the event's request part from the client's request. */
static void
proxy_build_request(struct httpreq *req, const char *method, const char *host, const char *path,
                    const char *query, const char *client, struct alb_request *a)
{
	struct evbuffer *body = req->body;
	const char *id;
	char idbuf[64];
	size_t i, len;

	a->method = xstrdup(method);
	a->path = xstrdup(path);
	if (query != NULL)
		http_split_query(query, &a->query);
	for (i = 0; i < req->headers.n; i++)
		kvlist_add(&a->headers, req->headers.v[i].name, req->headers.v[i].value);
	http_strip_hop_by_hop(&a->headers, 0);
	/* The front door has answered "Expect: 100-continue" already. */
	kvlist_del(&a->headers, "Expect");
	kvlist_set(&a->headers, "Host", host);
	if (proxy.cfg->forwarded_for) {
		/* One X-Forwarded-For: what came in, then this client
		 * (joined in one buffer: linear in the fields). */
		struct evbuffer *x = evbuffer_new();

		if (x == NULL)
			abort();
		for (i = 0; i < a->headers.n; i++) {
			if (strcasecmp(a->headers.v[i].name, "X-Forwarded-For") != 0)
				continue;
			evbuffer_add(x, a->headers.v[i].value, strlen(a->headers.v[i].value));
			evbuffer_add(x, ", ", 2);
		}
		evbuffer_add(x, client, strlen(client) + 1);
		kvlist_set(&a->headers, "X-Forwarded-For", (const char *)evbuffer_pullup(x, -1));
		evbuffer_free(x);
	}
	len = evbuffer_get_length(body);
	if (len > 0) {
		a->body = xmalloc(len);
		evbuffer_copyout(body, a->body, len);
		a->body_len = len;
	}
	a->multi_value = 1;
	/* Functions written for an ALB target find requestContext.elb; the
	 * ARN is a fixed, recognisable stand-in (there is no target group). */
	a->target_group_arn = xstrdup(PROXY_TARGET_GROUP_ARN);
	a->instance_hostname = xstrdup(proxy.hostname);
	id = credstore_instance_id(idbuf, sizeof idbuf);
	a->instance_id = xstrdup(id != NULL ? id : "");
}

/*
 * Work out the target from the request line: absolute-form
 * "http://host[:port]/path?query" (forward proxy) or origin-form
 * "/path?query" with Host. On success *host, *path (escaped, as sent, no
 * query) and *query (raw, or NULL) are malloc'd. Otherwise returns the
 * status to answer and err says why.
 */
static int
proxy_target(struct httpreq *req, char **host, char **path, char **query, char *err, size_t errlen)
{
	const char *uri = req->target, *p, *q, *h;
	size_t alen;

	*host = *path = *query = NULL;
	if (uri == NULL || *uri == '\0') {
		snprintf(err, errlen, "empty request target");
		return 400;
	}
	if (strncasecmp(uri, "https://", 8) == 0) {
		snprintf(err, errlen,
		         "https:// URLs cannot be proxied: send the request as plain http:// "
		         "(the function makes the TLS connection to the API)");
		return 400;
	}
	if (strncasecmp(uri, "http://", 7) == 0) {
		p = uri + 7;
		alen = strcspn(p, "/?#");
		*host = proxy_host_from_authority(p, alen);
		if (*host == NULL) {
			snprintf(err, errlen, "invalid host in the request URL");
			return 400;
		}
		p += alen;
	} else if (*uri == '/' || strcmp(uri, "*") == 0) {
		p = uri;
		h = kvlist_get(&req->headers, "Host");
		if (h == NULL || *h == '\0') {
			snprintf(err, errlen,
			         "no target host: send an absolute http:// URL (forward proxy) or "
			         "a Host header");
			return 400;
		}
		*host = proxy_host_from_authority(h, strlen(h));
		if (*host == NULL) {
			snprintf(err, errlen, "invalid Host header");
			return 400;
		}
	} else {
		snprintf(err, errlen, "unsupported request target: send an absolute http:// URL");
		return 400;
	}
	q = p + strcspn(p, "?#");
	*path = *p == '/' || *p == '*' ? xstrndup(p, (size_t)(q - p)) : xstrdup("/");
	if (*q == '?')
		*query = xstrndup(q + 1, strcspn(q + 1, "#"));
	return 0;
}

/* We answer pr's client now: the request goes back to the front door. */
static struct httpreq *
proxy_req_take(struct proxy_req *pr)
{
	struct httpreq *req = pr->req;

	pr->req = NULL;
	httpreq_set_callbacks(req, NULL, NULL, NULL);
	return req;
}

/* Answer pr from the cache and forget it. */
static void
proxy_cache_hit(struct proxy_req *pr)
{
	size_t bytes;
	int status;

	bytes = cache_send(pr->cache, proxy_req_take(pr), &status);
	pr->al.outcome = ACCESSLOG_CACHE_HIT;
	proxy_log_cache(pr->client, pr->method, pr->host, pr->path, status, bytes, &pr->start, NULL,
	                "HIT", &pr->al);
	proxy_req_free(pr);
}

/* --- invoke_mode stream (stream.h) ---------------------------------------- */

static void
proxy_stream_resume(void *arg)
{
	struct proxy_req *pr = arg;

	if (pr->inv != NULL)
		ssp_resume(pr->inv);
	else if (pr->lcall != NULL)
		localfn_stream_resume(pr->lcall);
}

static void
proxy_req_drained(struct httpreq *req, void *arg)
{
	struct proxy_req *pr = arg;

	if (pr->ps != NULL)
		pstream_drained(pr->ps);
}

/* The stream is over: log it, or answer what did not go out as usual. */
static void
proxy_stream_finished(const struct pstream_result *res, void *arg)
{
	struct proxy_req *pr = arg;
	const struct fnstream_end *e = res->end;
	struct invoke_result r;

	pr->inv = NULL;
	pr->lcall = NULL;
	if (res->outcome == PSTREAM_DONE || res->outcome == PSTREAM_ABORTED) {
		/* stream.c ended the request (and, aborting, the connection). */
		pr->req = NULL;
		accesslog_req_invoke_done(&pr->al, e->attempts);
		metrics_invocation(res->outcome == PSTREAM_DONE, pr->al.invoke_ms / 1000);
		pr->al.outcome = ACCESSLOG_FUNCTION;
		if (res->outcome == PSTREAM_ABORTED)
			log_warn("%s %s%s: the streamed response was cut short after %zu bytes: %s "
			         "(request %s)",
			         pr->method, pr->host, pr->path, res->bytes,
			         res->message ? res->message : "-", pr->al.id);
		proxy_log_entry(pr->client, pr->method, pr->host, pr->path, res->status, res->bytes,
		                &pr->start, e->request_id, cache_req_logstatus(pr->cache), &pr->al,
		                res->outcome == PSTREAM_ABORTED);
		proxy_req_free(pr);
		return;
	}
	/* Nothing went out: the buffered path answers (and frees pr). */
	memset(&r, 0, sizeof r);
	r.status = res->status;
	r.payload = res->payload;
	r.payload_len = res->payload_len;
	r.message = res->message;
	r.request_id = e->request_id != NULL ? e->request_id : "";
	r.function_error = e->function_error;
	r.attempts = e->attempts;
	r.credentials = e->credentials;
	proxy_invoke_done(&r, pr);
}

static const struct pstream_hooks proxy_stream_hooks = {
    proxy_stream_resume,
    proxy_stream_finished,
};

/* libssm-sign-proxy, streaming: bytes and the end, to the stream. */
static int
proxy_stream_data(const void *p, size_t n, void *arg)
{
	struct proxy_req *pr = arg;

	pr->sbytes += n;
	return pstream_ops.data(p, n, pr->ps);
}

static void
proxy_stream_invoked(const ssp_response *resp, const ssp_error *err, void *arg)
{
	struct proxy_req *pr = arg;
	struct invoke_result res, *r = &res;
	struct fnstream_end e;

	invoke_result_from(resp, err, &res);
	memset(&e, 0, sizeof e);
	e.status = r->status;
	e.message = r->message;
	e.request_id = r->request_id;
	e.function_error = r->function_error;
	e.credentials = r->credentials;
	e.attempts = r->attempts;
	e.bytes = pr->sbytes;
	pstream_ops.done(&e, pr->ps);
}

/* Send the function's way: build the event and invoke (or refuse). */
static void
proxy_forward(struct proxy_req *pr)
{
	const struct config *cfg = proxy.cfg;
	struct httpreq *req = pr->req;
	struct alb_request a;
	char *event;
	size_t len, bytes;

	if (cfg->limits.max_inflight > 0 &&
	    (proxy.localfn != NULL
	         ? localfn_inflight(proxy.localfn)
	         : ssp_loop_inflight(proxy.invoke)) >= (unsigned)cfg->limits.max_inflight) {
		bytes = proxy_send_error(proxy_req_take(pr), 503, 0,
		                         "too many requests in flight (limits.max_inflight is %d); "
		                         "retry later",
		                         cfg->limits.max_inflight);
		/* At most one line a second: this happens in floods. */
		if (pr->start.tv_sec != proxy.limit_logged) {
			log_warn("503 for %s %s: limits.max_inflight (%d) reached%s", pr->method,
			         pr->host, cfg->limits.max_inflight,
			         proxy.limit_suppressed ? " (and for requests not logged since)"
			                                : "");
			proxy.limit_logged = pr->start.tv_sec;
			proxy.limit_suppressed = 0;
		} else
			proxy.limit_suppressed++;
		proxy_log(pr->client, pr->method, pr->host, pr->path, 503, bytes, &pr->start, NULL,
		          &pr->al);
		proxy_req_free(pr);
		return;
	}

	alb_request_init(&a);
	proxy_build_request(req, pr->method, pr->host, pr->path, pr->query, pr->client, &a);
	event = alb_request_encode(&a, &len);
	alb_request_free(&a);
	if (len > INVOKE_MAX_PAYLOAD) {
		free(event);
		bytes = proxy_send_error(proxy_req_take(pr), 413, 0,
		                         "request too large: the Lambda event would be %zu bytes, "
		                         "more than the %d bytes a synchronous invoke accepts",
		                         len, INVOKE_MAX_PAYLOAD);
		proxy_log(pr->client, pr->method, pr->host, pr->path, 413, bytes, &pr->start, NULL,
		          &pr->al);
		proxy_req_free(pr);
		return;
	}
	accesslog_req_invoke_start(&pr->al);
	if (cfg->invoke_mode == CONFIG_INVOKE_STREAM) {
		pr->ps =
		    pstream_new(req, pr->cache, cfg->limits.stream_buffer, &proxy_stream_hooks, pr);
		httpreq_set_callbacks(req, proxy_req_gone, proxy_req_drained, pr);
		if (proxy.localfn != NULL)
			pr->lcall = localfn_start_stream(proxy.localfn, pr->method, event, len,
			                                 &pstream_ops, pr->ps);
		else
			pr->inv =
			    ssp_invoke_stream_start(proxy.invoke, pr->method, event, len, free,
			                            proxy_stream_data, proxy_stream_invoked, pr);
		return;
	}
	if (proxy.localfn != NULL)
		pr->lcall =
		    localfn_start(proxy.localfn, pr->method, event, len, proxy_invoke_done, pr);
	else
		pr->inv = ssp_invoke_start(proxy.invoke, pr->method, event, len, free,
		                           proxy_ssp_done, pr);
}

/* cache.c: the fill this request waited for ended. */
static void
proxy_cache_resume(int hit, void *arg)
{
	struct proxy_req *pr = arg;

	if (hit)
		proxy_cache_hit(pr);
	else
		proxy_forward(pr);
}

/* Is this request over limits.max_inflight? */
static int
proxy_full(void)
{
	const struct config *cfg = proxy.cfg;

	return cfg->limits.max_inflight > 0 &&
	       (proxy.localfn != NULL
	            ? localfn_inflight(proxy.localfn)
	            : ssp_loop_inflight(proxy.invoke)) >= (unsigned)cfg->limits.max_inflight;
}

/*
 * The request id: the client's X-Request-Id when it is sane, else a new
 * one; the function gets it in the event, the client back on every answer
 * (the front door adds it).
 */
static void
proxy_request_id(struct httpreq *req, struct accesslog_req *al)
{
	accesslog_req_init(al, kvlist_get(&req->headers, "X-Request-Id"),
	                   kvlist_get(&req->headers, "User-Agent"), evbuffer_get_length(req->body));
	kvlist_set(&req->headers, "X-Request-Id", al->id);
	httpreq_add_header(req, "X-Request-Id", al->id);
}

int
proxy_expect(struct httpreq *req, void *arg)
{
	struct accesslog_req al;
	struct timespec start = req->start;
	char client[64], *method;
	size_t bytes;

	(void)arg;
	/* A body that would be refused is not worth reading: allow and
	 * max_body were checked by the front door already. */
	if (!proxy_full())
		return 0;
	proxy_request_id(req, &al);
	/* Answering ends req: what the log line needs is copied first. */
	method = xstrdup(req->method);
	snprintf(client, sizeof client, "%s", req->client);
	bytes = proxy_send_error(req, 503, 1,
	                         "too many requests in flight (limits.max_inflight is %d); "
	                         "retry later",
	                         proxy.cfg->limits.max_inflight);
	proxy_log(client, method, NULL, NULL, 503, bytes, &start, NULL, &al);
	free(method);
	return 1;
}

void
proxy_request(struct httpreq *req, void *arg)
{
	const struct config *cfg = proxy.cfg;
	struct proxy_req *pr;
	const char *method = req->method;
	char err[512], *host = NULL, *path = NULL, *query = NULL;
	struct timespec start = req->start;
	struct accesslog_req al;
	char client[64];
	size_t bytes;
	int status;

	(void)arg;
	proxy_request_id(req, &al);
	/* Answering ends req: the log lines below use copies. */
	snprintf(client, sizeof client, "%s", req->client);
	if (strcmp(method, "CONNECT") == 0) {
		/* Length-delimited and closed, so that a client that already
		 * started TLS or waits for a tunnel does not hang. */
		char target[256];

		snprintf(target, sizeof target, "%s", req->target);
		bytes = proxy_send_error(
		    req, 405, 1,
		    "CONNECT is not supported: send plain http:// URLs through this proxy (for "
		    "example http://api.github.com/...); the TLS connection to the API starts in "
		    "the Lambda function");
		proxy_log(client, "CONNECT", target, NULL, 405, bytes, &start, NULL, &al);
		return;
	}
	if (strcmp(method, "TRACE") == 0) {
		/* It would echo the client's headers (credentials included)
		 * back through the function. */
		bytes = proxy_send_error(req, 405, 0, "TRACE is not supported by this proxy");
		proxy_log(client, "TRACE", NULL, NULL, 405, bytes, &start, NULL, &al);
		return;
	}
	pr = xcalloc(1, sizeof *pr);
	pr->method = xstrdup(method);
	snprintf(pr->client, sizeof pr->client, "%s", req->client);
	pr->start = start;
	pr->al = al;
	status = proxy_target(req, &host, &path, &query, err, sizeof err);
	if (status != 0) {
		bytes = proxy_send_error(req, status, 0, "%s", err);
		proxy_log(pr->client, pr->method, host, path, status, bytes, &start, NULL, &al);
		goto out;
	}
	if (proxy.localfn == NULL && (cfg->function_name == NULL || *cfg->function_name == '\0')) {
		bytes = proxy_send_error(req, 503, 0,
		                         "no Lambda function configured: set function_name in %s "
		                         "(or start with -function-name NAME)",
		                         cfg->path ? cfg->path : CONFIG_DEFAULT_PATH);
		proxy_log(pr->client, pr->method, host, path, 503, bytes, &start, NULL, &al);
		goto out;
	}
	pr->req = req;
	pr->host = host;
	pr->path = path;
	pr->query = query;
	TAILQ_INSERT_TAIL(&proxy.reqs, pr, entry);
	proxy.nreqs++;
	metrics_inflight(1);
	httpreq_set_callbacks(req, proxy_req_gone, NULL, pr);
	/* The response cache (cache.c): a fresh entry answers at once; a miss
	 * that another request (in any worker) is filling waits for it. */
	switch (cache_begin(&pr->cache, proxy.base, cfg, &req->headers, pr->method, pr->host,
	                    pr->path, pr->query, proxy_cache_resume, pr)) {
	case CACHE_HIT:
		proxy_cache_hit(pr);
		break;
	case CACHE_WAIT:
		break;
	case CACHE_GO:
		proxy_forward(pr);
		break;
	}
	return;
out:
	free(pr->method);
	free(pr);
	free(host);
	free(path);
	free(query);
}

static void
proxy_function_ready(void *arg)
{
	worker_ready();
}

int
proxy_init(struct event_base *base, const struct config *cfg)
{
	struct localfn_options lo;
	char err[512];

	memset(&proxy, 0, sizeof proxy);
	TAILQ_INIT(&proxy.reqs);
	proxy.base = base;
	proxy.cfg = cfg;
	if (gethostname(proxy.hostname, sizeof proxy.hostname - 1) != 0)
		proxy.hostname[0] = '\0';

	if (cfg->local_function.command != NULL) {
		/* No AWS in this mode: the worker runs the function itself. */
		memset(&lo, 0, sizeof lo);
		lo.command = cfg->local_function.command;
		lo.environment = &cfg->local_function.environment;
		lo.concurrency = cfg->local_function.concurrency;
		lo.timeout = cfg->local_function.timeout;
		lo.function_name = cfg->function_name;
		lo.region = cfg->region != NULL ? cfg->region : getenv("AWS_REGION");
		if (lo.region == NULL)
			lo.region = getenv("AWS_DEFAULT_REGION");
		lo.respawn = cfg->retry.respawn;
		lo.respawn_cap = cfg->retry.respawn_cap;
		lo.kill_grace = cfg->timeouts.shutdown < 2 ? cfg->timeouts.shutdown : 2;
		/* The worker accepts, and a reload goes on, once the function runs. */
		lo.ready = proxy_function_ready;
		proxy.localfn = localfn_ctx_new(base, &lo, err, sizeof err);
		if (proxy.localfn == NULL) {
			log_error("%s", err);
			return -1;
		}
		goto server;
	}
	/* Without a function, proxy_request() answers 503 saying so. */
	if (cfg->function_name == NULL || *cfg->function_name == '\0')
		goto server;
	proxy.client = invoke_client_new(cfg, err, sizeof err);
	proxy.invoke = proxy.client != NULL ? ssp_loop_new(proxy.client, base) : NULL;
	if (proxy.invoke == NULL) {
		log_error("cannot create the Lambda client: %s",
		          proxy.client != NULL ? "libcurl multi handle" : err);
		ssp_client_free(proxy.client);
		proxy.client = NULL;
		return -1;
	}
server:
	proxy.ready = 1;
	return 0;
}

unsigned
proxy_inflight(void)
{
	return proxy.nreqs;
}

void
proxy_free(void)
{
	struct proxy_req *pr;

	if (!proxy.ready)
		return;
	/* Whatever is still waiting gets a clear answer rather than a reset. */
	while ((pr = TAILQ_FIRST(&proxy.reqs)) != NULL) {
		if (pr->inv != NULL)
			ssp_cancel(pr->inv);
		pr->inv = NULL;
		if (pr->lcall != NULL)
			localfn_cancel(pr->lcall);
		pr->lcall = NULL;
		if (pr->ps != NULL && pstream_started(pr->ps)) {
			/* Half a response: cut it rather than complete it wrongly. */
			pstream_gone(pr->ps);
			httpreq_abort(proxy_req_take(pr));
			proxy_log_entry(pr->client, pr->method, pr->host, pr->path, 503, 0,
			                &pr->start, NULL, NULL, &pr->al, 1);
			proxy_req_free(pr);
			continue;
		}
		proxy_send_error(proxy_req_take(pr), 503, 1, "the proxy is shutting down; retry");
		proxy_log(pr->client, pr->method, pr->host, pr->path, 503, 0, &pr->start, NULL,
		          &pr->al);
		proxy_req_free(pr);
	}
	ssp_loop_free(proxy.invoke);
	proxy.invoke = NULL;
	ssp_client_free(proxy.client);
	proxy.client = NULL;
	localfn_ctx_free(proxy.localfn);
	proxy.localfn = NULL;
	proxy.ready = 0;
}
