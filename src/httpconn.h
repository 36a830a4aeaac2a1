/*
 * httpconn.h: the daemon's HTTP/1.1 front door. It accepts connections on
 * the listening sockets, checks allow and limits.max_connections at
 * accept, reads requests with the strict parser (http1.h), enforces the
 * client timeouts with nginx's meaning, answers what it refuses itself
 * (text/plain, one line, an access-log line) and hands every complete
 * request to the request path (proxy.c), one at a time per connection, in
 * order (pipelining).
 *
 * Timeouts (timeouts.* of the configuration):
 *   client_header  one deadline from the start of a request (the accept,
 *                  or its first byte on a kept-alive connection) to the end
 *                  of its head; a byte that arrives never extends it. 408.
 *   client_body    between two reads of the body. 408.
 *   keepalive      idle between requests; closed silently (0: one request
 *                  per connection).
 *   send           between two writes while the client does not read;
 *                  closed.
 *
 * The response writer is the same for a buffered answer and a streamed
 * one:
 *
 *   httpreq_start(req, status, reason, headers, length)
 *   httpreq_write(req, piece, n)      any number of times
 *   httpreq_end(req)                  or httpreq_abort(req)
 *
 * length -1 means "not known yet": the body goes chunked to an HTTP/1.1
 * client, close-delimited to an HTTP/1.0 one. httpreq_abort() closes the
 * connection without the chunked terminator, so that the client sees a
 * truncated response rather than a complete one. A producer that can go
 * faster than the client reads watches httpreq_pending() and sets a
 * drained callback (httpreq_set_callbacks()): it is called when the
 * queued output falls to HTTPCONN_LOWAT bytes or less. httpreq_send() is
 * start + write + end in one (one system call for the whole answer).
 *
 * Ownership: the request belongs to the connection. The request path gets
 * it in its request callback and must end it (httpreq_end(),
 * httpreq_abort(), httpreq_send(), httpreq_send_text()); after that it must
 * not touch it again. When the client goes away first, the gone callback
 * is called and the request is freed when it returns.
 */
#ifndef SSP_HTTPCONN_H
#define SSP_HTTPCONN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "kvlist.h"

struct event_base;
struct evbuffer;
struct config;
struct httpconn_server;
struct httpconn;

/* The drained callback fires when the queued output is at most this. */
#define HTTPCONN_LOWAT (64 * 1024)

struct httpreq {
	/* The request, as parsed (read-only for the request path). */
	char *method; /* NUL-terminated copies */
	char *target;
	int minor;             /* HTTP/1.<minor> */
	struct kvlist headers; /* every field in order, names as sent */
	struct evbuffer *body; /* de-chunked */
	int head;              /* method is HEAD: no body in the answer */
	int expect_continue;   /* asked for 100 Continue (not sent yet when expect is called) */
	char client[64];       /* the peer's address, as text (a v4-mapped one as IPv4) */
	const struct sockaddr *peer;
	struct timespec start; /* CLOCK_MONOTONIC: the request's first byte */

	/* Private to httpconn.c and httpreq.c. */
	struct httpconn *conn;
	struct kvlist resp_headers; /* httpreq_add_header(): on every answer */
	void (*gone)(struct httpreq *, void *);
	void (*drained)(struct httpreq *, void *);
	void *cbarg;
	int close;      /* answer with Connection: close, then close */
	int started;    /* status line queued */
	int chunked;    /* body goes chunked */
	int no_body;    /* HEAD, 204, 304, 205: nothing after the head */
	int64_t remain; /* body bytes still to come with a Content-Length, else -1 */
	int status;
	size_t bytes; /* body bytes sent */
};

struct httpconn_handlers {
	/* A complete request (head and body). */
	void (*request)(struct httpreq *, void *arg);
	/*
	 * A request asking for 100 Continue, before its body is read: return
	 * 0 to let it send the body, or answer it (httpreq_send_text()) and
	 * return 1, and the connection closes after the answer without
	 * reading the body. NULL: always continue.
	 */
	int (*expect)(struct httpreq *, void *arg);
	void *arg;
};

/*
 * Serve HTTP on the listening sockets fds[0..nfds) (non-blocking; closed by
 * httpconn_server_free() or httpconn_server_stop()). cfg gives the
 * timeouts, limits and allow list and must outlive the server.
 */
struct httpconn_server *httpconn_server_new(struct event_base *, const struct config *cfg,
                                            const int *fds, size_t nfds,
                                            const struct httpconn_handlers *);
/*
 * Stop: close the listening sockets (new connections are refused by the
 * kernel once the master closes its copies too) and make every later
 * answer carry Connection: close (so that a connection closes after its
 * request).
 */
void httpconn_server_stop(struct httpconn_server *);
/*
 * Hold accepting (a reload's new worker accepts nothing until it is ready,
 * so that a broken function answers no client while the old workers still
 * serve), or let it go on.
 */
void httpconn_server_hold(struct httpconn_server *, int held);
/*
 * While stopping: close the connections that carry no request and have
 * been quiet for quiet seconds (a client about to send on a kept-alive
 * connection right then would see it closed: the short wait makes that
 * unlikely, and its request is answered with Connection: close). Returns
 * the connections left, lingering ones not counted.
 */
unsigned httpconn_server_drain(struct httpconn_server *, double quiet);
/* Open connections. */
unsigned httpconn_server_count(const struct httpconn_server *);
/* Write what is queued (without blocking), close everything, free. */
void httpconn_server_free(struct httpconn_server *);

/* Callbacks for one request; see above. Either may be NULL. */
void httpreq_set_callbacks(struct httpreq *, void (*gone)(struct httpreq *, void *),
                           void (*drained)(struct httpreq *, void *), void *arg);
/* The answer closes the connection (Connection: close). */
void httpreq_set_close(struct httpreq *);
/* A field every answer to this request carries, whoever makes it (the
 * request id); before those given to httpreq_start(). */
void httpreq_add_header(struct httpreq *, const char *name, const char *value);
/* A field added with httpreq_add_header(), or NULL. */
const char *httpreq_get_header(const struct httpreq *, const char *name);

/*
 * Queue the status line and headers. headers may be NULL; the framing
 * fields (Content-Length, Transfer-Encoding, Connection) in it are
 * ignored: length decides them (for a HEAD answer, length is the
 * Content-Length to announce, -1 for none). A Date is added when headers
 * has none. reason NULL: the standard phrase.
 */
void httpreq_start(struct httpreq *, int status, const char *reason, const struct kvlist *headers,
                   int64_t length);
/* A piece of the body (dropped for HEAD, 204, 205 and 304). */
void httpreq_write(struct httpreq *, const void *, size_t);
/* The body is complete. */
void httpreq_end(struct httpreq *);
/* Give up: close the connection without completing the body. */
void httpreq_abort(struct httpreq *);
/* Output queued and not yet written to the socket (bytes). */
size_t httpreq_pending(const struct httpreq *);

/* start + write + end. Returns the body bytes sent. */
size_t httpreq_send(struct httpreq *, int status, const char *reason, const struct kvlist *headers,
                    const void *body, size_t len);
/* An answer of the daemon's own: text/plain, the formatted line and a
 * newline; close adds Connection: close. Returns the body bytes sent. */
size_t httpreq_send_text(struct httpreq *, int status, int close, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
