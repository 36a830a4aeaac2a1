/*
 * api.c: the public calls (see ssm-sign-proxy.h): requests, responses and
 * errors; a request turned into an ALB event (the same codec the daemon and
 * the function use: raw query, multi-value headers, binary bodies as base64,
 * hop-by-hop headers stripped) and the function's ALB answer turned back
 * into a response; the asynchronous calls on the caller's loop (invoke.c);
 * and the blocking call, which runs the same asynchronous call on a private
 * loop taken from the client's pool, so that keep-alive connections and the
 * retry rules are those of every other call. A streamed call reads the
 * function's bytes as an HTTP integration response (a JSON prelude, 8 NUL
 * bytes, the body): the prelude becomes the head, the rest goes on as body.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "alb.h"
#include "httputil.h"
#include "invoke.h"
#include "kvlist.h"
#include "sspint.h"
#include "xmalloc.h"

/* A fixed, recognisable target group ARN for the event's
 * requestContext.elb (there is no target group), as the daemon sends. */
#define API_TARGET_GROUP_ARN                                                                       \
	"arn:aws:elasticloadbalancing:local:000000000000:targetgroup/ssm-sign-proxy/"              \
	"0000000000000000"

struct ssp_loop {
	ssp_client *client;
	struct invoke_ctx *ctx;
	TAILQ_HEAD(, ssp_call) calls;
};

/* The outcome with ownership of response or error (the blocking call). */
typedef void (*api_owned_fn)(ssp_response *, ssp_error *, void *arg);

struct ssp_call {
	ssp_loop *loop;
	TAILQ_ENTRY(ssp_call) entry;
	struct invoke *inv;
	int decode; /* the payload is an ALB response to turn into a response */
	ssp_done_fn cb;
	api_owned_fn owned;
	void *arg;

	/* Streamed calls: data (raw bytes, or the body after the head). */
	ssp_data_fn data;
	ssp_head_fn head;
	struct evbuffer *pre;   /* ssp_start_stream(): bytes before the head */
	ssp_response *headresp; /* the head, once it went out */
	char bad[400];          /* why the bytes are no response ("" when fine) */
};

/* A prelude longer than this is not one. */
#define API_MAX_PRELUDE (64 * 1024)
/* Without a prelude the bytes are a whole ALB response: Invoke's limit,
 * with room for the encoding. */
#define API_MAX_WHOLE (8 * 1024 * 1024)

/* One private loop of the blocking calls. */
struct blocker {
	struct event_base *base;
	ssp_loop *loop;
	struct blocker *next;
};

/* --- requests ----------------------------------------------------------- */

ssp_request *
ssp_request_new(const char *method, const char *url)
{
	ssp_request *r;

	if (method == NULL || *method == '\0' || url == NULL)
		return NULL;
	r = xcalloc(1, sizeof *r);
	r->method = xstrdup(method);
	r->url = xstrdup(url);
	kvlist_init(&r->headers);
	return r;
}

void
ssp_request_free(ssp_request *r)
{
	if (r == NULL)
		return;
	free(r->method);
	free(r->url);
	kvlist_free(&r->headers);
	free(r->body);
	free(r);
}

int
ssp_request_add_header(ssp_request *r, const char *name, const char *value)
{
	const char *p;

	if (name == NULL || *name == '\0' || value == NULL)
		return -1;
	for (p = name; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ':')
			return -1;
	if (strpbrk(value, "\r\n") != NULL)
		return -1;
	kvlist_add(&r->headers, name, value);
	return 0;
}

int
ssp_request_set_body(ssp_request *r, const void *body, size_t len)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	if (len > 0) {
		if (body == NULL)
			return -1;
		r->body = xmalloc(len);
		memcpy(r->body, body, len);
		r->body_len = len;
	}
	return 0;
}

/* --- responses and errors ----------------------------------------------- */

int
ssp_response_status(const ssp_response *r)
{
	return r->status;
}

size_t
ssp_response_header_count(const ssp_response *r)
{
	return r->headers.n;
}

