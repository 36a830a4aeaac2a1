/*
 * proxy.c: the request path inside a worker (see proxy.h). For every
 * request evhttp hands us: check the client, find the target host
 * (absolute-form "GET http://host/path" as a forward proxy, or origin-form
 * with a Host header as a local "ALB"), build the ALB event, invoke the
 * function (invoke.c), and write its ALB response back; one access-log line
 * per request.
 *
 * evhttp in libevent 2.1 answers methods it was not told about with 501 and
 * adds "Content-Type: text/html" to replies that lack one: proxy_init()
 * turns both off so that what the client sees is what the function said.
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
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>

#include "accesslog.h"
#include "alb.h"
#include "cache.h"
#include "config.h"
#include "credstore.h"
#include "httputil.h"
#include "invoke.h"
#include "localfn.h"
#include "kvlist.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "respw.h"
#include "stream.h"
#include "worker.h"
#include "xmalloc.h"

#define PROXY_TARGET_GROUP_ARN                                                                     \
	"arn:aws:elasticloadbalancing:local:000000000000:targetgroup/ssm-sign-proxy/"              \
	"0000000000000000"

/* One request waiting for the function. */
struct proxy_req {
	TAILQ_ENTRY(proxy_req) entry;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct invoke *inv;
	struct localfn_call *lcall; /* local_function mode instead of inv */
	struct event *watch;        /* EOF from the client while we wait */
	const char *method;
	char client[64];
	char *host;
	char *path;
	char *query;             /* raw, or NULL */
	struct cache_req *cache; /* the response cache's state (cache.h) */
	struct timespec start;
	struct accesslog_req al; /* request id, user agent, invoke timing */
	/* invoke_mode stream: the streamed answer and its writer. */
	struct pstream *ps;
	struct httpreq *w;
};

static struct {
	struct event_base *base;
	struct evhttp *http;
	const struct config *cfg;
	struct invoke_ctx *invoke;
	struct localfn_ctx *localfn; /* local_function mode: used instead of invoke */
	TAILQ_HEAD(, proxy_req) reqs;
	unsigned nreqs;
	char hostname[256];
	time_t limit_logged; /* when max_inflight refusals were last logged */
	unsigned limit_suppressed;
	int ready;
} proxy;

static const char *
proxy_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "UNKNOWN";
}

static void
proxy_tv(double t, struct timeval *tv)
{
	tv->tv_sec = (time_t)t;
	tv->tv_usec = (suseconds_t)((t - (double)tv->tv_sec) * 1e6);
}

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

/* Close the connection after this reply (evhttp reads the header). */
static void
proxy_mark_close(struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (evhttp_find_header(out, "Connection") == NULL)
		evhttp_add_header(out, "Connection", "close");
}

/* Send an error of our own: a short text body, length-delimited. */
static size_t proxy_send_error(struct evhttp_request *req, int status, int close, const char *fmt,
                               ...) __attribute__((format(printf, 4, 5)));

static size_t
proxy_send_error(struct evhttp_request *req, int status, int close, const char *fmt, ...)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();
	char text[2300];
	size_t len = 0;
	va_list ap;

	/* evhttp would write a body after a HEAD reply: none is added. */
	if (buf != NULL && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		va_start(ap, fmt);
		len = http_error_text(text, sizeof text, evhttp_find_header(out, "X-Request-Id"),
		                      fmt, ap);
		va_end(ap);
		evbuffer_add(buf, text, len);
		len = evbuffer_get_length(buf);
	}
	evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
	if (close || worker_draining())
		proxy_mark_close(req);
	evhttp_send_reply(req, status, http_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
	return len;
}

/*
 * Several Content-Length headers that disagree (RFC 9112 6.3): evhttp reads
 * the body by the first and parses the rest as the next request, while the
 * function would see both values. Such a message is refused and the
 * connection closed, since where the next request starts is unknown.
 */
