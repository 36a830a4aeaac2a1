/*
 * handler.h: one invocation: the ALB event in, the ALB response out.
 * Decodes the event, refuses what must not go through (TRACE, a bad Host),
 * finds the host's parameters, signs, calls the origin, and encodes the
 * answer in the shape the event came in. Every failure the client should
 * see becomes an HTTP answer (400, 405, 407, 502, 504) here.
 */
#ifndef SSP_LAMBDA_HANDLER_H
#define SSP_LAMBDA_HANDLER_H

#include <stddef.h>

#include "params.h"

struct origin;
struct runtime;

struct handler {
	struct params *params;
	struct origin *origin;
	long deadline_margin_ms;
	size_t max_response_bytes;
	size_t stream_buffer_bytes; /* streaming mode: held between origin and post */
};

/* What happened, for the invocation log line (strings are owned by the
 * result; free with handler_result_free). */
struct handler_result {
	int status;
	char *method;
	char *host;
	char *path; /* the client's path, not a rewritten one, without query */
	enum params_how how;
	char *error;       /* why the function answered an error itself, or NULL */
	int truncated;     /* streaming: the origin failed after the prelude went out */
	size_t body_bytes; /* streaming: body bytes passed on */
};

/*
 * Handle an event. Returns the response JSON (malloc'd, *len bytes), or
 * NULL when even an error response cannot be encoded (a bug: the caller
 * reports it through /invocation/{id}/error).
 */
char *handler_invoke(struct handler *, const char *event, size_t event_len, long long deadline_ms,
                     struct handler_result *, size_t *len);
void handler_result_free(struct handler_result *);

/*
 * Handle an event in streaming mode (SSM_SIGN_PROXY_RESPONSE_MODE=
 * streaming): the answer goes to the Runtime API as it arrives from the
 * origin (stream.h). 0 when the Runtime API took it, -1 with err set.
 */
int handler_stream(struct handler *, struct runtime *, const char *request_id, const char *event,
                   size_t event_len, long long deadline_ms, struct handler_result *, char *err,
                   size_t errlen);

#endif
