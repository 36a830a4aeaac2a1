/*
 * sigv4.c: AWS Signature Version 4, header form. Builds the canonical
 * request (method, canonical URI, canonical query, canonical headers, signed
 * header list, payload hash), the string to sign and the signature, with
 * SHA-256 and HMAC from mbedTLS's generic md API (same calls in 2.28 and 3).
 *
 * AWS's published test vectors (tests/unit/test_sigv4.c) and botocore
 * (tests/integration/test_sigv4_botocore.py) are the judges of every rule
 * written here.
 */
#include <ctype.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/md.h>

#include "sigv4.h"
#include "errf.h"
#include "xmalloc.h"

/*
 * Headers never signed, the list botocore uses: hop-by-hop headers are
 * rewritten by every proxy on the way, and HTTP clients add or change the
 * others (curl sends its own Expect and User-Agent, a tracing layer its trace
 * id); a signed header that changes on the way breaks the signature.
 */
static const char *const sigv4_unsigned_headers[] = {
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
};

/* A growing string; the signer builds everything with it. */
struct sbuf {
	char *s;
	size_t len;
	size_t cap;
};

static void
sbuf_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sbuf_add(struct sbuf *b, const char *s)
{
	sbuf_addn(b, s, strlen(s));
}

static void
sbuf_addc(struct sbuf *b, char c)
{
	sbuf_addn(b, &c, 1);
}

/* The string, never NULL; the buffer is handed over to the caller. */
static char *
sbuf_take(struct sbuf *b)
{
	char *s;

	if (b->s == NULL)
		return xstrdup("");
	s = b->s;
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

static void
sigv4_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void
sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];

	mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, len, md);
	sigv4_hex(md, sizeof md, out);
}

static void
sigv4_hmac(const unsigned char *key, size_t keylen, const void *data, size_t len,
           unsigned char out[32])
{
	mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, keylen, data, len, out);
}

static int
sigv4_unreserved(unsigned char c)
{
	/* Explicit ranges: isalnum() would follow the locale. */
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *
sigv4_uri_encode(const char *s, size_t len, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	char *out, *p;
	size_t i;

	out = p = xmalloc(len * 3 + 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (sigv4_unreserved(c) || (keep_slash && c == '/'))
			*p++ = (char)c;
		else {
			*p++ = '%';
			*p++ = digits[c >> 4];
			*p++ = digits[c & 0xf];
		}
	}
	*p = '\0';
	return out;
}

static int
sigv4_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode (RFC 3986: '+' is a plain '+', not a space). A '%' that
 * does not start a valid escape stays literal, so it is encoded as %25
 * afterwards, as the SDKs do. Returns a buffer of *outlen bytes.
 */
static char *
sigv4_uri_decode(const char *s, size_t len, size_t *outlen)
{
	char *out = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] == '%' && i + 2 < len &&
		    (hi = sigv4_hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = sigv4_hexval((unsigned char)s[i + 2])) >= 0) {
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[n++] = s[i];
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/*
 * Remove dot segments and empty segments (duplicate slashes), keeping a
 * trailing slash: "//example//" -> "/example/", "/a/./b/../c" -> "/a/c".
 */
static char *
sigv4_normalize_path(const char *path)
{
	const char **seg;
	size_t nseg = 0, i, n;
	const char *p, *e;
	size_t *seglen;
	struct sbuf b = {NULL, 0, 0};
	int trailing = 0;

	n = strlen(path) + 1;
	seg = xreallocarray(NULL, n, sizeof *seg);
	seglen = xreallocarray(NULL, n, sizeof *seglen);
	for (p = path; *p != '\0'; p = *e == '\0' ? e : e + 1) {
		e = strchr(p, '/');
		if (e == NULL)
			e = p + strlen(p);
		n = (size_t)(e - p);
		/* A path ending in "/", "/." or "/.." names a directory. */
		trailing = *e == '\0' && (n == 0 || (n == 1 && p[0] == '.') ||
		                          (n == 2 && p[0] == '.' && p[1] == '.'));
		if (n == 0 || (n == 1 && p[0] == '.'))
			continue;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (nseg > 0)
				nseg--;
			continue;
		}
		seg[nseg] = p;
		seglen[nseg++] = n;
	}
	if (path[0] != '\0' && path[strlen(path) - 1] == '/')
		trailing = 1;
	for (i = 0; i < nseg; i++) {
		sbuf_addc(&b, '/');
		sbuf_addn(&b, seg[i], seglen[i]);
	}
	if (nseg == 0 || trailing)
		sbuf_addc(&b, '/');
	free(seg);
	free(seglen);
	return sbuf_take(&b);
}

