/*
 * alb.c: the ALB <-> Lambda target JSON format, both directions, with
 * jansson. The daemon encodes requests and decodes responses; the function
 * decodes requests (the daemon's, or a real ALB's) and encodes responses.
 *
 * Query keys and values are never decoded: they travel exactly as the
 * client sent them, as an ALB passes them. Bodies that are not valid UTF-8
 * travel base64-encoded with isBase64Encoded set.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "alb.h"
#include "httputil.h"
#include "errf.h"
#include "xmalloc.h"

void
alb_request_init(struct alb_request *r)
{
	memset(r, 0, sizeof *r);
	kvlist_init(&r->query);
	kvlist_init(&r->headers);
}

void
alb_request_free(struct alb_request *r)
{
	free(r->method);
	free(r->path);
	kvlist_free(&r->query);
	kvlist_free(&r->headers);
	free(r->body);
	free(r->target_group_arn);
	free(r->instance_hostname);
	free(r->instance_id);
	alb_request_init(r);
}

void
alb_response_init(struct alb_response *r)
{
	memset(r, 0, sizeof *r);
	kvlist_init(&r->headers);
}

void
alb_response_free(struct alb_response *r)
{
	free(r->status_description);
	kvlist_free(&r->headers);
	free(r->body);
	alb_response_init(r);
}

/*
 * A JSON string for bytes that should be text. JSON strings must be UTF-8;
 * a header or query byte outside it (obs-text) is taken as ISO-8859-1, the
 * charset HTTP/1.1 historically gave such bytes, and converted, so that the
 * event can always be built.
 */
static json_t *
alb_text(const char *s)
{
	size_t len = strlen(s), i;
	char *u, *p;
	json_t *j;

	if (http_is_valid_utf8((const unsigned char *)s, len))
		return json_stringn(s, len);
	u = p = xmalloc(len * 2 + 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80)
			*p++ = (char)c;
		else {
			*p++ = (char)(0xc0 | c >> 6);
			*p++ = (char)(0x80 | (c & 0x3f));
		}
	}
	j = json_stringn(u, (size_t)(p - u));
	free(u);
	return j;
}

/* Set body and isBase64Encoded: text when valid UTF-8, else base64. */
static void
alb_set_body(json_t *o, const unsigned char *body, size_t len)
{
	char *b64;

	if (len == 0 || body == NULL) {
		json_object_set_new(o, "body", json_string(""));
		json_object_set_new(o, "isBase64Encoded", json_false());
	} else if (http_is_valid_utf8(body, len)) {
		json_object_set_new(o, "body", json_stringn((const char *)body, len));
		json_object_set_new(o, "isBase64Encoded", json_false());
	} else {
		b64 = http_base64_encode(body, len, NULL);
		json_object_set_new(o, "body", json_string(b64));
		json_object_set_new(o, "isBase64Encoded", json_true());
		free(b64);
	}
}

/*
 * Add a list to the single-value object (last value wins) and the
 * multi-value object (values in order). Names are grouped ignoring case
 * when fold is set (headers), exactly otherwise (query keys). lower_names
 * turns header names to lower case, as an ALB sends them.
 *
 * Linear in the number of names: the spelling a folded name was first
 * seen with is found through a hash (a jansson object keyed by the lower
 * case name), not by comparing with every key so far.
 */
