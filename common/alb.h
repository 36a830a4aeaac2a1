/*
 * alb.h: the ALB <-> Lambda target JSON format (the "ALB event codec"),
 * used by the daemon to build events and read responses, and by the
 * function to read events and build responses.
 *
 * Query keys and values are kept exactly as the client sent them (still
 * percent-encoded), as an ALB sends them. Bodies that are not valid UTF-8
 * travel base64-encoded with isBase64Encoded set.
 */
#ifndef SSP_ALB_H
#define SSP_ALB_H

#include <stddef.h>

#include "kvlist.h"

struct alb_request {
	char *method;
	char *path;            /* escaped path, exactly as sent */
	struct kvlist query;   /* raw keys and values, in order */
	struct kvlist headers; /* in order; repeated headers repeated */
	unsigned char *body;
	size_t body_len;
	int multi_value; /* event used (or will use) the multiValue* forms */
	int from_elb;    /* event had requestContext.elb */
	char *target_group_arn;
	char *instance_hostname; /* requestContext.instance.hostname (daemon events) */
	char *instance_id;
};

struct alb_response {
	int status;
	char *status_description; /* "200 OK"; may be NULL */
	struct kvlist headers;
	unsigned char *body;
	size_t body_len;
	int multi_value;
};

void alb_request_init(struct alb_request *);
void alb_request_free(struct alb_request *);
void alb_response_init(struct alb_response *);
void alb_response_free(struct alb_response *);

/*
 * Encode as JSON (compact). The daemon's events carry both the single- and
 * the multi-value forms of headers and query. Returns a malloc'd string the
 * caller frees, its length in *len.
 */
char *alb_request_encode(const struct alb_request *, size_t *len);
char *alb_response_encode(const struct alb_response *, size_t *len);

/* Decode; 0 on success, -1 with err set (the struct is then freed). */
int alb_request_decode(const char *json, size_t len, struct alb_request *, char *err,
                       size_t errlen);
int alb_response_decode(const char *json, size_t len, struct alb_response *, char *err,
                        size_t errlen);

/*
 * HTTP integration responses: what a streaming function writes (Function
 * URLs and API Gateway read the same), a JSON prelude, 8 NUL bytes, then
 * the raw body. alb_prelude_decode() reads the prelude: statusCode (200
 * when absent), headers, multiValueHeaders (a name there takes all its
 * values from there) and cookies (each a Set-Cookie); no body.
 * alb_any_response_decode() takes either shape whole: a payload with the 8
 * NUL bytes is an integration response, anything else an ALB response.
 * Both: 0, or -1 with err set (the struct is then freed).
 */
#define ALB_PRELUDE_SEPARATOR_LEN 8
int alb_prelude_decode(const char *json, size_t len, struct alb_response *, char *err,
                       size_t errlen);
int alb_any_response_decode(const char *payload, size_t len, struct alb_response *, char *err,
                            size_t errlen);

#endif
