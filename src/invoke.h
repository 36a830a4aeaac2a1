/*
 * invoke.h: the daemon's side of libssm-sign-proxy (ssm-sign-proxy.h). A
 * worker's client is made from the configuration, with its credentials and
 * region from the credentials agent (credstore.h) and its log lines in
 * log.c; the outcome of every invocation reaches proxy.c as a struct
 * invoke_result, whether Lambda (through the library's asynchronous calls)
 * or the local function (localfn.h) answered.
 */
#ifndef SSP_INVOKE_H
#define SSP_INVOKE_H

#include <stddef.h>

#include "ssm-sign-proxy.h"

struct config;

/* Largest synchronous Invoke payload Lambda accepts (6 MB). */
#define INVOKE_MAX_PAYLOAD SSP_MAX_PAYLOAD

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
};

/* Called once per invocation; the result and its strings are valid during
 * the call only. */
typedef void (*invoke_done_cb)(const struct invoke_result *, void *arg);

/* The worker's Lambda client for cfg: NULL with err when the library
 * refuses the options. */
ssp_client *invoke_client_new(const struct config *cfg, char *err, size_t errlen);
/* A library outcome as an invoke_result (pointing into resp or err). */
void invoke_result_from(const ssp_response *, const ssp_error *, struct invoke_result *);

#endif
