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

char *
handler_invoke(struct handler *h, const char *event, size_t event_len, long long deadline_ms,
               struct handler_result *r, size_t *len)
{
	struct alb_request req;
	struct alb_response resp;
	struct host_target target;
	struct kvlist params = KVLIST_INIT;
	struct origin_request orq;
	enum params_status ps;
	enum origin_status os;
	char err[512], msg[700], *reqtarget = NULL, *json;
	const char *hosthdr, *q;
	size_t i;

	memset(r, 0, sizeof *r);
	alb_response_init(&resp);
	alb_request_init(&req);
	if (alb_request_decode(event, event_len, &req, err, sizeof err) != 0) {
		/* alb_request_decode freed req; answer in the single-value shape. */
		alb_request_init(&req);
		snprintf(msg, sizeof msg, "malformed event: %s", err);
		handler_error(&resp, r, 400, msg);
		goto done;
	}
	resp.multi_value = req.multi_value;
	r->method = xstrdup(req.method != NULL ? req.method : "-");
	r->path = xstrdup(req.path != NULL ? req.path : "-");
	if ((q = strchr(r->path, '?')) != NULL)
		r->path[q - r->path] = '\0';

	if (!handler_method_ok(req.method)) {
		handler_error(&resp, r, 400, "invalid request method");
		goto done;
	}
	/* TRACE would echo the injected secrets back to the client; CONNECT
	 * cannot be carried by a Lambda event. */
	if (strcasecmp(req.method, "TRACE") == 0 || strcasecmp(req.method, "CONNECT") == 0) {
		handler_error(&resp, r, 405, "method not allowed through ssm-sign-proxy");
		kvlist_add(&resp.headers, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
		goto done;
	}
	hosthdr = kvlist_get(&req.headers, "Host");
	if (hosthdr != NULL)
		r->host = xstrdup(hosthdr);
	if (kvlist_count(&req.headers, "Host") > 1) {
		handler_error(&resp, r, 400, "more than one Host header");
		goto done;
	}
	if (hostcheck_parse(hosthdr, &target, err, sizeof err) != 0) {
		handler_error(&resp, r, 400, err);
		goto done;
	}
	free(r->host);
	r->host = xstrdup(target.key);

	ps = params_lookup(h->params, target.key, deadline_ms, &params, &r->how, err, sizeof err);
	if (ps == PARAMS_TIMEOUT) {
		snprintf(msg, sizeof msg, "%s (the function's deadline is near)", err);
		handler_error(&resp, r, 504, msg);
		goto done;
	}
	if (ps != PARAMS_OK) {
		handler_error(&resp, r, 502, err);
		goto done;
	}
	if (params.n == 0) {
		snprintf(msg, sizeof msg, "no signing parameters found for %s", target.key);
		handler_error(&resp, r, 407, msg);
		/* RFC 9110 requires a challenge with every 407. */
		kvlist_add(&resp.headers, "Proxy-Authenticate", "ssm-sign-proxy");
		goto done;
	}
	if (signer_apply(&params, &req.headers, req.path, &req.query, &reqtarget, err,
	                 sizeof err) != 0) {
		handler_error(&resp, r, 502, err);
		goto done;
	}

	memset(&orq, 0, sizeof orq);
	orq.method = req.method;
	orq.host = target.host;
	orq.port = target.port;
	orq.target = reqtarget;
	orq.headers = &req.headers;
	orq.body = req.body;
	orq.body_len = req.body_len;
	orq.deadline_ms = deadline_ms > 0 ? deadline_ms - h->deadline_margin_ms : 0;
	orq.max_body = h->max_response_bytes;
	os = origin_call(h->origin, &orq, &resp, err, sizeof err);
	switch (os) {
	case ORIGIN_OK:
		break;
	case ORIGIN_TIMEOUT:
		handler_error(&resp, r, 504, err);
		break;
	case ORIGIN_TOO_LARGE:
	case ORIGIN_UNREACHABLE:
		handler_error(&resp, r, 502, err);
		break;
	}
	resp.multi_value = req.multi_value;

done:
	json = handler_encode(h, &resp, r, len);
	for (i = 0; i < params.n; i++)
		explicit_bzero(params.v[i].value, strlen(params.v[i].value));
	kvlist_free(&params);
	/* The request's headers now hold the injected secrets. */
	for (i = 0; i < req.headers.n; i++)
		explicit_bzero(req.headers.v[i].value, strlen(req.headers.v[i].value));
	if (reqtarget != NULL) {
		explicit_bzero(reqtarget, strlen(reqtarget));
		free(reqtarget);
	}
	alb_request_free(&req);
	alb_response_free(&resp);
	return json;
}
