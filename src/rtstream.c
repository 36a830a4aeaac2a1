/*
 * rtstream.c: a function's streaming answer read as it arrives (see
 * rtstream.h). One watcher per handed-out invocation:
 *
 *   ARMED (the GET /next answer is being written)
 *     -> HEAD (its callbacks are ours; the next request head is awaited)
 *        -> a streaming post for the invocation: SIZE/DATA/CRLF (chunks)
 *           -> TRAILERS -> REPLY (our 202 is being written) -> handed back
 *        -> anything else: handed back to evhttp at once
 *
 * Handing back restores evhttp's bufferevent callbacks and lets evhttp read
 * whatever is already buffered. Callbacks from evhttp or the consumer may
 * close the connection under us, so every entry point counts its depth and
 * the watcher is freed when the outermost one returns.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "log.h"
#include "rtstream.h"
#include "xmalloc.h"

#define RS_PATH_PREFIX "/2018-06-01/runtime/invocation/"
#define RS_MAX_HEAD (64 * 1024)
#define RS_MAX_LINE 1024
#define RS_MAX_TRAILERS (16 * 1024)
#define RS_REPLY                                                                                   \
	"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"    \
	"{\"status\":\"OK\"}"

enum rs_state {
	RS_ARMED,
	RS_HEAD,
	RS_SIZE,
	RS_DATA,
	RS_CRLF,
	RS_TRAILERS,
	RS_REPLY_SENT,
};

struct rtstream {
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	/* evhttp's callbacks, restored when we hand the connection back. */
	bufferevent_data_cb h_read;
	bufferevent_data_cb h_write;
	bufferevent_event_cb h_event;
	void *h_arg;
	const struct rtstream_ops *ops; /* NULL once cancelled */
	void *arg;
	struct event *install;
	enum rs_state state;
	uint64_t left;
	struct kvlist trailers;
	size_t trailer_bytes;
	int install_pending;
	int sent; /* the GET /next answer was written: the install is due */
	int installed;
	int paused;
	int depth;
	int closed;  /* the connection is gone: never touch bev again */
	int done;    /* handed back (or to be): free when the depth is 0 */
	int handoff; /* let evhttp read what is buffered once we are out */
	int taken;   /* begin() took a post and end() is due */
};

static void rs_read(struct bufferevent *, void *);

static void
rs_free(struct rtstream *rs)
{
	if (rs->ops != NULL && rs->ops->released != NULL)
		rs->ops->released(rs, rs->arg);
	if (rs->install != NULL)
		event_free(rs->install);
	kvlist_free(&rs->trailers);
	free(rs);
}

static void
rs_end(struct rtstream *rs, const struct kvlist *trailers, const char *err)
{
	if (!rs->taken)
		return;
	rs->taken = 0;
	if (rs->ops != NULL)
		rs->ops->end(trailers, err, rs->arg);
}

/* Give the connection back to evhttp (callbacks, closecb, reading). */
static void
rs_hand_back(struct rtstream *rs, int handoff)
{
	if (rs->done || rs->closed)
		return;
	rs->done = 1;
	rs->handoff = handoff;
	if (rs->installed) {
		bufferevent_setcb(rs->bev, rs->h_read, rs->h_write, rs->h_event, rs->h_arg);
		/* evhttp reads between requests and writes only when answering. */
		bufferevent_disable(rs->bev, EV_WRITE);
		bufferevent_enable(rs->bev, EV_READ);
	}
	evhttp_connection_set_closecb(rs->evcon, NULL, NULL);
}

static void
rs_enter(struct rtstream *rs)
{
	rs->depth++;
}

static void
rs_leave(struct rtstream *rs)
{
	struct bufferevent *bev;
	bufferevent_data_cb rd;
	void *ha;

	if (--rs->depth > 0 || rs->install_pending)
		return;
	if (rs->closed) {
		rs_free(rs);
		return;
	}
	if (!rs->done)
		return;
	bev = rs->bev;
	rd = rs->h_read;
	ha = rs->h_arg;
	if (!rs->handoff || !rs->installed) {
		rs_free(rs);
		return;
	}
	rs_free(rs);
	/* What the function already sent after the post (its next GET):
	 * evhttp would only look at it on the next read event. */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		rd(bev, ha);
}

