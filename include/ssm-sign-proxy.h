/*
 * ssm-sign-proxy.h: libssm-sign-proxy, HTTP calls to an API made by an AWS
 * Lambda function (the ssm-sign-proxy function) that adds the API's token,
 * so that the token never reaches the host. It is the invoke client of the
 * ssm-sign-proxy daemon, as a library: the daemon is one of its users.
 *
 * A call takes a request (method, absolute URL, headers, body), turns it
 * into an ALB event, invokes the function (Lambda Invoke, signed with
 * SigV4, retried within a time budget), and gives back the function's
 * answer as a response (status, headers, body) or an error (a kind, the
 * HTTP status the daemon would answer with, a message without secrets).
 *
 * Threads: an ssp_client is shared by any number of threads at once
 * (ssp_roundtrip()); an ssp_loop belongs to the thread that runs its
 * event_base. Requests, responses and errors belong to one thread at a time.
 *
 * Memory: every object comes from a *_new() or from a call and is freed
 * with its *_free(); strings returned by getters live as long as their
 * object. The library aborts the process when memory runs out.
 *
 * ABI: every struct is opaque and set up through functions, so that later
 * versions add functions rather than change any layout.
 */
#ifndef SSM_SIGN_PROXY_H
#define SSM_SIGN_PROXY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SSP_VERSION_MAJOR 0
#define SSP_VERSION_MINOR 1

/* Largest synchronous Invoke payload Lambda accepts (6 MB): a request whose
 * event would be larger fails with SSP_ERR_TOO_LARGE (413). */
#define SSP_MAX_PAYLOAD 6291456

struct event_base;

typedef struct ssp_options ssp_options;
typedef struct ssp_client ssp_client;
typedef struct ssp_loop ssp_loop;
typedef struct ssp_call ssp_call;
typedef struct ssp_request ssp_request;
typedef struct ssp_response ssp_response;
typedef struct ssp_error ssp_error;
typedef struct ssp_credentials ssp_credentials;
typedef struct ssp_event ssp_event;

/* What went wrong. ssp_error_status() gives the HTTP status the daemon
 * answers its clients with for each. */
enum ssp_error_kind {
	SSP_ERR_INVALID = 1, /* 400: a request the library cannot send (bad URL) */
	SSP_ERR_TOO_LARGE,   /* 413: the event would exceed SSP_MAX_PAYLOAD */
	SSP_ERR_FUNCTION,    /* 502: the function failed or answered nonsense */
	SSP_ERR_LAMBDA,      /* 502: Lambda refused the call or failed */
	SSP_ERR_UNREACHABLE, /* 502: no connection to the Lambda endpoint */
	SSP_ERR_THROTTLED,   /* 503: throttled past the retry budget */
	SSP_ERR_CREDENTIALS, /* 503: no usable AWS credentials */
	SSP_ERR_CONFIG,      /* 503: no region, no endpoint, no function name */
	SSP_ERR_TIMEOUT,     /* 504: the budget ran out */
	SSP_ERR_RESOURCES,   /* 502: out of resources (libcurl refused) */
};

/* Log levels of the log callback. */
enum ssp_log_level {
	SSP_LOG_ERROR = 0,
	SSP_LOG_WARN,
	SSP_LOG_INFO,
	SSP_LOG_DEBUG,
};

/* Messages never hold a secret. Called from the thread that made the call
 * (or the credentials thread): it must be thread-safe. */
typedef void (*ssp_log_fn)(enum ssp_log_level, const char *message, void *arg);

/* --- global set-up -------------------------------------------------------- */

/* libcurl's global set-up (curl_global_init()), the library's only global
 * state: call once before any thread uses the library. 0, or -1. */
int ssp_global_init(void);
/* curl_global_cleanup(): once, after everything is freed. */
void ssp_global_cleanup(void);
/* "0.1.0". */
const char *ssp_version(void);

/* --- options -------------------------------------------------------------- */

