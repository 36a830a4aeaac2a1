/*
 * origin.h: the https call to the real API. One libcurl handle for the
 * life of the process so that TCP/TLS connections stay alive across
 * invocations. No redirect is followed, no body decoded (gzip stays gzip),
 * TLS is verified against awsenv_ca_bundle() (also for hosts routed
 * elsewhere with SSM_SIGN_PROXY_CONNECT_TO), no proxy is used.
 */
#ifndef SSP_LAMBDA_ORIGIN_H
#define SSP_LAMBDA_ORIGIN_H

#include <stddef.h>

#include <curl/curl.h>

#include "alb.h"
#include "kvlist.h"

struct origin;

enum origin_status {
	ORIGIN_OK = 0,
	ORIGIN_UNREACHABLE = -1, /* 502 */
	ORIGIN_TIMEOUT = -2,     /* 504 */
	ORIGIN_TOO_LARGE = -3,   /* 502 */
};

/* connect_to: comma-separated HOST:PORT:CONNECT_HOST:CONNECT_PORT entries,
 * or NULL. NULL with err set when an entry is malformed or libcurl fails. */
struct origin *origin_new(const char *connect_to, long connect_timeout_ms, long timeout_ms,
                          char *err, size_t errlen);
void origin_free(struct origin *);

struct origin_request {
	const char *method;
	const char *host; /* checked by hostcheck */
	int port;
	const char *target;           /* "/path?query", already escaped */
	const struct kvlist *headers; /* as the client sent them, signed */
	const unsigned char *body;
	size_t body_len;
	long long deadline_ms; /* epoch ms to stop at (0: none) */
	size_t max_body;       /* stop reading the answer beyond this */
};

/* Fills resp (status, headers without hop-by-hop ones, body). On failure
 * err says what happened, in words fit for the client. */
enum origin_status origin_call(struct origin *, const struct origin_request *,
                               struct alb_response *resp, char *err, size_t errlen);

/*
 * The same call in steps, for a caller that drives the handle itself (the
 * streaming answer runs it on a curl multi next to the Runtime API post):
 * origin_prepare() sets up the origin's handle with the body going to
 * write(data, 1, n, warg) and returns it (NULL with *st and err set when
 * the call cannot start); origin_head() gives the answer's status and
 * headers (without hop-by-hop ones; the caller frees headers) once libcurl
 * has them, that is from the first write on; origin_result() maps the
 * transfer's result to a status and err; origin_release() drops what the
 * call held (origin_prepare() and origin_free() call it too).
 */
CURL *origin_prepare(struct origin *, const struct origin_request *, curl_write_callback write,
                     void *warg, enum origin_status *st, char *err, size_t errlen);
int origin_head(struct origin *, struct kvlist *headers);
enum origin_status origin_result(struct origin *, CURLcode, char *err, size_t errlen);
void origin_release(struct origin *);

#endif
