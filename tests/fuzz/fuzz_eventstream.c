/*
 * fuzz_eventstream: the event stream decoder on arbitrary bytes. The
 * first byte chooses the piece size the input is fed in (so that every
 * split of a prelude or message is tried), the rest is the stream. Every
 * decoded message is walked whole, so that a header or payload pointing
 * outside the buffer shows under ASan.
 */
#include <stdint.h>
#include <string.h>

#include "eventstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eventstream *es;
	struct eventstream_message m;
	size_t piece;
	char err[128];
	volatile unsigned sum = 0;

	if (size < 1)
		return 0;
	piece = data[0] ? data[0] : 4096;
	data++;
	size--;
	es = eventstream_new(1 << 20);
	for (size_t off = 0; off < size; off += piece) {
		const unsigned char *p = data + off;
		size_t left = size - off < piece ? size - off : piece;
		int r;
		while ((r = eventstream_decode(es, &p, &left, &m, err, sizeof(err))) == 1) {
			for (size_t i = 0; i < m.nheaders; i++) {
				for (size_t j = 0; j < m.headers[i].name_len; j++)
					sum += (unsigned char)m.headers[i].name[j];
				for (size_t j = 0; j < m.headers[i].data_len; j++)
					sum += m.headers[i].data[j];
			}
			for (size_t j = 0; j < m.payload_len; j++)
				sum += m.payload[j];
			(void)eventstream_header_is(&m, ":event-type", "PayloadChunk");
		}
		if (r < 0)
			goto out;
	}
	(void)eventstream_finish(es, err, sizeof(err));
out:
	eventstream_free(es);
	return 0;
}
