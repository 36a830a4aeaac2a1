/*
 * eventstream.h: a strict incremental decoder of AWS's event stream
 * (application/vnd.amazon.eventstream), the framing of Lambda's
 * InvokeWithResponseStream answer. A message is: total length (4 bytes,
 * big-endian), headers length (4), CRC32 of those 8 bytes (4), the headers,
 * the payload, and the CRC32 of everything before it (4). CRC32 is the
 * IEEE one (zlib's crc32()).
 *
 * Bytes are fed as they arrive; the decoder keeps at most one message
 * (bounded by max_message), so a stream's memory stays flat whatever its
 * length. Every malformed input is an error value, never a crash: a CRC
 * mismatch, lengths that cannot hold a message or exceed the limits, a
 * header that overruns its section, an unknown header type, and (at
 * eventstream_finish()) a message cut short.
 */
#ifndef SSP_EVENTSTREAM_H
#define SSP_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* The smallest message: prelude (12 bytes) and message CRC (4). */
#define EVENTSTREAM_MIN_MESSAGE 16
/* AWS's codecs refuse larger header sections (botocore, smithy). */
#define EVENTSTREAM_MAX_HEADERS 131072
/* Default bound of a whole message: AWS's payload limit (24 MB) is far
 * above what Lambda sends per PayloadChunk; callers pass their own. */
#define EVENTSTREAM_DEFAULT_MAX_MESSAGE (16 * 1024 * 1024)

enum eventstream_type {
	EVENTSTREAM_TRUE = 0,
	EVENTSTREAM_FALSE = 1,
	EVENTSTREAM_BYTE = 2,
	EVENTSTREAM_INT16 = 3,
	EVENTSTREAM_INT32 = 4,
	EVENTSTREAM_INT64 = 5,
	EVENTSTREAM_BYTES = 6,
	EVENTSTREAM_STRING = 7,
	EVENTSTREAM_TIMESTAMP = 8, /* int64 milliseconds since the epoch */
	EVENTSTREAM_UUID = 9,
};

struct eventstream_header {
	const char *name; /* not NUL-terminated: name_len bytes */
	size_t name_len;
	enum eventstream_type type;
	/* TRUE/FALSE: 1/0; BYTE, INT16, INT32, INT64, TIMESTAMP: the value. */
	int64_t integer;
	/* BYTES, STRING: the value (not NUL-terminated); UUID: 16 bytes. */
	const unsigned char *data;
	size_t data_len;
};

/* A decoded message; everything points into the decoder and stays valid
 * until the next call on it. */
struct eventstream_message {
	const struct eventstream_header *headers;
	size_t nheaders;
	const unsigned char *payload;
	size_t payload_len;
};

struct eventstream;

/* A decoder refusing messages longer than max_message bytes (0: the
 * default). Never NULL (xmalloc). */
struct eventstream *eventstream_new(size_t max_message);
void eventstream_free(struct eventstream *);

/*
 * Consume bytes from *data and *len (both advanced). Returns 1 when a whole
 * message was decoded into *msg (call again with what is left), 0 when all
 * input was consumed without completing one, -1 on malformed input (err
 * says why; the decoder is then unusable).
 */
int eventstream_decode(struct eventstream *, const unsigned char **data, size_t *len,
                       struct eventstream_message *msg, char *err, size_t errlen);

/* At the end of the input: 0 when it ended between messages, -1 with err
 * set when a message was cut short (or an earlier error stands). */
int eventstream_finish(const struct eventstream *, char *err, size_t errlen);

/* Bytes held for the message being assembled (for memory accounting). */
size_t eventstream_buffered(const struct eventstream *);

/* The first header named name, or NULL. */
const struct eventstream_header *eventstream_header(const struct eventstream_message *,
                                                    const char *name);
/* A string header's value as a NUL-free comparison: 1 when the header
 * exists, is a string and equals value. */
int eventstream_header_is(const struct eventstream_message *, const char *name, const char *value);

/* CRC32 (IEEE) of len bytes, continuing crc (start with 0). */
uint32_t eventstream_crc32(uint32_t crc, const void *data, size_t len);

#endif
