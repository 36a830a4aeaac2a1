/*
 * httpconn.c: the HTTP/1.1 connection layer (see httpconn.h). Raw libevent
 * events on non-blocking sockets: a persistent read event per connection,
 * a write event only while the client does not take what we send, one
 * timer whose meaning follows the connection's state. Bytes are read into
 * a per-connection buffer, the head is found and parsed by http1.c, the
 * body is read by its framing, and the request goes to the request path.
 * Responses are queued in an evbuffer by the response writer (httpreq.c)
 * and written with one writev when they are complete (or at each piece of
 * a streamed body).
 *
 * A connection is in one of these states:
 *   C_HEAD    reading a head (the client_header deadline runs)
 *   C_BODY    reading a body (client_body between reads)
 *   C_APP     the request is with the request path; reading goes on only
 *             to notice a client that leaves (and buffers a pipelined
 *             request, up to limits.max_header)
 *   C_IDLE    between requests (keepalive)
 *   C_LINGER  our side is shut down after a final answer; what the client
 *             still sends is read and dropped until it closes, so that its
 *             kernel does not reset the connection before it read the
 *             answer (nginx's lingering close)
 * While output waits for the client, the timer is timeouts.send instead.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "accesslog.h"
#include "clock.h"
#include "config.h"
#include "http1.h"
#include "httpconn_int.h"
#include "httputil.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

static void conn_process(struct httpconn *);

static double
conn_now(void)
{
	return clock_mono();
}

void
httpconn_hold(struct httpconn *c)
{
	c->busy++;
}

static void
conn_free(struct httpconn *c)
{
	free(c->ibuf);
	free(c);
}

/* Drop a hold; frees a connection closed meanwhile. */
void
httpconn_release(struct httpconn *c)
{
	if (--c->busy == 0 && c->dead)
		conn_free(c);
}

static void
conn_idle_remove(struct httpconn *c)
{
	if (c->on_idle) {
		TAILQ_REMOVE(&c->srv->idle, c, idle_entry);
		c->on_idle = 0;
	}
}

static void
conn_arm_timer(struct httpconn *c)
{
	const struct config *cfg = c->srv->cfg;
	struct timeval tv;
	double t;

	if (c->dead)
		return;
	if (c->writing)
		t = cfg->timeouts.send;
	else
		switch (c->state) {
		case C_HEAD:
			t = c->head_deadline - conn_now();
			if (t < 0)
				t = 0;
			break;
		case C_BODY:
			t = cfg->timeouts.client_body;
			break;
		case C_IDLE:
			t = cfg->timeouts.keepalive;
			break;
		case C_LINGER:
			t = cfg->timeouts.linger;
			break;
		default:
			evtimer_del(&c->timer);
			return;
		}
	tv = clock_tv(t);
	evtimer_add(&c->timer, &tv);
}

static void
conn_read_on(struct httpconn *c, int on)
{
	if (c->reading == on || c->dead)
		return;
	if (on)
		event_add(&c->rev, NULL);
	else
		event_del(&c->rev);
	c->reading = on;
}

/* The Date field value for now, made once a second. */
const char *
httpconn_date(struct httpconn_server *srv)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != srv->date_t) {
		gmtime_r(&now, &tm);
		strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		srv->date_t = now;
	}
	return srv->date;
}

static void
req_free(struct httpreq *req)
{
	if (req == NULL)
		return;
	free(req->method);
	free(req->target);
	kvlist_free(&req->headers);
	kvlist_free(&req->resp_headers);
	if (req->body != NULL)
		evbuffer_free(req->body);
	free(req);
}

static struct httpreq *
req_new(struct httpconn *c)
{
	struct httpreq *req = xcalloc(1, sizeof *req);

	kvlist_init(&req->headers);
	kvlist_init(&req->resp_headers);
	req->conn = c;
	req->remain = -1;
	req->peer = (const struct sockaddr *)&c->peer;
	memcpy(req->client, c->client, sizeof req->client);
	req->start = c->req_start;
	return req;
}

static void
conn_log(struct httpconn *c, const struct httpreq *req, int status, size_t bytes,
         const struct accesslog_req *al)
{
	struct accesslog_entry e;
	struct timespec now, start = req != NULL ? req->start : c->req_start;

	clock_gettime(CLOCK_MONOTONIC, &now);
	memset(&e, 0, sizeof e);
	e.client = c->client;
	e.method = req != NULL ? req->method : NULL;
	e.status = status;
	e.bytes = bytes;
	e.duration_ms =
	    (double)(now.tv_sec - start.tv_sec) * 1e3 + (double)(now.tv_nsec - start.tv_nsec) / 1e6;
	e.req = al;
	accesslog_write(&e);
}

