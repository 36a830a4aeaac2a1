/*
 * test_httpconn.c: the front door's response writer (src/httpreq.c) as the
 * request path uses it, over a real loopback connection: a buffered answer,
 * a streamed one (chunked to HTTP/1.1, close-delimited to HTTP/1.0), HEAD,
 * an aborted stream (no chunked terminator), and pipelined requests
 * answered in order.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "httpconn.h"
#include "tap.h"

static struct event_base *base;
static int port;

/* A streaming producer that waits for the client: /big writes BIG bytes in
 * pieces, only while at most HTTPCONN_LOWAT is queued, and goes on from
 * the drained callback. */
#define BIG (16 * 1024 * 1024)
#define PIECE (32 * 1024)
static size_t big_sent;
static int big_drained, big_max_pending_over;

static void
big_more(struct httpreq *req, void *arg)
{
	static char piece[PIECE];

	(void)arg;
	big_drained++;
	while (big_sent < BIG) {
		if (httpreq_pending(req) > HTTPCONN_LOWAT)
			return; /* wait for the drained callback */
		memset(piece, 'a' + (int)(big_sent / PIECE % 26), sizeof piece);
		httpreq_write(req, piece, PIECE);
		big_sent += PIECE;
		if (httpreq_pending(req) > HTTPCONN_LOWAT + PIECE)
			big_max_pending_over = 1;
	}
	httpreq_end(req);
}

/* The request path of this test: the target says what to answer. */
static void
handler(struct httpreq *req, void *arg)
{
	struct kvlist h = KVLIST_INIT;

	(void)arg;
	kvlist_add(&h, "Content-Type", "text/plain");
	if (strcmp(req->target, "/buffered") == 0) {
		httpreq_send(req, 200, NULL, &h, "hello", 5);
	} else if (strcmp(req->target, "/stream") == 0) {
		httpreq_start(req, 200, "Fine", &h, -1);
		httpreq_write(req, "hello", 5);
		httpreq_write(req, " world", 6);
		httpreq_end(req);
	} else if (strcmp(req->target, "/big") == 0) {
		httpreq_start(req, 200, NULL, &h, -1);
		httpreq_set_callbacks(req, NULL, big_more, NULL);
		big_more(req, NULL);
		big_drained--; /* that call was ours, not the writer's */
	} else if (strcmp(req->target, "/abort") == 0) {
		httpreq_start(req, 200, NULL, &h, -1);
		httpreq_write(req, "part", 4);
		httpreq_abort(req);
	} else
		httpreq_send_text(req, 404, 0, "no %s here", req->target);
	kvlist_free(&h);
}

static int ends_with(const char *s, const char *tail);

/* Send req on a new connection and collect what comes back until the
 * server closes or what came ends with tail (NULL: until the close). */
static char *
exchange(const char *req, const char *tail, int *closed)
{
	struct sockaddr_in sin;
	static char buf[65536];
	size_t len = 0;
	int fd, i;
	ssize_t n;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		return NULL;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		return NULL;
	*closed = 0;
	for (i = 0; i < 3000 && !*closed; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = read(fd, buf + len, sizeof buf - 1 - len);
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			if (tail != NULL && ends_with(buf, tail))
				break;
		} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			*closed = 1;
		else
			poll(NULL, 0, 1);
	}
	buf[len] = '\0';
	close(fd);
	/* Let the server see the close. */
	for (i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	return buf;
}

/* GET /big, read slowly (a small receive buffer, 4 KB at a time): the body
 * bytes that came, the chunk framing included; *complete when the chunked
 * terminator ended it. */