static char *
sigv4_canonical_uri(const char *path, int normalize)
{
	char *norm, *enc;

	if (path == NULL || *path == '\0')
		path = "/";
	if (!normalize)
		return sigv4_uri_encode(path, strlen(path), 1);
	norm = sigv4_normalize_path(path);
	enc = sigv4_uri_encode(norm, strlen(norm), 1);
	free(norm);
	return enc;
}

struct sigv4_param {
	char *key;
	char *value;
};

static int
sigv4_param_cmp(const void *a, const void *b)
{
	const struct sigv4_param *x = a, *y = b;
	int c;

	if ((c = strcmp(x->key, y->key)) != 0)
		return c;
	return strcmp(x->value, y->value);
}

/*
 * Each key and value is decoded, then encoded again with the unreserved
 * set, so that "%e1%88%b4", "%E1%88%B4" and the raw UTF-8 bytes all sign the
 * same; pairs are sorted by encoded key, then value. "k" alone is "k=".
 */
static char *
sigv4_canonical_query(const char *query)
{
	struct sigv4_param *params = NULL;
	size_t n = 0, cap = 0, i, dlen;
	const char *p, *e, *eq;
	struct sbuf b = {NULL, 0, 0};
	char *d;

	if (query == NULL)
		return xstrdup("");
	for (p = query; *p != '\0'; p = *e == '\0' ? e : e + 1) {
		e = strchr(p, '&');
		if (e == NULL)
			e = p + strlen(p);
		if (e == p)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			params = xreallocarray(params, cap, sizeof *params);
		}
		eq = memchr(p, '=', (size_t)(e - p));
		if (eq == NULL)
			eq = e;
		d = sigv4_uri_decode(p, (size_t)(eq - p), &dlen);
		params[n].key = sigv4_uri_encode(d, dlen, 0);
		free(d);
		if (eq < e) {
			d = sigv4_uri_decode(eq + 1, (size_t)(e - eq - 1), &dlen);
			params[n].value = sigv4_uri_encode(d, dlen, 0);
			free(d);
		} else
			params[n].value = xstrdup("");
		n++;
	}
	if (n > 0)
		qsort(params, n, sizeof *params, sigv4_param_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0)
			sbuf_addc(&b, '&');
		sbuf_add(&b, params[i].key);
		sbuf_addc(&b, '=');
		sbuf_add(&b, params[i].value);
		free(params[i].key);
		free(params[i].value);
	}
	free(params);
	return sbuf_take(&b);
}

struct sigv4_hdr {
	char *name;  /* lower-case */
	char *value; /* trimmed, inner whitespace collapsed */
	size_t order;
};

