/*
 * eventstream.c: the event stream decoder (see eventstream.h). It gathers
 * the 12-byte prelude, checks it, then gathers the rest of the message into
 * one buffer sized by the prelude's total length, checks the message CRC
 * and parses the headers in place.
 *
 * CRC32 is zlib's crc32(): libcurl links zlib anyway, so this adds no new
 * library to the daemon or the function's zip.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "errf.h"
#include "eventstream.h"
#include "xmalloc.h"

#define PRELUDE 12

struct eventstream {
	size_t max_message;
	unsigned char *buf; /* the message being assembled */
	size_t cap;
	size_t have; /* bytes of it in buf */
	size_t need; /* its total length once the prelude is in; else 0 */
	struct eventstream_header *headers;
	size_t headers_cap;
	int failed;
};

uint32_t
eventstream_crc32(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	/* zlib's length is a uInt: feed it in pieces that fit. */
	while (len > 0) {
		uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

struct eventstream *
eventstream_new(size_t max_message)
{
	struct eventstream *es = xcalloc(1, sizeof(*es));

	es->max_message = max_message ? max_message : EVENTSTREAM_DEFAULT_MAX_MESSAGE;
	if (es->max_message < EVENTSTREAM_MIN_MESSAGE)
		es->max_message = EVENTSTREAM_MIN_MESSAGE;
	return es;
}

void
eventstream_free(struct eventstream *es)
{
	if (es == NULL)
		return;
	free(es->buf);
	free(es->headers);
	free(es);
}

size_t
eventstream_buffered(const struct eventstream *es)
{
	return es->have;
}

static int
fail(struct eventstream *es, char *err, size_t errlen, const char *what)
{
	es->failed = 1;
	return errf(err, errlen, "event stream: %s", what);
}

/* Copy up to want - have bytes of input into buf. */
static void
gather(struct eventstream *es, size_t want, const unsigned char **data, size_t *len)
{
	size_t n = want - es->have;

	if (n > *len)
		n = *len;
	memcpy(es->buf + es->have, *data, n);
	es->have += n;
	*data += n;
	*len -= n;
}

static int
check_prelude(struct eventstream *es, char *err, size_t errlen)
{
	uint32_t total = get32(es->buf), hlen = get32(es->buf + 4);

	if (get32(es->buf + 8) != eventstream_crc32(0, es->buf, 8))
		return fail(es, err, errlen, "prelude CRC mismatch");
	if (total < EVENTSTREAM_MIN_MESSAGE)
		return fail(es, err, errlen, "total length shorter than a message");
	if (hlen > EVENTSTREAM_MAX_HEADERS)
		return fail(es, err, errlen, "headers longer than the limit");
	if (total > es->max_message)
		return fail(es, err, errlen, "message longer than the limit");
	if (hlen > total - EVENTSTREAM_MIN_MESSAGE)
		return fail(es, err, errlen, "headers length beyond the message");
	es->need = total;
	if (es->cap < total) {
		es->buf = xrealloc(es->buf, total);
		es->cap = total;
	}
	return 0;
}

static struct eventstream_header *
new_header(struct eventstream *es, size_t n)
{
	if (n == es->headers_cap) {
		es->headers_cap = es->headers_cap ? 2 * es->headers_cap : 8;
		es->headers = xreallocarray(es->headers, es->headers_cap, sizeof(*es->headers));
	}
	memset(&es->headers[n], 0, sizeof(es->headers[n]));
	return &es->headers[n];
}

/* Parse the header section [p, end) into es->headers. */
static int
parse_headers(struct eventstream *es, const unsigned char *p, const unsigned char *end,
              size_t *nheaders, char *err, size_t errlen)
{
	size_t n = 0;

	while (p < end) {
		struct eventstream_header *h = new_header(es, n);
		size_t left = (size_t)(end - p), vlen;
		int64_t v;

		h->name_len = p[0];
		if (h->name_len == 0 || left < 2 + h->name_len)
			return fail(es, err, errlen, "header name overruns the headers");
		h->name = (const char *)p + 1;
		p += 1 + h->name_len;
		h->type = (enum eventstream_type) * p++;
		left = (size_t)(end - p);
		switch (h->type) {
		case EVENTSTREAM_TRUE:
		case EVENTSTREAM_FALSE:
			h->integer = h->type == EVENTSTREAM_TRUE;
			break;
		case EVENTSTREAM_BYTE:
			if (left < 1)
				return fail(es, err, errlen, "header value overruns the headers");
			h->integer = (int8_t)p[0];
			p += 1;
			break;
		case EVENTSTREAM_INT16:
			if (left < 2)
				return fail(es, err, errlen, "header value overruns the headers");
			h->integer = (int16_t)get16(p);
			p += 2;
			break;
		case EVENTSTREAM_INT32:
			if (left < 4)
				return fail(es, err, errlen, "header value overruns the headers");
			h->integer = (int32_t)get32(p);
			p += 4;
			break;
		case EVENTSTREAM_INT64:
		case EVENTSTREAM_TIMESTAMP:
			if (left < 8)
				return fail(es, err, errlen, "header value overruns the headers");
			v = (int64_t)((uint64_t)get32(p) << 32 | get32(p + 4));
			h->integer = v;
			p += 8;
			break;
		case EVENTSTREAM_BYTES:
		case EVENTSTREAM_STRING:
			if (left < 2)
				return fail(es, err, errlen, "header value overruns the headers");
			vlen = get16(p);
			if (left - 2 < vlen)
				return fail(es, err, errlen, "header value overruns the headers");
			h->data = p + 2;
			h->data_len = vlen;
			p += 2 + vlen;
			break;
		case EVENTSTREAM_UUID:
			if (left < 16)
				return fail(es, err, errlen, "header value overruns the headers");
			h->data = p;
			h->data_len = 16;
			p += 16;
			break;
		default:
			return fail(es, err, errlen, "unknown header value type");
		}
		n++;
	}
	*nheaders = n;
	return 0;
}

int
eventstream_decode(struct eventstream *es, const unsigned char **data, size_t *len,
                   struct eventstream_message *msg, char *err, size_t errlen)
{
	uint32_t hlen;

	if (es->failed)
		return errf(err, errlen, "event stream: decoder failed earlier");
	if (es->need == 0) {
		if (es->cap < PRELUDE) {
			es->buf = xrealloc(es->buf, PRELUDE);
			es->cap = PRELUDE;
		}
		gather(es, PRELUDE, data, len);
		if (es->have < PRELUDE)
			return 0;
		if (check_prelude(es, err, errlen) < 0)
			return -1;
	}
	gather(es, es->need, data, len);
	if (es->have < es->need)
		return 0;

	/* A whole message: check it, parse it, and start the next one. */
	if (get32(es->buf + es->need - 4) != eventstream_crc32(0, es->buf, es->need - 4))
		return fail(es, err, errlen, "message CRC mismatch");
	hlen = get32(es->buf + 4);
	memset(msg, 0, sizeof(*msg));
	if (parse_headers(es, es->buf + PRELUDE, es->buf + PRELUDE + hlen, &msg->nheaders, err,
	                  errlen) < 0)
		return -1;
	msg->headers = es->headers;
	msg->payload = es->buf + PRELUDE + hlen;
	msg->payload_len = es->need - EVENTSTREAM_MIN_MESSAGE - hlen;
	es->have = 0;
	es->need = 0;
	return 1;
}

int
eventstream_finish(const struct eventstream *es, char *err, size_t errlen)
{
	if (es->failed)
		return errf(err, errlen, "event stream: decoder failed earlier");
	if (es->have > 0)
		return errf(err, errlen, "event stream: truncated message (%zu bytes of %s)",
		            es->have, es->need ? "a message" : "a prelude");
	return 0;
}

const struct eventstream_header *
eventstream_header(const struct eventstream_message *msg, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < msg->nheaders; i++) {
		const struct eventstream_header *h = &msg->headers[i];
		if (h->name_len == nlen && memcmp(h->name, name, nlen) == 0)
			return h;
	}
	return NULL;
}

int
eventstream_header_is(const struct eventstream_message *msg, const char *name, const char *value)
{
	const struct eventstream_header *h = eventstream_header(msg, name);
	size_t vlen = strlen(value);

	return h != NULL && h->type == EVENTSTREAM_STRING && h->data_len == vlen &&
	       memcmp(h->data, value, vlen) == 0;
}
