/*
 * fnstream.h: a function's answer as a stream of bytes, from its producer
 * (Lambda's InvokeWithResponseStream, or local function mode's Runtime API)
 * to its consumer (the daemon's streamed response, stream.c). The bytes
 * are what the function wrote: an HTTP integration response (a JSON
 * prelude, 8 NUL bytes, the body) or, from a function that answers in the
 * buffered way, an ALB response JSON.
 */
#ifndef SSP_FNSTREAM_H
#define SSP_FNSTREAM_H

#include <stddef.h>

/* How a stream ended. */
struct fnstream_end {
	int status;                 /* 200: complete; else the status for the client */
	const char *message;        /* why it failed (no secret); NULL when 200 */
	const char *request_id;     /* the invocation's id, "" when none */
	const char *function_error; /* the function reported an error: its kind, else NULL */
	int credentials;            /* no usable credentials (logged by the agent) */
	unsigned attempts;          /* requests sent to Lambda (0 for local mode) */
	size_t bytes;               /* function bytes passed through data() */
};

struct fnstream_ops {
	/*
	 * The next bytes, in order. Return 0 to go on, or 1 when the consumer
	 * holds enough: the producer stops (after this piece) until its resume
	 * function is called. The consumer must not cancel the stream from here.
	 */
	int (*data)(const unsigned char *, size_t, void *arg);
	/* Once, at the end; the stream is freed when it returns (do not cancel
	 * it from here). Never called from inside the start function. */
	void (*done)(const struct fnstream_end *, void *arg);
};

#endif
