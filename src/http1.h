/*
 * http1.h: a strict HTTP/1.1 request parser (RFC 9112), with no I/O and no
 * allocation. The connection layer (httpconn.c) feeds it bytes; it says
 * where a request head ends, parses that head into a request line, a list
 * of fields and the body's framing, and decodes a chunked body piece by
 * piece. Whatever it refuses comes back as an HTTP status and a one-line
 * reason, the answer the daemon gives before it closes the connection.
 *
 * Strict means: a single SP between the parts of the request line, a
 * target of visible ASCII only, exactly HTTP/1.0 or HTTP/1.1, field names
 * that are tokens with the colon right after them, no obs-fold, no NUL,
 * no bare CR and no control byte but HTAB in a value, one Host, one
 * Content-Length value (repeats of the same value allowed), and
 * Transfer-Encoding only as a lone "chunked" without Content-Length (the
 * request-smuggling rules of RFC 9112 section 6, as nginx applies them).
 * A bare LF ends a head line (RFC 9112 2.2 allows it; nginx does too); a
 * chunked body wants CRLF everywhere.
 *
 * Every pointer in a parsed request points into the caller's head buffer,
 * which must outlive the request.
 */
#ifndef SSP_HTTP1_H
#define SSP_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The largest Content-Length or chunk size accepted at all (2^60): the
 * configured limits.max_body is checked by the caller. */
#define HTTP1_MAX_LENGTH ((uint64_t)1 << 60)
/* The longest chunk-size line (size and extensions). */
#define HTTP1_MAX_CHUNK_LINE 4096

enum http1_framing {
	HTTP1_BODY_NONE,    /* no body */
	HTTP1_BODY_LENGTH,  /* content_length bytes */
	HTTP1_BODY_CHUNKED, /* chunked: decode with http1_chunked_step() */
};

struct http1_field {
	const char *name; /* not NUL-terminated */
	size_t nlen;
	const char *value; /* without the surrounding whitespace */
	size_t vlen;
};

struct http1_request {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int minor;                  /* HTTP/1.<minor>: 0 or 1 */
	struct http1_field *fields; /* the caller's array */
	size_t nfields;
	enum http1_framing framing;
	uint64_t content_length; /* with HTTP1_BODY_LENGTH */
	int keep_alive;          /* the version and Connection say the connection may go on */
	int expect_continue;     /* Expect: 100-continue */
	int host;                /* index of the Host field, or -1 */
};

/*
 * Finding the end of a head as bytes arrive: the state carries over from
 * one call to the next, so that every byte is looked at once. Zero it
 * (memset or HTTP1_SCAN_INIT) for each new request.
 */
struct http1_scan {
	size_t pos; /* bytes of the buffer already looked at */
	int state;
};
#define HTTP1_SCAN_INIT                                                                            \
	{                                                                                          \
		0, 0                                                                               \
	}

/*
 * buf[0..len) holds the start of a head (len only grows between calls).
 * Returns the length of the whole head, empty line included, once it is
 * there; 0 when more bytes are needed.
 */
size_t http1_head_end(struct http1_scan *, const char *buf, size_t len);

/*
 * Parse a complete head (as delimited by http1_head_end()) into req, using
 * fields[0..maxfields) for the header fields. Returns 0, or the status to
 * answer with *why set to a static one-line reason: 400 (bad syntax or
 * framing), 431 (more than maxfields fields), 417 (an expectation other
 * than 100-continue), 501 (a transfer coding other than chunked), 505 (an
 * HTTP version other than 1.0 and 1.1).
 */
int http1_parse_head(const char *buf, size_t len, struct http1_field *fields, size_t maxfields,
                     struct http1_request *req, const char **why);

/* Is s[0..len) an RFC 9110 token (a method, a field name)? */
int http1_is_token(const char *s, size_t len);
/* Are name[0..nlen) and s (NUL-terminated) the same, ignoring case? */
int http1_name_is(const char *name, size_t nlen, const char *s);

/*
 * Decoding a chunked body (RFC 9112 7.1): chunk extensions are checked and
 * ignored, the trailer section is checked and dropped. Zero the state for
 * each body.
 */
struct http1_chunked {
	int state;
	uint64_t remain; /* of the current chunk, or its size being read */
	size_t linelen;  /* of the size line, or of the trailer section */
};

enum http1_chunk_result {
	HTTP1_CHUNK_MORE,  /* all input consumed: more is needed */
	HTTP1_CHUNK_DATA,  /* *data, *datalen: a piece of the body */
	HTTP1_CHUNK_DONE,  /* the body and its trailer section are complete */
	HTTP1_CHUNK_ERROR, /* malformed (400): *why says how */
};

/*
 * Consume bytes from buf[0..len): *used gets how many. Call again with the
 * rest after HTTP1_CHUNK_DATA (*data points into buf). Bytes after
 * HTTP1_CHUNK_DONE belong to the next request. max_trailer bounds the
 * trailer section.
 */
enum http1_chunk_result http1_chunked_step(struct http1_chunked *, const char *buf, size_t len,
                                           size_t max_trailer, size_t *used, const char **data,
                                           size_t *datalen, const char **why);

#endif
