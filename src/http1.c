/*
 * http1.c: the strict HTTP/1.1 request parser (see http1.h). Three small
 * machines: the end-of-head scanner, the head parser (line by line over a
 * complete head) and the chunked-body decoder. None allocates or does I/O;
 * each looks at a byte once.
 */
#include <string.h>
#include <strings.h>

#include "http1.h"

/* RFC 9110 5.6.2 tchar: a table is faster than strchr on every byte. */
static const unsigned char http1_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int
http1_is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!http1_tchar[(unsigned char)s[i]])
			return 0;
	return 1;
}

int
http1_name_is(const char *name, size_t nlen, const char *s)
{
	return strlen(s) == nlen && strncasecmp(name, s, nlen) == 0;
}

size_t
http1_head_end(struct http1_scan *sc, const char *buf, size_t len)
{
	size_t i;

	/* state 0: inside a line; 1: at the start of a line; 2: a CR there. */
	for (i = sc->pos; i < len; i++) {
		char c = buf[i];

		if (sc->state == 0) {
			if (c == '\n')
				sc->state = 1;
		} else if (c == '\n') {
			sc->pos = i + 1;
			sc->state = 0;
			return i + 1;
		} else
			sc->state = c == '\r' && sc->state == 1 ? 2 : 0;
	}
	sc->pos = len;
	return 0;
}

