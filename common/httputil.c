/*
 * httputil.c: small HTTP helpers shared by the daemon and the function:
 * hop-by-hop header removal, strict UTF-8 validation, base64 (mbedTLS),
 * reason phrases and method properties.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/base64.h>

#include "httputil.h"
#include "xmalloc.h"

static int
http_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int
http_casecmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Remove every header named in a Connection value ("close, X-Foo"). The
 * names are sorted once and each header looked up among them, so that a
 * Connection value naming thousands of headers costs n log k, not n * k.
 */
static void
http_strip_connection_options(struct kvlist *l)
{
	struct kvlist names = KVLIST_INIT;
	const char *p, *e, *end, **sorted;
	size_t i, j;

	for (i = 0; i < l->n; i++) {
		if (strcasecmp(l->v[i].name, "connection") != 0)
			continue;
		for (p = l->v[i].value; *p != '\0'; p = *e == '\0' ? e : e + 1) {
			e = strchr(p, ',');
			if (e == NULL)
				e = p + strlen(p);
			end = e;
			while (p < end && http_ows(*p))
				p++;
			while (end > p && http_ows(end[-1]))
				end--;
			if (end > p)
				kvlist_addn(&names, p, (size_t)(end - p), "", 0);
		}
	}
	if (names.n == 0)
		return;
	sorted = xreallocarray(NULL, names.n, sizeof *sorted);
	for (i = 0; i < names.n; i++)
		sorted[i] = names.v[i].name;
	qsort(sorted, names.n, sizeof *sorted, http_casecmp);
	for (i = j = 0; i < l->n; i++) {
		const char *name = l->v[i].name;

		if (bsearch(&name, sorted, names.n, sizeof *sorted, http_casecmp) != NULL) {
			free(l->v[i].name);
			free(l->v[i].value);
			continue;
		}
		l->v[j++] = l->v[i];
	}
	l->n = j;
	free(sorted);
	kvlist_free(&names);
}

/* TE survives only as exactly "trailers" (a token, so case-insensitive). */
static void
http_strip_te(struct kvlist *l)
{
	size_t i, j;

	for (i = j = 0; i < l->n; i++) {
		if (strcasecmp(l->v[i].name, "te") == 0) {
			const char *v = l->v[i].value, *end = v + strlen(v);

			while (http_ows(*v))
				v++;
			while (end > v && http_ows(end[-1]))
				end--;
			if ((size_t)(end - v) != 8 || strncasecmp(v, "trailers", 8) != 0) {
				free(l->v[i].name);
				free(l->v[i].value);
				continue;
			}
		}
		l->v[j++] = l->v[i];
	}
	l->n = j;
}

void
http_strip_hop_by_hop(struct kvlist *l, int keep_proxy_authenticate)
{
	static const char *const hop[] = {
	    "connection", "proxy-connection",  "keep-alive", "proxy-authorization",
	    "trailer",    "transfer-encoding", "upgrade",
	};
	size_t i;

	/* The Connection header's options first: they name other headers. */
	http_strip_connection_options(l);
	for (i = 0; i < sizeof hop / sizeof hop[0]; i++)
		kvlist_del(l, hop[i]);
	if (!keep_proxy_authenticate)
		kvlist_del(l, "proxy-authenticate");
	http_strip_te(l);
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800..DFFF),
 * nothing above U+10FFFF, no truncated sequences.
 */
int
http_is_valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n, k;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else
			return 0; /* continuation byte, overlong C0/C1, or F5..FF */
		if (len - i - 1 < n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		i += n + 1;
	}
	return 1;
}

char *
http_base64_encode(const unsigned char *in, size_t len, size_t *outlen)
{
	size_t need = 0, n = 0;
	char *out;

	/* With a zero-sized buffer mbedTLS reports the size it needs (with NUL). */
	mbedtls_base64_encode(NULL, 0, &need, in, len);
	if (need == 0)
		need = 1;
	out = xmalloc(need);
	if (mbedtls_base64_encode((unsigned char *)out, need, &n, in, len) != 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return out;
}

unsigned char *
http_base64_decode(const char *in, size_t len, size_t *outlen)
{
	size_t need = 0, n = 0, i, sig = 0;
	unsigned char *out;
	int rc;

	/* mbedTLS forgives missing padding; a truncated body must not decode. */
	for (i = 0; i < len; i++)
		if (in[i] != ' ' && in[i] != '\t' && in[i] != '\r' && in[i] != '\n')
			sig++;
	if (sig % 4 != 0)
		return NULL;
	rc = mbedtls_base64_decode(NULL, 0, &need, (const unsigned char *)in, len);
	if (rc == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
		return NULL;
	/* One byte more, so that the result is NUL-terminated for convenience. */
	out = xmalloc(need + 1);
	if (mbedtls_base64_decode(out, need + 1, &n, (const unsigned char *)in, len) != 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return out;
}

/* Reason phrases, RFC 9110 section 15. */
static const struct {
	int status;
	const char *reason;
} http_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {507, "Insufficient Storage"},
    {511, "Network Authentication Required"},
};

const char *
http_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof http_reasons / sizeof http_reasons[0]; i++)
		if (http_reasons[i].status == status)
			return http_reasons[i].reason;
	return "Unknown";
}

int
http_method_idempotent(const char *method)
{
	static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
	size_t i;

	if (method == NULL)
		return 0;
	/* Methods are case-sensitive (RFC 9110 9.1). */
	for (i = 0; i < sizeof idem / sizeof idem[0]; i++)
		if (strcmp(method, idem[i]) == 0)
			return 1;
	return 0;
}

size_t
http_error_text(char *out, size_t len, const char *request_id, const char *fmt, va_list ap)
{
	char msg[2048], *p, *q;
	size_t n, i, o = 0;

	if (len == 0)
		return 0;
	vsnprintf(msg, sizeof msg, fmt, ap);
	for (p = msg; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	for (p = msg; *p != '\0' && o + 1 < len;) {
		/* An account id: exactly 12 digits, not part of a longer number. */
		n = strspn(p, "0123456789");
		if (n == 12 && (p == msg || !isdigit((unsigned char)p[-1]))) {
			for (i = 0; i < 12 && o + 1 < len; i++)
				out[o++] = '*';
			p += 12;
			continue;
		}
		if (n > 0) {
			for (i = 0; i < n && o + 1 < len; i++)
				out[o++] = p[i];
			p += n;
			continue;
		}
		if (strncmp(p, "/home/", 6) == 0 ||
		    (strncmp(p, "/root", 5) == 0 && (p[5] == '/' || p[5] == '\0' || p[5] == ' '))) {
			q = p + (p[1] == 'h' ? 6 + strcspn(p + 6, "/ :,;)\"'") : 5);
			out[o++] = '~';
			p = q;
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	if (request_id != NULL && *request_id != '\0')
		snprintf(out + o, len - o, " (request id %s)\n", request_id);
	else
		snprintf(out + o, len - o, "\n");
	return strlen(out);
}