int
ssp_response_header(const ssp_response *r, size_t i, const char **name, const char **value)
{
	if (i >= r->headers.n)
		return -1;
	if (name != NULL)
		*name = r->headers.v[i].name;
	if (value != NULL)
		*value = r->headers.v[i].value;
	return 0;
}

const char *
ssp_response_header_get(const ssp_response *r, const char *name)
{
	return kvlist_get(&r->headers, name);
}

const void *
ssp_response_body(const ssp_response *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body != NULL ? (const void *)r->body : (const void *)"";
}

const char *
ssp_response_request_id(const ssp_response *r)
{
	return r->request_id != NULL ? r->request_id : "";
}

void
ssp_response_free(ssp_response *r)
{
	if (r == NULL)
		return;
	kvlist_free(&r->headers);
	free(r->body);
	free(r->request_id);
	free(r);
}

enum ssp_error_kind
ssp_error_kind(const ssp_error *e)
{
	return e->kind;
}

int
ssp_error_status(const ssp_error *e)
{
	return e->status;
}

const char *
ssp_error_message(const ssp_error *e)
{
	return e->message;
}

const char *
ssp_error_request_id(const ssp_error *e)
{
	return e->request_id != NULL ? e->request_id : "";
}

const char *
ssp_error_function_error(const ssp_error *e)
{
	return e->function_error;
}

unsigned
ssp_error_attempts(const ssp_error *e)
{
	return e->attempts;
}

void
ssp_error_free(ssp_error *e)
{
	if (e == NULL)
		return;
	free(e->message);
	free(e->request_id);
	free(e->function_error);
	free(e);
}

static ssp_error *
api_error(enum ssp_error_kind kind, int status, const char *msg, const struct invoke_result *r)
{
	ssp_error *e = xcalloc(1, sizeof *e);

	e->kind = kind;
	e->status = status;
	e->message = xstrdup(msg != NULL ? msg : "");
	if (r != NULL) {
		e->request_id = xstrdup(r->request_id != NULL ? r->request_id : "");
		e->function_error = r->function_error ? xstrdup(r->function_error) : NULL;
		e->attempts = r->attempts;
	}
	return e;
}

/* --- the event ----------------------------------------------------------- */

/*
 * "http://host[:port]/path?query#frag" (or https: the function makes the
 * TLS connection either way) -> host[:port], the escaped path as given and
 * the raw query (NULL when none). -1 when it is not such a URL.
 */
static int
api_split_url(const char *url, char **host, char **path, char **query)
{
	const char *p, *q;
	size_t alen;

	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return -1;
	alen = strcspn(p, "/?#");
	if (alen == 0 || memchr(p, '@', alen) != NULL)
		return -1;
	for (q = p; q < p + alen; q++)
		if (*q <= ' ' || *q >= 0x7f)
			return -1;
	*host = xstrndup(p, alen);
	p += alen;
	q = p + strcspn(p, "?#");
	*path = *p == '/' ? xstrndup(p, (size_t)(q - p)) : xstrdup("/");
	*query = *q == '?' ? xstrndup(q + 1, strcspn(q + 1, "#")) : NULL;
	return 0;
}

/* The ALB event for r; NULL with err, *kind and *status when the URL is
 * unusable (400) or the event is larger than an invoke accepts (413). */