static size_t
big_exchange(int *complete)
{
	static const char req[] = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n";
	struct sockaddr_in sin;
	char buf[4096], tail[8] = "";
	size_t total = 0, i;
	int fd, rcv = 16384;
	ssize_t n;

	*complete = 0;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
		return 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (i = 0; i < 200000 && !*complete; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = read(fd, buf, sizeof buf);
		if (n > 0) {
			total += (size_t)n;
			if (n >= 5)
				memcpy(tail, buf + n - 5, 5);
			else {
				memmove(tail, tail + n, (size_t)(5 - n));
				memcpy(tail + 5 - n, buf, (size_t)n);
			}
			tail[5] = '\0';
			*complete = strcmp(tail, "0\r\n\r\n") == 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			break;
		else
			poll(NULL, 0, 1);
	}
	close(fd);
	for (i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	return total;
}

static int
has(const char *s, const char *part)
{
	return s != NULL && strstr(s, part) != NULL;
}

static int
ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

int
main(void)
{
	struct httpconn_handlers h;
	struct httpconn_server *srv;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	struct config *cfg;
	char err[256], *r;
	int lfd, closed, one = 1;

	cfg = config_load_string("", "t.yaml", NULL, err, sizeof err);
	if (cfg == NULL) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	base = event_base_new();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) == -1 || listen(lfd, 16) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) == -1) {
		printf("Bail out! cannot listen on loopback\n");
		return 1;
	}
	port = ntohs(sin.sin_port);
	memset(&h, 0, sizeof h);
	h.request = handler;
	srv = httpconn_server_new(base, cfg, &lfd, 1, &h);

	r = exchange("GET /buffered HTTP/1.1\r\nHost: a\r\n\r\n", "hello", &closed);
	tap_ok(has(r, "HTTP/1.1 200 OK\r\n") && has(r, "Content-Length: 5\r\n") &&
	           has(r, "Date: ") && ends_with(r, "\r\n\r\nhello") && !has(r, "Connection"),
	       "buffered: Content-Length, Date, kept alive");

	r = exchange("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", "0\r\n\r\n", &closed);
	tap_ok(has(r, "HTTP/1.1 200 Fine\r\n") && has(r, "Transfer-Encoding: chunked\r\n") &&
	           ends_with(r, "\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
	       "streamed to HTTP/1.1: chunked, terminated");

	r = exchange("GET /stream HTTP/1.0\r\n\r\n", NULL, &closed);
	tap_ok(closed && has(r, "Connection: close\r\n") && !has(r, "Transfer-Encoding") &&
	           !has(r, "Content-Length") && ends_with(r, "\r\n\r\nhello world"),
	       "streamed to HTTP/1.0: close-delimited");

	r = exchange("HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n\r\n", &closed);
	tap_ok(has(r, "HTTP/1.1 200 Fine\r\n") && ends_with(r, "\r\n\r\n") && !has(r, "hello") &&
	           !has(r, "Transfer-Encoding"),
	       "HEAD: the head only");

	r = exchange("GET /abort HTTP/1.1\r\nHost: a\r\n\r\n", NULL, &closed);
	tap_ok(closed && ends_with(r, "\r\n\r\n4\r\npart\r\n"),
	       "aborted stream: closed without the chunked terminator");

	r = exchange("GET /buffered HTTP/1.1\r\nHost: a\r\n\r\nGET /stream HTTP/1.1\r\nHost: "
	             "a\r\n\r\nGET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	             NULL, &closed);
	tap_ok(closed && has(r, "hello") && strstr(r, "hello") < strstr(r, "5\r\nhello\r\n") &&
	           strstr(r, "5\r\nhello\r\n") < strstr(r, "404") && has(r, "no /nothing here\n") &&
	           has(r, "Content-Type: text/plain; charset=utf-8"),
	       "pipelined: answered in order, the last one closes");

	{
		size_t got;

		got = big_exchange(&closed);
		tap_ok(closed && got > BIG && big_sent == BIG,
		       "a slow client: the producer's %d MB all arrive, chunked and terminated "
		       "(%zu bytes)",
		       BIG >> 20, got);
		tap_ok(big_drained > 0 && !big_max_pending_over,
		       "the drained callback paced the producer (%d calls; never more than "
		       "HTTPCONN_LOWAT and a piece queued)",
		       big_drained);
	}

	httpconn_server_free(srv);
	event_base_free(base);
	config_free(cfg);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
