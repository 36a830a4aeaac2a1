/*
 * fuzz_http1.c: a libFuzzer target for the request parser (src/http1.c).
 * The input is what a client sends: the head scanner is fed it in pieces
 * whose sizes come from the input itself, and must find the same end as
 * when fed all at once; the head is parsed; what follows it goes through
 * the chunked decoder, split likewise, and must decode to the same body
 * as in one piece. Any disagreement aborts (a finding), as do ASan and
 * UBSan. Built by configure --enable-fuzzing (clang); run by .ci/run for a
 * bounded time; see doc/fuzzing.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAXF 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode a chunked body from p[0..len), fed in pieces of step bytes (0:
 * at once); the body goes to out. Returns the result, *n the body size. */
static enum http1_chunk_result
fuzz_dechunk(const char *p, size_t len, size_t step, char *out, size_t *n, size_t *consumed)
{
	struct http1_chunked st;
	enum http1_chunk_result r = HTTP1_CHUNK_MORE;
	size_t off = 0, avail = step == 0 || step > len ? len : step, used, dlen;
	const char *d, *why;

	memset(&st, 0, sizeof st);
	*n = 0;
	for (;;) {
		r = http1_chunked_step(&st, p + off, avail - off, 1024, &used, &d, &dlen, &why);
		if (used > avail - off)
			abort();
		off += used;
		if (r == HTTP1_CHUNK_DATA) {
			if (d < p || d + dlen > p + avail)
				abort();
			memcpy(out + *n, d, dlen);
			*n += dlen;
			continue;
		}
		if (r == HTTP1_CHUNK_ERROR) {
			if (why == NULL)
				abort();
			break;
		}
		if (r == HTTP1_CHUNK_DONE || avail == len)
			break;
		avail += step;
		if (avail > len)
			avail = len;
	}
	*consumed = off;
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http1_field fields[MAXF];
	struct http1_scan a = HTTP1_SCAN_INIT, b = HTTP1_SCAN_INIT;
	struct http1_request req;
	const char *p = (const char *)data, *why;
	size_t step, end_a, end_b = 0, i, n1, n2, c1, c2;
	enum http1_chunk_result r1, r2;
	char *o1, *o2;
	int status;

	if (size < 1)
		return 0;
	/* The first byte picks the piece size. */
	step = (size_t)(data[0] % 16) + 1;
	p++;
	size--;
	end_a = http1_head_end(&a, p, size);
	for (i = step < size ? step : size; end_b == 0; i = i + step < size ? i + step : size) {
		end_b = http1_head_end(&b, p, i);
		if (i == size)
			break;
	}
	if (end_a != end_b || end_a > size)
		abort();
	if (end_a == 0) {
		/* No head end: the chunked decoder gets the whole input. */
		end_a = 0;
	} else {
		status = http1_parse_head(p, end_a, fields, MAXF, &req, &why);
		if (status != 0 && (why == NULL || status < 400 || status > 599))
			abort();
		if (status == 0) {
			if (req.nfields > MAXF || req.method + req.method_len > p + end_a ||
			    req.target + req.target_len > p + end_a ||
			    (req.minor != 0 && req.minor != 1))
				abort();
			for (i = 0; i < req.nfields; i++)
				if (!http1_is_token(req.fields[i].name, req.fields[i].nlen))
					abort();
		}
	}
	o1 = malloc(size + 1);
	o2 = malloc(size + 1);
	if (o1 == NULL || o2 == NULL)
		abort();
	r1 = fuzz_dechunk(p + end_a, size - end_a, 0, o1, &n1, &c1);
	r2 = fuzz_dechunk(p + end_a, size - end_a, step, o2, &n2, &c2);
	/* Split or whole, the same verdict; the same body when complete. */
	if (r1 != r2 ||
	    (r1 == HTTP1_CHUNK_DONE && (n1 != n2 || c1 != c2 || memcmp(o1, o2, n1) != 0)))
		abort();
	free(o1);
	free(o2);
	return 0;
}