/* The connection breaks the protocol: report and close it. */
static void
rs_fail(struct rtstream *rs, const char *why)
{
	struct evhttp_connection *evcon = rs->evcon;

	rs_end(rs, NULL, why);
	rs_hand_back(rs, 0);
	/* Our closecb is gone: mark it ourselves. */
	rs->closed = 1;
	evhttp_connection_free(evcon);
}

/* Is head a streaming post to an invocation? Fills id (NUL-terminated). */
static int
rs_stream_post(char *head, char *id, size_t idlen, int *expect)
{
	char *line, *save = NULL, *path, *end, *v;
	int chunked = 0, streaming = 0, first = 1;
	size_t n;

	*expect = 0;
	for (line = strtok_r(head, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save), first = 0) {
		if (first) {
			if (strncmp(line, "POST ", 5) != 0)
				return 0;
			path = line + 5;
			if (strncmp(path, RS_PATH_PREFIX, strlen(RS_PATH_PREFIX)) != 0)
				return 0;
			path += strlen(RS_PATH_PREFIX);
			if ((end = strchr(path, '/')) == NULL ||
			    strncmp(end, "/response ", 10) != 0)
				return 0;
			n = (size_t)(end - path);
			if (n == 0 || n >= idlen)
				return 0;
			memcpy(id, path, n);
			id[n] = '\0';
			continue;
		}
		if ((v = strchr(line, ':')) == NULL)
			continue;
		*v++ = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		if (strcasecmp(line, "Transfer-Encoding") == 0)
			chunked = strcasecmp(v, "chunked") == 0;
		else if (strcasecmp(line, "Lambda-Runtime-Function-Response-Mode") == 0)
			streaming = strcasecmp(v, "streaming") == 0;
		else if (strcasecmp(line, "Expect") == 0)
			*expect = strcasecmp(v, "100-continue") == 0;
		else if (strcasecmp(line, "Content-Length") == 0)
			return 0; /* framed by length: not a streaming post */
	}
	return chunked && streaming;
}

static void
rs_write_own(struct rtstream *rs, const char *s)
{
	bufferevent_enable(rs->bev, EV_WRITE);
	bufferevent_write(rs->bev, s, strlen(s));
}

/* Pass up to n body bytes at the front of in to the consumer. */
static void
rs_deliver(struct rtstream *rs, struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec vec[8];
	size_t done = 0;
	int nv, i;

	nv = evbuffer_peek(in, (ev_ssize_t)n, NULL, vec, 8);
	if (nv > 8)
		nv = 8;
	for (i = 0; i < nv && done < n; i++) {
		size_t len = vec[i].iov_len < n - done ? vec[i].iov_len : n - done;

		done += len;
		if (rs->ops != NULL && rs->ops->data(vec[i].iov_base, len, rs->arg) != 0) {
			rs->paused = 1;
			break;
		}
		if (rs->closed)
			break;
	}
	if (rs->closed)
		return;
	evbuffer_drain(in, done);
	rs->left -= done;
	if (rs->paused)
		bufferevent_disable(rs->bev, EV_READ);
}

