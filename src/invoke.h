/*
 * invoke.h: the Lambda Invoke client of a worker. It signs
 * POST /2015-03-31/functions/{name}/invocations with SigV4 (credentials,
 * region from credstore.h), sends it through the worker's libcurl multi
 * handle (curlev.h, keep-alive reuse), retries what may be retried within
 * one time budget (throttling always; 5xx and broken connections only for
 * idempotent client methods, since the function may have run), corrects a
 * skewed clock from the response's Date header, and reports one outcome per
 * invocation. Nothing here blocks: back-off and waiting for fresh
 * credentials are evtimers.
 */
#ifndef SSP_INVOKE_H
#define SSP_INVOKE_H

#include <stddef.h>

struct event_base;
struct invoke_ctx;
struct invoke;

/* Largest synchronous Invoke payload Lambda accepts (6 MB). */
#define INVOKE_MAX_PAYLOAD 6291456

struct invoke_options {
	const char *function_name; /* name, name:alias, partial or full ARN */
	const char *egress_proxy;  /* proxy URL for the Lambda calls, or NULL */
	double connect_timeout;    /* seconds, per attempt */
	double budget;             /* seconds for the whole invocation, retries included */
	int attempts;              /* attempts for a retryable failure (>= 1) */
	double backoff_base;       /* seconds: first back-off ceiling */
	double backoff_cap;        /* seconds: largest back-off ceiling */
	long max_connections;      /* connections to the endpoint at once (0: no cap) */
};

struct invoke_result {
	/* 200 when payload holds the function's response; otherwise the
	 * status to answer the client with (502, 503, 504). */
	int status;
	const char *payload;
	size_t payload_len;
	/* Why it failed, for the client's body and the log: never a secret.
	 * NULL when status is 200. */
	const char *message;
	/* Lambda's x-amzn-RequestId of the last attempt, "" when none. */
	const char *request_id;
	/* For the function error case (200 from Lambda with
	 * X-Amz-Function-Error): its kind ("Unhandled"), else NULL. */
	const char *function_error;
	unsigned attempts; /* HTTP requests sent to Lambda */
	/* No usable credentials: the credentials agent logs why (once per
	 * change), so the caller need not repeat the message. */
	int credentials;
	size_t stream_bytes; /* streaming: the function's bytes passed to data */
};

/* Called once per invocation (never from inside invoke_start()); the
 * result and its strings are valid during the call only. The invocation is
 * freed when the callback returns: do not cancel it from there. */
typedef void (*invoke_done_cb)(const struct invoke_result *, void *arg);

/* A client on base; options are copied. NULL when libcurl refuses. */
struct invoke_ctx *invoke_ctx_new(struct event_base *, const struct invoke_options *);
/* Cancel what is in flight (no callbacks) and free. */
void invoke_ctx_free(struct invoke_ctx *);
/* Invocations started and not finished. */
unsigned invoke_inflight(const struct invoke_ctx *);

/*
 * Invoke the function with payload (the ALB event; the invocation takes
 * ownership of the malloc'd buffer). method is the client's HTTP method: it
 * decides whether a 5xx or a broken connection may be retried.
 */
struct invoke *invoke_start(struct invoke_ctx *, const char *method, char *payload, size_t len,
                            invoke_done_cb, void *arg);
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
                                   size_t len, double idle, invoke_data_fn data, invoke_done_cb,
                                   void *arg);
/* Go on after data returned 1. */
void invoke_resume(struct invoke *);
/* Abandon an invocation (the client went away); its callback is not called. */
void invoke_cancel(struct invoke *);

#endif