static size_t conn_error_text(char *out, size_t len, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t
conn_error_text(char *out, size_t len, const char *id, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = http_error_text(out, len, id, fmt, ap);
	va_end(ap);
	return n;
}

/*
 * An answer of the connection layer's own (a refused request, a timeout),
 * with a request id of its own and an access-log line; the connection
 * closes after it.
 */
static void
conn_answer(struct httpconn *c, int status, const char *why)
{
	struct kvlist h = KVLIST_INIT;
	struct accesslog_req al;
	char text[512];
	size_t len;

	if (c->req == NULL)
		c->req = req_new(c);
	else if (c->req->started) {
		/* Too late for an answer: the request path began one. */
		httpconn_close(c);
		return;
	}
	c->state = C_APP;
	log_debug("%s: %d: %s", c->client, status, why);
	accesslog_req_init(&al, NULL, NULL, 0);
	if (status == 403)
		al.outcome = ACCESSLOG_DENIED;
	len = conn_error_text(text, sizeof text, al.id, "%s", why);
	/* httpreq_send() frees the request: log first, with what the answer
	 * will be. */
	conn_log(c, c->req, status, c->req->head ? 0 : len, &al);
	httpreq_add_header(c->req, "X-Request-Id", al.id);
	kvlist_add(&h, "Content-Type", "text/plain; charset=utf-8");
	httpreq_set_close(c->req);
	httpreq_send(c->req, status, NULL, &h, text, len);
	kvlist_free(&h);
}

/* A new request begins on c (at the accept, or its first byte). */
static void
conn_request_begins(struct httpconn *c)
{
	c->state = C_HEAD;
	memset(&c->scan, 0, sizeof c->scan);
	clock_gettime(CLOCK_MONOTONIC, &c->req_start);
	c->head_deadline = conn_now() + c->srv->cfg->timeouts.client_header;
	conn_idle_remove(c);
	conn_arm_timer(c);
}

static void
conn_consume(struct httpconn *c, size_t n)
{
	if (n >= c->ilen) {
		c->ilen = 0;
		return;
	}
	memmove(c->ibuf, c->ibuf + n, c->ilen - n);
	c->ilen -= n;
}

/* The request is complete: hand it over. */
static void
conn_dispatch(struct httpconn *c)
{
	c->state = C_APP;
	conn_arm_timer(c);
	c->srv->h.request(c->req, c->srv->h.arg);
}

/* Turn a parsed head into c->req. */
static void
conn_build(struct httpconn *c, const struct http1_request *pr)
{
	struct httpreq *req = req_new(c);
	const struct config *cfg = c->srv->cfg;
	size_t i;

	req->method = xstrndup(pr->method, pr->method_len);
	req->target = xstrndup(pr->target, pr->target_len);
	req->minor = pr->minor;
	req->head = pr->method_len == 4 && memcmp(pr->method, "HEAD", 4) == 0;
	req->expect_continue = pr->expect_continue;
	req->close = !pr->keep_alive || cfg->timeouts.keepalive <= 0 || c->srv->stopping;
	for (i = 0; i < pr->nfields; i++) {
		const struct http1_field *f = &pr->fields[i];

		kvlist_addn(&req->headers, f->name, f->nlen, f->value, f->vlen);
		/* What a proxy client says about the client's connection. */
		if (http1_name_is(f->name, f->nlen, "proxy-connection") && f->vlen == 5 &&
		    strncasecmp(f->value, "close", 5) == 0)
			req->close = 1;
	}
	req->body = evbuffer_new();
	if (req->body == NULL)
		abort();
	c->req = req;
}

/* Read the head in c->ibuf. 1 when the request went on (state changed), 0
 * when more bytes are needed. */
static int
conn_head(struct httpconn *c)
{
	struct httpconn_server *srv = c->srv;
	const struct config *cfg = srv->cfg;
	struct http1_request pr;
	const char *why;
	size_t end, skip = 0;
	int status;

	/* Empty lines before a request line are ignored (RFC 9112 2.2). */
	if (c->scan.pos == 0) {
		while (skip < c->ilen && (c->ibuf[skip] == '\r' || c->ibuf[skip] == '\n'))
			skip++;
		conn_consume(c, skip);
	}
	if (c->ilen == 0)
		return 0;
	end = http1_head_end(&c->scan, c->ibuf, c->ilen);
	if (end == 0 && c->ilen <= cfg->limits.max_header)
		return 0;
	if (end == 0 || end > cfg->limits.max_header) {
		size_t line = c->ilen < cfg->limits.max_header ? c->ilen : cfg->limits.max_header;

		if (memchr(c->ibuf, '\n', line) == NULL)
			conn_answer(c, 414, "request line too long (limits.max_header)");
		else
			conn_answer(c, 431, "request head too large (limits.max_header)");
		return 1;
	}
	status = http1_parse_head(c->ibuf, end, srv->fields, srv->maxfields, &pr, &why);
	if (status != 0) {
		conn_answer(c, status, why);
		return 1;
	}
	conn_build(c, &pr);
	conn_consume(c, end);
	switch (pr.framing) {
	case HTTP1_BODY_NONE:
		conn_dispatch(c);
		return 1;
	case HTTP1_BODY_LENGTH:
		if (cfg->limits.max_body > 0 && pr.content_length > cfg->limits.max_body) {
			conn_answer(c, 413, "request body too large (limits.max_body)");
			return 1;
		}
		c->chunked_body = 0;
		c->body_remain = pr.content_length;
		break;
	case HTTP1_BODY_CHUNKED:
		c->chunked_body = 1;
		memset(&c->chunk, 0, sizeof c->chunk);
		break;
	}
	if (c->req->expect_continue) {
		if (srv->h.expect != NULL && srv->h.expect(c->req, srv->h.arg) != 0)
			return 1; /* answered: the connection closes after it */
		evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		if (httpconn_flush(c, 0) == -1)
			return 1;
	}
	c->state = C_BODY;
	conn_arm_timer(c);
	return 1;
}

/* Read the body from c->ibuf. 1 when the request went on, 0 when more
 * bytes are needed. */
static int
conn_body(struct httpconn *c)
{
	const struct config *cfg = c->srv->cfg;
	const char *data, *why;
	size_t off = 0, used, dlen, n;
	enum http1_chunk_result r;

	if (!c->chunked_body) {
		n = c->ilen;
		if ((uint64_t)n > c->body_remain)
			n = (size_t)c->body_remain;
		evbuffer_add(c->req->body, c->ibuf, n);
		conn_consume(c, n);
		c->body_remain -= n;
		if (c->body_remain > 0) {
			conn_arm_timer(c);
			return 0;
		}
		conn_dispatch(c);
		return 1;
	}
	for (;;) {
		r = http1_chunked_step(&c->chunk, c->ibuf + off, c->ilen - off,
		                       cfg->limits.max_header, &used, &data, &dlen, &why);
		off += used;
		if (r == HTTP1_CHUNK_DATA) {
			if (cfg->limits.max_body > 0 &&
			    evbuffer_get_length(c->req->body) + dlen > cfg->limits.max_body) {
				conn_consume(c, off);
				conn_answer(c, 413, "request body too large (limits.max_body)");
				return 1;
			}
			evbuffer_add(c->req->body, data, dlen);
			continue;
		}
		conn_consume(c, off);
		if (r == HTTP1_CHUNK_ERROR) {
			conn_answer(c, 400, why);
			return 1;
		}
		if (r == HTTP1_CHUNK_MORE) {
			conn_arm_timer(c);
			return 0;
		}
		conn_dispatch(c);
		return 1;
	}
}

/* Go through what is buffered as far as it goes. */
static void
conn_process(struct httpconn *c)
{
	int more = 1;

	if (c->processing)
		return; /* the loop further up the stack goes on */
	c->processing = 1;
	httpconn_hold(c);
	while (more && !c->dead && !c->closing) {
		switch (c->state) {
		case C_IDLE:
			/* Stray line ends after a body (old clients send
			 * them) do not start a request. */
			{
				size_t skip = 0;

				while (skip < c->ilen &&
				       (c->ibuf[skip] == '\r' || c->ibuf[skip] == '\n'))
					skip++;
				conn_consume(c, skip);
			}
			if (c->ilen == 0) {
				more = 0;
				break;
			}
			/* Output of the last answer still queued: the next
			 * waits until the client reads it. */
			if (evbuffer_get_length(c->out) > HTTPCONN_LOWAT) {
				more = 0;
				break;
			}
			conn_request_begins(c);
			break;
		case C_HEAD:
			more = conn_head(c);
			break;
		case C_BODY:
			more = c->ilen > 0 && conn_body(c);
			break;
		default:
			more = 0;
			break;
		}
	}
	c->processing = 0;
	if (!c->dead && c->state == C_IDLE && c->ilen == 0 && !c->on_idle && !c->closing &&
	    evbuffer_get_length(c->out) == 0) {
		/* Truly idle: nothing held but the socket. */
		free(c->ibuf);
		c->ibuf = NULL;
		c->icap = 0;
		if (c->srv->stopping ||
		    (!c->srv->accepting && c->srv->cfg->limits.max_connections > 0))
			httpconn_close(c); /* room for a waiting connection, or stopping */
		else {
			TAILQ_INSERT_TAIL(&c->srv->idle, c, idle_entry);
			c->on_idle = 1;
		}
	}
	httpconn_release(c);
}

/* Shut our side and wait (a little) for the client to close its. */
static void
conn_linger(struct httpconn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->state = C_LINGER;
	c->ilen = 0;
	req_free(c->req);
	c->req = NULL;
	conn_idle_remove(c);
	conn_read_on(c, 1);
	conn_arm_timer(c);
}

/*
 * Write what is queued; -1 when the connection was closed. With
 * defer_close a write error closes it from the next turn of the loop
 * instead (the caller is the request path, which must not see its gone
 * callback called from inside its own write).
 */
int
httpconn_flush(struct httpconn *c, int defer_close)
{
	int n = 0;

	if (c->dead)
		return -1;
	if (evbuffer_get_length(c->out) > 0) {
		n = evbuffer_write(c->out, c->fd);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("%s: write: %s", c->client, strerror(errno));
			if (defer_close) {
				event_active(&c->wev, EV_WRITE, 1);
				return 0;
			}
			httpconn_close(c);
			return -1;
		}
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (!c->writing) {
			event_add(&c->wev, NULL);
			c->writing = 1;
			conn_arm_timer(c);
		} else if (n > 0)
			conn_arm_timer(c); /* send: between two writes */
		return 0;
	}
	if (c->writing) {
		event_del(&c->wev);
		c->writing = 0;
		/* A client's quiet moment starts when it has its answer (a
		 * draining worker closes quiet connections). */
		c->last_io = conn_now();
		conn_arm_timer(c);
	}
	if (c->closing && c->state != C_LINGER)
		conn_linger(c);
	return 0;
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpconn *c = arg;
	struct httpconn_server *srv = c->srv;
	char discard[4096];
	ssize_t n;
	int eof = 0;

	httpconn_hold(c);
	for (;;) {
		if (c->state == C_LINGER) {
			n = read(fd, discard, sizeof discard);
		} else {
			if (c->icap - c->ilen < 1024 && c->icap < srv->ibuf_max) {
				c->icap = c->icap == 0 ? HTTPCONN_IBUF : c->icap * 2;
				if (c->icap > srv->ibuf_max)
					c->icap = srv->ibuf_max;
				c->ibuf = xrealloc(c->ibuf, c->icap);
			}
			if (c->ilen == c->icap)
				break;
			n = read(fd, c->ibuf + c->ilen, c->icap - c->ilen);
		}
		if (n > 0) {
			c->last_io = conn_now();
			if (c->state != C_LINGER) {
				c->ilen += (size_t)n;
				if (c->ilen < c->icap)
					break;
			}
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			eof = 1;
		break;
	}
	if (c->state == C_LINGER) {
		if (eof)
			httpconn_close(c);
		httpconn_release(c);
		return;
	}
	conn_process(c);
	/* Full, and nothing taken: a pipelined request waits behind one in
	 * progress. Reading resumes when that one is answered. */
	if (!c->dead && !eof && c->icap > 0 && c->ilen == c->icap)
		conn_read_on(c, 0);
	if (eof && !c->dead) {
		/*
		 * The client closed its side (or reset). Whatever it asked
		 * for cannot be answered to anyone: a request with the
		 * request path is abandoned (the gone callback: 499), a
		 * partial one dropped.
		 */
		if (c->state == C_HEAD && c->ilen > 0)
			conn_log(c, NULL, 400, 0, NULL);
		httpconn_close(c);
	}
	httpconn_release(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpconn *c = arg;
	struct httpreq *req;

	httpconn_hold(c);
	if (httpconn_flush(c, 0) == 0 && !c->dead) {
		req = c->req;
		if (req != NULL && req->started && req->drained != NULL &&
		    evbuffer_get_length(c->out) <= HTTPCONN_LOWAT)
			req->drained(req, req->cbarg);
		if (!c->dead && c->state == C_IDLE)
			conn_process(c);
		if (!c->dead && !c->reading && c->state != C_APP)
			conn_read_on(c, 1);
	}
	httpconn_release(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpconn *c = arg;

	httpconn_hold(c);
	if (c->writing) {
		log_debug("%s: the client stopped reading (timeouts.send): closing", c->client);
		httpconn_close(c);
	} else
		switch (c->state) {
		case C_HEAD:
			conn_answer(c, 408,
			            "timed out reading the request head (timeouts.client_header)");
			break;
		case C_BODY:
			conn_answer(c, 408,
			            "timed out reading the request body (timeouts.client_body)");
			break;
		default:
			httpconn_close(c);
			break;
		}
	httpconn_release(c);
}

/* Accepting again once below max_connections. */
static void
srv_accepting(struct httpconn_server *srv, int on)
{
	size_t i;

	if (srv->accepting == on || srv->stopping || (on && srv->held))
		return;
	for (i = 0; i < srv->nls; i++) {
		if (on)
			event_add(&srv->ls[i].ev, NULL);
		else
			event_del(&srv->ls[i].ev);
	}
	srv->accepting = on;
}

void
httpconn_close(struct httpconn *c)
{
	struct httpconn_server *srv = c->srv;
	struct httpreq *req = c->req;

	if (c->dead)
		return;
	c->dead = 1;
	c->req = NULL;
	/* The request path still has it: tell it, then forget it. */
	if (req != NULL && c->state == C_APP && req->gone != NULL)
		req->gone(req, req->cbarg);
	req_free(req);
	event_del(&c->rev);
	event_del(&c->wev);
	event_del(&c->timer);
	close(c->fd);
	evbuffer_free(c->out);
	c->out = NULL;
	conn_idle_remove(c);
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	metrics_connection(-1);
	if (!srv->accepting && !srv->stopping)
		srv_accepting(srv, 1);
	if (c->busy == 0)
		conn_free(c);
}

static void
conn_new(struct httpconn_server *srv, int fd, const struct sockaddr_storage *ss)
{
	struct httpconn *c = xcalloc(1, sizeof *c);
	const struct sockaddr *sa = (const struct sockaddr *)ss;
	int one = 1;

	c->srv = srv;
	c->fd = fd;
	c->last_io = conn_now();
	c->peer = *ss;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->client,
		          sizeof c->client);
	else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->client,
		          sizeof c->client);
		/* A v4-mapped peer on a dual-stack socket is the IPv4 client. */
		if (strncasecmp(c->client, "::ffff:", 7) == 0 && strchr(c->client + 7, '.') != NULL)
			memmove(c->client, c->client + 7, strlen(c->client + 7) + 1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if ((c->out = evbuffer_new()) == NULL)
		abort();
	event_assign(&c->rev, srv->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	event_assign(&c->wev, srv->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	evtimer_assign(&c->timer, srv->base, conn_timer_cb, c);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	metrics_connection(1);
	conn_request_begins(c);
	conn_read_on(c, 1);
	/* allow is checked before a byte is read. */
	if (!config_allowed(srv->cfg, sa)) {
		log_info("refused client %s: not in the allow list", c->client);
		conn_answer(c, 403,
		            "client not allowed to use this proxy (see allow in the "
		            "configuration)");
	}
}

static void
srv_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct httpconn_server *srv = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, i, max = srv->cfg->limits.max_connections;

	for (i = 0; i < HTTPCONN_ACCEPTS && srv->accepting; i++) {
		/* At the limit, an idle keep-alive connection makes room for
		 * the newcomer (nginx does the same); with none, the newcomer
		 * waits in the kernel's queue until a connection closes or
		 * its client_header deadline runs out. */
		if (max > 0 && srv->nconns >= (unsigned)max && TAILQ_EMPTY(&srv->idle)) {
			log_debug("%u connections: pausing accept", srv->nconns);
			srv_accepting(srv, 0);
			return;
		}
		len = sizeof ss;
		fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (max > 0 && srv->nconns >= (unsigned)max)
			httpconn_close(TAILQ_FIRST(&srv->idle)); /* the longest idle */
		conn_new(srv, fd, &ss);
	}
}

struct httpconn_server *
httpconn_server_new(struct event_base *base, const struct config *cfg, const int *fds, size_t nfds,
                    const struct httpconn_handlers *h)
{
	struct httpconn_server *srv = xcalloc(1, sizeof *srv);
	size_t i;

	srv->base = base;
	srv->cfg = cfg;
	srv->h = *h;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->idle);
	srv->maxfields = cfg->limits.max_headers > 0 ? (size_t)cfg->limits.max_headers : 100;
	srv->fields = xcalloc(srv->maxfields, sizeof *srv->fields);
	/* A head, and as much of a body or a pipelined request again. */
	srv->ibuf_max = cfg->limits.max_header + 16384;
	srv->ls = xcalloc(nfds ? nfds : 1, sizeof *srv->ls);
	for (i = 0; i < nfds; i++) {
		srv->ls[i].fd = fds[i];
		event_assign(&srv->ls[i].ev, base, fds[i], EV_READ | EV_PERSIST, srv_accept_cb,
		             srv);
		event_add(&srv->ls[i].ev, NULL);
	}
	srv->nls = nfds;
	srv->accepting = 1;
	return srv;
}

void
httpconn_server_hold(struct httpconn_server *srv, int held)
{
	srv->held = held;
	srv_accepting(srv, !held);
}

void
httpconn_server_stop(struct httpconn_server *srv)
{
	size_t i;

	if (srv->stopping)
		return;
	srv_accepting(srv, 0);
	srv->stopping = 1;
	for (i = 0; i < srv->nls; i++) {
		event_del(&srv->ls[i].ev);
		close(srv->ls[i].fd);
	}
	srv->nls = 0;
}

/* Nothing of a request on c: idle between requests, or accepted and
 * silent. */
static int
conn_is_idle(const struct httpconn *c)
{
	return (c->state == C_IDLE || (c->state == C_HEAD && c->scan.pos == 0)) && c->ilen == 0 &&
	       !c->closing && evbuffer_get_length(c->out) == 0;
}

unsigned
httpconn_server_drain(struct httpconn_server *srv, double quiet)
{
	struct httpconn *c, *next;
	double now = conn_now();
	unsigned left = 0;

	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state == C_LINGER)
			continue;
		if (conn_is_idle(c) && now - c->last_io >= quiet) {
			httpconn_close(c);
			continue;
		}
		left++;
	}
	return left;
}