static void
rs_process(struct rtstream *rs)
{
	struct evbuffer *in;
	struct evbuffer_ptr p;
	char *line, *head, *end, id[128];
	size_t len, n;
	int expect;

	for (;;) {
		if (rs->closed || rs->done)
			return;
		in = bufferevent_get_input(rs->bev);
		len = evbuffer_get_length(in);
		switch (rs->state) {
		case RS_ARMED:
		case RS_REPLY_SENT:
			return;
		case RS_HEAD:
			p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
			if (p.pos < 0) {
				if (len > RS_MAX_HEAD)
					rs_hand_back(rs, 1);
				return;
			}
			n = (size_t)p.pos + 4;
			head = xmalloc(n + 1);
			evbuffer_copyout(in, head, n);
			head[n] = '\0';
			if (rs_stream_post(head, id, sizeof id, &expect) && rs->ops != NULL &&
			    rs->ops->begin(rs, id, rs->arg) == 0) {
				rs->taken = 1;
				evbuffer_drain(in, n);
				rs->state = RS_SIZE;
				if (expect)
					rs_write_own(rs, "HTTP/1.1 100 Continue\r\n\r\n");
			} else
				rs_hand_back(rs, 1);
			free(head);
			break;
		case RS_SIZE:
			if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) == NULL) {
				if (len > RS_MAX_LINE)
					rs_fail(rs, "malformed chunk size line");
				return;
			}
			if (!isxdigit((unsigned char)line[0])) {
				free(line);
				rs_fail(rs, "malformed chunk size line");
				return;
			}
			rs->left = strtoull(line, &end, 16);
			if (*end != '\0' && *end != ';' && *end != ' ' && *end != '\t') {
				free(line);
				rs_fail(rs, "malformed chunk size line");
				return;
			}
			free(line);
			rs->state = rs->left == 0 ? RS_TRAILERS : RS_DATA;
			break;
		case RS_DATA:
			if (rs->paused)
				return;
			n = len < rs->left ? len : (size_t)rs->left;
			if (n == 0)
				return;
			rs_deliver(rs, in, n);
			if (rs->closed)
				return;
			if (rs->left == 0)
				rs->state = RS_CRLF;
			if (rs->paused)
				return;
			break;
		case RS_CRLF:
			if (len < 2)
				return;
			line = (char *)evbuffer_pullup(in, 2);
			if (line[0] != '\r' || line[1] != '\n') {
				rs_fail(rs, "chunk not followed by CRLF");
				return;
			}
			evbuffer_drain(in, 2);
			rs->state = RS_SIZE;
			break;
		case RS_TRAILERS:
			if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) == NULL) {
				if (len > RS_MAX_TRAILERS)
					rs_fail(rs, "trailers too long");
				return;
			}
			if (*line == '\0') {
				free(line);
				rs->state = RS_REPLY_SENT;
				rs_write_own(rs, RS_REPLY);
				rs_end(rs, &rs->trailers, NULL);
				return;
			}
			rs->trailer_bytes += n;
			if (rs->trailer_bytes > RS_MAX_TRAILERS) {
				free(line);
				rs_fail(rs, "trailers too long");
				return;
			}
			if ((end = strchr(line, ':')) != NULL) {
				char *v = end + 1;

				*end = '\0';
				while (*v == ' ' || *v == '\t')
					v++;
				for (end = v + strlen(v);
				     end > v && (end[-1] == ' ' || end[-1] == '\t');)
					*--end = '\0';
				kvlist_add(&rs->trailers, line, v);
			}
			free(line);
			break;
		}
	}
}

static void
rs_read(struct bufferevent *bev, void *arg)
{
	struct rtstream *rs = arg;

	rs_enter(rs);
	rs_process(rs);
	rs_leave(rs);
}

static void
rs_write(struct bufferevent *bev, void *arg)
{
	struct rtstream *rs = arg;

	rs_enter(rs);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_disable(bev, EV_WRITE);
		if (rs->state == RS_REPLY_SENT)
			rs_hand_back(rs, 1);
	}
	rs_leave(rs);
}

static void
rs_event(struct bufferevent *bev, short what, void *arg)
{
	struct rtstream *rs = arg;
	bufferevent_event_cb ev = rs->h_event;
	void *ha = rs->h_arg;

	rs_enter(rs);
	rs_end(rs, NULL, "the function's connection closed in the middle of its answer");
	rs_hand_back(rs, 0);
	/* evhttp decides what a broken connection means (and frees it). */
	if (ev != NULL)
		ev(bev, what, ha);
	rs_leave(rs);
}

static void
rs_closed(struct evhttp_connection *evcon, void *arg)
{
	struct rtstream *rs = arg;

	rs_enter(rs);
	rs_end(rs, NULL, "the function's connection closed in the middle of its answer");
	rs->closed = 1;
	/* Nothing more for the consumer, which may be gone before a pending
	 * install runs (the server is freed with its function process). */
	if (rs->ops != NULL && rs->ops->released != NULL)
		rs->ops->released(rs, rs->arg);
	rs->ops = NULL;
	/* Closed before the GET /next answer went out: no install will come. */
	if (!rs->sent)
		rs->install_pending = 0;
	rs_leave(rs);
}