static int
sigv4_hdr_cmp(const void *a, const void *b)
{
	const struct sigv4_hdr *x = a, *y = b;
	int c;

	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	/* Duplicates keep the order they will be sent in. */
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
sigv4_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trim and collapse every run of whitespace (folded lines too) to one space. */
static char *
sigv4_header_value(const char *v)
{
	char *out = xmalloc(strlen(v) + 1), *p = out;
	int pending = 0;

	while (sigv4_space(*v))
		v++;
	for (; *v != '\0'; v++) {
		if (sigv4_space(*v)) {
			pending = 1;
			continue;
		}
		if (pending)
			*p++ = ' ';
		pending = 0;
		*p++ = *v;
	}
	*p = '\0';
	return out;
}

static void
sigv4_hdr_add(struct sigv4_hdr *h, size_t *n, const char *name, const char *value)
{
	char *lname = xstrdup(name), *q;

	for (q = lname; *q != '\0'; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a'); /* ASCII, whatever the locale */
	h[*n].name = lname;
	h[*n].value = sigv4_header_value(value);
	h[*n].order = *n;
	(*n)++;
}

static int
sigv4_header_unsigned(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof sigv4_unsigned_headers / sizeof sigv4_unsigned_headers[0]; i++)
		if (strcasecmp(name, sigv4_unsigned_headers[i]) == 0)
			return 1;
	return 0;
}

/*
 * The signing key depends only on (secret, day, region, service): cache the
 * last few, so that a worker derives it once a day, not once a request.
 * Entries are told apart by access key id and a SHA-256 of the secret (so a
 * rotated secret under the same id never reuses a stale key). The cache is
 * process-local; a lock, since the library signs from many threads.
 */
#define SIGV4_CACHE_SIZE 8
struct sigv4_cache_entry {
	int used;
	unsigned long stamp;
	char access_key_id[129];
	unsigned char secret_hash[32];
	char day[9];
	char region[64];
	char service[64];
	unsigned char key[32];
};
static struct sigv4_cache_entry sigv4_cache[SIGV4_CACHE_SIZE];
static unsigned long sigv4_cache_clock;
/* The library (lib/) signs from many threads at once. */
static pthread_mutex_t sigv4_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void
sigv4_signing_key(const struct aws_creds *creds, const char *day, const char *region,
                  const char *service, unsigned char key[32])
{
	struct sigv4_cache_entry *e, *victim = &sigv4_cache[0];
	unsigned char secret_hash[32], k[32];
	size_t i, slen;
	char *ksecret;
	int cacheable;

	slen = strlen(creds->secret_access_key);
	mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
	           (const unsigned char *)creds->secret_access_key, slen, secret_hash);
	cacheable = strlen(creds->access_key_id) < sizeof victim->access_key_id &&
	            strlen(region) < sizeof victim->region &&
	            strlen(service) < sizeof victim->service;
	pthread_mutex_lock(&sigv4_cache_lock);
	for (i = 0; cacheable && i < SIGV4_CACHE_SIZE; i++) {
		e = &sigv4_cache[i];
		if (e->used && strcmp(e->day, day) == 0 && strcmp(e->region, region) == 0 &&
		    strcmp(e->service, service) == 0 &&
		    strcmp(e->access_key_id, creds->access_key_id) == 0 &&
		    memcmp(e->secret_hash, secret_hash, sizeof secret_hash) == 0) {
			e->stamp = ++sigv4_cache_clock;
			memcpy(key, e->key, 32);
			pthread_mutex_unlock(&sigv4_cache_lock);
			return;
		}
	}
	pthread_mutex_unlock(&sigv4_cache_lock);

	xasprintf(&ksecret, "AWS4%s", creds->secret_access_key);
	sigv4_hmac((unsigned char *)ksecret, slen + 4, day, strlen(day), k);
	xfree_secret(ksecret);
	sigv4_hmac(k, sizeof k, region, strlen(region), k);
	sigv4_hmac(k, sizeof k, service, strlen(service), k);
	sigv4_hmac(k, sizeof k, "aws4_request", 12, k);
	memcpy(key, k, 32);

	if (!cacheable)
		return;
	pthread_mutex_lock(&sigv4_cache_lock);
	for (i = 0; i < SIGV4_CACHE_SIZE; i++) {
		e = &sigv4_cache[i];
		if (!e->used) {
			victim = e;
			break;
		}
		if (e->stamp < victim->stamp)
			victim = e;
	}
	victim->used = 1;
	victim->stamp = ++sigv4_cache_clock;
	snprintf(victim->access_key_id, sizeof victim->access_key_id, "%s", creds->access_key_id);
	memcpy(victim->secret_hash, secret_hash, sizeof secret_hash);
	snprintf(victim->day, sizeof victim->day, "%s", day);
	snprintf(victim->region, sizeof victim->region, "%s", region);
	snprintf(victim->service, sizeof victim->service, "%s", service);
	memcpy(victim->key, k, 32);
	pthread_mutex_unlock(&sigv4_cache_lock);
}