unsigned
httpconn_server_count(const struct httpconn_server *srv)
{
	return srv->nconns;
}

void
httpconn_server_free(struct httpconn_server *srv)
{
	struct httpconn *c;
	size_t i;

	if (srv == NULL)
		return;
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
		/* Last words (a 503 at the deadline) go out if the socket
		 * takes them now. */
		if (evbuffer_get_length(c->out) > 0)
			evbuffer_write(c->out, c->fd);
		if (c->req != NULL)
			c->req->gone = NULL;
		httpconn_close(c);
	}
	for (i = 0; i < srv->nls; i++) {
		event_del(&srv->ls[i].ev);
		close(srv->ls[i].fd);
	}
	free(srv->ls);
	free(srv->fields);
	free(srv);
}

/* The request path ended its answer to req (httpreq_end()): the next
 * request, or the close. */
void
httpconn_done(struct httpconn *c, struct httpreq *req)
{
	httpconn_hold(c);
	c->req = NULL;
	c->last_io = conn_now();
	if (req->close) {
		c->closing = 1;
		c->state = C_IDLE;
		req_free(req);
		if (httpconn_flush(c, 0) == 0 && !c->dead && c->state != C_LINGER &&
		    evbuffer_get_length(c->out) == 0)
			conn_linger(c);
	} else {
		req_free(req);
		c->state = C_IDLE;
		memset(&c->scan, 0, sizeof c->scan);
		conn_arm_timer(c);
		if (httpconn_flush(c, 0) == 0 && !c->dead) {
			conn_read_on(c, 1);
			conn_process(c);
		}
	}
	httpconn_release(c);
}
