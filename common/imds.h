/*
 * imds.h: an EC2 instance metadata service (IMDSv2) client: a session token
 * fetched with PUT /latest/api/token and reused until shortly before its TTL
 * runs out, then GETs with that token, each with a bounded number of attempts
 * and the short timeouts of creds_options. Base URL from awsenv
 * (AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254). Blocking:
 * meant for the credentials agent and the function's start-up.
 */
#ifndef SSP_IMDS_H
#define SSP_IMDS_H

#include <stddef.h>

struct creds_options;

/* Token TTL asked for, seconds (the SDKs' default). */
#define IMDS_TOKEN_TTL 21600

struct imds {
	char *base;          /* endpoint without trailing slash; owned */
	char *token;         /* current session token or NULL; owned, secret */
	double token_expiry; /* CLOCK_MONOTONIC seconds */
	int calls;           /* HTTP calls made (for tests and logs) */
};

/* Set up a session (no network). */
void imds_init(struct imds *);
/* Forget the token and free everything. */
void imds_free(struct imds *);

/*
 * GET path ("/latest/meta-data/instance-id") with the session token.
 * Returns 0 with *body (caller frees), 1 when the service answered 404,
 * -1 with err otherwise (unreachable after the attempts, token refused, ...).
 */
int imds_get(struct imds *, const struct creds_options *, const char *path, char **body, char *err,
             size_t errlen);

#endif
