/*
 * test_sigv4.c: the SigV4 signer against every case of AWS's signing test
 * suite ($SSP_SHARED/testdata/aws-signing-test-suite/v4, header signing;
 * the query/presigned files are not our business). test_sigv4_rules.c has
 * the rules the suite does not cover.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "creds.h"
#include "sigv4.h"
#include "tap.h"
#include "xmalloc.h"

static char *
read_file(const char *dir, const char *name, size_t *lenp)
{
	char *path, *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;

	xasprintf(&path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	free(path);
	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

struct request {
	char *method;
	char *path;
	char *query;
	struct kvlist headers;
	char *body;
	size_t body_len;
};

/*
 * Parse request.txt: request line, headers (a line starting with whitespace
 * continues the previous value: the signer must fold it), blank line, body.
 * The request target may contain spaces (get-space-*): it ends at the last
 * space of the line.
 */
static int
parse_request(char *text, size_t len, struct request *r)
{
	char *line, *next, *sp, *sp2, *q, *colon;
	char *end = text + len;

	memset(r, 0, sizeof *r);
	kvlist_init(&r->headers);
	next = strchr(text, '\n');
	if (next == NULL)
		return -1;
	*next++ = '\0';
	sp = strchr(text, ' ');
	sp2 = strrchr(text, ' ');
	if (sp == NULL || sp2 == sp)
		return -1;
	r->method = xstrndup(text, (size_t)(sp - text));
	*sp2 = '\0';
	q = strchr(sp + 1, '?');
	if (q != NULL) {
		r->path = xstrndup(sp + 1, (size_t)(q - sp - 1));
		r->query = xstrdup(q + 1);
	} else
		r->path = xstrdup(sp + 1);

	for (line = next; line != NULL && line < end; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (*line == '\0') {
			if (next != NULL) {
				r->body_len = (size_t)(end - next);
				r->body = xstrndup(next, r->body_len);
			}
			break;
		}
		if ((*line == ' ' || *line == '\t') && r->headers.n > 0) {
			struct kv *last = &r->headers.v[r->headers.n - 1];
			char *v;

			xasprintf(&v, "%s\n%s", last->value, line);
			free(last->value);
			last->value = v;
			continue;
		}
		colon = strchr(line, ':');
		if (colon == NULL)
			return -1;
		kvlist_addn(&r->headers, line, (size_t)(colon - line), colon + 1,
		            strlen(colon + 1));
	}
	return 0;
}

static void
request_free(struct request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	free(r->body);
	kvlist_free(&r->headers);
}

static time_t
parse_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return (time_t)-1;
	return timegm(&tm);
}

