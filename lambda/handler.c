/*
 * handler.c: what the function does with one event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alb.h"
#include "handler.h"
#include "hostcheck.h"
#include "httputil.h"
#include "origin.h"
#include "signer.h"
#include "stream.h"
#include "xmalloc.h"

void
handler_result_free(struct handler_result *r)
{
	free(r->method);
	free(r->host);
	free(r->path);
	free(r->error);
	memset(r, 0, sizeof *r);
}

static void
handler_describe(struct alb_response *resp)
{
	free(resp->status_description);
	xasprintf(&resp->status_description, "%d %s", resp->status, http_reason(resp->status));
}

/* An answer written by the function itself: text/plain, one line. */
static void
handler_error(struct alb_response *resp, struct handler_result *r, int status, const char *msg)
{
	int multi = resp->multi_value;

	alb_response_free(resp);
	alb_response_init(resp);
	resp->multi_value = multi;
	resp->status = status;
	xasprintf((char **)&resp->body, "%s\n", msg);
	resp->body_len = strlen((char *)resp->body);
	kvlist_add(&resp->headers, "Content-Type", "text/plain; charset=utf-8");
	free(r->error);
	r->error = xstrdup(msg);
}

static char *
handler_encode(struct handler *h, struct alb_response *resp, struct handler_result *r, size_t *len)
{
	char *json, msg[256];

	handler_describe(resp);
	r->status = resp->status;
	if ((json = alb_response_encode(resp, len)) == NULL)
		return NULL;
	if (*len <= h->max_response_bytes)
		return json;
	free(json);
	snprintf(msg, sizeof msg,
	         "the origin's response is too large for a Lambda response (over %zu bytes "
	         "encoded)",
	         h->max_response_bytes);
	handler_error(resp, r, 502, msg);
	handler_describe(resp);
	r->status = resp->status;
	return alb_response_encode(resp, len);
}

static int
handler_method_ok(const char *m)
{
	if (m == NULL || *m == '\0' || strlen(m) > 32)
		return 0;
	for (; *m != '\0'; m++)
		if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') || *m == '-' ||
		      *m == '_'))
			return 0;
	return 1;
}

/* What handler_prepare() leaves for the origin call and the clean-up. */
struct handler_call {
	struct alb_request req;
	struct alb_response resp; /* the function's own answer when not ready */
	struct host_target target;
	struct kvlist params;
	char *reqtarget;
	struct origin_request orq;
	int ready; /* orq is set: call the origin */
};

/*
 * Everything before the origin call: decode the event, refuse what must not
 * go through, find the parameters, sign. Sets c->ready and c->orq when the
 * origin is to be called, else c->resp holds the answer.
 */
static void
handler_prepare(struct handler *h, const char *event, size_t event_len, long long deadline_ms,
                struct handler_result *r, struct handler_call *c)
{
	enum params_status ps;
	char err[512], msg[700];
	const char *hosthdr, *q;

	memset(r, 0, sizeof *r);
	memset(c, 0, sizeof *c);
	kvlist_init(&c->params);
	alb_response_init(&c->resp);
	alb_request_init(&c->req);
	if (alb_request_decode(event, event_len, &c->req, err, sizeof err) != 0) {
		/* alb_request_decode freed req; answer in the single-value shape. */
		alb_request_init(&c->req);
		snprintf(msg, sizeof msg, "malformed event: %s", err);
		handler_error(&c->resp, r, 400, msg);
		return;
	}
	c->resp.multi_value = c->req.multi_value;
	r->method = xstrdup(c->req.method != NULL ? c->req.method : "-");
	r->path = xstrdup(c->req.path != NULL ? c->req.path : "-");
	if ((q = strchr(r->path, '?')) != NULL)
		r->path[q - r->path] = '\0';

