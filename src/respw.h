/*
 * respw.h: the streamed response writer over evhttp, with the names and
 * meaning of the front door's writer (httpreq_start/write/end/abort,
 * httpreq_pending, a drained callback) so that stream.c is written once.
 * It goes away when the front door (httpconn.c) replaces evhttp's server.
 */
#ifndef SSP_RESPW_H
#define SSP_RESPW_H

#include <stddef.h>
#include <stdint.h>

struct evhttp_request;
struct kvlist;

struct httpreq {
	struct evhttp_request *r;
	int head; /* HEAD: no body */
	/* Private. */
	int minor;
	int no_body;
	double keepalive;
	int started;
	void (*drained)(struct httpreq *, void *);
	void *arg;
};

/* A writer for r. Free with httpreq_release() unless httpreq_end() or
 * httpreq_abort() ended it. keepalive: the connection's idle timeout, put
 * back at the end (evhttp has one timeout per connection, for reading
 * too: it is off while a streamed body goes out, however long it pauses). */
struct httpreq *httpreq_wrap(struct evhttp_request *r, double keepalive);
void httpreq_release(struct httpreq *);
void httpreq_set_drained(struct httpreq *, void (*drained)(struct httpreq *, void *), void *arg);

void httpreq_start(struct httpreq *, int status, const char *reason, const struct kvlist *headers,
                   int64_t length);
void httpreq_write(struct httpreq *, const void *, size_t);
/* Both end the request and free the writer. */
void httpreq_end(struct httpreq *);
void httpreq_abort(struct httpreq *);
size_t httpreq_pending(const struct httpreq *);

#endif
