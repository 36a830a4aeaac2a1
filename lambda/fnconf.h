/*
 * fnconf.h: the function's configuration, read from environment variables
 * through one table (name, type, default, bounds) so that every variable
 * is validated, defaulted and documented in one place (doc/lambda.md lists
 * the same table).
 */
#ifndef SSP_LAMBDA_FNCONF_H
#define SSP_LAMBDA_FNCONF_H

#include <stddef.h>

struct fnconf {
	char *runtime_api;     /* AWS_LAMBDA_RUNTIME_API, "host:port" */
	char *prefix;          /* normalized: no leading/trailing '/', may be "" */
	char *parameters_file; /* NULL: Parameter Store */
	char *connect_to;      /* raw SSM_SIGN_PROXY_CONNECT_TO, may be NULL */
	long cache_ttl;        /* seconds; 0 disables the cache */
	long cache_max_hosts;
	long ssm_retries;        /* retries after the first attempt */
	long ssm_backoff_ms;     /* first back-off, doubled per retry */
	long ssm_backoff_max_ms; /* cap */
	long ssm_connect_timeout_ms;
	long ssm_timeout_ms; /* per attempt */
	long origin_connect_timeout_ms;
	long origin_timeout_ms; /* 0: bounded by the invocation deadline only */
	long deadline_margin_ms;
	long runtime_timeout_ms;  /* Runtime API calls but /next */
	long max_response_bytes;  /* encoded response limit (Lambda's 6 MB) */
	long stream_buffer_bytes; /* streaming: bytes held between origin and Runtime API */
	int streaming;            /* SSM_SIGN_PROXY_RESPONSE_MODE=streaming */
	int log_level;
};

/* Read the environment. 0 on success; -1 with err set (the name of the
 * variable and what is wrong with it). The struct is then freed. */
int fnconf_load(struct fnconf *, char *err, size_t errlen);
void fnconf_free(struct fnconf *);

/* Normalize and check a prefix (strip leading/trailing '/'; letters,
 * digits, "_.-/", no empty segment). Returns a malloc'd string or NULL with
 * err set. Exposed for unit tests. */
char *fnconf_prefix(const char *raw, char *err, size_t errlen);

#endif