/* Is c allowed in a field value (RFC 9110 5.5: VCHAR, obs-text, SP, HTAB)? */
static int
http1_value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The list value v[0..len) as comma-separated tokens: does it hold tok? */
static int
http1_list_has(const char *v, size_t len, const char *tok)
{
	size_t i = 0, s, e, tl = strlen(tok);

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

#define HTTP1_FAIL(status, reason)                                                                 \
	do {                                                                                       \
		*why = (reason);                                                                   \
		return (status);                                                                   \
	} while (0)

/* The request line p[0..len) (no line end). */
static int
http1_request_line(const char *p, size_t len, struct http1_request *req, const char **why)
{
	const char *sp1, *sp2, *v;
	size_t i, vlen;

	sp1 = memchr(p, ' ', len);
	if (sp1 == NULL)
		HTTP1_FAIL(400, "malformed request line");
	req->method = p;
	req->method_len = (size_t)(sp1 - p);
	if (!http1_is_token(p, req->method_len))
		HTTP1_FAIL(400, "malformed request line: the method is not a token");
	req->target = sp1 + 1;
	sp2 = memchr(req->target, ' ', len - (size_t)(req->target - p));
	if (sp2 == NULL)
		HTTP1_FAIL(400, "malformed request line: no HTTP version");
	req->target_len = (size_t)(sp2 - req->target);
	if (req->target_len == 0)
		HTTP1_FAIL(400, "malformed request line: empty target or two spaces");
	for (i = 0; i < req->target_len; i++) {
		unsigned char c = (unsigned char)req->target[i];

		if (c <= 0x20 || c >= 0x7f)
			HTTP1_FAIL(400, "the request target holds a space, a control byte or a "
			                "non-ASCII byte");
	}
	v = sp2 + 1;
	vlen = len - (size_t)(v - p);
	if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		HTTP1_FAIL(400, "malformed request line: bad HTTP version");
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		HTTP1_FAIL(505, "HTTP version not supported: send HTTP/1.1 or HTTP/1.0");
	req->minor = v[7] - '0';
	return 0;
}

int
http1_parse_head(const char *buf, size_t len, struct http1_field *fields, size_t maxfields,
                 struct http1_request *req, const char **why)
{
	const char *p = buf, *end = buf + len, *nl, *le, *colon, *v, *ve;
	uint64_t cl = 0;
	int have_cl = 0, te = 0, te_other = 0, close = 0, ka = 0, first = 1, r;
	size_t i;

	memset(req, 0, sizeof *req);
	req->fields = fields;
	req->host = -1;
	*why = NULL;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			HTTP1_FAIL(400, "incomplete request head");
		le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		if (memchr(p, '\r', (size_t)(le - p)) != NULL)
			HTTP1_FAIL(400, "a bare CR in the request head");
		if (memchr(p, '\0', (size_t)(le - p)) != NULL)
			HTTP1_FAIL(400, "a NUL byte in the request head");
		if (first) {
			if ((r = http1_request_line(p, (size_t)(le - p), req, why)) != 0)
				return r;
			first = 0;
			p = nl + 1;
			continue;
		}
		if (le == p)
			break; /* the empty line: end of the head */
		if (*p == ' ' || *p == '\t')
			HTTP1_FAIL(400, "obsolete line folding (a field line starting with "
			                "whitespace)");
		colon = memchr(p, ':', (size_t)(le - p));
		if (colon == NULL)
			HTTP1_FAIL(400, "a header line without a colon");
		if (colon > p && (colon[-1] == ' ' || colon[-1] == '\t'))
			HTTP1_FAIL(400, "whitespace between a header field name and the colon");
		if (!http1_is_token(p, (size_t)(colon - p)))
			HTTP1_FAIL(400, "a header field name that is not a token");
		v = colon + 1;
		ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (i = 0; v + i < ve; i++)
			if (!http1_value_byte((unsigned char)v[i]))
				HTTP1_FAIL(400, "a control byte in a header field value");
		if (req->nfields == maxfields)
			HTTP1_FAIL(431, "too many header fields (limits.max_headers)");
		fields[req->nfields].name = p;
		fields[req->nfields].nlen = (size_t)(colon - p);
		fields[req->nfields].value = v;
		fields[req->nfields].vlen = (size_t)(ve - v);
		{
			const struct http1_field *f = &fields[req->nfields];

			switch (f->nlen) {
			case 4:
				if (http1_name_is(f->name, 4, "host")) {
					if (req->host != -1)
						HTTP1_FAIL(400, "more than one Host header");
					req->host = (int)req->nfields;
				}
				break;
			case 6:
				if (http1_name_is(f->name, 6, "expect")) {
					if (!(f->vlen == 12 &&
					      strncasecmp(f->value, "100-continue", 12) == 0))
						HTTP1_FAIL(417, "unsupported expectation (only "
						                "100-continue is)");
					req->expect_continue = 1;
				}
				break;
			case 10:
				if (http1_name_is(f->name, 10, "connection")) {
					if (http1_list_has(f->value, f->vlen, "close"))
						close = 1;
					if (http1_list_has(f->value, f->vlen, "keep-alive"))
						ka = 1;
				}
				break;
			case 14:
				if (http1_name_is(f->name, 14, "content-length")) {
					uint64_t n = 0;

					if (f->vlen == 0 || f->vlen > 19)
						HTTP1_FAIL(400, "invalid Content-Length");
					for (i = 0; i < f->vlen; i++) {
						if (f->value[i] < '0' || f->value[i] > '9')
							HTTP1_FAIL(400, "invalid Content-Length");
						n = n * 10 + (uint64_t)(f->value[i] - '0');
					}
					if (n > HTTP1_MAX_LENGTH)
						HTTP1_FAIL(400, "invalid Content-Length");
					if (have_cl && n != cl)
						HTTP1_FAIL(400,
						           "conflicting Content-Length headers: "
						           "the request's length is ambiguous");
					have_cl = 1;
					cl = n;
				}
				break;
			case 17:
				if (http1_name_is(f->name, 17, "transfer-encoding")) {
					te++;
					if (!(f->vlen == 7 &&
					      strncasecmp(f->value, "chunked", 7) == 0))
						te_other = 1;
				}
				break;
			}
		}
		req->nfields++;
		p = nl + 1;
	}
	if (first)
		HTTP1_FAIL(400, "empty request");
	if (te > 0) {
		if (have_cl)
			HTTP1_FAIL(400, "both Transfer-Encoding and Content-Length: the request's "
			                "length is ambiguous");
		if (req->minor == 0)
			HTTP1_FAIL(400, "Transfer-Encoding in an HTTP/1.0 request");
		if (te_other)
			HTTP1_FAIL(501, "unsupported Transfer-Encoding (only chunked is)");
		if (te > 1)
			HTTP1_FAIL(400, "chunked applied more than once");
		req->framing = HTTP1_BODY_CHUNKED;
	} else if (have_cl && cl > 0) {
		req->framing = HTTP1_BODY_LENGTH;
		req->content_length = cl;
	}
	req->keep_alive = req->minor == 1 ? !close : ka && !close;
	/* A 1.0 client does not know 100-continue (RFC 9110 10.1.1). */
	if (req->minor == 0)
		req->expect_continue = 0;
	return 0;
}