	if (!handler_method_ok(c->req.method)) {
		handler_error(&c->resp, r, 400, "invalid request method");
		return;
	}
	/* TRACE would echo the injected secrets back to the client; CONNECT
	 * cannot be carried by a Lambda event. */
	if (strcasecmp(c->req.method, "TRACE") == 0 || strcasecmp(c->req.method, "CONNECT") == 0) {
		handler_error(&c->resp, r, 405, "method not allowed through ssm-sign-proxy");
		kvlist_add(&c->resp.headers, "Allow",
		           "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
		return;
	}
	hosthdr = kvlist_get(&c->req.headers, "Host");
	if (hosthdr != NULL)
		r->host = xstrdup(hosthdr);
	if (kvlist_count(&c->req.headers, "Host") > 1) {
		handler_error(&c->resp, r, 400, "more than one Host header");
		return;
	}
	if (hostcheck_parse(hosthdr, &c->target, err, sizeof err) != 0) {
		handler_error(&c->resp, r, 400, err);
		return;
	}
	free(r->host);
	r->host = xstrdup(c->target.key);

	ps = params_lookup(h->params, c->target.key, deadline_ms, &c->params, &r->how, err,
	                   sizeof err);
	if (ps == PARAMS_TIMEOUT) {
		snprintf(msg, sizeof msg, "%s (the function's deadline is near)", err);
		handler_error(&c->resp, r, 504, msg);
		return;
	}
	if (ps != PARAMS_OK) {
		handler_error(&c->resp, r, 502, err);
		return;
	}
	if (c->params.n == 0) {
		snprintf(msg, sizeof msg, "no signing parameters found for %s", c->target.key);
		handler_error(&c->resp, r, 407, msg);
		/* RFC 9110 requires a challenge with every 407. */
		kvlist_add(&c->resp.headers, "Proxy-Authenticate", "ssm-sign-proxy");
		return;
	}
	if (signer_apply(&c->params, &c->req.headers, c->req.path, &c->req.query, &c->reqtarget,
	                 err, sizeof err) != 0) {
		handler_error(&c->resp, r, 502, err);
		return;
	}

	c->orq.method = c->req.method;
	c->orq.host = c->target.host;
	c->orq.port = c->target.port;
	c->orq.target = c->reqtarget;
	c->orq.headers = &c->req.headers;
	c->orq.body = c->req.body;
	c->orq.body_len = c->req.body_len;
	c->orq.deadline_ms = deadline_ms > 0 ? deadline_ms - h->deadline_margin_ms : 0;
	c->orq.max_body = h->max_response_bytes;
	c->ready = 1;
}

static void
handler_call_free(struct handler_call *c)
{
	size_t i;

	for (i = 0; i < c->params.n; i++)
		explicit_bzero(c->params.v[i].value, strlen(c->params.v[i].value));
	kvlist_free(&c->params);
	/* The request's headers now hold the injected secrets. */
	for (i = 0; i < c->req.headers.n; i++)
		explicit_bzero(c->req.headers.v[i].value, strlen(c->req.headers.v[i].value));
	if (c->reqtarget != NULL) {
		explicit_bzero(c->reqtarget, strlen(c->reqtarget));
		free(c->reqtarget);
	}
	alb_request_free(&c->req);
	alb_response_free(&c->resp);
}

char *
handler_invoke(struct handler *h, const char *event, size_t event_len, long long deadline_ms,
               struct handler_result *r, size_t *len)
{
	struct handler_call c;
	enum origin_status os;
	char err[512], *json;

	handler_prepare(h, event, event_len, deadline_ms, r, &c);
	if (c.ready) {
		os = origin_call(h->origin, &c.orq, &c.resp, err, sizeof err);
		switch (os) {
		case ORIGIN_OK:
			break;
		case ORIGIN_TIMEOUT:
			handler_error(&c.resp, r, 504, err);
			break;
		case ORIGIN_TOO_LARGE:
		case ORIGIN_UNREACHABLE:
			handler_error(&c.resp, r, 502, err);
			break;
		}
		c.resp.multi_value = c.req.multi_value;
	}
	json = handler_encode(h, &c.resp, r, len);
	handler_call_free(&c);
	return json;
}

int
handler_stream(struct handler *h, struct runtime *rt, const char *request_id, const char *event,
               size_t event_len, long long deadline_ms, struct handler_result *r, char *err,
               size_t errlen)
{
	struct handler_call c;
	struct stream_outcome out;
	int ret;

	handler_prepare(h, event, event_len, deadline_ms, r, &c);
	ret = stream_respond(rt, request_id, h->origin, c.ready ? &c.orq : NULL, &c.resp,
	                     h->stream_buffer_bytes, &out, err, errlen);
	r->status = out.status;
	r->truncated = out.truncated;
	r->body_bytes = out.body_bytes;
	if (out.error != NULL) {
		free(r->error);
		r->error = out.error;
		out.error = NULL;
	}
	stream_outcome_free(&out);
	handler_call_free(&c);
	return ret;
}