static int
proxy_conflicting_length(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	const char *first = NULL;

	TAILQ_FOREACH(kv, in, next)
	{
		if (strcasecmp(kv->key, "Content-Length") != 0)
			continue;
		if (first == NULL)
			first = kv->value;
		else if (strcmp(first, kv->value) != 0)
			return 1;
	}
	return 0;
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

/* Is s an HTTP field name (a non-empty RFC 9110 token)? evhttp checks
 * values only, so a function's "Bad Name" or "x:" would go out as is. */
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

/* Is s a plausible host[:port] (no spaces, no control bytes, no '/')? */
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

	at = memchr(a, '@', len);
	if (at != NULL) {
		len -= (size_t)(at + 1 - a);
		a = at + 1;
	}
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

/* Split a raw query into key/value pairs without decoding anything. */
static void
proxy_split_query(const char *q, struct kvlist *out)
{
	const char *amp, *eq, *end;

	while (*q != '\0') {
		amp = strchr(q, '&');
		end = amp ? amp : q + strlen(q);
		if (end > q) {
			eq = memchr(q, '=', (size_t)(end - q));
			if (eq != NULL)
				kvlist_addn(out, q, (size_t)(eq - q), eq + 1,
				            (size_t)(end - eq - 1));
			else
				kvlist_addn(out, q, (size_t)(end - q), "", 0);
		}
		if (amp == NULL)
			break;
		q = amp + 1;
	}
}

static void
proxy_req_free(struct proxy_req *pr)
{
	if (pr->watch != NULL)
		event_free(pr->watch);
	TAILQ_REMOVE(&proxy.reqs, pr, entry);
	proxy.nreqs--;
	metrics_inflight(-1);
	pstream_free(pr->ps);
	if (pr->w != NULL)
		httpreq_release(pr->w);
	cache_req_free(pr->cache);
	free(pr->host);
	free(pr->path);
	free(pr->query);
	free(pr);
}

/* The client's connection is going away with our answer still pending:
 * evhttp frees the request right after this, so forget it now. */
static void
proxy_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct proxy_req *pr = arg;

	log_debug("client %s went away; abandoning %s %s", pr->client, pr->method, pr->host);
	if (pr->ps != NULL)
		pstream_gone(pr->ps);
	if (pr->inv != NULL)
		invoke_cancel(pr->inv);
	if (pr->lcall != NULL)
		localfn_cancel(pr->lcall);
	/* 499, as nginx says: the client closed the connection. */
	proxy_log(pr->client, pr->method, pr->host, pr->path, 499, 0, &pr->start, NULL, &pr->al);
	proxy_req_free(pr);
}

/*
 * The client's socket became readable while we wait for the function.
 * evhttp does not read a connection while its request is being answered,
 * so it would not notice the client leaving until the reply fails; we look
 * (MSG_PEEK, as nginx does): EOF or an error means nobody waits for the
 * answer, so stop the invocation and drop the connection. Data (a
 * pipelined request) is evhttp's: stop watching.
 */
static void
proxy_client_readable(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_req *pr = arg;
	struct evhttp_connection *evcon = pr->evcon;
	char c;
	ssize_t n;

	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		event_add(pr->watch, NULL);
		return;
	}
	if (n > 0)
		return;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	proxy_conn_closed(evcon, pr);
	/* Frees the request too (it is still queued on the connection). */
	evhttp_connection_free(evcon);
}

/* Write the function's ALB response. Returns the body bytes sent, or
 * (size_t)-1 when the response is unusable (err says why). */
