/*
 * stream.c: a streamed answer (see stream.h). Before the prelude is
 * complete the function's bytes are gathered; once the 8 NUL bytes are in,
 * the prelude becomes the response head and everything after it is body,
 * written to the client as it comes. The only memory a stream holds is the
 * prelude (bounded) and what the front door has queued for the client
 * (bounded by pausing the producer).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "alb.h"
#include "cache.h"
#include "httpconn.h"
#include "httputil.h"
#include "invoke.h"
#include "kvlist.h"
#include "log.h"
#include "stream.h"
#include "xmalloc.h"

/* A prelude longer than this is not one. */
#define PSTREAM_MAX_PRELUDE (64 * 1024)
/* Without a prelude the bytes are a whole ALB response: Invoke's limit,
 * with room for the encoding. */
#define PSTREAM_MAX_WHOLE (8 * 1024 * 1024)

struct pstream {
	struct httpreq *req;
	struct cache_req *cache;
	size_t buffer;
	const struct pstream_hooks *hooks;
	void *arg;
	struct evbuffer *pre; /* bytes before the head went out */
	int started;
	int gone;
	int paused;
	int head; /* the client's request is HEAD */
	int status;
	size_t bytes;
	char bad[300]; /* why the bytes cannot be a response ("" when fine) */
};

static int
stream_name_valid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

