/*
 * runtime.h: the Lambda Runtime API client (2018-06-01): fetch the next
 * invocation, post its response or error, report an initialization error.
 * One libcurl handle for the whole life of the process, so the connection
 * to the Runtime API stays open; never through http_proxy.
 */
#ifndef SSP_LAMBDA_RUNTIME_H
#define SSP_LAMBDA_RUNTIME_H

#include <stddef.h>
#include <signal.h>

#include <curl/curl.h>

struct runtime;

struct runtime_invocation {
	char *request_id;
	long long deadline_ms; /* epoch milliseconds; 0 when the runtime gave none */
	char *trace_id;        /* may be NULL */
	char *function_arn;    /* may be NULL */
	char *event;           /* the event JSON, NUL-terminated */
	size_t event_len;
};

/* api is AWS_LAMBDA_RUNTIME_API ("host:port"). stop is polled while waiting
 * for an invocation: once it is non-zero, runtime_next() returns 1. */
struct runtime *runtime_new(const char *api, volatile sig_atomic_t *stop);
void runtime_free(struct runtime *);
/* Bound of every Runtime API call but /next (which waits for an event as
 * long as it takes), connecting included. Default 30 s. */
void runtime_set_timeout(struct runtime *, long timeout_ms);

/* 0: inv filled (free with runtime_invocation_free); 1: stopped by *stop;
 * -1: the Runtime API failed (err says how). */
int runtime_next(struct runtime *, struct runtime_invocation *inv, char *err, size_t errlen);
void runtime_invocation_free(struct runtime_invocation *);

/* Post the result for request_id. 0 on a 2xx answer, -1 with err set. */
int runtime_respond(struct runtime *, const char *request_id, const char *body, size_t len,
                    char *err, size_t errlen);
int runtime_error(struct runtime *, const char *request_id, const char *type, const char *message,
                  char *err, size_t errlen);
int runtime_init_error(struct runtime *, const char *type, const char *message, char *err,
                       size_t errlen);

/*
 * A streaming answer (Lambda-Runtime-Function-Response-Mode: streaming,
 * chunked, an HTTP integration response): runtime_stream_prepare() sets up
 * the runtime's handle for POST /runtime/invocation/{id}/response with the
 * body from read (CURLOPT_READFUNCTION: it may pause) and the trailers
 * from trailers (Lambda-Runtime-Function-Error-Type and -Body, declared in
 * a Trailer header), and returns it for the caller to drive; after the
 * transfer, runtime_stream_finish() checks the answer: 0 on 2xx, -1 with
 * err set.
 */
CURL *runtime_stream_prepare(struct runtime *, const char *request_id, curl_read_callback read,
                             curl_trailer_callback trailers, void *arg);
int runtime_stream_finish(struct runtime *, CURLcode, char *err, size_t errlen);
/* {"errorMessage","errorType"} as the Runtime API takes it (malloc'd). */
char *runtime_error_json(const char *type, const char *message, size_t *len);

#endif