/* The Authorization line of header-signed-request.txt. */
static char *
signed_authorization(const char *text)
{
	const char *p = text, *e;

	while (p != NULL && *p != '\0') {
		if (strncasecmp(p, "Authorization:", 14) == 0) {
			p += 14;
			while (*p == ' ')
				p++;
			e = strchr(p, '\n');
			return xstrndup(p, e != NULL ? (size_t)(e - p) : strlen(p));
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

static void
run_case(const char *dir, const char *name)
{
	char *casedir, *req_text, *want_creq, *want_sts, *want_sig, *want_signed, *want_auth;
	char *ctx_text, err[256], body_hash[65];
	size_t req_len;
	struct request r;
	struct aws_creds creds;
	struct sigv4_input in;
	struct sigv4_output out;
	json_t *ctx, *c;
	json_error_t jerr;
	const char *token;

	xasprintf(&casedir, "%s/%s", dir, name);
	req_text = read_file(casedir, "request.txt", &req_len);
	ctx_text = read_file(casedir, "context.json", NULL);
	want_creq = read_file(casedir, "header-canonical-request.txt", NULL);
	want_sts = read_file(casedir, "header-string-to-sign.txt", NULL);
	want_sig = read_file(casedir, "header-signature.txt", NULL);
	want_signed = read_file(casedir, "header-signed-request.txt", NULL);
	if (req_text == NULL || ctx_text == NULL || want_creq == NULL || want_sts == NULL ||
	    want_sig == NULL || want_signed == NULL) {
		tap_ok(0, "%s: case files readable", name);
		goto out;
	}
	ctx = json_loads(ctx_text, 0, &jerr);
	if (!tap_ok(ctx != NULL && parse_request(req_text, req_len, &r) == 0,
	            "%s: request.txt and context.json parse", name)) {
		json_decref(ctx);
		goto out;
	}

	memset(&creds, 0, sizeof creds);
	c = json_object_get(ctx, "credentials");
	creds.access_key_id = (char *)json_string_value(json_object_get(c, "access_key_id"));
	creds.secret_access_key =
	    (char *)json_string_value(json_object_get(c, "secret_access_key"));
	token = json_string_value(json_object_get(c, "token"));
	/* omit_session_token: the token is added after signing, not signed. */
	if (token != NULL && !json_is_true(json_object_get(ctx, "omit_session_token")))
		creds.session_token = (char *)token;

	/* sign_body asks for the S3-style X-Amz-Content-Sha256 header. */
	sigv4_sha256_hex(r.body != NULL ? r.body : "", r.body_len, body_hash);
	if (json_is_true(json_object_get(ctx, "sign_body")))
		kvlist_add(&r.headers, "X-Amz-Content-Sha256", body_hash);

	memset(&in, 0, sizeof in);
	in.method = r.method;
	in.path = r.path;
	in.query = r.query;
	in.headers = &r.headers;
	in.body = r.body;
	in.body_len = r.body_len;
	in.region = json_string_value(json_object_get(ctx, "region"));
	in.service = json_string_value(json_object_get(ctx, "service"));
	in.when = parse_time(json_string_value(json_object_get(ctx, "timestamp")));
	in.normalize = json_is_true(json_object_get(ctx, "normalize"));

	if (tap_ok(sigv4_sign(&creds, &in, &out, err, sizeof err) == 0, "%s: signs", name)) {
		tap_is_str(out.canonical_request, want_creq, "%s: canonical request", name);
		tap_is_str(out.string_to_sign, want_sts, "%s: string to sign", name);
		tap_is_str(out.signature, want_sig, "%s: signature", name);
		want_auth = signed_authorization(want_signed);
		tap_is_str(out.authorization, want_auth, "%s: Authorization header", name);
		free(want_auth);
		sigv4_output_free(&out);
	} else
		tap_diag("%s", err);
	json_decref(ctx);
	request_free(&r);
out:
	free(casedir);
	free(req_text);
	free(ctx_text);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	free(want_signed);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_suite(void)
{
	const char *shared = getenv("SSP_SHARED");
	char *dir, **names = NULL, *p;
	size_t n = 0, i;
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (shared == NULL)
		shared = "../shared";
	xasprintf(&dir, "%s/testdata/aws-signing-test-suite/v4", shared);
	d = opendir(dir);
	if (d == NULL) {
		free(dir);
		return -1;
	}
	/* The plan is printed at the end (tap_done). */
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		xasprintf(&p, "%s/%s/header-canonical-request.txt", dir, de->d_name);
		if (stat(p, &st) == 0) {
			names = xreallocarray(names, n + 1, sizeof *names);
			names[n++] = xstrdup(de->d_name);
		}
		free(p);
	}
	closedir(d);
	qsort(names, n, sizeof *names, name_cmp);
	tap_ok(n >= 30, "the suite has its cases (%zu found)", n);
	for (i = 0; i < n; i++) {
		run_case(dir, names[i]);
		free(names[i]);
	}
	free(names);
	free(dir);
	return 0;
}

int
main(void)
{
	if (run_suite() == -1)
		tap_skip_all("../shared absent");
	return tap_done();
}