/* The GET /next answer has been written: the connection's read side is ours
 * until the next request head. From the loop, once evhttp has set its
 * callbacks for that request. */
static void
rs_install_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rtstream *rs = arg;

	rs_enter(rs);
	rs->install_pending = 0;
	if (!rs->closed) {
		bufferevent_getcb(rs->bev, &rs->h_read, &rs->h_write, &rs->h_event, &rs->h_arg);
		if (rs->evcon == NULL) {
			/* A new connection (we hold a reference on its bufferevent):
			 * evhttp's callback argument is the connection, and no
			 * callback means evhttp freed it already. */
			if (rs->h_read == NULL) {
				rs->closed = 1;
				rs->ops = NULL;
			} else {
				rs->evcon = rs->h_arg;
				evhttp_connection_set_closecb(rs->evcon, rs_closed, rs);
			}
			bufferevent_decref(rs->bev);
		}
	}
	if (!rs->closed) {
		bufferevent_setcb(rs->bev, rs_read, rs_write, rs_event, rs);
		rs->installed = 1;
		rs->state = RS_HEAD;
		rs_process(rs);
	}
	rs_leave(rs);
}

static void
rs_sent(struct evhttp_request *req, void *arg)
{
	struct rtstream *rs = arg;

	rs->sent = 1;
	event_active(rs->install, EV_TIMEOUT, 1);
}

struct rtstream *
rtstream_arm(struct evhttp_request *req, const struct rtstream_ops *ops, void *arg)
{
	struct rtstream *rs = xcalloc(1, sizeof *rs);

	rs->evcon = evhttp_request_get_connection(req);
	rs->bev = evhttp_connection_get_bufferevent(rs->evcon);
	rs->ops = ops;
	rs->arg = arg;
	rs->state = RS_ARMED;
	kvlist_init(&rs->trailers);
	rs->install = event_new(bufferevent_get_base(rs->bev), -1, 0, rs_install_cb, rs);
	if (rs->install == NULL) {
		free(rs);
		return NULL;
	}
	rs->install_pending = 1;
	evhttp_request_set_on_complete_cb(req, rs_sent, rs);
	evhttp_connection_set_closecb(rs->evcon, rs_closed, rs);
	return rs;
}

/* evhttp's bevcb: the bufferevent of a new connection, watched from its
 * first byte (evhttp sets its callbacks after this returns, so the watcher
 * takes over from the loop, before anything is read). */
static struct bufferevent *
rs_new_connection(struct event_base *base, void *arg)
{
	struct rtstream_watch *w = arg;
	struct rtstream *rs;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);

	if (bev == NULL)
		return NULL;
	rs = xcalloc(1, sizeof *rs);
	rs->bev = bev;
	rs->ops = w->ops;
	rs->arg = w->arg;
	rs->state = RS_ARMED;
	kvlist_init(&rs->trailers);
	if ((rs->install = event_new(base, -1, 0, rs_install_cb, rs)) == NULL)
		fatal("out of memory");
	rs->install_pending = 1;
	rs->sent = 1;
	bufferevent_incref(bev);
	event_active(rs->install, EV_TIMEOUT, 1);
	return bev;
}

void
rtstream_watch(struct evhttp *http, struct rtstream_watch *w)
{
	evhttp_set_bevcb(http, rs_new_connection, w);
}

void
rtstream_resume(struct rtstream *rs)
{
	if (!rs->paused || rs->closed || rs->done)
		return;
	rs->paused = 0;
	rs_enter(rs);
	bufferevent_enable(rs->bev, EV_READ);
	rs_process(rs);
	rs_leave(rs);
}

void
rtstream_cancel(struct rtstream *rs)
{
	rs->ops = NULL;
	rs->taken = 0;
	/* A paused post is read on (and dropped) to keep the connection sane. */
	rtstream_resume(rs);
}