static void
alb_add_list(json_t *single, json_t *multi, const struct kvlist *l, int fold, int lower_names)
{
	json_t *seen = fold ? json_object() : NULL, *arr, *first;
	const char *key;
	char *name, *lower, *p;
	size_t i;

	for (i = 0; i < l->n; i++) {
		name = xstrdup(l->v[i].name);
		if (lower_names)
			for (p = name; *p != '\0'; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
		/* JSON keys must be UTF-8 too; see alb_text(). */
		if (!http_is_valid_utf8((const unsigned char *)name, strlen(name))) {
			json_t *t = alb_text(name);

			free(name);
			name = xstrdup(json_string_value(t));
			json_decref(t);
		}
		/* Group under the first spelling seen. */
		if (seen != NULL) {
			lower = xstrdup(name);
			for (p = lower; *p != '\0'; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			first = json_object_get(seen, lower);
			if (first != NULL) {
				free(name);
				name = xstrdup(json_string_value(first));
			} else
				json_object_set_new(seen, lower, json_string(name));
			free(lower);
		}
		key = name;
		if (single != NULL)
			json_object_set_new(single, key, alb_text(l->v[i].value));
		if (multi != NULL) {
			arr = json_object_get(multi, key);
			if (arr == NULL) {
				arr = json_array();
				json_object_set_new(multi, key, arr);
			}
			json_array_append_new(arr, alb_text(l->v[i].value));
		}
		free(name);
	}
	json_decref(seen);
}

static char *
alb_dump(json_t *o, size_t *len)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (s == NULL)
		abort(); /* only out of memory: every value above is valid */
	if (len != NULL)
		*len = strlen(s);
	return s;
}

/*
 * The request's event is written directly, not built as a jansson tree and
 * dumped: the daemon encodes one per request, and the tree's allocations
 * and the dump showed in its profile. The output is what json_dumps()
 * with JSON_COMPACT gave for the same tree (same key order, same escapes),
 * which test_alb checks against jansson.
 */
struct alb_out {
	char *p;
	size_t n, cap;
};

static void
alb_out_reserve(struct alb_out *o, size_t more)
{
	if (o->n + more + 1 <= o->cap)
		return;
	while (o->n + more + 1 > o->cap)
		o->cap = o->cap ? o->cap * 2 : 1024;
	o->p = xrealloc(o->p, o->cap);
}

static void
alb_out_raw(struct alb_out *o, const char *s, size_t len)
{
	alb_out_reserve(o, len);
	memcpy(o->p + o->n, s, len);
	o->n += len;
}

#define alb_out_lit(o, s) alb_out_raw((o), (s), sizeof(s) - 1)

/* A JSON string of valid UTF-8 bytes, escaped as jansson escapes. */
static void
alb_out_utf8(struct alb_out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, run = 0;
	char esc[6];

	alb_out_reserve(o, len + 2);
	o->p[o->n++] = '"';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = NULL;
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\f':
			e = "\\f";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			e = esc;
			elen = 6;
			break;
		}
		alb_out_raw(o, s + run, i - run);
		alb_out_raw(o, e, elen);
		run = i + 1;
	}
	alb_out_raw(o, s + run, len - run);
	alb_out_lit(o, "\"");
}

/* A C string as text: see alb_text() for bytes outside UTF-8. */
static void
alb_out_text(struct alb_out *o, const char *s)
{
	size_t len = strlen(s);
	json_t *t;

	if (http_is_valid_utf8((const unsigned char *)s, len)) {
		alb_out_utf8(o, s, len);
		return;
	}
	t = alb_text(s);
	alb_out_utf8(o, json_string_value(t), json_string_length(t));
	json_decref(t);
}

/*
 * The single-value object (a key's last value, at its first position) or
 * the multi-value one (every value, in order) of a list; names grouped
 * ignoring case when fold is set (headers, whose names are lower-cased as
 * an ALB sends them), exactly otherwise (query keys). A name outside UTF-8
 * is grouped by its converted spelling, as the tree did.
 */
