/*
 * test_http1.c: the strict request parser (src/http1.c): the end-of-head
 * scanner fed byte by byte, the head parser's verdicts (status and
 * framing) and the chunked decoder, whole and split at every byte.
 */
#include <stdio.h>
#include <string.h>

#include "http1.h"
#include "tap.h"

#define MAXF 16

static struct http1_field fields[MAXF];

/* Parse a whole head; returns the status (0 = fine). */
static int
parse(const char *head, struct http1_request *req)
{
	const char *why;
	struct http1_scan sc = HTTP1_SCAN_INIT;
	size_t len = strlen(head), end = http1_head_end(&sc, head, len);

	if (end == 0)
		return -1;
	return http1_parse_head(head, end, fields, MAXF, req, &why);
}

static int
status_of(const char *head)
{
	struct http1_request req;

	return parse(head, &req);
}

/* Decode a chunked body fed in pieces of at most step bytes. Returns the
 * decoded body's length (into out), or -1 on an error, -2 incomplete; *rest
 * is how many bytes followed the body. */
static long
dechunk(const char *in, size_t step, char *out, size_t outlen, size_t *rest)
{
	struct http1_chunked st;
	size_t len = strlen(in), off = 0, n = 0, used, dlen, avail, piece;
	const char *data, *why;
	enum http1_chunk_result r;

	memset(&st, 0, sizeof st);
	/* The caller keeps what was not consumed and adds more: emulate. */
	avail = step < len ? step : len;
	for (;;) {
		r = http1_chunked_step(&st, in + off, avail - off, 4096, &used, &data, &dlen, &why);
		off += used;
		if (r == HTTP1_CHUNK_ERROR)
			return -1;
		if (r == HTTP1_CHUNK_DATA) {
			if (n + dlen > outlen)
				return -1;
			memcpy(out + n, data, dlen);
			n += dlen;
			continue;
		}
		if (r == HTTP1_CHUNK_DONE) {
			*rest = len - off;
			return (long)n;
		}
		if (avail == len)
			return -2;
		piece = len - avail < step ? len - avail : step;
		avail += piece;
	}
}

