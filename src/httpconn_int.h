/*
 * httpconn_int.h: what the connection layer (httpconn.c) and its response
 * writer (httpreq.c) share; private to the two.
 */
#ifndef SSP_HTTPCONN_INT_H
#define SSP_HTTPCONN_INT_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stdint.h>
#include <time.h>

#include <event2/event_struct.h>

#include "http1.h"
#include "httpconn.h"

/* Connections accepted per wake-up of a listening socket. */
#define HTTPCONN_ACCEPTS 64
/* The first size of a connection's input buffer. */
#define HTTPCONN_IBUF 4096

/* The states of a connection: see httpconn.c. */
enum { C_HEAD, C_BODY, C_APP, C_IDLE, C_LINGER };

struct httpconn {
	struct httpconn_server *srv;
	TAILQ_ENTRY(httpconn) entry;
	TAILQ_ENTRY(httpconn) idle_entry; /* on srv->idle while C_IDLE with nothing pending */
	int fd;
	int state;
	int on_idle;
	int reading; /* the read event is added */
	int writing; /* the write event is added */
	int closing; /* close (linger) once the output is written */
	int busy;    /* inside a callback: freeing waits */
	int dead;    /* closed while busy */
	int processing;
	struct event rev, wev, timer;
	char *ibuf;
	size_t ilen, icap;
	struct http1_scan scan;
	double head_deadline; /* monotonic */
	double last_io;       /* monotonic: accepted, bytes read, an answer ended or went out */
	struct timespec req_start; /* the current request's first byte (or the accept) */
	struct evbuffer *out;
	struct httpreq *req;
	struct http1_chunked chunk;
	uint64_t body_remain;
	int chunked_body;
	struct sockaddr_storage peer;
	char client[64];
};

struct httpconn_listener {
	int fd;
	struct event ev;
};

struct httpconn_server {
	struct event_base *base;
	const struct config *cfg;
	struct httpconn_handlers h;
	struct httpconn_listener *ls;
	size_t nls;
	int accepting;
	int held; /* httpconn_server_hold() */
	int stopping;
	TAILQ_HEAD(, httpconn) conns;
	TAILQ_HEAD(, httpconn) idle;
	unsigned nconns;
	struct http1_field *fields; /* parser scratch: max_headers entries */
	size_t maxfields;
	size_t ibuf_max;
	time_t date_t;
	char date[40];
};

/* Hold c across a call that may close it; the last release frees a
 * closed connection. */
void httpconn_hold(struct httpconn *);
void httpconn_release(struct httpconn *);
/* Write what is queued; -1 when the connection was closed (with
 * defer_close a write error closes it from the event loop instead). */
int httpconn_flush(struct httpconn *, int defer_close);
/* Close now; the gone callback of a request the request path holds is
 * called. */
void httpconn_close(struct httpconn *);
/* The answer to req is complete (queued): go on with the next request, or
 * close. Frees req. */
void httpconn_done(struct httpconn *, struct httpreq *);
/* The Date field value for now. */
const char *httpconn_date(struct httpconn_server *);

#endif
