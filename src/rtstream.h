/*
 * rtstream.h: reading a function's streaming answer on local function
 * mode's Runtime API (localfn.c) as it arrives: a chunked
 * POST /2018-06-01/runtime/invocation/{id}/response with
 * Lambda-Runtime-Function-Response-Mode: streaming, its body passed on
 * piece by piece, its trailers (Lambda-Runtime-Function-Error-Type and
 * -Body) at the end.
 *
 * Why not evhttp's own reading: libevent 2.1's evhttp hands a server
 * request to its callback only once the whole body is in memory, and has no
 * hook to set a body callback earlier (2.2's evhttp_set_newreqcb would
 * allow evhttp_request_set_chunked_cb). So rtstream takes a connection's
 * read side over (its bufferevent callbacks, which evhttp sets anew for
 * every request) at the two places where a function's answer can start: a
 * new connection's first request, and the request that follows the answer
 * to a GET /invocation/next. It reads the next request head itself: a
 * streaming post is read here and answered 202 here; anything else is
 * handed back to evhttp untouched.
 */
#ifndef SSP_RTSTREAM_H
#define SSP_RTSTREAM_H

#include <stddef.h>

#include "kvlist.h"

struct evhttp;
struct evhttp_request;
struct rtstream;

struct rtstream_ops {
	/* A streaming post for request id, read by rs (resume that one): 0 to
	 * read it here, -1 to leave it to evhttp (an id that is not running). */
	int (*begin)(struct rtstream *rs, const char *id, void *arg);
	/* Body bytes in order: 0 to go on, 1 to stop reading until
	 * rtstream_resume(). */
	int (*data)(const unsigned char *, size_t, void *arg);
	/* The end: the trailers (empty when none), or err when the connection
	 * broke or the framing is wrong. Called once after begin() took it. */
	void (*end)(const struct kvlist *trailers, const char *err, void *arg);
	/* The watcher rs is going away (after end() when a post was taken):
	 * forget it. Not called after rtstream_cancel(). */
	void (*released)(struct rtstream *rs, void *arg);
};

/*
 * Watch the connection of req, the GET /invocation/next about to be
 * answered, from the moment its answer has been written. Returns the
 * watcher; it frees itself when the connection's next request has been
 * handed on (after a streaming post: once its 202 is written) or the
 * connection closes, and says so through released().
 */
struct rtstream *rtstream_arm(struct evhttp_request *req, const struct rtstream_ops *, void *arg);
/*
 * Watch every new connection of http the same way from its first byte (a
 * function may post its answer on a connection of its own). w (the ops and
 * their argument) must outlive the server.
 */
struct rtstream_watch {
	const struct rtstream_ops *ops;
	void *arg;
};
void rtstream_watch(struct evhttp *http, struct rtstream_watch *w);
/* Go on reading after data() returned 1. */
void rtstream_resume(struct rtstream *);
/* Stop calling the ops (the invocation is over): the watcher finishes on
 * its own (a post in progress is read to its end and dropped). */
void rtstream_cancel(struct rtstream *);

#endif
