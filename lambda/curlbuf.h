/*
 * curlbuf.h: the pieces every libcurl call of the function needs: a body
 * buffer with a size cap (so a huge answer stops the transfer instead of
 * exhausting memory) and a header collector that keeps every header line of
 * the final response, in order, repeated names repeated.
 *
 * The function does not link libevent, so the buffer is a plain growing
 * array rather than an evbuffer.
 */
#ifndef SSP_LAMBDA_CURLBUF_H
#define SSP_LAMBDA_CURLBUF_H

#include <stddef.h>
#include <curl/curl.h>

#include "kvlist.h"

struct curlbuf {
	char *data; /* always NUL-terminated when not NULL; owned */
	size_t len;
	size_t cap;
	size_t limit;   /* 0: unlimited */
	int overflowed; /* the transfer was stopped at limit */
};

void curlbuf_init(struct curlbuf *, size_t limit);
/* Free the data; the buffer may be reused after curlbuf_init(). */
void curlbuf_free(struct curlbuf *);
/* Zero the data before freeing it (the answer held secrets). */
void curlbuf_free_secret(struct curlbuf *);
void curlbuf_append(struct curlbuf *, const void *, size_t);
/* Take ownership of the data (NUL-terminated; may be NULL when empty). */
char *curlbuf_steal(struct curlbuf *, size_t *len);

/* CURLOPT_WRITEFUNCTION; CURLOPT_WRITEDATA is a struct curlbuf. */
size_t curlbuf_write(char *, size_t, size_t, void *);

/*
 * CURLOPT_HEADERFUNCTION; CURLOPT_HEADERDATA is a struct kvlist. A status
 * line starts over (only the final response's headers remain after 1xx
 * answers); folded lines are joined to the previous value.
 */
size_t curlbuf_header(char *, size_t, size_t, void *);

/* Build a libcurl header list from a kvlist ("Name: value", "Name;" when
 * the value is empty). Returns NULL on an empty list; free with
 * curl_slist_free_all(). */
struct curl_slist *curlbuf_slist(const struct kvlist *);

/* Milliseconds since the epoch (the Runtime API's deadline clock). */
long long curlbuf_now_ms(void);

#endif
