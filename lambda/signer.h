/*
 * signer.h: applies a host's signing parameters to a request, as the
 * original ssm-sign-proxy did:
 *   headers/{name}     set header {name}, replacing the client's value(s)
 *   basic/username,
 *   basic/password     Authorization: Basic base64(username:password)
 *   rewrite/path       the request path, verbatim (escapes kept)
 *   queries/{name}     set query parameter {name} (percent-encoded),
 *                      keeping the client's other parameters byte for byte
 * Other names are ignored. Never logs; values are secrets.
 */
#ifndef SSP_LAMBDA_SIGNER_H
#define SSP_LAMBDA_SIGNER_H

#include <stddef.h>

#include "kvlist.h"

/*
 * params: relative name -> value. headers is modified in place. path is
 * the client's raw path, query its raw (key, value) pairs. On success
 * *target is the request target to send ("/path?query"), malloc'd, with
 * any byte that cannot appear in a request target percent-encoded and every
 * existing escape kept. Returns 0, or -1 with err set (no value in it).
 */
int signer_apply(const struct kvlist *params, struct kvlist *headers, const char *path,
                 const struct kvlist *query, char **target, char *err, size_t errlen);

/* Percent-encode only the bytes that may not appear in a request target
 * (controls, space, non-ASCII, '#', and '?' unless keep_qmark); '%' stays.
 * Caller frees. Exposed for unit tests. */
char *signer_escape_target(const char *s, int keep_qmark);

#endif