static size_t
proxy_write_response(struct evhttp_request *req, struct cache_req *cache, const char *payload,
                     size_t len, int *status, char *err, size_t errlen)
{
	struct alb_response resp;
	struct evkeyvalq *out;
	struct evbuffer *buf;
	const char *reason;
	size_t i, n;
	int head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;

	alb_response_init(&resp);
	if (alb_any_response_decode(payload, len, &resp, err, errlen) != 0)
		return (size_t)-1;
	if (resp.status < 200 || resp.status > 599) {
		snprintf(err, errlen, "statusCode %d is not a final HTTP status", resp.status);
		alb_response_free(&resp);
		return (size_t)-1;
	}
	http_strip_hop_by_hop(&resp.headers, resp.status == 407);
	out = evhttp_request_get_output_headers(req);
	for (i = 0; i < resp.headers.n; i++) {
		const char *name = resp.headers.v[i].name;

		/* evhttp computes the length of what it sends; a HEAD reply
		 * keeps the origin's, since it has no body to measure. */
		if (strcasecmp(name, "Content-Length") == 0 && !head)
			continue;
		/* The client gets the request's id once: ours, already set. */
		if (strcasecmp(name, "X-Request-Id") == 0)
			continue;
		if (!proxy_field_name_valid(name) ||
		    evhttp_add_header(out, name, resp.headers.v[i].value) != 0) {
			char shown[65];

			log_warn("dropping invalid response header \"%s\" from the function",
			         proxy_printable(name, shown, sizeof shown));
		}
	}
	/* "200 OK" -> "OK"; an absent or bare description gets the standard phrase. */
	reason = NULL;
	if (resp.status_description != NULL) {
		reason = resp.status_description;
		while (isdigit((unsigned char)*reason))
			reason++;
		while (*reason == ' ')
			reason++;
		if (*reason == '\0' || strpbrk(reason, "\r\n") != NULL)
			reason = NULL;
	}
	if (reason == NULL)
		reason = http_reason(resp.status);
	buf = evbuffer_new();
	n = 0;
	/* No body after HEAD, 204 or 304, even if the function gave one:
	 * evhttp would write it, and a kept-alive client would read it as the
	 * start of the next response. */
	if (buf != NULL && resp.body_len > 0 && !head && resp.status != 204 && resp.status != 304) {
		evbuffer_add(buf, resp.body, resp.body_len);
		n = resp.body_len;
	}
	*status = resp.status;
	cache_response(cache, req, resp.status, n > 0 ? resp.body : NULL, n);
	/* A retiring worker sends its keep-alive clients elsewhere. */
	if (worker_draining())
		proxy_mark_close(req);
	evhttp_send_reply(req, resp.status, reason, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	alb_response_free(&resp);
	if (head || resp.status == 204 || resp.status == 304)
		n = 0;
	return n;
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
	struct evhttp_request *req = pr->req;
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
	/* Answering may free the connection (a write error): we are done
	 * with it either way, so stop listening for its close. */
	evhttp_connection_set_closecb(pr->evcon, NULL, NULL);
	if (pr->watch != NULL) {
		event_free(pr->watch);
		pr->watch = NULL;
	}
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
		/* A function error was logged by invoke.c, with its message. */
		/* The same failure again and again (no credentials, throttling,
		 * endpoint down) is counted and summarised once a minute. */
		snprintf(status_text, sizeof status_text, "%d", r->status);
		fields[1] = pr->al.id;
		fields[3] = pr->host;
		fields[5] = status_text;
		fields[7] =
		    r->credentials ? "no usable AWS credentials" : proxy_failure_kind(r->message);
		if (r->credentials || r->function_error == NULL)
			log_repeat(LOG_LVL_WARN, fields[7], fields, "%s %s%s: %d: %s (request %s)",
			           pr->method, pr->host, pr->path, r->status,
			           r->credentials ? "no usable AWS credentials" : r->message,
			           pr->al.id);
		bytes = proxy_send_error(req, r->status, 0, "%s", r->message);
	}
	proxy_log_cache(pr->client, pr->method, pr->host, pr->path, status, bytes, &pr->start,
	                r->request_id, cache_req_logstatus(pr->cache), &pr->al);
	proxy_req_free(pr);
}