static char *
api_event(const ssp_client *c, const ssp_request *r, size_t *len, enum ssp_error_kind *kind,
          int *status, char *err, size_t errlen)
{
	struct alb_request a;
	char *host, *path, *query, *event;
	size_t i;

	if (api_split_url(r->url, &host, &path, &query) != 0) {
		*kind = SSP_ERR_INVALID;
		*status = 400;
		snprintf(err, errlen, "not an absolute http:// or https:// URL with a host");
		return NULL;
	}
	alb_request_init(&a);
	a.method = xstrdup(r->method);
	a.path = path;
	if (query != NULL)
		http_split_query(query, &a.query);
	free(query);
	for (i = 0; i < r->headers.n; i++)
		kvlist_add(&a.headers, r->headers.v[i].name, r->headers.v[i].value);
	http_strip_hop_by_hop(&a.headers, 0);
	kvlist_del(&a.headers, "Expect");
	kvlist_set(&a.headers, "Host", host);
	free(host);
	if (r->body_len > 0) {
		a.body = xmalloc(r->body_len);
		memcpy(a.body, r->body, r->body_len);
		a.body_len = r->body_len;
	}
	a.multi_value = 1;
	a.target_group_arn = xstrdup(API_TARGET_GROUP_ARN);
	a.instance_hostname = xstrdup(c->hostname);
	a.instance_id = xstrdup("");
	event = alb_request_encode(&a, len);
	alb_request_free(&a);
	if (*len > SSP_MAX_PAYLOAD) {
		free(event);
		*kind = SSP_ERR_TOO_LARGE;
		*status = 413;
		snprintf(err, errlen,
		         "request too large: the Lambda event would be %zu bytes, more than the %d "
		         "bytes a synchronous invoke accepts",
		         *len, SSP_MAX_PAYLOAD);
		return NULL;
	}
	return event;
}

/* The function's ALB answer as a response; NULL with err when unusable. */
static ssp_response *
api_decode(const char *payload, size_t len, char *err, size_t errlen)
{
	struct alb_response a;
	ssp_response *resp;

	if (alb_response_decode(payload, len, &a, err, errlen) != 0)
		return NULL;
	if (a.status < 200 || a.status > 599) {
		snprintf(err, errlen, "statusCode %d is not a final HTTP status", a.status);
		alb_response_free(&a);
		return NULL;
	}
	http_strip_hop_by_hop(&a.headers, a.status == 407);
	resp = xcalloc(1, sizeof *resp);
	resp->status = a.status;
	resp->headers = a.headers;
	kvlist_init(&a.headers);
	resp->body = a.body;
	resp->body_len = a.body_len;
	a.body = NULL;
	alb_response_free(&a);
	return resp;
}

/* --- asynchronous calls -------------------------------------------------- */