static void
alb_out_list(struct alb_out *o, const struct kvlist *l, int fold, int multi)
{
	char **names = xcalloc(l->n + 1, sizeof *names), *p;
	size_t i, j, k;
	int first = 1, vfirst;
	json_t *t;

	for (i = 0; i < l->n; i++) {
		names[i] = xstrdup(l->v[i].name);
		if (fold)
			for (p = names[i]; *p != '\0'; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
		if (!http_is_valid_utf8((const unsigned char *)names[i], strlen(names[i]))) {
			t = alb_text(names[i]);
			free(names[i]);
			names[i] = xstrdup(json_string_value(t));
			json_decref(t);
		}
	}
	alb_out_lit(o, "{");
	for (i = 0; i < l->n; i++) {
		/* Only at a name's first occurrence. */
		for (j = 0; j < i; j++)
			if (strcmp(names[j], names[i]) == 0)
				break;
		if (j < i)
			continue;
		if (!first)
			alb_out_lit(o, ",");
		first = 0;
		alb_out_utf8(o, names[i], strlen(names[i]));
		alb_out_lit(o, ":");
		if (!multi) {
			for (k = l->n; k-- > i;)
				if (strcmp(names[k], names[i]) == 0)
					break;
			alb_out_text(o, l->v[k].value);
			continue;
		}
		alb_out_lit(o, "[");
		vfirst = 1;
		for (k = i; k < l->n; k++) {
			if (strcmp(names[k], names[i]) != 0)
				continue;
			if (!vfirst)
				alb_out_lit(o, ",");
			vfirst = 0;
			alb_out_text(o, l->v[k].value);
		}
		alb_out_lit(o, "]");
	}
	alb_out_lit(o, "}");
	for (i = 0; i < l->n; i++)
		free(names[i]);
	free(names);
}

char *
alb_request_encode(const struct alb_request *r, size_t *len)
{
	struct alb_out o = {NULL, 0, 0};
	char *b64;

	alb_out_reserve(&o, 512 + r->body_len + r->body_len / 3);
	alb_out_lit(&o, "{\"requestContext\":{");
	if (r->instance_hostname != NULL || r->instance_id != NULL) {
		alb_out_lit(&o, "\"instance\":{");
		if (r->instance_hostname != NULL) {
			alb_out_lit(&o, "\"hostname\":");
			alb_out_text(&o, r->instance_hostname);
		}
		if (r->instance_id != NULL) {
			if (r->instance_hostname != NULL)
				alb_out_lit(&o, ",");
			alb_out_lit(&o, "\"instance_id\":");
			alb_out_text(&o, r->instance_id);
		}
		alb_out_lit(&o, "}");
		if (r->target_group_arn != NULL)
			alb_out_lit(&o, ",");
	}
	if (r->target_group_arn != NULL) {
		alb_out_lit(&o, "\"elb\":{\"targetGroupArn\":");
		alb_out_text(&o, r->target_group_arn);
		alb_out_lit(&o, "}");
	}
	alb_out_lit(&o, "},\"httpMethod\":");
	alb_out_text(&o, r->method != NULL ? r->method : "GET");
	alb_out_lit(&o, ",\"path\":");
	alb_out_text(&o, r->path != NULL ? r->path : "/");
	alb_out_lit(&o, ",\"queryStringParameters\":");
	alb_out_list(&o, &r->query, 0, 0);
	alb_out_lit(&o, ",\"multiValueQueryStringParameters\":");
	alb_out_list(&o, &r->query, 0, 1);
	alb_out_lit(&o, ",\"headers\":");
	alb_out_list(&o, &r->headers, 1, 0);
	alb_out_lit(&o, ",\"multiValueHeaders\":");
	alb_out_list(&o, &r->headers, 1, 1);
	alb_out_lit(&o, ",\"body\":");
	if (r->body_len == 0 || r->body == NULL)
		alb_out_lit(&o, "\"\",\"isBase64Encoded\":false}");
	else if (http_is_valid_utf8(r->body, r->body_len)) {
		alb_out_utf8(&o, (const char *)r->body, r->body_len);
		alb_out_lit(&o, ",\"isBase64Encoded\":false}");
	} else {
		size_t blen;

		b64 = http_base64_encode(r->body, r->body_len, &blen);
		alb_out_utf8(&o, b64, blen);
		free(b64);
		alb_out_lit(&o, ",\"isBase64Encoded\":true}");
	}
	o.p[o.n] = '\0';
	if (len != NULL)
		*len = o.n;
	return o.p;
}

char *
alb_response_encode(const struct alb_response *r, size_t *len)
{
	json_t *o = json_object(), *h = json_object();
	char *desc;

	json_object_set_new(o, "statusCode", json_integer(r->status));
	if (r->status_description != NULL)
		json_object_set_new(o, "statusDescription", alb_text(r->status_description));
	else {
		xasprintf(&desc, "%d %s", r->status, http_reason(r->status));
		json_object_set_new(o, "statusDescription", json_string(desc));
		free(desc);
	}
	/*
	 * The single-value form can hold one value per name: a repeated header
	 * keeps its last value (as the daemon's events do). A function that
	 * must send two Set-Cookie headers answers in the multi-value form.
	 */
	if (r->multi_value) {
		alb_add_list(NULL, h, &r->headers, 1, 0);
		json_object_set_new(o, "multiValueHeaders", h);
	} else {
		alb_add_list(h, NULL, &r->headers, 1, 0);
		json_object_set_new(o, "headers", h);
	}
	alb_set_body(o, r->body, r->body_len);
	return alb_dump(o, len);
}

/* A header value as a string: functions written in JavaScript send numbers. */
static int
alb_scalar(json_t *v, char *buf, size_t len, const char **out)
{
	/* A NUL would cut the C string: "api\u0000.evil" must not become "api". */
	if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	if (json_is_string(v))
		*out = json_string_value(v);
	else if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = buf;
	} else if (json_is_real(v)) {
		snprintf(buf, len, "%.17g", json_real_value(v));
		*out = buf;
	} else if (json_is_boolean(v))
		*out = json_is_true(v) ? "true" : "false";
	else
		return -1;
	return 0;
}

