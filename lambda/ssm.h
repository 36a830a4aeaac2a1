/*
 * ssm.h: the Parameter Store client: GetParametersByPath over every page,
 * signed with SigV4 (service "ssm"), retrying throttling and 5xx answers
 * with capped exponential back-off, never past the invocation deadline.
 * One libcurl handle for the life of the process (keep-alive to SSM).
 */
#ifndef SSP_LAMBDA_SSM_H
#define SSP_LAMBDA_SSM_H

#include <stddef.h>

#include "creds.h"
#include "kvlist.h"

struct ssm_client;

struct ssm_options {
	long retries;        /* retries after the first attempt */
	long backoff_ms;     /* first back-off; doubled per retry */
	long backoff_max_ms; /* cap */
	long connect_timeout_ms;
	long timeout_ms; /* per HTTP attempt */
	long margin_ms;  /* stop this long before the deadline */
};

enum ssm_status {
	SSM_OK = 0,
	SSM_FAILED = -1,  /* Parameter Store answered an error: 502 */
	SSM_TIMEOUT = -2, /* the invocation deadline came first: 504 */
};

/* endpoint: base URL without trailing slash; creds are copied. NULL when
 * libcurl cannot make a handle or the endpoint is not a URL (err set). */
struct ssm_client *ssm_new(const struct ssm_options *, const char *endpoint, const char *region,
                           const struct aws_creds *, char *err, size_t errlen);
void ssm_free(struct ssm_client *);

/*
 * Every parameter under path (recursive, decrypted), appended to out as
 * full name -> value. deadline_ms is epoch milliseconds (0: none). On
 * failure err reads "parameter store: <ErrorType>: <message>" (never a
 * parameter value) and out may hold a partial result the caller discards.
 */
enum ssm_status ssm_get_path(struct ssm_client *, const char *path, long long deadline_ms,
                             struct kvlist *out, char *err, size_t errlen);

/* The error type of an AWS JSON error body ("__type", the part after '#'),
 * into buf; exposed for unit tests. */
void ssm_error_type(const char *type, char *buf, size_t len);

#endif