/* A well-formed X-Amz-Date: YYYYMMDDTHHMMSSZ. */
static int
sigv4_valid_amz_date(const char *s)
{
	size_t i;

	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return 0;
	for (i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int
sigv4_sign(const struct aws_creds *creds, const struct sigv4_input *in, struct sigv4_output *out,
           char *err, size_t errlen)
{
	struct sigv4_hdr *hdrs;
	size_t nh = 0, i;
	struct sbuf creq = {NULL, 0, 0}, sh = {NULL, 0, 0}, sts = {NULL, 0, 0};
	char *uri, *query, payload_hash[65], creq_hash[65], day[9], scope[256];
	const char *date_hdr;
	unsigned char key[32], sig[32];
	struct tm tm;

	memset(out, 0, sizeof *out);
	if (creds == NULL || creds->access_key_id == NULL || creds->secret_access_key == NULL ||
	    *creds->access_key_id == '\0' || *creds->secret_access_key == '\0')
		return errf(err, errlen, "sigv4: no credentials to sign with");
	if (in->method == NULL || *in->method == '\0')
		return errf(err, errlen, "sigv4: no method");
	if (in->region == NULL || *in->region == '\0' || in->service == NULL ||
	    *in->service == '\0')
		return errf(err, errlen, "sigv4: region and service are required");
	if (in->headers == NULL || kvlist_get(in->headers, "host") == NULL)
		return errf(err, errlen, "sigv4: the request has no Host header");
	if (in->body == NULL && in->body_len != 0)
		return errf(err, errlen, "sigv4: body length without a body");

	date_hdr = kvlist_get(in->headers, "x-amz-date");
	if (date_hdr != NULL) {
		if (!sigv4_valid_amz_date(date_hdr))
			return errf(err, errlen, "sigv4: malformed X-Amz-Date header");
		memcpy(out->amz_date, date_hdr, 17);
	} else {
		if (gmtime_r(&in->when, &tm) == NULL ||
		    strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
			return errf(err, errlen, "sigv4: cannot format the signing time");
	}
	memcpy(day, out->amz_date, 8);
	day[8] = '\0';
	if (snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", day, in->region, in->service) >=
	    (int)sizeof scope)
		return errf(err, errlen, "sigv4: region or service too long");

	if (in->payload_hash != NULL)
		snprintf(payload_hash, sizeof payload_hash, "%s", in->payload_hash);
	else
		sigv4_sha256_hex(in->body != NULL ? in->body : "", in->body_len, payload_hash);

	/* Headers: the caller's, plus the two the signer adds. */
	hdrs = xreallocarray(NULL, in->headers->n + 2, sizeof *hdrs);
	for (i = 0; i < in->headers->n; i++)
		if (!sigv4_header_unsigned(in->headers->v[i].name))
			sigv4_hdr_add(hdrs, &nh, in->headers->v[i].name, in->headers->v[i].value);
	if (date_hdr == NULL)
		sigv4_hdr_add(hdrs, &nh, "x-amz-date", out->amz_date);
	if (creds->session_token != NULL && *creds->session_token != '\0' &&
	    kvlist_get(in->headers, "x-amz-security-token") == NULL)
		sigv4_hdr_add(hdrs, &nh, "x-amz-security-token", creds->session_token);
	qsort(hdrs, nh, sizeof *hdrs, sigv4_hdr_cmp);

	uri = sigv4_canonical_uri(in->path, in->normalize);
	query = sigv4_canonical_query(in->query);
	sbuf_add(&creq, in->method);
	sbuf_addc(&creq, '\n');
	sbuf_add(&creq, uri);
	sbuf_addc(&creq, '\n');
	sbuf_add(&creq, query);
	sbuf_addc(&creq, '\n');
	free(uri);
	free(query);
	/* Repeated headers become one line, values joined with ",". */
	for (i = 0; i < nh; i++) {
		if (i > 0 && strcmp(hdrs[i].name, hdrs[i - 1].name) == 0) {
			sbuf_addc(&creq, ',');
			sbuf_add(&creq, hdrs[i].value);
			continue;
		}
		if (i > 0) {
			sbuf_addc(&creq, '\n');
			sbuf_addc(&sh, ';');
		}
		sbuf_add(&creq, hdrs[i].name);
		sbuf_addc(&creq, ':');
		sbuf_add(&creq, hdrs[i].value);
		sbuf_add(&sh, hdrs[i].name);
	}
	for (i = 0; i < nh; i++) {
		free(hdrs[i].name);
		free(hdrs[i].value);
	}
	free(hdrs);
	sbuf_add(&creq, "\n\n");
	if (sh.s != NULL)
		sbuf_add(&creq, sh.s);
	sbuf_addc(&creq, '\n');
	sbuf_add(&creq, payload_hash);
	out->canonical_request = sbuf_take(&creq);
	out->signed_headers = sbuf_take(&sh);

	sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash);
	sbuf_add(&sts, "AWS4-HMAC-SHA256\n");
	sbuf_add(&sts, out->amz_date);
	sbuf_addc(&sts, '\n');
	sbuf_add(&sts, scope);
	sbuf_addc(&sts, '\n');
	sbuf_add(&sts, creq_hash);
	out->string_to_sign = sbuf_take(&sts);

	sigv4_signing_key(creds, day, in->region, in->service, key);
	sigv4_hmac(key, sizeof key, out->string_to_sign, strlen(out->string_to_sign), sig);
	memset(key, 0, sizeof key);
	sigv4_hex(sig, sizeof sig, out->signature);
	xasprintf(&out->authorization,
	          "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
	          creds->access_key_id, scope, out->signed_headers, out->signature);
	return 0;
}

void
sigv4_apply(const struct aws_creds *creds, const struct sigv4_output *out, struct kvlist *headers)
{
	kvlist_set(headers, "X-Amz-Date", out->amz_date);
	if (creds->session_token != NULL && *creds->session_token != '\0')
		kvlist_set(headers, "X-Amz-Security-Token", creds->session_token);
	kvlist_set(headers, "Authorization", out->authorization);
}

void
sigv4_output_free(struct sigv4_output *out)
{
	free(out->authorization);
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->signed_headers);
	memset(out, 0, sizeof *out);
}