ssp_options *ssp_options_new(void);
void ssp_options_free(ssp_options *);
/* The function: a name, name:alias, or partial or full ARN. Required. */
int ssp_options_set_function(ssp_options *, const char *name);
/* The region (else the ARN's, AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's, instance metadata). NULL: find it. */
int ssp_options_set_region(ssp_options *, const char *region);
/* The Lambda endpoint (else AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL,
 * https://lambda.REGION.amazonaws.com). */
int ssp_options_set_endpoint(ssp_options *, const char *url);
/* A proxy for the calls to Lambda and STS (never http_proxy). */
int ssp_options_set_egress_proxy(ssp_options *, const char *url);
/* CA bundle for the TLS connections (else AWS_CA_BUNDLE, SSL_CERT_FILE,
 * the system's bundle). */
int ssp_options_set_ca_bundle(ssp_options *, const char *path);
/* Seconds: connecting, per attempt (default 5; 0: no limit but the
 * budget), and the whole call, retries included (default 30). -1 when
 * out of range. */
int ssp_options_set_timeouts(ssp_options *, double connect, double budget);
/* Attempts for a retryable failure (default 3) and the full-jitter
 * back-off's first and largest ceilings in seconds (0.05, 2). */
int ssp_options_set_retry(ssp_options *, int attempts, double backoff_base, double backoff_cap);
/* Connections to the Lambda endpoint at once, per loop (0: no cap). */
int ssp_options_set_max_connections(ssp_options *, long n);
/* Streamed calls (ssp_start_stream()): seconds without a byte from Lambda
 * that end a stream once it started (default 30; 0: no limit). The budget
 * of ssp_options_set_timeouts() bounds the wait for the first byte. -1
 * when out of range. */
int ssp_options_set_stream_idle(ssp_options *, double seconds);
/* Messages at level or more urgent go to fn; none go anywhere without. */
int ssp_options_set_log(ssp_options *, enum ssp_log_level level, ssp_log_fn fn, void *arg);

/*
 * Credentials from the caller instead of the library's own provider chain
 * (environment, shared files and profile, web identity, container, IMDSv2,
 * refreshed ahead of expiry in a thread of the client). All callbacks may
 * be called from several threads at once and must never block:
 *  - get fills creds with ssp_credentials_set() and returns 0, or returns
 *    -1 with err saying why there are none (no secret in it), or
 *    SSP_CREDENTIALS_GONE with err when there are none and no refresh is
 *    coming (the provider stopped): a call waiting for credentials then
 *    fails at once (SSP_ERR_CREDENTIALS, with err) instead of waiting out
 *    its budget. A waiting call asks get again as it polls, so a provider
 *    that goes away while calls wait is noticed too;
 *  - refresh asks for new ones (those got were expired or refused);
 *  - generation is a counter that moves whenever the caller publishes new
 *    credentials or a new failure: a call waiting for credentials looks
 *    again when it moves, and fails when it moved and get still fails;
 *  - region (may be NULL) writes the region into buf, 0, or -1 with err.
 */
#define SSP_CREDENTIALS_GONE (-2)
typedef int (*ssp_credentials_fn)(void *arg, ssp_credentials *creds, char *err, size_t errlen);
typedef void (*ssp_refresh_fn)(void *arg);
typedef uint64_t (*ssp_generation_fn)(void *arg);
typedef int (*ssp_region_fn)(void *arg, char *buf, size_t len, char *err, size_t errlen);
int ssp_options_set_credentials_provider(ssp_options *, ssp_credentials_fn get,
                                         ssp_refresh_fn refresh, ssp_generation_fn generation,
                                         ssp_region_fn region, void *arg);
/* For a credentials callback: the values are copied. token may be NULL;
 * expiration is seconds since the epoch, 0 when they do not expire. */
int ssp_credentials_set(ssp_credentials *, const char *access_key_id, const char *secret_access_key,
                        const char *session_token, int64_t expiration);

/*
 * What happens inside a call, for an observer (the daemon counts them for
 * its metrics and summarises throttling in its log). The event is valid
 * during the callback only; getters that do not apply to a kind give 0 or
 * "".
 */