/*
 * Read a single- or multi-value object into l. null members (and a null
 * object) are skipped; a value that is neither a string nor a scalar is an
 * error naming the field.
 */
static int
alb_read_list(json_t *o, const char *field, int multi, struct kvlist *l, char *err, size_t errlen)
{
	const char *k, *s;
	char buf[64];
	json_t *v, *e;
	size_t i;

	if (o == NULL || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return errf(err, errlen, "%s is not an object", field);
	json_object_foreach(o, k, v)
	{
		if (json_is_null(v))
			continue;
		if (multi && json_is_array(v)) {
			json_array_foreach(v, i, e)
			{
				if (json_is_null(e))
					continue;
				if (alb_scalar(e, buf, sizeof buf, &s) == -1)
					return errf(err, errlen,
					            "%s.%s[%zu] is not a string (or holds a NUL)",
					            field, k, i);
				kvlist_add(l, k, s);
			}
			continue;
		}
		/* A single value where a list belongs is taken as a list of one. */
		if (alb_scalar(v, buf, sizeof buf, &s) == -1)
			return errf(err, errlen, "%s.%s is not a string (or holds a NUL)", field,
			            k);
		kvlist_add(l, k, s);
	}
	return 0;
}

/* Read body and isBase64Encoded of o. */
static int
alb_read_body(json_t *o, unsigned char **body, size_t *body_len, char *err, size_t errlen)
{
	json_t *b = json_object_get(o, "body"), *b64 = json_object_get(o, "isBase64Encoded");
	const char *s;
	size_t n;

	*body = NULL;
	*body_len = 0;
	if (b == NULL || json_is_null(b))
		return 0;
	if (!json_is_string(b))
		return errf(err, errlen, "body is not a string");
	if (b64 != NULL && !json_is_null(b64) && !json_is_boolean(b64))
		return errf(err, errlen, "isBase64Encoded is not a boolean");
	s = json_string_value(b);
	n = json_string_length(b);
	if (json_is_true(b64)) {
		*body = http_base64_decode(s, n, body_len);
		if (*body == NULL)
			return errf(err, errlen, "body is not valid base64");
		if (*body_len == 0) {
			free(*body);
			*body = NULL;
		}
		return 0;
	}
	if (n > 0) {
		*body = xmalloc(n + 1);
		memcpy(*body, s, n);
		(*body)[n] = '\0';
		*body_len = n;
	}
	return 0;
}

static json_t *
alb_load(const char *json, size_t len, const char *what, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o;

	o = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (o == NULL) {
		errf(err, errlen, "%s is not valid JSON: %s (line %d, column %d)", what, jerr.text,
		     jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(o)) {
		errf(err, errlen, "%s is not a JSON object", what);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* An optional string member: NULL when missing or null, -1 when not a string. */
static int
alb_opt_string(json_t *o, const char *key, char **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	*out = xstrdup(json_string_value(v));
	return 0;
}

int
alb_request_decode(const char *json, size_t len, struct alb_request *r, char *err, size_t errlen)
{
	json_t *o, *ctx, *sub, *mv;

	alb_request_init(r);
	if ((o = alb_load(json, len, "event", err, errlen)) == NULL)
		return -1;
	if (alb_opt_string(o, "httpMethod", &r->method) == -1 || r->method == NULL ||
	    *r->method == '\0') {
		errf(err, errlen, "event has no httpMethod string");
		goto fail;
	}
	if (alb_opt_string(o, "path", &r->path) == -1) {
		errf(err, errlen, "path is not a string");
		goto fail;
	}
	if (r->path == NULL)
		r->path = xstrdup("/");

	/* The multi-value forms carry everything: prefer them when present. */
	mv = json_object_get(o, "multiValueQueryStringParameters");
	if (mv != NULL && !json_is_null(mv)) {
		r->multi_value = 1;
		if (alb_read_list(mv, "multiValueQueryStringParameters", 1, &r->query, err,
		                  errlen) == -1)
			goto fail;
	} else if (alb_read_list(json_object_get(o, "queryStringParameters"),
	                         "queryStringParameters", 0, &r->query, err, errlen) == -1)
		goto fail;
	mv = json_object_get(o, "multiValueHeaders");
	if (mv != NULL && !json_is_null(mv)) {
		r->multi_value = 1;
		if (alb_read_list(mv, "multiValueHeaders", 1, &r->headers, err, errlen) == -1)
			goto fail;
	} else if (alb_read_list(json_object_get(o, "headers"), "headers", 0, &r->headers, err,
	                         errlen) == -1)
		goto fail;

	if (alb_read_body(o, &r->body, &r->body_len, err, errlen) == -1)
		goto fail;

	ctx = json_object_get(o, "requestContext");
	if (ctx != NULL && !json_is_null(ctx) && !json_is_object(ctx)) {
		errf(err, errlen, "requestContext is not an object");
		goto fail;
	}
	sub = json_object_get(ctx, "elb");
	if (json_is_object(sub)) {
		r->from_elb = 1;
		if (alb_opt_string(sub, "targetGroupArn", &r->target_group_arn) == -1) {
			errf(err, errlen, "requestContext.elb.targetGroupArn is not a string");
			goto fail;
		}
	}
	sub = json_object_get(ctx, "instance");
	if (json_is_object(sub) && (alb_opt_string(sub, "hostname", &r->instance_hostname) == -1 ||
	                            alb_opt_string(sub, "instance_id", &r->instance_id) == -1)) {
		errf(err, errlen, "requestContext.instance members are not strings");
		goto fail;
	}
	json_decref(o);
	return 0;

fail:
	json_decref(o);
	alb_request_free(r);
	return -1;
}

/* statusCode: an integer, or a string of digits (some functions send "200"). */
static int
alb_read_status(json_t *v, int *status)
{
	const char *s;
	char *end;
	double d;
	long n;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 100 || json_integer_value(v) > 599)
			return -1;
		n = (long)json_integer_value(v);
	} else if (json_is_real(v)) {
		/* 200.0 is a number a JSON encoder may well produce. */
		d = json_real_value(v);
		if (!(d >= 100 && d <= 599) || d != (double)(long)d)
			return -1;
		n = (long)d;
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (s[0] < '0' || s[0] > '9')
			return -1;
		errno = 0;
		n = strtol(s, &end, 10);
		if (*end != '\0' || errno != 0)
			return -1;
	} else
		return -1;
	if (n < 100 || n > 599)
		return -1;
	*status = (int)n;
	return 0;
}

int
alb_response_decode(const char *json, size_t len, struct alb_response *r, char *err, size_t errlen)
{
	json_t *o, *v, *mv;

	alb_response_init(r);
	if ((o = alb_load(json, len, "response", err, errlen)) == NULL)
		return -1;
	v = json_object_get(o, "statusCode");
	if (v == NULL || json_is_null(v)) {
		errf(err, errlen, "response has no statusCode");
		goto fail;
	}
	if (alb_read_status(v, &r->status) == -1) {
		errf(err, errlen, "statusCode is not a number from 100 to 599");
		goto fail;
	}
	if (alb_opt_string(o, "statusDescription", &r->status_description) == -1) {
		errf(err, errlen, "statusDescription is not a string");
		goto fail;
	}
	/* Both forms may be present (the samples have both): multi wins. */
	mv = json_object_get(o, "multiValueHeaders");
	if (mv != NULL && !json_is_null(mv)) {
		r->multi_value = 1;
		if (alb_read_list(mv, "multiValueHeaders", 1, &r->headers, err, errlen) == -1)
			goto fail;
	} else if (alb_read_list(json_object_get(o, "headers"), "headers", 0, &r->headers, err,
	                         errlen) == -1)
		goto fail;
	if (alb_read_body(o, &r->body, &r->body_len, err, errlen) == -1)
		goto fail;
	json_decref(o);
	return 0;

fail:
	json_decref(o);
	alb_response_free(r);
	return -1;
}

int
alb_prelude_decode(const char *json, size_t len, struct alb_response *r, char *err, size_t errlen)
{
	struct kvlist single = KVLIST_INIT;
	json_t *o, *v, *mv;
	size_t i, j;

	alb_response_init(r);
	if ((o = alb_load(json, len, "prelude", err, errlen)) == NULL)
		return -1;
	r->status = 200;
	v = json_object_get(o, "statusCode");
	if (v != NULL && !json_is_null(v) && alb_read_status(v, &r->status) == -1) {
		errf(err, errlen, "statusCode is not a number from 100 to 599");
		goto fail;
	}
	/* A name in multiValueHeaders takes all its values from there. */
	mv = json_object_get(o, "multiValueHeaders");
	if (mv != NULL && !json_is_null(mv) &&
	    alb_read_list(mv, "multiValueHeaders", 1, &r->headers, err, errlen) == -1)
		goto fail;
	if (alb_read_list(json_object_get(o, "headers"), "headers", 0, &single, err, errlen) == -1)
		goto fail;
	for (i = 0; i < single.n; i++)
		if (kvlist_get(&r->headers, single.v[i].name) == NULL)
			kvlist_add(&r->headers, single.v[i].name, single.v[i].value);
	v = json_object_get(o, "cookies");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_array(v)) {
			errf(err, errlen, "cookies is not an array");
			goto fail;
		}
		for (j = 0; j < json_array_size(v); j++) {
			json_t *c = json_array_get(v, j);

			if (!json_is_string(c)) {
				errf(err, errlen, "cookies holds a value that is not a string");
				goto fail;
			}
			kvlist_add(&r->headers, "Set-Cookie", json_string_value(c));
		}
	}
	kvlist_free(&single);
	json_decref(o);
	return 0;

fail:
	kvlist_free(&single);
	json_decref(o);
	alb_response_free(r);
	return -1;
}

int
alb_any_response_decode(const char *payload, size_t len, struct alb_response *r, char *err,
                        size_t errlen)
{
	static const char nuls[ALB_PRELUDE_SEPARATOR_LEN];
	const char *sep = memmem(payload, len, nuls, sizeof nuls);
	size_t off;

	/* JSON text never holds a NUL byte: 8 of them end a prelude. */
	if (sep == NULL)
		return alb_response_decode(payload, len, r, err, errlen);
	if (alb_prelude_decode(payload, (size_t)(sep - payload), r, err, errlen) != 0)
		return -1;
	off = (size_t)(sep - payload) + sizeof nuls;
	r->body_len = len - off;
	if (r->body_len > 0) {
		r->body = xmalloc(r->body_len);
		memcpy(r->body, payload + off, r->body_len);
	}
	return 0;
}
