/*
 * httputil.h: small HTTP helpers shared by the daemon and the function:
 * hop-by-hop header removal, UTF-8 checks, base64 (mbedTLS), reason phrases.
 */
#ifndef SSP_HTTPUTIL_H
#define SSP_HTTPUTIL_H

#include <stdarg.h>
#include <stddef.h>

#include "kvlist.h"

/*
 * Remove hop-by-hop headers (RFC 9110 7.6.1): Connection and every header it
 * names, Proxy-Connection, Keep-Alive, Proxy-Authorization, TE (except the
 * value "trailers"), Trailer, Transfer-Encoding, Upgrade, and
 * Proxy-Authenticate unless keep_proxy_authenticate (a 407 keeps it).
 */
void http_strip_hop_by_hop(struct kvlist *, int keep_proxy_authenticate);

int http_is_valid_utf8(const unsigned char *, size_t);
/* base64 encode/decode; caller frees; decode returns NULL on bad input. */
char *http_base64_encode(const unsigned char *, size_t, size_t *outlen);
unsigned char *http_base64_decode(const char *, size_t, size_t *outlen);
/* "Not Found" for 404; "Unknown" for anything unknown. */
const char *http_reason(int status);
/* Is this method idempotent (RFC 9110 9.2.2)? */
int http_method_idempotent(const char *method);
/*
 * The body of an error a daemon answers itself: the message on one line
 * (line breaks become spaces), then " (request id ID)" and a newline. What
 * the log may hold but a client must not see is masked: 12-digit AWS
 * account ids become ************ and home directories (/home/NAME,
 * /root) ~. Writes into out (always NUL-terminated); returns the length.
 */
size_t http_error_text(char *out, size_t len, const char *request_id, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
