/*
 * stream.h: a streamed answer (invoke_mode: stream). The function's bytes
 * arrive through fnstream.h (from Lambda's InvokeWithResponseStream or a
 * local function); this module reads them as an HTTP integration response
 * (a JSON prelude, 8 NUL bytes, the body), starts the client's response as
 * soon as the prelude is complete (the same header rules as a buffered
 * answer), and passes the body on as it comes: chunked to an HTTP/1.1
 * client, close-delimited to an HTTP/1.0 one (httpconn.h's writer).
 *
 * Flow control: what waits for the client is bounded (limits.stream_buffer):
 * past it, data() tells the producer to pause, and the front door's
 * drained callback resumes it. A failure after the head went out aborts
 * the client's connection without the chunked terminator, so the client
 * sees a truncated response, never a complete-looking wrong one.
 *
 * Bytes without the 8 NUL bytes are a buffered-style ALB response (a
 * function that answers the classic way through the streaming API): they
 * are gathered (up to the 6 MB Invoke limit) and handed back whole.
 */
#ifndef SSP_STREAM_H
#define SSP_STREAM_H

#include <stddef.h>

#include "fnstream.h"

struct httpreq;
struct cache_req;
struct kvlist;
struct pstream;

enum pstream_outcome {
	PSTREAM_DONE,    /* the response went out whole */
	PSTREAM_ABORTED, /* cut after its head: the client's connection was aborted */
	PSTREAM_WHOLE,   /* no prelude: whole (an ALB response) for the buffered path */
	PSTREAM_FAILED,  /* nothing went out: answer status/message as usual */
};

struct pstream_result {
	enum pstream_outcome outcome;
	int status;          /* sent (DONE, ABORTED) or to send (FAILED) */
	size_t bytes;        /* body bytes sent */
	const char *message; /* FAILED, ABORTED: why */
	const char *payload; /* WHOLE: the function's bytes */
	size_t payload_len;
	const struct fnstream_end *end; /* how the producer ended */
};

struct pstream_hooks {
	/* The producer may go on (after data() returned 1). */
	void (*resume)(void *arg);
	/* Once, when the stream is over; the request belongs to the caller
	 * again for WHOLE and FAILED (answer it), and is ended for DONE and
	 * ABORTED. Free the stream with pstream_free() afterwards. */
	void (*finished)(const struct pstream_result *, void *arg);
};

/* The consumer side to hand the producer, with the pstream as its arg. */
extern const struct fnstream_ops pstream_ops;

/*
 * A streamed answer to req (whose callbacks it sets: gone must be routed
 * by the caller, see pstream_gone()). buffer: the bound of what waits for
 * the client before the producer is paused. cache: the request's cache
 * state (a completed response within the cache's limits is stored).
 */
struct pstream *pstream_new(struct httpreq *req, struct cache_req *cache, size_t buffer,
                            const struct pstream_hooks *, void *arg);
/* The front door drained the client's output (the caller's drained
 * callback): a paused producer is resumed. */
void pstream_drained(struct pstream *);
/* The client went away (the caller's gone callback): no more writes. */
void pstream_gone(struct pstream *);
/* Did the response head go out? */
int pstream_started(const struct pstream *);
void pstream_free(struct pstream *);

/*
 * The header rules shared with buffered answers: hop-by-hop fields out
 * (keeping Proxy-Authenticate on a 407), Content-Length out unless head
 * (the front door frames the body), invalid names or values dropped (and
 * logged). Appends to out.
 */
void stream_response_headers(const struct kvlist *in, int status, int head, struct kvlist *out);

#endif
