/*
 * respw.c: the streamed response writer over evhttp (see respw.h).
 * evhttp_send_reply_start() frames the body: chunked for HTTP/1.1,
 * close-delimited for HTTP/1.0 (with Connection: close, so that a
 * keep-alive 1.0 client is not left guessing). Abort closes the connection
 * without the terminating chunk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>

#include "httputil.h"
#include "kvlist.h"
#include "respw.h"
#include "xmalloc.h"

struct httpreq *
httpreq_wrap(struct evhttp_request *r, double keepalive)
{
	struct httpreq *w = xcalloc(1, sizeof *w);

	w->keepalive = keepalive;
	w->r = r;
	w->head = evhttp_request_get_command(r) == EVHTTP_REQ_HEAD;
	w->minor = r->major > 1 ? 1 : r->minor;
	return w;
}

void
httpreq_release(struct httpreq *w)
{
	free(w);
}

void
httpreq_set_drained(struct httpreq *w, void (*drained)(struct httpreq *, void *), void *arg)
{
	w->drained = drained;
	w->arg = arg;
}

static struct bufferevent *
respw_bev(const struct httpreq *w)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(w->r);

	return evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
}

void
httpreq_start(struct httpreq *w, int status, const char *reason, const struct kvlist *headers,
              int64_t length)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(w->r);
	size_t i;

	for (i = 0; headers != NULL && i < headers->n; i++) {
		const char *name = headers->v[i].name;

		if (strcasecmp(name, "Content-Length") == 0 ||
		    strcasecmp(name, "Transfer-Encoding") == 0 ||
		    strcasecmp(name, "Connection") == 0)
			continue;
		evhttp_add_header(out, name, headers->v[i].value);
	}
	w->no_body = w->head || status == 204 || status == 205 || status == 304;
	if (w->head && length >= 0) {
		char n[32];

		snprintf(n, sizeof n, "%lld", (long long)length);
		evhttp_add_header(out, "Content-Length", n);
	}
	/* A 1.0 client reads the body to the close. */
	if (w->minor == 0 && !w->no_body)
		evhttp_add_header(out, "Connection", "close");
	evhttp_send_reply_start(w->r, status, reason != NULL ? reason : http_reason(status));
	w->started = 1;
	/* No read or write deadline while the body streams: it may pause as
	 * long as the function does (timeouts.stream_idle bounds that). */
	if (respw_bev(w) != NULL)
		bufferevent_set_timeouts(respw_bev(w), NULL, NULL);
}

static void
respw_written(struct evhttp_connection *evcon, void *arg)
{
	struct httpreq *w = arg;

	if (w->drained != NULL)
		w->drained(w, w->arg);
}

void
httpreq_write(struct httpreq *w, const void *p, size_t n)
{
	struct evbuffer *b;

	if (w->no_body || n == 0)
		return;
	if ((b = evbuffer_new()) == NULL)
		return;
	evbuffer_add(b, p, n);
	evhttp_send_reply_chunk_with_cb(w->r, b, respw_written, w);
	evbuffer_free(b);
}

void
httpreq_end(struct httpreq *w)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(w->r);

	/* The request path is done with the connection: ending may close it
	 * at once (an HTTP/1.0 client), and nobody waits for that any more. */
	if (evcon != NULL) {
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		if (w->keepalive > 0) {
			struct timeval tv;

			tv.tv_sec = (time_t)w->keepalive;
			tv.tv_usec = (suseconds_t)((w->keepalive - (double)tv.tv_sec) * 1e6);
			evhttp_connection_set_timeout_tv(evcon, &tv);
		}
	}
	evhttp_send_reply_end(w->r);
	free(w);
}

/* After an abort: close once what is queued has gone out (or at once
 * when the client is gone or takes too long). */
static void
respw_abort_flushed(struct bufferevent *bev, void *arg)
{
	struct evhttp_connection *evcon = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		evhttp_connection_free(evcon);
}

static void
respw_abort_error(struct bufferevent *bev, short what, void *arg)
{
	evhttp_connection_free(arg);
}

void
httpreq_abort(struct httpreq *w)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(w->r);
	struct bufferevent *bev = respw_bev(w);
	struct timeval tv = {5, 0};

	free(w);
	if (evcon == NULL)
		return;
	/* The request path handles the end itself: no close callback. What
	 * is queued (the head, the body so far) still goes out, then the
	 * connection closes without the chunked terminator, so the client
	 * sees the body end early. evhttp has no way to close after a flush
	 * in the middle of a reply: the connection's callbacks become ours. */
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (bev == NULL || evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		evhttp_connection_free(evcon);
		return;
	}
	bufferevent_setcb(bev, NULL, respw_abort_flushed, respw_abort_error, evcon);
	bufferevent_disable(bev, EV_READ);
	bufferevent_set_timeouts(bev, NULL, &tv);
	bufferevent_enable(bev, EV_WRITE);
}

size_t
httpreq_pending(const struct httpreq *w)
{
	struct bufferevent *bev = respw_bev(w);

	return bev != NULL ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}