enum ssp_event_kind {
	/* An HTTP request to Lambda ended: ssp_event_status() is Lambda's
	 * status, 0 when no answer came (no connection, broken, timed out). */
	SSP_EVENT_ATTEMPT = 1,
	/* The call tries again: ssp_event_reason() is "throttled", "5xx",
	 * "timeout", "connection" or "clock_skew". */
	SSP_EVENT_RETRY,
	/* Lambda throttled an attempt (429): ssp_event_message() is its
	 * message. A retry may follow. */
	SSP_EVENT_THROTTLED,
	/* The function failed (X-Amz-Function-Error): ssp_event_reason() is
	 * its kind ("Unhandled"), ssp_event_message() the error. */
	SSP_EVENT_FUNCTION_ERROR,
};
/* Called from the thread running the call (any number at once: it must be
 * thread-safe), and must not block or call into the library. */
typedef void (*ssp_observer_fn)(const ssp_event *, void *arg);
/* Events go to fn (NULL: none, the default). */
int ssp_options_set_observer(ssp_options *, ssp_observer_fn fn, void *arg);
enum ssp_event_kind ssp_event_kind(const ssp_event *);
/* SSP_EVENT_ATTEMPT: Lambda's HTTP status, 0 when none came. */
int ssp_event_status(const ssp_event *);
/* SSP_EVENT_RETRY: why; SSP_EVENT_FUNCTION_ERROR: the error's kind. */
const char *ssp_event_reason(const ssp_event *);
/* One line, printable, no secret: Lambda's or the function's message. */
const char *ssp_event_message(const ssp_event *);
/* Lambda's request id of the attempt, "" when none. */
const char *ssp_event_request_id(const ssp_event *);
/* The attempt (1 for the first HTTP request of the call). */
unsigned ssp_event_attempt(const ssp_event *);

/* --- client --------------------------------------------------------------- */

/* A client (the options are copied). NULL with err set when the options
 * are incomplete. Credentials are looked for on first use, not here. */
ssp_client *ssp_client_new(const ssp_options *, char *err, size_t errlen);
/* Free a client no call uses any more (its loops freed first). It waits
 * for the credentials thread's attempt in progress, if any (bounded by the
 * provider chain's short timeouts). */
void ssp_client_free(ssp_client *);

/* --- requests, responses, errors ------------------------------------------ */

/* method ("GET"), url ("http://api.github.com/user/repos": scheme, host,
 * escaped path and raw query as the function should see them). */
ssp_request *ssp_request_new(const char *method, const char *url);
void ssp_request_free(ssp_request *);
/* Repeated names are sent repeated; hop-by-hop headers are dropped. */
int ssp_request_add_header(ssp_request *, const char *name, const char *value);
/* The body (copied; binary is fine). */
int ssp_request_set_body(ssp_request *, const void *body, size_t len);

/* The function's answer: status, headers in order (repeated ones
 * repeated), body (NUL-terminated for convenience, not counted in len). */
int ssp_response_status(const ssp_response *);
size_t ssp_response_header_count(const ssp_response *);
/* The i-th header; -1 when out of range. */
int ssp_response_header(const ssp_response *, size_t i, const char **name, const char **value);
/* The first header called name (any case), or NULL. */
const char *ssp_response_header_get(const ssp_response *, const char *name);
const void *ssp_response_body(const ssp_response *, size_t *len);
/* Lambda's request id (x-amzn-RequestId), "" when none. */
const char *ssp_response_request_id(const ssp_response *);
void ssp_response_free(ssp_response *);

enum ssp_error_kind ssp_error_kind(const ssp_error *);
/* The HTTP status the daemon answers with: 400, 413, 502, 503 or 504. */
int ssp_error_status(const ssp_error *);
/* One line, printable, no secret. */
const char *ssp_error_message(const ssp_error *);
/* Lambda's request id of the last attempt, "" when none. */
const char *ssp_error_request_id(const ssp_error *);
/* For SSP_ERR_FUNCTION from X-Amz-Function-Error: its kind ("Unhandled"),
 * else NULL. */
const char *ssp_error_function_error(const ssp_error *);
/* HTTP requests sent to Lambda. */
unsigned ssp_error_attempts(const ssp_error *);
void ssp_error_free(ssp_error *);

/* --- blocking calls -------------------------------------------------------- */