/* Fill the event's request part from the client's request. */
static void
proxy_build_request(struct evhttp_request *req, const char *method, const char *host,
                    const char *path, const char *query, const char *client, struct alb_request *a)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	struct evkeyval *kv;
	struct kvlist xff = KVLIST_INIT;
	const char *id;
	char idbuf[64];
	size_t i, len;
	char *joined = NULL, *tmp;

	a->method = xstrdup(method);
	a->path = xstrdup(path);
	if (query != NULL)
		proxy_split_query(query, &a->query);
	TAILQ_FOREACH(kv, in, next)
	{
		kvlist_add(&a->headers, kv->key, kv->value);
	}
	http_strip_hop_by_hop(&a->headers, 0);
	/* evhttp has answered "Expect: 100-continue" already. */
	kvlist_del(&a->headers, "Expect");
	kvlist_set(&a->headers, "Host", host);
	if (proxy.cfg->forwarded_for) {
		/* One X-Forwarded-For: what came in, then this client. */
		for (i = 0; i < a->headers.n; i++) {
			if (strcasecmp(a->headers.v[i].name, "X-Forwarded-For") == 0)
				kvlist_add(&xff, "", a->headers.v[i].value);
		}
		for (i = 0; i < xff.n; i++) {
			xasprintf(&tmp, "%s%s%s", joined ? joined : "", joined ? ", " : "",
			          xff.v[i].value);
			free(joined);
			joined = tmp;
		}
		xasprintf(&tmp, "%s%s%s", joined ? joined : "", joined ? ", " : "", client);
		free(joined);
		kvlist_set(&a->headers, "X-Forwarded-For", tmp);
		free(tmp);
		kvlist_free(&xff);
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
proxy_target(struct evhttp_request *req, char **host, char **path, char **query, char *err,
             size_t errlen)
{
	const char *uri = evhttp_request_get_uri(req), *p, *q, *h;
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
		h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
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

/* Stop watching pr's client: we answer it now. */
static void
proxy_req_unwatch(struct proxy_req *pr)
{
	evhttp_connection_set_closecb(pr->evcon, NULL, NULL);
	if (pr->watch != NULL) {
		event_free(pr->watch);
		pr->watch = NULL;
	}
}

/* Answer pr from the cache and forget it. */
static void
proxy_cache_hit(struct proxy_req *pr)
{
	size_t bytes;
	int status;

	proxy_req_unwatch(pr);
	if (worker_draining())
		proxy_mark_close(pr->req);
	bytes = cache_send(pr->cache, pr->req, &status);
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
		invoke_resume(pr->inv);
	else if (pr->lcall != NULL)
		localfn_stream_resume(pr->lcall);
}

static void
proxy_stream_drained(struct httpreq *w, void *arg)
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
	switch (res->outcome) {
	case PSTREAM_DONE:
	case PSTREAM_ABORTED:
		/* The writer ended the request (and, aborting, the connection). */
		pr->w = NULL;
		accesslog_req_invoke_done(&pr->al, e->attempts);
		metrics_invocation(res->outcome == PSTREAM_DONE, pr->al.invoke_ms / 1000);
		if (pr->watch != NULL) {
			event_free(pr->watch);
			pr->watch = NULL;
		}
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
	case PSTREAM_WHOLE:
	case PSTREAM_FAILED:
		break;
	}
	/* Nothing went out: the buffered path answers (it frees pr). */
	memset(&r, 0, sizeof r);
	r.status = res->status;
	r.payload = res->payload;
	r.payload_len = res->payload_len;
	r.message = res->message;
	r.request_id = e->request_id != NULL ? e->request_id : "";
	r.function_error = e->function_error;
	r.attempts = e->attempts;
	r.credentials = e->credentials;
	httpreq_release(pr->w);
	pr->w = NULL;
	proxy_invoke_done(&r, pr);
}

static const struct pstream_hooks proxy_stream_hooks = {
    proxy_stream_resume,
    proxy_stream_finished,
};

/* invoke.c, streaming: bytes and the end, to the stream. */
static int
proxy_stream_data(const unsigned char *p, size_t n, void *arg)
{
	struct proxy_req *pr = arg;

	return pstream_ops.data(p, n, pr->ps);
}

static void
proxy_stream_invoked(const struct invoke_result *r, void *arg)
{
	struct proxy_req *pr = arg;
	struct fnstream_end e;

	memset(&e, 0, sizeof e);
	e.status = r->status;
	e.message = r->message;
	e.request_id = r->request_id;
	e.function_error = r->function_error;
	e.credentials = r->credentials;
	e.attempts = r->attempts;
	e.bytes = r->stream_bytes;
	pstream_ops.done(&e, pr->ps);
}

/* Send the function's way: build the event and invoke (or refuse). */
static void
proxy_forward(struct proxy_req *pr)
{
	const struct config *cfg = proxy.cfg;
	struct evhttp_request *req = pr->req;
	struct alb_request a;
	char *event;
	size_t len, bytes;

	if (cfg->limits.max_inflight > 0 &&
	    (proxy.localfn != NULL
	         ? localfn_inflight(proxy.localfn)
	         : invoke_inflight(proxy.invoke)) >= (unsigned)cfg->limits.max_inflight) {
		proxy_req_unwatch(pr);
		bytes = proxy_send_error(req, 503, 0,
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
		proxy_req_unwatch(pr);
		bytes = proxy_send_error(req, 413, 0,
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
		pr->w = httpreq_wrap(req, cfg->timeouts.keepalive);
		httpreq_set_drained(pr->w, proxy_stream_drained, pr);
		pr->ps = pstream_new(pr->w, pr->cache, cfg->limits.stream_buffer,
		                     &proxy_stream_hooks, pr);
		if (proxy.localfn != NULL)
			pr->lcall = localfn_start_stream(proxy.localfn, pr->method, event, len,
			                                 &pstream_ops, pr->ps);
		else
			pr->inv = invoke_start_stream(proxy.invoke, pr->method, event, len,
			                              cfg->timeouts.stream_idle, proxy_stream_data,
			                              proxy_stream_invoked, pr);
		return;
	}
	if (proxy.localfn != NULL)
		pr->lcall =
		    localfn_start(proxy.localfn, pr->method, event, len, proxy_invoke_done, pr);
	else
		pr->inv = invoke_start(proxy.invoke, pr->method, event, len, proxy_invoke_done, pr);
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

static void
proxy_request(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct config *cfg = proxy.cfg;
	const struct sockaddr *sa;
	struct proxy_req *pr;
	struct accesslog_req al;
	struct timespec start;
	const char *method;
	char client[64], err[512], *addr = NULL, *host = NULL, *path = NULL, *query = NULL;
	size_t bytes;
	ev_uint16_t port = 0;
	evutil_socket_t fd;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &start);
	/*
	 * evhttp marks an absolute-form request for a host it does not serve
	 * as a proxy request, and then closes the connection after the reply
	 * unless the client sent "Proxy-Connection: keep-alive", without
	 * saying "Connection: close": every client's next request on the
	 * kept-alive connection would fail. Connection (and a client's
	 * "Proxy-Connection: close") decide here, as for any request.
	 */
	if (req->flags & EVHTTP_PROXY_REQUEST) {
		const char *pc;

		req->flags &= ~EVHTTP_PROXY_REQUEST;
		pc = evhttp_find_header(evhttp_request_get_input_headers(req), "Proxy-Connection");
		if (pc != NULL && strcasecmp(pc, "close") == 0)
			proxy_mark_close(req);
	}
	/* keepalive: 0 means one request per connection. */
	if (cfg->timeouts.keepalive <= 0)
		proxy_mark_close(req);
	else if (evcon != NULL) {
		struct timeval tv;

		proxy_tv(cfg->timeouts.keepalive, &tv);
		evhttp_connection_set_timeout_tv(evcon, &tv);
	}
	method = proxy_method_name(evhttp_request_get_command(req));
	/* The request id: the client's X-Request-Id when it is sane, else a
	 * new one; the function gets it in the event, the client back. */
	accesslog_req_init(
	    &al, evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id"),
	    evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent"),
	    evbuffer_get_length(evhttp_request_get_input_buffer(req)));
	evhttp_remove_header(evhttp_request_get_input_headers(req), "X-Request-Id");
	evhttp_add_header(evhttp_request_get_input_headers(req), "X-Request-Id", al.id);
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", al.id);
	client[0] = '\0';
	if (evcon != NULL) {
		evhttp_connection_get_peer(evcon, &addr, &port);
		if (addr != NULL)
			snprintf(client, sizeof client, "%s", addr);
	}
	/* A v4-mapped peer on a dual-stack socket is the IPv4 client. */
	if (strncasecmp(client, "::ffff:", 7) == 0 && strchr(client + 7, '.') != NULL)
		memmove(client, client + 7, strlen(client + 7) + 1);

	sa = evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;
	if (sa == NULL || !config_allowed(cfg, sa)) {
		al.outcome = ACCESSLOG_DENIED;
		log_info("refused client %s: not in the allow list", client[0] ? client : "?");
		bytes = proxy_send_error(req, 403, 0,
		                         "client %s is not allowed to use this proxy (see allow in "
		                         "the configuration)",
		                         client[0] ? client : "?");
		proxy_log(client, method, NULL, NULL, 403, bytes, &start, NULL, &al);
		return;
	}
	if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT) {
		/* Length-delimited and closed, so that a client that already
		 * started TLS or waits for a tunnel does not hang. */
		bytes = proxy_send_error(
		    req, 405, 1,
		    "CONNECT is not supported: send plain http:// URLs through this proxy (for "
		    "example http://api.github.com/...); the TLS connection to the API starts in "
		    "the Lambda function");
		proxy_log(client, method, evhttp_request_get_uri(req), NULL, 405, bytes, &start,
		          NULL, &al);
		return;
	}
	if (proxy_conflicting_length(req)) {
		bytes = proxy_send_error(req, 400, 1,
		                         "conflicting Content-Length headers: the request's length "
		                         "is ambiguous");
		proxy_log(client, method, NULL, NULL, 400, bytes, &start, NULL, &al);
		return;
	}
	status = proxy_target(req, &host, &path, &query, err, sizeof err);
	if (status != 0) {
		bytes = proxy_send_error(req, status, 0, "%s", err);
		proxy_log(client, method, host, path, status, bytes, &start, NULL, &al);
		goto out;
	}
	if (proxy.localfn == NULL && (cfg->function_name == NULL || *cfg->function_name == '\0')) {
		bytes = proxy_send_error(req, 503, 0,
		                         "no Lambda function configured: set function_name in %s "
		                         "(or start with -function-name NAME)",
		                         cfg->path ? cfg->path : CONFIG_DEFAULT_PATH);
		proxy_log(client, method, host, path, 503, bytes, &start, NULL, &al);
		goto out;
	}
	pr = xcalloc(1, sizeof *pr);
	pr->req = req;
	pr->evcon = evcon;
	pr->method = method;
	snprintf(pr->client, sizeof pr->client, "%s", client);
	pr->host = host;
	pr->path = path;
	pr->query = query;
	host = path = query = NULL;
	pr->start = start;
	pr->al = al;
	TAILQ_INSERT_TAIL(&proxy.reqs, pr, entry);
	proxy.nreqs++;
	metrics_inflight(1);
	evhttp_connection_set_closecb(evcon, proxy_conn_closed, pr);
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd != -1) {
		pr->watch = event_new(proxy.base, fd, EV_READ, proxy_client_readable, pr);
		if (pr->watch != NULL)
			event_add(pr->watch, NULL);
	}
	/* The response cache (cache.c): a fresh entry answers at once; a miss
	 * that another request (in any worker) is filling waits for it. */
	switch (cache_begin(&pr->cache, proxy.base, cfg, req, method, pr->host, pr->path, pr->query,
	                    proxy_cache_resume, pr)) {
	case CACHE_HIT:
		proxy_cache_hit(pr);
		break;
	case CACHE_WAIT:
		break;
	case CACHE_GO:
		proxy_forward(pr);
		break;
	}
out:
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
proxy_init(struct event_base *base, struct evhttp *http, const struct config *cfg)
{
	struct invoke_options o;
	struct localfn_options lo;
	struct timeval tv;
	char err[512];
	double t;

	memset(&proxy, 0, sizeof proxy);
	TAILQ_INIT(&proxy.reqs);
	proxy.base = base;
	proxy.http = http;
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
	memset(&o, 0, sizeof o);
	o.function_name = cfg->function_name;
	o.egress_proxy = cfg->egress_proxy;
	o.connect_timeout = cfg->timeouts.connect;
	o.budget = cfg->timeouts.invoke;
	o.attempts = cfg->retry.attempts;
	o.backoff_base = cfg->retry.base;
	o.backoff_cap = cfg->retry.cap;
	/* Every invocation in flight needs its own HTTP/1.1 connection. */
	o.max_connections = cfg->limits.max_inflight > 0 ? cfg->limits.max_inflight : 0;
	proxy.invoke = invoke_ctx_new(base, &o);
	if (proxy.invoke == NULL) {
		log_error("cannot create the Lambda client (libcurl multi handle)");
		return -1;
	}
server:

	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                     EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(http, NULL);
	if (cfg->limits.max_body > 0)
		evhttp_set_max_body_size(http, (ev_ssize_t)cfg->limits.max_body);
	if (cfg->limits.max_header > 0)
		evhttp_set_max_headers_size(http, (ev_ssize_t)cfg->limits.max_header);
	/*
	 * libevent 2.1 has one inactivity timeout per connection, for reading
	 * a request, writing the reply and idling between requests (never
	 * while we wait for the function), and no hook when a new request
	 * starts. A new connection gets the larger of client_header and
	 * client_body; once its first request is in, proxy_request() switches
	 * it to keepalive for the idle time (and the requests that follow).
	 */
	t = cfg->timeouts.client_header;
	if (cfg->timeouts.client_body > t)
		t = cfg->timeouts.client_body;
	if (t > 0) {
		proxy_tv(t, &tv);
		evhttp_set_timeout_tv(http, &tv);
	}
	evhttp_set_gencb(http, proxy_request, NULL);
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
			invoke_cancel(pr->inv);
		pr->inv = NULL;
		if (pr->lcall != NULL)
			localfn_cancel(pr->lcall);
		pr->lcall = NULL;
		evhttp_connection_set_closecb(pr->evcon, NULL, NULL);
		if (pr->ps != NULL && pstream_started(pr->ps)) {
			/* Half a response: cut it rather than complete it wrongly. */
			pstream_gone(pr->ps);
			httpreq_abort(pr->w);
			pr->w = NULL;
			proxy_log_entry(pr->client, pr->method, pr->host, pr->path, 503, 0,
			                &pr->start, NULL, NULL, &pr->al, 1);
			proxy_req_free(pr);
			continue;
		}
		proxy_send_error(pr->req, 503, 1, "the proxy is shutting down; retry");
		proxy_log(pr->client, pr->method, pr->host, pr->path, 503, 0, &pr->start, NULL,
		          &pr->al);
		proxy_req_free(pr);
	}
	invoke_ctx_free(proxy.invoke);
	proxy.invoke = NULL;
	localfn_ctx_free(proxy.localfn);
	proxy.localfn = NULL;
	proxy.ready = 0;
}