ssp_loop *
ssp_loop_new(ssp_client *client, struct event_base *base)
{
	ssp_loop *l;

	if (client == NULL || base == NULL)
		return NULL;
	l = xcalloc(1, sizeof *l);
	l->client = client;
	TAILQ_INIT(&l->calls);
	l->ctx = invoke_ctx_new(base, client);
	if (l->ctx == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void
ssp_loop_free(ssp_loop *l)
{
	ssp_call *call;

	if (l == NULL)
		return;
	while ((call = TAILQ_FIRST(&l->calls)) != NULL)
		ssp_cancel(call);
	invoke_ctx_free(l->ctx);
	free(l);
}

unsigned
ssp_loop_inflight(const ssp_loop *l)
{
	return l != NULL ? invoke_inflight(l->ctx) : 0;
}

static void
api_call_free(ssp_call *call)
{
	if (call->pre != NULL)
		evbuffer_free(call->pre);
	ssp_response_free(call->headresp);
	free(call);
}

/* invoke.c: the invocation ended. */
static void
api_done(const struct invoke_result *r, void *arg)
{
	ssp_call *call = arg;
	ssp_response *resp = NULL;
	ssp_error *e = NULL;
	char err[512], msg[600];

	if (r->status == 200 && call->decode) {
		resp = api_decode(r->payload, r->payload_len, err, sizeof err);
		if (resp == NULL) {
			snprintf(msg, sizeof msg, "function returned an invalid response: %s", err);
			e = api_error(SSP_ERR_FUNCTION, 502, msg, r);
		}
	} else if (r->status == 200) {
		resp = xcalloc(1, sizeof *resp);
		resp->status = 200;
		resp->body = xmalloc(r->payload_len + 1);
		if (r->payload_len > 0)
			memcpy(resp->body, r->payload, r->payload_len);
		resp->body[r->payload_len] = '\0';
		resp->body_len = r->payload_len;
	} else
		e = api_error(r->kind, r->status, r->message, r);
	if (resp != NULL)
		resp->request_id = xstrdup(r->request_id != NULL ? r->request_id : "");
	TAILQ_REMOVE(&call->loop->calls, call, entry);
	if (call->owned != NULL)
		call->owned(resp, e, call->arg);
	else {
		call->cb(resp, e, call->arg);
		ssp_response_free(resp);
		ssp_error_free(e);
	}
	api_call_free(call);
}

static ssp_call *
api_call_new(ssp_loop *l, ssp_done_fn cb, api_owned_fn owned, void *arg)
{
	ssp_call *call = xcalloc(1, sizeof *call);

	call->loop = l;
	call->cb = cb;
	call->owned = owned;
	call->arg = arg;
	TAILQ_INSERT_TAIL(&l->calls, call, entry);
	return call;
}

static ssp_call *
api_start(ssp_loop *l, const ssp_request *req, ssp_done_fn cb, api_owned_fn owned, void *arg)
{
	ssp_call *call = api_call_new(l, cb, owned, arg);
	char err[256], *event;
	size_t len = 0;
	enum ssp_error_kind kind;
	int status;

	call->decode = 1;
	event = api_event(l->client, req, &len, &kind, &status, err, sizeof err);
	if (event == NULL) {
		call->inv = invoke_start_failed(l->ctx, kind, status, err, api_done, call);
		return call;
	}
	call->inv = invoke_start(l->ctx, req->method, event, len, free, api_done, call);
	return call;
}

ssp_call *
ssp_start(ssp_loop *l, const ssp_request *req, ssp_done_fn cb, void *arg)
{
	return api_start(l, req, cb, NULL, arg);
}

ssp_call *
ssp_invoke_start(ssp_loop *l, const char *method, void *payload, size_t len,
                 void (*free_fn)(void *), ssp_done_fn cb, void *arg)
{
	ssp_call *call = api_call_new(l, cb, NULL, arg);
	char *p = payload;

	if (free_fn == NULL) {
		p = xmalloc(len + 1);
		memcpy(p, payload, len);
		free_fn = free;
	}
	if (len > SSP_MAX_PAYLOAD) {
		char err[160];

		free_fn(p);
		snprintf(err, sizeof err,
		         "payload too large: %zu bytes, more than the %d bytes a synchronous "
		         "invoke accepts",
		         len, SSP_MAX_PAYLOAD);
		call->inv =
		    invoke_start_failed(l->ctx, SSP_ERR_TOO_LARGE, 413, err, api_done, call);
		return call;
	}
	call->inv = invoke_start(l->ctx, method, p, len, free_fn, api_done, call);
	return call;
}

/* --- streamed calls ------------------------------------------------------ */

/* A head from a decoded response: status and headers, hop-by-hop fields
 * out, the request id of the invocation. */
static ssp_response *
api_head(int status, const struct kvlist *headers, const char *request_id)
{
	ssp_response *h = xcalloc(1, sizeof *h);
	size_t i;

	h->status = status;
	kvlist_init(&h->headers);
	for (i = 0; i < headers->n; i++)
		kvlist_add(&h->headers, headers->v[i].name, headers->v[i].value);
	http_strip_hop_by_hop(&h->headers, status == 407);
	h->request_id = xstrdup(request_id != NULL ? request_id : "");
	return h;
}

/* The prelude is complete (its JSON is the first plen bytes of pre): the
 * head goes out. 0, or -1 with call->bad set. */
static int
api_stream_head(ssp_call *call, size_t plen)
{
	struct alb_response a;
	char err[256];

	if (alb_prelude_decode((const char *)evbuffer_pullup(call->pre, (ev_ssize_t)plen), plen, &a,
	                       err, sizeof err) != 0) {
		snprintf(call->bad, sizeof call->bad,
		         "function returned an invalid response prelude: %s", err);
		return -1;
	}
	if (a.status < 200 || a.status > 599) {
		snprintf(call->bad, sizeof call->bad,
		         "function returned an invalid response prelude: statusCode %d is not a "
		         "final HTTP status",
		         a.status);
		alb_response_free(&a);
		return -1;
	}
	call->headresp = api_head(a.status, &a.headers, invoke_request_id(call->inv));
	alb_response_free(&a);
	evbuffer_drain(call->pre, plen + ALB_PRELUDE_SEPARATOR_LEN);
	call->head(call->headresp, call->arg);
	return 0;
}

/* invoke.c, streaming: the function's next bytes. */
static int
api_stream_data(const unsigned char *p, size_t n, void *arg)
{
	static const char nuls[ALB_PRELUDE_SEPARATOR_LEN];
	ssp_call *call = arg;
	struct evbuffer_ptr at;
	size_t len, k;
	const void *rest;
	int full;

	if (call->head == NULL)
		return call->data(p, n, call->arg);
	if (call->bad[0] != '\0')
		return 0;
	if (call->headresp != NULL)
		return call->data(p, n, call->arg);
	/* Look for the separator from a little before the new bytes. */
	len = evbuffer_get_length(call->pre);
	k = len > sizeof nuls ? len - sizeof nuls : 0;
	evbuffer_add(call->pre, p, n);
	if (evbuffer_ptr_set(call->pre, &at, k, EVBUFFER_PTR_SET) != 0)
		return 0;
	at = evbuffer_search(call->pre, nuls, sizeof nuls, &at);
	if (at.pos < 0) {
		if (evbuffer_get_length(call->pre) > API_MAX_WHOLE)
			snprintf(call->bad, sizeof call->bad,
			         "the function's answer has no response prelude and is larger than "
			         "%d bytes",
			         API_MAX_WHOLE);
		return 0;
	}
	if ((size_t)at.pos > API_MAX_PRELUDE) {
		snprintf(call->bad, sizeof call->bad, "response prelude longer than %d bytes",
		         API_MAX_PRELUDE);
		return 0;
	}
	if (api_stream_head(call, (size_t)at.pos) != 0)
		return 0;
	/* What came after the separator is body: all of it at once. */
	if ((len = evbuffer_get_length(call->pre)) == 0)
		return 0;
	rest = evbuffer_pullup(call->pre, -1);
	full = call->data(rest, len, call->arg);
	evbuffer_drain(call->pre, len);
	return full;
}

/* invoke.c, streaming: the end. */
static void
api_stream_done(const struct invoke_result *r, void *arg)
{
	ssp_call *call = arg;
	ssp_response *resp = NULL, *whole;
	ssp_error *e = NULL;
	const void *body;
	size_t len;
	char err[512], msg[600];

	if (call->head == NULL) {
		api_done(r, call);
		return;
	}
	if (r->status != 200)
		e = api_error(r->kind, r->status, r->message, r);
	else if (call->headresp != NULL) {
		resp = api_head(call->headresp->status, &call->headresp->headers, r->request_id);
	} else if (call->bad[0] != '\0')
		e = api_error(SSP_ERR_FUNCTION, 502, call->bad, r);
	else {
		/* No prelude: the function answered the buffered way. */
		len = evbuffer_get_length(call->pre);
		body = evbuffer_pullup(call->pre, -1);
		whole = api_decode(body != NULL ? body : "", len, err, sizeof err);
		if (whole == NULL) {
			snprintf(msg, sizeof msg, "function returned an invalid response: %s", err);
			e = api_error(SSP_ERR_FUNCTION, 502, msg, r);
		} else {
			call->headresp = api_head(whole->status, &whole->headers, r->request_id);
			call->head(call->headresp, call->arg);
			if (whole->body_len > 0)
				call->data(whole->body, whole->body_len, call->arg);
			ssp_response_free(whole);
			resp = api_head(call->headresp->status, &call->headresp->headers,
			                r->request_id);
		}
	}
	TAILQ_REMOVE(&call->loop->calls, call, entry);
	call->cb(resp, e, call->arg);
	ssp_response_free(resp);
	ssp_error_free(e);
	api_call_free(call);
}

ssp_call *
ssp_start_stream(ssp_loop *l, const ssp_request *req, ssp_head_fn head, ssp_data_fn body,
                 ssp_done_fn done, void *arg)
{
	ssp_call *call = api_call_new(l, done, NULL, arg);
	char err[256], *event;
	size_t len = 0;
	enum ssp_error_kind kind;
	int status;

	call->head = head;
	call->data = body;
	if ((call->pre = evbuffer_new()) == NULL)
		abort();
	event = api_event(l->client, req, &len, &kind, &status, err, sizeof err);
	if (event == NULL) {
		call->inv = invoke_start_failed(l->ctx, kind, status, err, api_stream_done, call);
		return call;
	}
	call->inv =
	    invoke_start_stream(l->ctx, req->method, event, len, free, l->client->o.stream_idle,
	                        api_stream_data, api_stream_done, call);
	return call;
}

ssp_call *
ssp_invoke_stream_start(ssp_loop *l, const char *method, void *payload, size_t len,
                        void (*free_fn)(void *), ssp_data_fn data, ssp_done_fn done, void *arg)
{
	ssp_call *call = api_call_new(l, done, NULL, arg);
	char *p = payload;

	call->data = data;
	if (free_fn == NULL) {
		p = xmalloc(len + 1);
		memcpy(p, payload, len);
		free_fn = free;
	}
	if (len > SSP_MAX_PAYLOAD) {
		char err[160];

		free_fn(p);
		snprintf(err, sizeof err,
		         "payload too large: %zu bytes, more than the %d bytes an invoke accepts",
		         len, SSP_MAX_PAYLOAD);
		call->inv =
		    invoke_start_failed(l->ctx, SSP_ERR_TOO_LARGE, 413, err, api_stream_done, call);
		return call;
	}
	call->inv = invoke_start_stream(l->ctx, method, p, len, free_fn, l->client->o.stream_idle,
	                                api_stream_data, api_stream_done, call);
	return call;
}

void
ssp_cancel(ssp_call *call)
{
	if (call == NULL)
		return;
	TAILQ_REMOVE(&call->loop->calls, call, entry);
	invoke_cancel(call->inv);
	api_call_free(call);
}

void
ssp_resume(ssp_call *call)
{
	if (call != NULL && call->data != NULL)
		invoke_resume(call->inv);
}

/* --- blocking calls ------------------------------------------------------ */

struct roundtrip {
	int done;
	ssp_response *resp;
	ssp_error *err;
};

static void
api_roundtrip_done(ssp_response *resp, ssp_error *err, void *arg)
{
	struct roundtrip *rt = arg;

	rt->resp = resp;
	rt->err = err;
	rt->done = 1;
}

int
ssp_roundtrip(ssp_client *c, const ssp_request *req, ssp_response **response, ssp_error **error)
{
	struct roundtrip rt = {0, NULL, NULL};
	struct blocker *b;

	if (response != NULL)
		*response = NULL;
	if (error != NULL)
		*error = NULL;
	pthread_mutex_lock(&c->mu);
	if ((b = c->idle) != NULL)
		c->idle = b->next;
	pthread_mutex_unlock(&c->mu);
	if (b == NULL) {
		b = xcalloc(1, sizeof *b);
		b->base = event_base_new();
		b->loop = b->base != NULL ? ssp_loop_new(c, b->base) : NULL;
		if (b->loop == NULL) {
			if (b->base != NULL)
				event_base_free(b->base);
			free(b);
			if (error != NULL)
				*error =
				    api_error(SSP_ERR_RESOURCES, 502,
				              "cannot set up an event loop for the call", NULL);
			return -1;
		}
	}
	api_start(b->loop, req, NULL, api_roundtrip_done, &rt);
	while (!rt.done)
		event_base_loop(b->base, EVLOOP_ONCE);
	pthread_mutex_lock(&c->mu);
	b->next = c->idle;
	c->idle = b;
	pthread_mutex_unlock(&c->mu);
	if (rt.resp != NULL) {
		if (response != NULL)
			*response = rt.resp;
		else
			ssp_response_free(rt.resp);
		return 0;
	}
	if (error != NULL)
		*error = rt.err;
	else
		ssp_error_free(rt.err);
	return -1;
}

/* ssp_client_free(): the blocking calls' loops and their connections. */
void
client_blockers_free(ssp_client *c)
{
	struct blocker *b;

	while ((b = c->idle) != NULL) {
		c->idle = b->next;
		ssp_loop_free(b->loop);
		event_base_free(b->base);
		free(b);
	}
}
