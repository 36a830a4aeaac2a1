/*
 * eventstream_cli: the event stream decoder on the command line, for the
 * cross-check against botocore (test_eventstream_botocore.py) and the fuzz
 * corpus. Reads stdin whole, feeds it in pieces of PIECE bytes, prints one
 * JSON line per message (headers with their type and value, payload in
 * hex), and exits 0, or 2 with the decoder's error on stderr.
 *
 *   eventstream_cli PIECE [MAX_MESSAGE]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eventstream.h"
#include "xmalloc.h"

static char *
hex(const unsigned char *p, size_t n)
{
	char *s = xmalloc(2 * n + 1);

	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

static void
print_message(const struct eventstream_message *m)
{
	json_t *o = json_object(), *hs = json_array();
	char *s;

	for (size_t i = 0; i < m->nheaders; i++) {
		const struct eventstream_header *h = &m->headers[i];
		json_t *j = json_object();
		json_object_set_new(j, "name", json_stringn(h->name, h->name_len));
		json_object_set_new(j, "type", json_integer(h->type));
		if (h->type == EVENTSTREAM_STRING) {
			json_object_set_new(j, "value",
			                    json_stringn((const char *)h->data, h->data_len));
		} else if (h->type == EVENTSTREAM_BYTES || h->type == EVENTSTREAM_UUID) {
			s = hex(h->data, h->data_len);
			json_object_set_new(j, "value", json_string(s));
			free(s);
		} else {
			json_object_set_new(j, "value", json_integer(h->integer));
		}
		json_array_append_new(hs, j);
	}
	json_object_set_new(o, "headers", hs);
	s = hex(m->payload, m->payload_len);
	json_object_set_new(o, "payload", json_string(s));
	free(s);
	s = json_dumps(o, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(o);
}

int
main(int argc, char **argv)
{
	size_t piece = argc > 1 ? strtoul(argv[1], NULL, 10) : 4096, len = 0, cap = 65536;
	unsigned char *in = xmalloc(cap);
	struct eventstream *es = eventstream_new(argc > 2 ? strtoul(argv[2], NULL, 10) : 0);
	struct eventstream_message m;
	char err[256];
	size_t n;

	if (piece == 0)
		piece = 1;
	while ((n = fread(in + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap)
			in = xrealloc(in, cap *= 2);
	}
	for (size_t off = 0; off < len; off += piece) {
		const unsigned char *p = in + off;
		size_t left = len - off < piece ? len - off : piece;
		int r;
		while ((r = eventstream_decode(es, &p, &left, &m, err, sizeof(err))) == 1)
			print_message(&m);
		if (r < 0)
			goto fail;
	}
	if (eventstream_finish(es, err, sizeof(err)) < 0)
		goto fail;
	eventstream_free(es);
	free(in);
	return 0;
fail:
	fprintf(stderr, "%s\n", err);
	eventstream_free(es);
	free(in);
	return 2;
}
