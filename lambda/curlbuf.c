/*
 * curlbuf.c: capped body buffers and header collection for libcurl calls.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "curlbuf.h"
#include "xmalloc.h"

void
curlbuf_init(struct curlbuf *b, size_t limit)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->limit = limit;
	b->overflowed = 0;
}

void
curlbuf_free(struct curlbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->overflowed = 0;
}

void
curlbuf_free_secret(struct curlbuf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	curlbuf_free(b);
}

void
curlbuf_append(struct curlbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

char *
curlbuf_steal(struct curlbuf *b, size_t *len)
{
	char *p = b->data;

	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

size_t
curlbuf_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct curlbuf *b = arg;
	size_t n = size * nmemb;

	if (b->limit != 0 && b->len + n > b->limit) {
		/* Returning less than n makes libcurl stop with CURLE_WRITE_ERROR. */
		b->overflowed = 1;
		return 0;
	}
	curlbuf_append(b, ptr, n);
	return n;
}

size_t
curlbuf_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct kvlist *h = arg;
	size_t n = size * nmemb, len = n, nlen;
	const char *colon, *v, *end;

	while (len > 0 && (ptr[len - 1] == '\r' || ptr[len - 1] == '\n'))
		len--;
	if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		kvlist_free(h);
		return n;
	}
	if (len == 0)
		return n;
	if ((ptr[0] == ' ' || ptr[0] == '\t') && h->n > 0) {
		/* obs-fold: continuation of the previous value. */
		struct kv *last = &h->v[h->n - 1];
		char *joined;

		v = ptr;
		end = ptr + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		xasprintf(&joined, "%s %.*s", last->value, (int)(end - v), v);
		free(last->value);
		last->value = joined;
		return n;
	}
	if ((colon = memchr(ptr, ':', len)) == NULL)
		return n;
	nlen = (size_t)(colon - ptr);
	while (nlen > 0 && (ptr[nlen - 1] == ' ' || ptr[nlen - 1] == '\t'))
		nlen--;
	if (nlen == 0)
		return n;
	v = colon + 1;
	end = ptr + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	kvlist_addn(h, ptr, nlen, v, (size_t)(end - v));
	return n;
}

struct curl_slist *
curlbuf_slist(const struct kvlist *h)
{
	struct curl_slist *l = NULL, *nl;
	size_t i;
	char *line;

	for (i = 0; i < h->n; i++) {
		if (h->v[i].value[0] == '\0')
			xasprintf(&line, "%s;", h->v[i].name);
		else
			xasprintf(&line, "%s: %s", h->v[i].name, h->v[i].value);
		nl = curl_slist_append(l, line);
		free(line);
		if (nl == NULL) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = nl;
	}
	return l;
}

long long
curlbuf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