static int
stream_value_valid(const char *v)
{
	for (; *v != '\0'; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return 0;
	return 1;
}

void
stream_response_headers(const struct kvlist *in, int status, int head, struct kvlist *out)
{
	struct kvlist h = KVLIST_INIT;
	size_t i;

	for (i = 0; i < in->n; i++)
		kvlist_add(&h, in->v[i].name, in->v[i].value);
	http_strip_hop_by_hop(&h, status == 407);
	for (i = 0; i < h.n; i++) {
		const char *name = h.v[i].name;

		/* The front door frames what it sends; a HEAD reply keeps the
		 * function's length, since it has no body to measure. The
		 * request id is the request's, never the function's. */
		if ((strcasecmp(name, "Content-Length") == 0 && !head) ||
		    strcasecmp(name, "X-Request-Id") == 0)
			continue;
		if (!stream_name_valid(name) || !stream_value_valid(h.v[i].value)) {
			char shown[65];
			size_t j;

			for (j = 0; j + 1 < sizeof shown && name[j] != '\0'; j++)
				shown[j] = (unsigned char)name[j] < 0x20 || name[j] == 0x7f
				               ? '?'
				               : name[j];
			shown[j] = '\0';
			log_warn("dropping invalid response header \"%s\" from the function",
			         shown);
			continue;
		}
		kvlist_add(out, name, h.v[i].value);
	}
	kvlist_free(&h);
}

struct pstream *
pstream_new(struct httpreq *req, struct cache_req *cache, size_t buffer,
            const struct pstream_hooks *hooks, void *arg)
{
	struct pstream *ps = xcalloc(1, sizeof *ps);

	ps->req = req;
	ps->cache = cache;
	ps->buffer = buffer > 0 ? buffer : HTTPCONN_LOWAT;
	ps->hooks = hooks;
	ps->arg = arg;
	ps->head = req->head;
	if ((ps->pre = evbuffer_new()) == NULL)
		fatal("out of memory");
	return ps;
}

void
pstream_free(struct pstream *ps)
{
	if (ps == NULL)
		return;
	evbuffer_free(ps->pre);
	free(ps);
}

void
pstream_gone(struct pstream *ps)
{
	ps->gone = 1;
	ps->req = NULL;
}

int
pstream_started(const struct pstream *ps)
{
	return ps->started;
}

void
pstream_drained(struct pstream *ps)
{
	if (!ps->paused || ps->gone)
		return;
	ps->paused = 0;
	ps->hooks->resume(ps->arg);
}

/* Body bytes to the client (and the cache). 1 when the client is behind. */
static int
pstream_write(struct pstream *ps, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	httpreq_write(ps->req, p, n);
	if (!ps->head && ps->status != 204 && ps->status != 205 && ps->status != 304) {
		ps->bytes += n;
		cache_stream_body(ps->cache, p, n);
	}
	if (httpreq_pending(ps->req) > ps->buffer) {
		ps->paused = 1;
		return 1;
	}
	return 0;
}

/* The prelude is complete (its JSON is the first plen bytes of pre):
 * start the response. 0, or -1 with ps->bad set. */
static int
pstream_start(struct pstream *ps, size_t plen)
{
	struct alb_response resp;
	struct kvlist out = KVLIST_INIT;
	const char *cl;
	char err[256];
	long long length = -1;

	if (alb_prelude_decode((const char *)evbuffer_pullup(ps->pre, (ev_ssize_t)plen), plen,
	                       &resp, err, sizeof err) != 0) {
		snprintf(ps->bad, sizeof ps->bad, "invalid response prelude: %s", err);
		return -1;
	}
	if (resp.status < 200 || resp.status > 599) {
		snprintf(ps->bad, sizeof ps->bad, "statusCode %d is not a final HTTP status",
		         resp.status);
		alb_response_free(&resp);
		return -1;
	}
	stream_response_headers(&resp.headers, resp.status, ps->head, &out);
	if (ps->head && (cl = kvlist_get(&out, "Content-Length")) != NULL)
		length = strtoll(cl, NULL, 10);
	ps->status = resp.status;
	cache_stream_head(ps->cache, &out, resp.status);
	httpreq_start(ps->req, resp.status, NULL, &out, length);
	ps->started = 1;
	kvlist_free(&out);
	alb_response_free(&resp);
	evbuffer_drain(ps->pre, plen + ALB_PRELUDE_SEPARATOR_LEN);
	return 0;
}

static int
pstream_data(const unsigned char *p, size_t n, void *arg)
{
	static const char nuls[ALB_PRELUDE_SEPARATOR_LEN];
	struct pstream *ps = arg;
	struct evbuffer_ptr at;
	size_t len, k;
	int full = 0;

	if (ps->gone || ps->bad[0] != '\0')
		return 0;
	if (ps->started)
		return pstream_write(ps, p, n);
	/* Look for the separator from a little before the new bytes. */
	len = evbuffer_get_length(ps->pre);
	k = len > sizeof nuls ? len - sizeof nuls : 0;
	evbuffer_add(ps->pre, p, n);
	if (evbuffer_ptr_set(ps->pre, &at, k, EVBUFFER_PTR_SET) != 0)
		return 0;
	at = evbuffer_search(ps->pre, nuls, sizeof nuls, &at);
	if (at.pos < 0) {
		if (evbuffer_get_length(ps->pre) > PSTREAM_MAX_WHOLE)
			snprintf(ps->bad, sizeof ps->bad,
			         "the function's answer has no response prelude and is larger than "
			         "%d bytes",
			         PSTREAM_MAX_WHOLE);
		return 0;
	}
	if ((size_t)at.pos > PSTREAM_MAX_PRELUDE) {
		snprintf(ps->bad, sizeof ps->bad, "response prelude longer than %d bytes",
		         PSTREAM_MAX_PRELUDE);
		return 0;
	}
	if (pstream_start(ps, (size_t)at.pos) != 0)
		return 0;
	/* What came after the separator is body: all of it goes out now
	 * (later bytes bypass pre), and a full client buffer only asks the
	 * producer to pause after this batch. */
	while (evbuffer_get_length(ps->pre) > 0) {
		struct evbuffer_iovec v;

		if (evbuffer_peek(ps->pre, -1, NULL, &v, 1) < 1)
			break;
		full |= pstream_write(ps, v.iov_base, v.iov_len);
		evbuffer_drain(ps->pre, v.iov_len);
	}
	return full;
}

static void
pstream_done(const struct fnstream_end *e, void *arg)
{
	struct pstream *ps = arg;
	struct pstream_result r;

	memset(&r, 0, sizeof r);
	r.end = e;
	if (ps->gone)
		return;
	if (ps->started) {
		r.status = ps->status;
		r.bytes = ps->bytes;
		/* Ending gives the request back to the front door: no more
		 * callbacks for us. */
		httpreq_set_callbacks(ps->req, NULL, NULL, NULL);
		if (e->status == 200) {
			r.outcome = PSTREAM_DONE;
			cache_stream_end(ps->cache, 1);
			httpreq_end(ps->req);
		} else {
			r.outcome = PSTREAM_ABORTED;
			r.message = e->message;
			cache_stream_end(ps->cache, 0);
			httpreq_abort(ps->req);
		}
		ps->req = NULL;
	} else if (e->status != 200) {
		r.outcome = PSTREAM_FAILED;
		r.status = e->status;
		r.message = e->message;
	} else if (ps->bad[0] != '\0') {
		r.outcome = PSTREAM_FAILED;
		r.status = 502;
		r.message = ps->bad;
	} else {
		r.outcome = PSTREAM_WHOLE;
		r.status = 200;
		r.payload_len = evbuffer_get_length(ps->pre);
		r.payload = (const char *)evbuffer_pullup(ps->pre, -1);
		if (r.payload == NULL)
			r.payload = "";
	}
	ps->hooks->finished(&r, ps->arg);
}

const struct fnstream_ops pstream_ops = {
    pstream_data,
    pstream_done,
};
