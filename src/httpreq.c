/*
 * httpreq.c: the front door's response writer (see httpconn.h): status
 * line, headers and framing (Content-Length, chunked to HTTP/1.1,
 * close-delimited to HTTP/1.0), body pieces, end and abort. Answers are
 * queued in the connection's output buffer; httpconn.c writes it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "httpconn_int.h"
#include "httputil.h"
#include "xmalloc.h"

void
httpreq_set_callbacks(struct httpreq *req, void (*gone)(struct httpreq *, void *),
                      void (*drained)(struct httpreq *, void *), void *arg)
{
	req->gone = gone;
	req->drained = drained;
	req->cbarg = arg;
}

void
httpreq_set_close(struct httpreq *req)
{
	req->close = 1;
}

void
httpreq_add_header(struct httpreq *req, const char *name, const char *value)
{
	kvlist_add(&req->resp_headers, name, value);
}

const char *
httpreq_get_header(const struct httpreq *req, const char *name)
{
	return kvlist_get(&req->resp_headers, name);
}

/* One field line. */
static void
req_field(struct evbuffer *out, const char *name, const char *value)
{
	evbuffer_add(out, name, strlen(name));
	evbuffer_add(out, ": ", 2);
	evbuffer_add(out, value, strlen(value));
	evbuffer_add(out, "\r\n", 2);
}

/* A HEAD answer announces the length a GET would have: the one
 * Content-Length of headers, or none when they disagree. */
static int64_t
req_head_length(const struct kvlist *headers)
{
	int64_t v = -1, n;
	const char *s;
	char *end;
	size_t i;

	for (i = 0; headers != NULL && i < headers->n; i++) {
		if (strcasecmp(headers->v[i].name, "Content-Length") != 0)
			continue;
		s = headers->v[i].value;
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		n = (int64_t)strtoll(s, &end, 10);
		if (*end != '\0' || errno != 0 || (v != -1 && n != v))
			return -1;
		v = n;
	}
	return v;
}

void
httpreq_start(struct httpreq *req, int status, const char *reason, const struct kvlist *headers,
              int64_t length)
{
	struct httpconn *c = req->conn;
	struct evbuffer *out = c->out;
	char line[192];
	int has_date = 0, n;
	size_t i;

	req->started = 1;
	req->status = status;
	if (c->srv->stopping)
		req->close = 1;
	req->no_body = req->head || status == 204 || status == 205 || status == 304 || status < 200;
	if (req->head)
		length = length >= 0 ? length : req_head_length(headers);
	/* A reason phrase is at most 128 bytes (proxy.c keeps longer ones
	 * from the function out). */
	n = snprintf(line, sizeof line, "HTTP/1.1 %d %.128s\r\n", status,
	             reason != NULL ? reason : http_reason(status));
	evbuffer_add(out, line, (size_t)n);
	for (i = 0; i < req->resp_headers.n; i++)
		req_field(out, req->resp_headers.v[i].name, req->resp_headers.v[i].value);
	for (i = 0; headers != NULL && i < headers->n; i++) {
		const struct kv *kv = &headers->v[i];

		if (strcasecmp(kv->name, "Content-Length") == 0 ||
		    strcasecmp(kv->name, "Transfer-Encoding") == 0 ||
		    strcasecmp(kv->name, "Connection") == 0)
			continue;
		if (!has_date && strcasecmp(kv->name, "Date") == 0)
			has_date = 1;
		req_field(out, kv->name, kv->value);
	}
	if (!has_date) {
		req_field(out, "Date", httpconn_date(c->srv));
	}
	req->remain = -1;
	req->chunked = 0;
	if (status == 205) {
		evbuffer_add(out, "Content-Length: 0\r\n", 19);
	} else if (status == 204 || status == 304 || status < 200) {
		/* no framing at all */
	} else if (length >= 0) {
		n = snprintf(line, sizeof line, "Content-Length: %" PRId64 "\r\n", length);
		evbuffer_add(out, line, (size_t)n);
		if (!req->no_body)
			req->remain = length;
	} else if (!req->no_body) {
		if (req->minor >= 1) {
			req->chunked = 1;
			evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
		} else
			req->close = 1; /* the end of the body is the close */
	}
	if (req->close)
		evbuffer_add(out, "Connection: close\r\n\r\n", 21);
	else if (req->minor == 0)
		evbuffer_add(out, "Connection: keep-alive\r\n\r\n", 26);
	else
		evbuffer_add(out, "\r\n", 2);
}

static void
req_write(struct httpreq *req, const void *p, size_t n)
{
	struct evbuffer *out = req->conn->out;
	char line[32];
	int l;

	if (req->no_body || n == 0)
		return;
	if (req->remain >= 0) {
		if ((uint64_t)n > (uint64_t)req->remain)
			n = (size_t)req->remain; /* more than announced: dropped */
		req->remain -= (int64_t)n;
	}
	if (req->chunked) {
		l = snprintf(line, sizeof line, "%zx\r\n", n);
		evbuffer_add(out, line, (size_t)l);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
	} else
		evbuffer_add(out, p, n);
	req->bytes += n;
}

void
httpreq_write(struct httpreq *req, const void *p, size_t n)
{
	struct httpconn *c = req->conn;

	req_write(req, p, n);
	httpconn_hold(c);
	httpconn_flush(c, 1);
	httpconn_release(c);
}

void
httpreq_end(struct httpreq *req)
{
	struct httpconn *c = req->conn;

	if (req->chunked)
		evbuffer_add(c->out, "0\r\n\r\n", 5);
	/* Fewer bytes than announced: only a close tells the client. */
	if (req->remain > 0)
		req->close = 1;
	httpconn_done(c, req);
}

void
httpreq_abort(struct httpreq *req)
{
	struct httpconn *c = req->conn;

	req->gone = NULL;
	httpconn_close(c);
}

size_t
httpreq_pending(const struct httpreq *req)
{
	return evbuffer_get_length(req->conn->out);
}

size_t
httpreq_send(struct httpreq *req, int status, const char *reason, const struct kvlist *headers,
             const void *body, size_t len)
{
	size_t bytes;

	httpreq_start(req, status, reason, headers, req->head ? -1 : (int64_t)len);
	req_write(req, body, len);
	bytes = req->bytes;
	httpreq_end(req);
	return bytes;
}

size_t
httpreq_send_text(struct httpreq *req, int status, int close, const char *fmt, ...)
{
	struct kvlist h = KVLIST_INIT;
	char *text;
	va_list ap;
	size_t bytes;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	/* One line: whatever it quotes cannot break it. */
	for (char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	text = xrealloc(text, (size_t)n + 2);
	text[n] = '\n';
	text[n + 1] = '\0';
	if (close)
		req->close = 1;
	kvlist_add(&h, "Content-Type", "text/plain; charset=utf-8");
	bytes = httpreq_send(req, status, NULL, &h, text, (size_t)n + 1);
	kvlist_free(&h);
	free(text);
	return bytes;
}
