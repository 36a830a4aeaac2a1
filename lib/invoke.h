/*
 * invoke.h: the Lambda Invoke client on one event loop. It signs
 * POST /2015-03-31/functions/{name}/invocations with SigV4 (credentials and
 * region from the client: the caller's callbacks or the provider chain),
 * sends it through the loop's libcurl multi handle (curlev.h, keep-alive
 * reuse), retries what may be retried within one time budget (throttling
 * always; 5xx and broken connections only for idempotent client methods,
 * since the function may have run), corrects a skewed clock from the
 * response's Date header, and reports one outcome per invocation. Nothing
 * here blocks: back-off and waiting for fresh credentials are evtimers.
 * A streaming invocation (InvokeWithResponseStream) decodes Lambda's event
 * stream as it comes and passes the function's bytes on, pausing libcurl
 * while the consumer is full.
 */
#ifndef SSP_LIB_INVOKE_H
#define SSP_LIB_INVOKE_H

#include <stddef.h>

#include "ssm-sign-proxy.h"

struct event_base;
struct invoke_ctx;
struct invoke;

struct invoke_result {
	/* 200 when payload holds the function's response; otherwise the
	 * status to answer the client with (413, 502, 503, 504) and kind. */
	int status;
	enum ssp_error_kind kind;
	const char *payload;
	size_t payload_len;
	/* Why it failed: never a secret. NULL when status is 200. */
	const char *message;
	/* Lambda's x-amzn-RequestId of the last attempt, "" when none. */
	const char *request_id;
	/* For the function error case (200 from Lambda with
	 * X-Amz-Function-Error): its kind ("Unhandled"), else NULL. */
	const char *function_error;
	unsigned attempts;   /* HTTP requests sent to Lambda */
	size_t stream_bytes; /* streaming: the function's bytes passed to data */
};

/* Called once per invocation (never from inside invoke_start()); the
 * result is valid during the call only. The invocation is freed when the
 * callback returns: do not cancel it from there. */
typedef void (*invoke_done_cb)(const struct invoke_result *, void *arg);

/* A client on base. NULL when libcurl refuses. */
struct invoke_ctx *invoke_ctx_new(struct event_base *, struct ssp_client *);
/* Cancel what is in flight (no callbacks) and free. */
void invoke_ctx_free(struct invoke_ctx *);
/* Invocations started and not finished. */
unsigned invoke_inflight(const struct invoke_ctx *);

/*
 * Invoke the function with payload (the ALB event; released with free_fn
 * when the invocation ends, or never when free_fn is NULL). method is the
 * client's HTTP method: it decides whether a 5xx or a broken connection may
 * be retried.
 */
struct invoke *invoke_start(struct invoke_ctx *, const char *method, char *payload, size_t len,
                            void (*free_fn)(void *), invoke_done_cb, void *arg);
/* An invocation that fails with kind/status/message from the loop (a
 * request the caller cannot send), so that every outcome comes the same way. */
struct invoke *invoke_start_failed(struct invoke_ctx *, enum ssp_error_kind, int status,
                                   const char *message, invoke_done_cb, void *arg);
/*
 * Streaming (Lambda's InvokeWithResponseStream): the same, through
 * POST /2021-11-15/functions/{name}/response-streaming-invocations, with the
 * PayloadChunk bytes passed to data as the event stream brings them (0 to
 * go on, 1 to pause until invoke_resume(); data must not cancel). The
 * budget bounds the time until the first byte; after it, idle seconds
 * without one end the call (0: no limit). Retries happen only before the
 * first byte. cb reports the end: status 200 (no payload) when the stream
 * completed, otherwise the failure (result.stream_bytes says whether bytes
 * went out before it).
 */
typedef int (*invoke_data_fn)(const unsigned char *, size_t, void *arg);
struct invoke *invoke_start_stream(struct invoke_ctx *, const char *method, char *payload,
                                   size_t len, void (*free_fn)(void *), double idle,
                                   invoke_data_fn data, invoke_done_cb, void *arg);
/* Go on after data returned 1. */
void invoke_resume(struct invoke *);
/* Lambda's request id of the attempt in progress or the last one ("" when
 * none yet). */
const char *invoke_request_id(const struct invoke *);
/* Abandon an invocation; its callback is not called. */
void invoke_cancel(struct invoke *);

#endif
