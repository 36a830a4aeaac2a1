/*
 * stream.h: the function's streaming answer (SSM_SIGN_PROXY_RESPONSE_MODE=
 * streaming). The origin call and the Runtime API post run together on one
 * curl multi handle: the origin's body goes through a bounded buffer into
 * the post as it arrives (a full buffer pauses the origin, an empty one the
 * post), so the function never holds a whole body. The post carries an
 * HTTP integration response: a JSON prelude (statusCode, headers,
 * multiValueHeaders, cookies), 8 NUL bytes, then the body. A failure after
 * the prelude went out is reported in the trailers
 * Lambda-Runtime-Function-Error-Type and -Body.
 */
#ifndef SSP_LAMBDA_STREAM_H
#define SSP_LAMBDA_STREAM_H

#include <stddef.h>

#include "alb.h"
#include "origin.h"

struct runtime;

/* The 8 NUL bytes between the prelude and the body. */
#define STREAM_PRELUDE_SEPARATOR_LEN 8

struct stream_outcome {
	int status;        /* the status the prelude carried */
	char *error;       /* why the answer is an error or was cut short (malloc'd), or NULL */
	int truncated;     /* the origin failed after the prelude went out */
	size_t body_bytes; /* body bytes passed on */
};

/*
 * Answer request_id through rt in streaming mode. With orq (and o), call
 * the origin and stream its answer; without, send fixed (an answer the
 * function wrote itself, such as a 407). buffer_bytes bounds what is held
 * between the origin and the post. 0 when the Runtime API took the answer
 * (out says what it was), -1 with err set when the post failed.
 */
int stream_respond(struct runtime *rt, const char *request_id, struct origin *o,
                   const struct origin_request *orq, const struct alb_response *fixed,
                   size_t buffer_bytes, struct stream_outcome *out, char *err, size_t errlen);
void stream_outcome_free(struct stream_outcome *);

/* The prelude for status and headers (JSON, malloc'd, *len bytes, the 8
 * NUL bytes included). Set-Cookie values go to "cookies", names seen once
 * to "headers", repeated ones to "multiValueHeaders". */
char *stream_prelude(int status, const struct kvlist *headers, size_t *len);

#endif
