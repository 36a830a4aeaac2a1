/*
 * sigv4.h: AWS Signature Version 4 (header signing), with mbedTLS for
 * SHA-256 and HMAC. The derived signing key is cached per
 * (key, day, region, service).
 */
#ifndef SSP_SIGV4_H
#define SSP_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "creds.h"
#include "kvlist.h"

struct sigv4_input {
	const char *method;
	/* The path exactly as sent on the wire (already percent-encoded). The
	 * canonical URI is this path normalized (when normalize is set) and
	 * URI-encoded again, as every service but S3 expects. */
	const char *path;
	/* Raw query string without '?', or NULL. Keys and values are decoded and
	 * encoded again ('+' is a literal plus), so any valid escaping signs the same. */
	const char *query;
	/* The headers that will be sent; must include Host. All are signed but
	 * the ones proxies and clients rewrite (hop-by-hop, Expect, User-Agent,
	 * X-Amzn-Trace-Id), as botocore does. An X-Amz-Date here is used as the
	 * signing time instead of when. */
	const struct kvlist *headers;
	const void *body;
	size_t body_len;
	const char *payload_hash; /* hex SHA-256 of the body, or NULL to compute it */
	const char *region;
	const char *service;
	time_t when;
	int normalize; /* remove dot segments and duplicate slashes */
};

struct sigv4_output {
	char amz_date[17]; /* X-Amz-Date value, e.g. 20150830T123600Z */
	char signature[65];
	char *authorization;     /* Authorization header value */
	char *canonical_request; /* for tests and debug logs */
	char *string_to_sign;
	char *signed_headers;
};

/*
 * Sign. The output's strings are owned by out (sigv4_output_free). The
 * signer adds X-Amz-Date (when the input headers lack it) and
 * X-Amz-Security-Token (when the credentials have a session token and the
 * headers lack it) to what it signs; the caller must send them too:
 * sigv4_apply() adds Authorization, X-Amz-Date and X-Amz-Security-Token to a
 * header list. Returns 0, or -1 with err set.
 */
int sigv4_sign(const struct aws_creds *, const struct sigv4_input *, struct sigv4_output *,
               char *err, size_t errlen);
void sigv4_apply(const struct aws_creds *, const struct sigv4_output *, struct kvlist *headers);
void sigv4_output_free(struct sigv4_output *);

/* Lower-case hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* RFC 3986 encoding of the unreserved set; '/' kept when keep_slash. Caller frees. */
char *sigv4_uri_encode(const char *s, size_t len, int keep_slash);

#endif
