/*
 * signer.c: the signing parameters applied to a request.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curlbuf.h"
#include "httputil.h"
#include "sigv4.h"
#include "signer.h"
#include "xmalloc.h"

char *
signer_escape_target(const char *s, int keep_qmark)
{
	static const char hex[] = "0123456789ABCDEF";
	struct curlbuf b;
	const unsigned char *p;
	char esc[3];

	curlbuf_init(&b, 0);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		/* Only what cannot travel in a request line (controls, space,
		 * non-ASCII) or would end the path ('#', '?'). Printable bytes
		 * RFC 3986 frowns upon ('{', '|', '"', ...) go as the client sent
		 * them: servers accept them and re-encoding would change the
		 * request. */
		if (*p <= 0x20 || *p >= 0x7f || *p == '#' || (*p == '?' && !keep_qmark)) {
			esc[0] = '%';
			esc[1] = hex[*p >> 4];
			esc[2] = hex[*p & 15];
			curlbuf_append(&b, esc, 3);
		} else
			curlbuf_append(&b, p, 1);
	}
	if (b.data == NULL)
		curlbuf_append(&b, "", 0);
	return curlbuf_steal(&b, NULL);
}

/* RFC 9110 token characters. */
static int
signer_is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

static int
signer_value_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((*s > 0 && *s < 0x20 && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

/* The client's query key, percent-decoded ('+' as space), for comparison. */
static char *
signer_decode_key(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;

	for (; *s != '\0'; s++) {
		if (*s == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
			char h[3] = {s[1], s[2], '\0'};

			*o++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else if (*s == '+')
			*o++ = ' ';
		else
			*o++ = *s;
	}
	*o = '\0';
	return out;
}

static void
signer_set_query(struct kvlist *q, const char *name, const char *value)
{
	char *ename = sigv4_uri_encode(name, strlen(name), 0);
	char *evalue = sigv4_uri_encode(value, strlen(value), 0);
	size_t i, j;
	int done = 0;

	for (i = j = 0; i < q->n; i++) {
		char *dk = signer_decode_key(q->v[i].name);
		int match = strcmp(dk, name) == 0;

		free(dk);
		if (match && done) {
			free(q->v[i].name);
			free(q->v[i].value);
			continue;
		}
		if (match) {
			/* Replace in place: the parameter keeps the client's position. */
			free(q->v[i].name);
			free(q->v[i].value);
			q->v[i].name = xstrdup(ename);
			q->v[i].value = xstrdup(evalue);
			done = 1;
		}
		q->v[j++] = q->v[i];
	}
	q->n = j;
	if (!done)
		kvlist_add(q, ename, evalue);
	free(ename);
	free(evalue);
}

int
signer_apply(const struct kvlist *params, struct kvlist *headers, const char *path,
             const struct kvlist *query, char **target, char *err, size_t errlen)
{
	struct kvlist q = KVLIST_INIT;
	struct curlbuf t;
	const char *user = NULL, *pass = NULL, *rewrite = NULL, *name, *value;
	char *s, *raw, *b64;
	size_t i, len;

	*target = NULL;
	for (i = 0; i < query->n; i++)
		kvlist_add(&q, query->v[i].name, query->v[i].value);

	for (i = 0; i < params->n; i++) {
		name = params->v[i].name;
		value = params->v[i].value;
		if (strncmp(name, "headers/", 8) == 0) {
			if (!signer_is_token(name + 8) || !signer_value_ok(value)) {
				snprintf(err, errlen,
				         "signing parameter %.200s is not a valid HTTP header "
				         "(name or value)",
				         name);
				kvlist_free(&q);
				return -1;
			}
			kvlist_set(headers, name + 8, value);
		} else if (strcmp(name, "basic/username") == 0)
			user = value;
		else if (strcmp(name, "basic/password") == 0)
			pass = value;
		else if (strcmp(name, "rewrite/path") == 0)
			rewrite = value;
		else if (strncmp(name, "queries/", 8) == 0 && name[8] != '\0')
			signer_set_query(&q, name + 8, value);
	}

	/* As the original: the password alone does nothing; basic wins over a
	 * headers/Authorization parameter. */
	if (user != NULL && *user != '\0') {
		xasprintf(&raw, "%s:%s", user, pass != NULL ? pass : "");
		b64 = http_base64_encode((const unsigned char *)raw, strlen(raw), &len);
		explicit_bzero(raw, strlen(raw));
		free(raw);
		xasprintf(&s, "Basic %s", b64 != NULL ? b64 : "");
		kvlist_set(headers, "Authorization", s);
		if (b64 != NULL) {
			explicit_bzero(b64, strlen(b64));
			free(b64);
		}
		explicit_bzero(s, strlen(s));
		free(s);
	}

	curlbuf_init(&t, 0);
	if (rewrite != NULL && *rewrite != '\0')
		path = rewrite;
	if (path == NULL || *path != '/')
		curlbuf_append(&t, "/", 1);
	s = signer_escape_target(path != NULL ? path : "", rewrite != NULL && path == rewrite);
	curlbuf_append(&t, s, strlen(s));
	free(s);
	for (i = 0; i < q.n; i++) {
		/* A rewritten path may carry its own query: continue it. */
		if (i == 0)
			curlbuf_append(&t, memchr(t.data, '?', t.len) ? "&" : "?", 1);
		else
			curlbuf_append(&t, "&", 1);
		s = signer_escape_target(q.v[i].name, 1);
		curlbuf_append(&t, s, strlen(s));
		free(s);
		curlbuf_append(&t, "=", 1);
		s = signer_escape_target(q.v[i].value, 1);
		curlbuf_append(&t, s, strlen(s));
		free(s);
	}
	for (i = 0; i < q.n; i++)
		explicit_bzero(q.v[i].value, strlen(q.v[i].value));
	kvlist_free(&q);
	*target = curlbuf_steal(&t, NULL);
	return 0;
}