/*
 * Make the call and wait. 0 with *response (the caller frees it), or -1
 * with *error (the caller frees it; error may be NULL). Any thread, any
 * number at once; connections to Lambda are kept alive between calls.
 */
int ssp_roundtrip(ssp_client *, const ssp_request *, ssp_response **response, ssp_error **error);

/* --- asynchronous calls on a libevent loop --------------------------------- */

/* The client on an event_base the caller owns and runs (its connections,
 * its timers). Use it from that loop's thread only. NULL on failure. */
ssp_loop *ssp_loop_new(ssp_client *, struct event_base *);
/* Cancel what is in flight (no callbacks) and free. */
void ssp_loop_free(ssp_loop *);
/* Calls started and not finished. */
unsigned ssp_loop_inflight(const ssp_loop *);

/*
 * The outcome of a call: exactly one of response and error is set; both
 * are valid during the callback only. Called once per call, from the loop
 * (never from inside ssp_start()); the call is freed when it returns, so
 * do not cancel it from there.
 */
typedef void (*ssp_done_fn)(const ssp_response *, const ssp_error *, void *arg);

/* Start a call (the request is encoded at once: free it when you like).
 * Never NULL. */
ssp_call *ssp_start(ssp_loop *, const ssp_request *, ssp_done_fn, void *arg);
/*
 * Invoke the function with a payload of your own (an ALB event built by
 * the caller, as the daemon does). The call owns payload and releases it
 * with free_fn (NULL: the payload is copied). method is the client's HTTP
 * method: it decides whether a 5xx or a broken connection may be retried.
 * The response is Lambda's: status 200, its body the function's raw result.
 */
ssp_call *ssp_invoke_start(ssp_loop *, const char *method, void *payload, size_t len,
                           void (*free_fn)(void *), ssp_done_fn, void *arg);
/* Abandon a call; its callback is not called. */
void ssp_cancel(ssp_call *);

/* --- streamed calls (Lambda's InvokeWithResponseStream) -------------------- */

/*
 * For answers too large for Invoke's 6 MB (up to 200 MB) or that should
 * reach the caller as the API sends them: the function streams its answer
 * (the ssm-sign-proxy function does with SSM_SIGN_PROXY_RESPONSE_MODE=
 * streaming) and the call passes it on piece by piece, holding at most a
 * piece at a time. A failure before the first byte is retried as any
 * call's; after it, the call ends with an error (the answer was cut short).
 *
 * data: the next bytes, in order. Return 0 to go on, or 1 to pause: no more
 * bytes come until ssp_resume() (and no idle limit runs meanwhile). Do not
 * cancel the call from there.
 * head: the response's status and headers (no body; a HEAD-like
 * ssp_response, valid during the callback only), once, before any body.
 */
typedef int (*ssp_data_fn)(const void *data, size_t len, void *arg);
typedef void (*ssp_head_fn)(const ssp_response *head, void *arg);

/*
 * Start a streamed call of request (encoded at once, as ssp_start()): head,
 * then body pieces, then done, all from the loop. done's response is the
 * head again (no body) when the answer came whole; an error otherwise,
 * after head when the answer was cut short. A function that answers the
 * buffered way through the streaming API gives head, its body in one piece,
 * and done. Never NULL.
 */
ssp_call *ssp_start_stream(ssp_loop *, const ssp_request *, ssp_head_fn head, ssp_data_fn body,
                           ssp_done_fn done, void *arg);
/*
 * A streamed invocation with a payload of your own (as ssp_invoke_start()):
 * data gets the function's raw bytes as Lambda brings them (for an HTTP
 * integration response: its JSON prelude, 8 NUL bytes, the body), done a
 * response with status 200 and no body when the stream completed, or an
 * error. The daemon decodes the bytes itself.
 */
ssp_call *ssp_invoke_stream_start(ssp_loop *, const char *method, void *payload, size_t len,
                                  void (*free_fn)(void *), ssp_data_fn data, ssp_done_fn done,
                                  void *arg);
/* Go on after a data or body callback returned 1 (from the loop's thread;
 * not from inside that callback). */
void ssp_resume(ssp_call *);

#ifdef __cplusplus
}
#endif

#endif