enum {
	CH_SIZE0,   /* the first hex digit of a chunk size */
	CH_SIZE,    /* more hex digits */
	CH_SIZE_WS, /* whitespace after the size (BWS before ";") */
	CH_EXT,     /* a chunk extension: checked, ignored */
	CH_SIZE_LF, /* the LF of the size line */
	CH_DATA,    /* chunk data */
	CH_DATA_CR, /* the CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER0,   /* the start of a trailer line (or the final CRLF) */
	CH_TRAILER,    /* inside a trailer line */
	CH_TRAILER_LF, /* the LF of a trailer line */
	CH_END_LF,     /* the LF of the final empty line */
	CH_DONE,
};

static int
http1_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#define CH_FAIL(reason)                                                                            \
	do {                                                                                       \
		*why = (reason);                                                                   \
		*used = i;                                                                         \
		return HTTP1_CHUNK_ERROR;                                                          \
	} while (0)

enum http1_chunk_result
http1_chunked_step(struct http1_chunked *st, const char *buf, size_t len, size_t max_trailer,
                   size_t *used, const char **data, size_t *datalen, const char **why)
{
	size_t i = 0, n;
	int h;

	*data = NULL;
	*datalen = 0;
	*why = NULL;
	while (i < len) {
		unsigned char c = (unsigned char)buf[i];

		switch (st->state) {
		case CH_SIZE0:
		case CH_SIZE:
			if ((h = http1_hex(c)) >= 0) {
				if (st->remain > (HTTP1_MAX_LENGTH >> 4))
					CH_FAIL("chunk size too large");
				st->remain = (st->remain << 4) | (uint64_t)h;
				st->state = CH_SIZE;
				break;
			}
			if (st->state == CH_SIZE0)
				CH_FAIL("invalid chunk size");
			if (c == ';')
				st->state = CH_EXT;
			else if (c == ' ' || c == '\t')
				st->state = CH_SIZE_WS;
			else if (c == '\r')
				st->state = CH_SIZE_LF;
			else
				CH_FAIL("invalid chunk size");
			break;
		case CH_SIZE_WS:
			if (c == ';')
				st->state = CH_EXT;
			else if (c != ' ' && c != '\t')
				CH_FAIL("invalid chunk extension");
			break;
		case CH_EXT:
			if (c == '\r')
				st->state = CH_SIZE_LF;
			else if (!http1_value_byte(c))
				CH_FAIL("a control byte in a chunk extension");
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				CH_FAIL("a chunk size line not ended by CRLF");
			st->linelen = 0;
			st->state = st->remain > 0 ? CH_DATA : CH_TRAILER0;
			i++;
			continue;
		case CH_DATA:
			n = len - i;
			if ((uint64_t)n > st->remain)
				n = (size_t)st->remain;
			st->remain -= n;
			if (st->remain == 0)
				st->state = CH_DATA_CR;
			*data = buf + i;
			*datalen = n;
			*used = i + n;
			return HTTP1_CHUNK_DATA;
		case CH_DATA_CR:
			if (c != '\r')
				CH_FAIL("chunk data longer than its size");
			st->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				CH_FAIL("chunk data not followed by CRLF");
			st->state = CH_SIZE0;
			st->linelen = 0;
			i++;
			continue;
		case CH_TRAILER0:
			if (c == '\r')
				st->state = CH_END_LF;
			else if (c == ' ' || c == '\t')
				CH_FAIL("obsolete line folding in the trailer section");
			else if (!http1_value_byte(c))
				CH_FAIL("a control byte in the trailer section");
			else
				st->state = CH_TRAILER;
			break;
		case CH_TRAILER:
			if (c == '\r')
				st->state = CH_TRAILER_LF;
			else if (!http1_value_byte(c))
				CH_FAIL("a control byte in the trailer section");
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				CH_FAIL("a bare CR in the trailer section");
			st->state = CH_TRAILER0;
			break;
		case CH_END_LF:
			if (c != '\n')
				CH_FAIL("a bare CR at the end of the chunked body");
			st->state = CH_DONE;
			*used = i + 1;
			return HTTP1_CHUNK_DONE;
		default:
			*used = i;
			return HTTP1_CHUNK_DONE;
		}
		/* Size lines and the trailer section are bounded. */
		if (st->state <= CH_SIZE_LF && ++st->linelen > HTTP1_MAX_CHUNK_LINE)
			CH_FAIL("chunk size line too long");
		if (st->state >= CH_TRAILER0 && ++st->linelen > max_trailer)
			CH_FAIL("trailer section too large");
		i++;
	}
	*used = i;
	return st->state == CH_DONE ? HTTP1_CHUNK_DONE : HTTP1_CHUNK_MORE;
}