int
main(void)
{
	struct http1_request req;
	struct http1_scan sc;
	const char *h;
	char out[256];
	size_t i, end, rest;
	long n;
	int ok;

	/* The scanner, one byte at a time, CRLF and bare LF. */
	h = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
	memset(&sc, 0, sizeof sc);
	end = 0;
	for (i = 1; i <= strlen(h) && end == 0; i++)
		end = http1_head_end(&sc, h, i);
	tap_ok(end == strlen(h) - 4, "head end found byte by byte (%zu)", end);
	h = "GET / HTTP/1.1\nHost: a\n\nX";
	memset(&sc, 0, sizeof sc);
	tap_ok(http1_head_end(&sc, h, strlen(h)) == strlen(h) - 1, "bare LF ends a head");
	memset(&sc, 0, sizeof sc);
	tap_ok(http1_head_end(&sc, "GET / HTTP/1.1\r\nHost: a\r\n", 26) == 0, "no end yet");

	/* A good request. */
	ok = parse("POST http://h/x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	           "Connection: keep-alive, Upgrade\r\nX-Tab:\ta\tb \r\n\r\n",
	           &req) == 0;
	tap_ok(ok && req.method_len == 4 && memcmp(req.method, "POST", 4) == 0 &&
	           req.target_len == 12 && req.minor == 1 && req.nfields == 4 &&
	           req.framing == HTTP1_BODY_LENGTH && req.content_length == 5 && req.keep_alive &&
	           req.host == 0,
	       "a good head: method, target, version, fields, framing");
	tap_ok(ok && req.fields[3].vlen == 3 && memcmp(req.fields[3].value, "a\tb", 3) == 0,
	       "value trimmed of surrounding whitespace, inner HTAB kept");
	tap_ok(parse("GET / HTTP/1.0\r\n\r\n", &req) == 0 && !req.keep_alive && req.host == -1,
	       "HTTP/1.0 closes by default");
	tap_ok(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req) == 0 &&
	           req.keep_alive,
	       "HTTP/1.0 with keep-alive");
	tap_ok(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &req) == 0 && !req.keep_alive,
	       "HTTP/1.1 Connection: close");
	tap_ok(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &req) == 0 &&
	           req.framing == HTTP1_BODY_CHUNKED,
	       "chunked framing");
	tap_ok(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &req) ==
	               0 &&
	           req.content_length == 5,
	       "the same Content-Length twice is one");
	tap_ok(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req) == 0 &&
	           req.framing == HTTP1_BODY_NONE,
	       "Content-Length 0: no body");
	tap_ok(parse("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", &req) ==
	               0 &&
	           req.expect_continue,
	       "Expect: 100-continue");
	tap_ok(parse("PROPFIND / HTTP/1.1\r\n\r\n", &req) == 0, "any token method");

	/* Refusals. */
	tap_ok(status_of("GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n") == 400,
	       "whitespace before the colon: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n") == 501,
	       "unknown coding: 501");
	tap_ok(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501,
	       "gzip, chunked: 501");
	tap_ok(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
	                 "chunked\r\n\r\n") == 400,
	       "chunked twice: 400");
	tap_ok(status_of(
	           "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n") ==
	           400,
	       "TE and CL: 400");
	tap_ok(status_of("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400,
	       "TE in HTTP/1.0: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == 400,
	       "differing Content-Length: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n") == 400, "CL +5: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n") == 400, "CL list: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n") == 400,
	       "CL overflow: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nContent-Length:\r\n\r\n") == 400, "empty CL: 400");
	{
		static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
		struct http1_scan s2 = HTTP1_SCAN_INIT;
		const char *why;
		size_t e = http1_head_end(&s2, nul, sizeof nul - 1);

		tap_ok(e == sizeof nul - 1 &&
		           http1_parse_head(nul, e, fields, MAXF, &req, &why) == 400,
		       "NUL in a value: 400");
	}
	tap_ok(status_of("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n") == 400, "obs-fold: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n") == 400, "bare CR: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n") == 400, "control byte: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n") == 400, "DEL: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n") == 0,
	       "obs-text in a value: ok");
	tap_ok(status_of("GET / HTTP/1.1\r\nBad Name: a\r\n\r\n") == 400, "space in a name: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nX\xe9: a\r\n\r\n") == 400, "non-ASCII name: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\n: a\r\n\r\n") == 400, "empty name: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == 400, "no colon: 400");
	tap_ok(status_of("GET /x y HTTP/1.1\r\n\r\n") == 400, "space in the target: 400");
	tap_ok(status_of("GET /x\x01 HTTP/1.1\r\n\r\n") == 400, "control byte in the target: 400");
	tap_ok(status_of("GET  / HTTP/1.1\r\n\r\n") == 400, "two spaces: 400");
	tap_ok(status_of("GET / HTTP/1.10\r\n\r\n") == 400, "HTTP/1.10: 400");
	tap_ok(status_of("GET / HTTP/2.0\r\n\r\n") == 505, "HTTP/2.0: 505");
	tap_ok(status_of("GET / HTTP/0.9\r\n\r\n") == 505, "HTTP/0.9: 505");
	tap_ok(status_of("GET / HTTP/1.1 \r\n\r\n") == 400, "trailing space: 400");
	tap_ok(status_of("GET / http/1.1\r\n\r\n") == 400, "lower-case version: 400");
	tap_ok(status_of("G(T / HTTP/1.1\r\n\r\n") == 400, "method not a token: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400, "two Hosts: 400");
	tap_ok(status_of("GET / HTTP/1.1\r\nExpect: x\r\n\r\n") == 417, "other expectation: 417");
	{
		char big[2048];
		size_t o = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");

		for (i = 0; i < MAXF; i++)
			o += (size_t)snprintf(big + o, sizeof big - o, "X%zu: v\r\n", i);
		snprintf(big + o, sizeof big - o, "\r\n");
		tap_ok(status_of(big) == 0, "max fields: fine");
		snprintf(big + o, sizeof big - o, "One-More: v\r\n\r\n");
		tap_ok(status_of(big) == 431, "one field more: 431");
	}

	/* Chunked bodies, whole and split at every step. */
	h = "5;ext=1\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	ok = 1;
	for (i = 1; i <= strlen(h); i++) {
		n = dechunk(h, i, out, sizeof out, &rest);
		if (n != 11 || memcmp(out, "hello world", 11) != 0 || rest != 4)
			ok = 0;
	}
	tap_ok(ok, "chunked body with extensions and a trailer, split at every size");
	tap_ok(dechunk("A\r\n0123456789\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == 10,
	       "upper-case hex size");
	tap_ok(dechunk("zz\r\nhello\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "bad size: error");
	tap_ok(dechunk("fffffffffffffffffff1\r\nx\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "overflowing size: error");
	tap_ok(dechunk("2\r\nhello\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "data longer than the size: error");
	tap_ok(dechunk("5 x\r\nhello\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "junk after the size: error");
	tap_ok(dechunk("5\nhello\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "a bare LF after the size: error");
	tap_ok(dechunk("5;a\x01\r\nhello\r\n0\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "control byte in an extension: error");
	tap_ok(dechunk("0\r\n X: y\r\n\r\n", 100, out, sizeof out, &rest) == -1,
	       "obs-fold in the trailer: error");
	tap_ok(dechunk("0\r\n", 100, out, sizeof out, &rest) == -2, "incomplete: more needed");
	tap_ok(dechunk("\r\n", 100, out, sizeof out, &rest) == -1, "no size: error");

	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
