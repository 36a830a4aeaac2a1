/*
 * test_alb.c: the ALB event codec: round trips, binary bodies, raw query
 * preservation, multi-value headers, AWS's sample events (from
 * $SSP_SHARED/testdata/alb-events, skipped visibly when absent), and
 * malformed input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alb.h"
#include "tap.h"
#include "xmalloc.h"

static void
skip(const char *what)
{
	printf("ok %d # SKIP %s: ../shared absent\n", ++tap_n, what);
}

/* The JSON value at a path of object keys, from an encoded string. */
static json_t *
parse(const char *s)
{
	json_error_t e;

	return json_loads(s, JSON_ALLOW_NUL, &e);
}

static const char *
jstr(json_t *o, const char *k1, const char *k2)
{
	json_t *v = json_object_get(o, k1);

	if (k2 != NULL)
		v = json_object_get(v, k2);
	return json_string_value(v);
}

static void
test_request_round_trip(void)
{
	struct alb_request r, d;
	char *s, err[256];
	size_t len;
	json_t *j, *a;

	alb_request_init(&r);
	r.method = xstrdup("POST");
	r.path = xstrdup("/v1/items%2Fx");
	/* a=%2B&a=+&b as the client sent it: never decoded. */
	kvlist_add(&r.query, "a", "%2B");
	kvlist_add(&r.query, "a", "+");
	kvlist_add(&r.query, "b", "");
	kvlist_add(&r.headers, "Host", "api.example.com");
	kvlist_add(&r.headers, "Set-Cookie", "a=1");
	kvlist_add(&r.headers, "set-cookie", "b=2");
	kvlist_add(&r.headers, "Content-Type", "text/plain");
	r.body = (unsigned char *)xstrdup("h\xc3\xa9llo");
	r.body_len = 6;
	r.instance_hostname = xstrdup("host1");
	r.instance_id = xstrdup("i-0123");

	s = alb_request_encode(&r, &len);
	tap_ok(s != NULL && len == strlen(s), "request encodes (%zu bytes)", len);
	j = parse(s);
	tap_is_str(jstr(j, "httpMethod", NULL), "POST", "httpMethod");
	tap_is_str(jstr(j, "path", NULL), "/v1/items%2Fx", "path kept escaped");
	tap_is_str(jstr(j, "queryStringParameters", "a"), "+", "single-value query: last value");
	a = json_object_get(json_object_get(j, "multiValueQueryStringParameters"), "a");
	tap_ok(json_array_size(a) == 2 &&
	           strcmp(json_string_value(json_array_get(a, 0)), "%2B") == 0 &&
	           strcmp(json_string_value(json_array_get(a, 1)), "+") == 0,
	       "multi-value query keeps both raw values in order");
	tap_is_str(jstr(j, "queryStringParameters", "b"), "", "key without value");
	tap_is_str(jstr(j, "headers", "set-cookie"), "b=2", "single-value header: last value");
	tap_ok(json_object_get(json_object_get(j, "headers"), "Host") == NULL &&
	           json_object_get(json_object_get(j, "headers"), "host") != NULL,
	       "header names lower-case, as an ALB sends them");
	a = json_object_get(json_object_get(j, "multiValueHeaders"), "set-cookie");
	tap_ok(json_array_size(a) == 2, "two Set-Cookie stay two in multiValueHeaders");
	tap_is_str(jstr(j, "body", NULL), "h\xc3\xa9llo", "UTF-8 body as text");
	tap_ok(json_is_false(json_object_get(j, "isBase64Encoded")), "isBase64Encoded false");
	tap_is_str(jstr(json_object_get(j, "requestContext"), "instance", "hostname"), "host1",
	           "requestContext.instance.hostname");
	tap_is_str(jstr(json_object_get(j, "requestContext"), "instance", "instance_id"), "i-0123",
	           "requestContext.instance.instance_id");
	tap_ok(json_object_get(json_object_get(j, "requestContext"), "elb") == NULL,
	       "no elb without a target group");
	json_decref(j);

	tap_ok(alb_request_decode(s, len, &d, err, sizeof err) == 0, "own event decodes");
	tap_ok(d.multi_value && !d.from_elb, "multi_value set, not from an ELB");
	tap_is_str(d.method, "POST", "method back");
	tap_is_str(d.path, "/v1/items%2Fx", "path back");
	tap_ok(d.query.n == 3 && strcmp(d.query.v[0].value, "%2B") == 0 &&
	           strcmp(d.query.v[1].value, "+") == 0 && strcmp(d.query.v[2].name, "b") == 0 &&
	           strcmp(d.query.v[2].value, "") == 0,
	       "query back raw: a=%%2B, a=+, b=");
	tap_ok(kvlist_count(&d.headers, "set-cookie") == 2 && d.headers.n == 4,
	       "headers back, two Set-Cookie");
	tap_ok(d.body_len == 6 && memcmp(d.body, "h\xc3\xa9llo", 6) == 0, "body back");
	tap_is_str(d.instance_hostname, "host1", "instance hostname back");
	tap_is_str(d.instance_id, "i-0123", "instance id back");
	alb_request_free(&d);
	free(s);

	/* With a target group, binary body, no query, no headers. */
	kvlist_free(&r.query);
	kvlist_free(&r.headers);
	free(r.body);
	r.body = xmalloc(4);
	memcpy(r.body, "\x00\xff\x80z", 4);
	r.body_len = 4;
	free(r.instance_hostname);
	free(r.instance_id);
	r.instance_hostname = r.instance_id = NULL;
	r.target_group_arn = xstrdup("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1");
	s = alb_request_encode(&r, &len);
	j = parse(s);
	tap_ok(json_is_true(json_object_get(j, "isBase64Encoded")), "binary body is base64");
	tap_is_str(jstr(j, "body", NULL), "AP+Aeg==", "base64 of the body");
	tap_is_str(jstr(json_object_get(j, "requestContext"), "elb", "targetGroupArn"),
	           r.target_group_arn, "elb.targetGroupArn when set");
	tap_ok(json_object_get(json_object_get(j, "requestContext"), "instance") == NULL,
	       "no instance when unset");
	json_decref(j);
	tap_ok(alb_request_decode(s, len, &d, err, sizeof err) == 0 && d.body_len == 4 &&
	           memcmp(d.body, "\x00\xff\x80z", 4) == 0 && d.from_elb && d.query.n == 0 &&
	           d.headers.n == 0,
	       "binary body round trip");
	alb_request_free(&d);
	free(s);

	/* Empty body. */
	free(r.body);
	r.body = NULL;
	r.body_len = 0;
	s = alb_request_encode(&r, &len);
	j = parse(s);
	tap_ok(jstr(j, "body", NULL) != NULL && *jstr(j, "body", NULL) == '\0' &&
	           json_is_false(json_object_get(j, "isBase64Encoded")),
	       "empty body is \"\"");
	json_decref(j);
	tap_ok(alb_request_decode(s, len, &d, err, sizeof err) == 0 && d.body_len == 0,
	       "empty body decodes to nothing");
	alb_request_free(&d);
	free(s);

	/* A header byte outside UTF-8 (obs-text) still makes an event. */
	kvlist_add(&r.headers, "X-Latin", "caf\xe9");
	s = alb_request_encode(&r, &len);
	tap_ok(alb_request_decode(s, len, &d, err, sizeof err) == 0 &&
	           strcmp(kvlist_get(&d.headers, "x-latin"), "caf\xc3\xa9") == 0,
	       "non-UTF-8 header value taken as ISO-8859-1");
	alb_request_free(&d);
	free(s);
	alb_request_free(&r);
}

static void
test_response(void)
{
	struct alb_response r, d;
	char *s, err[256];
	size_t len;
	json_t *j, *a;

	alb_response_init(&r);
	r.status = 404;
	kvlist_add(&r.headers, "Set-Cookie", "a=1");
	kvlist_add(&r.headers, "Content-Type", "text/html");
	kvlist_add(&r.headers, "set-cookie", "b=2");
	r.body = (unsigned char *)xstrdup("missing");
	r.body_len = 7;

	s = alb_response_encode(&r, &len);
	j = parse(s);
	tap_ok(json_integer_value(json_object_get(j, "statusCode")) == 404, "statusCode");
	tap_is_str(jstr(j, "statusDescription", NULL), "404 Not Found",
	           "statusDescription built from the reason phrase");
	tap_is_str(jstr(j, "headers", "Set-Cookie"), "b=2",
	           "single-value form keeps the last of a repeated header");
	tap_ok(json_object_get(j, "multiValueHeaders") == NULL, "no multiValueHeaders");
	json_decref(j);
	tap_ok(alb_response_decode(s, len, &d, err, sizeof err) == 0 && d.status == 404 &&
	           !d.multi_value && d.headers.n == 2 && d.body_len == 7 &&
	           strcmp(d.status_description, "404 Not Found") == 0,
	       "single-value response round trip");
	alb_response_free(&d);
	free(s);

	r.multi_value = 1;
	r.status = 200;
	r.status_description = xstrdup("200 Fine");
	free(r.body);
	r.body = xmalloc(3);
	memcpy(r.body, "\xff\xfe\x00", 3);
	r.body_len = 3;
	s = alb_response_encode(&r, &len);
	j = parse(s);
	a = json_object_get(json_object_get(j, "multiValueHeaders"), "Set-Cookie");
	tap_ok(json_array_size(a) == 2 && json_object_get(j, "headers") == NULL,
	       "multi-value form: two Set-Cookie, no headers");
	tap_is_str(jstr(j, "statusDescription", NULL), "200 Fine", "statusDescription given");
	tap_ok(json_is_true(json_object_get(j, "isBase64Encoded")), "binary response is base64");
	json_decref(j);
	tap_ok(alb_response_decode(s, len, &d, err, sizeof err) == 0 && d.multi_value &&
	           kvlist_count(&d.headers, "set-cookie") == 2 && d.body_len == 3 &&
	           memcmp(d.body, "\xff\xfe\x00", 3) == 0,
	       "multi-value binary response round trip");
	alb_response_free(&d);
	free(s);
	alb_response_free(&r);
}

static void
response_ok(const char *json, int status, const char *what)
{
	struct alb_response d;
	char err[256] = "";
	int rc = alb_response_decode(json, strlen(json), &d, err, sizeof err);

	if (!tap_ok(rc == 0 && d.status == status, "%s", what))
		tap_diag("%s", err);
	alb_response_free(&d);
}

static void
response_bad(const char *json, const char *want, const char *what)
{
	struct alb_response d;
	char err[256] = "";
	int rc = alb_response_decode(json, strlen(json), &d, err, sizeof err);

	if (!tap_ok(rc == -1 && strstr(err, want) != NULL && d.headers.n == 0 && d.body == NULL,
	            "%s", what))
		tap_diag("rc %d, err \"%s\", want \"%s\"", rc, err, want);
}

static void
request_bad(const char *json, const char *want, const char *what)
{
	struct alb_request d;
	char err[256] = "";
	int rc = alb_request_decode(json, strlen(json), &d, err, sizeof err);

	if (!tap_ok(rc == -1 && strstr(err, want) != NULL && d.method == NULL && d.path == NULL,
	            "%s", what))
		tap_diag("rc %d, err \"%s\", want \"%s\"", rc, err, want);
}

static void
test_decode_edges(void)
{
	struct alb_request q;
	struct alb_response d;
	char err[256];
	const char *js;

	response_ok("{\"statusCode\":\"201\"}", 201, "numeric string statusCode");
	response_ok("{\"statusCode\":204.0,\"body\":null}", 204, "200.0-style statusCode");
	response_bad("{\"body\":\"x\"}", "statusCode", "missing statusCode");
	response_bad("{\"statusCode\":null}", "statusCode", "null statusCode");
	response_bad("{\"statusCode\":99}", "100 to 599", "statusCode 99");
	response_bad("{\"statusCode\":600}", "100 to 599", "statusCode 600");
	response_bad("{\"statusCode\":\"2OO\"}", "100 to 599", "statusCode not a number");
	response_bad("{\"statusCode\":\"\"}", "100 to 599", "empty statusCode");
	response_bad("{\"statusCode\":200.5}", "100 to 599", "fractional statusCode");
	response_bad("{\"statusCode\":true}", "100 to 599", "boolean statusCode");
	response_bad("{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"%%%\"}", "base64",
	             "bad base64 body");
	response_bad("{\"statusCode\":200,\"body\":{}}", "body", "body not a string");
	response_bad("{\"statusCode\":200,\"headers\":[]}", "headers", "headers not an object");
	response_bad("{\"statusCode\":200,\"headers\":{\"a\":{}}}", "headers.a",
	             "header value an object");
	response_bad("[1]", "not a JSON object", "response not an object");
	response_bad("{\"statusCode\":", "not valid JSON", "truncated JSON");

	js = "{\"statusCode\":200,\"headers\":{\"Content-Length\":5,\"X-A\":\"1\",\"X-N\":null},"
	     "\"body\":\"hello\"}";
	tap_ok(alb_response_decode(js, strlen(js), &d, err, sizeof err) == 0 &&
	           strcmp(kvlist_get(&d.headers, "content-length"), "5") == 0 &&
	           kvlist_get(&d.headers, "x-n") == NULL && d.status_description == NULL,
	       "number header value taken as a string, null skipped");
	alb_response_free(&d);
	js = "{\"statusCode\":200,\"headers\":{\"X-A\":\"single\"},"
	     "\"multiValueHeaders\":{\"X-A\":[\"m1\",\"m2\"]}}";
	tap_ok(alb_response_decode(js, strlen(js), &d, err, sizeof err) == 0 && d.multi_value &&
	           d.headers.n == 2 && strcmp(d.headers.v[0].value, "m1") == 0,
	       "multiValueHeaders win over headers");
	alb_response_free(&d);

	request_bad("[]", "not a JSON object", "event an array");
	request_bad("null", "not a JSON object", "event null");
	request_bad("\"GET\"", "not a JSON object", "event a string");
	request_bad("{\"httpMethod\":", "not valid JSON", "truncated event");
	request_bad("{\"path\":\"/\"}", "httpMethod", "no httpMethod");
	request_bad("{\"httpMethod\":7}", "httpMethod", "httpMethod not a string");
	request_bad("{\"httpMethod\":\"GET\",\"path\":[]}", "path", "path not a string");
	request_bad("{\"httpMethod\":\"GET\",\"isBase64Encoded\":true,\"body\":\"ab!d\"}", "base64",
	            "bad base64 body");
	request_bad("{\"httpMethod\":\"GET\",\"multiValueHeaders\":{\"a\":[{}]}}",
	            "multiValueHeaders.a[0]", "multi-value header element an object");
	request_bad("{\"httpMethod\":\"GET\",\"queryStringParameters\":\"a=b\"}",
	            "queryStringParameters", "query not an object");
	request_bad("{\"httpMethod\":\"GET\",\"requestContext\":5}", "requestContext",
	            "requestContext not an object");

	js = "{\"httpMethod\":\"GET\",\"path\":null,\"headers\":null,\"queryStringParameters\":"
	     "null,\"multiValueHeaders\":null,\"body\":null,\"isBase64Encoded\":null,"
	     "\"requestContext\":null}";
	tap_ok(alb_request_decode(js, strlen(js), &q, err, sizeof err) == 0 &&
	           strcmp(q.path, "/") == 0 && q.headers.n == 0 && q.query.n == 0 &&
	           q.body == NULL && !q.multi_value && !q.from_elb,
	       "null fields tolerated");
	alb_request_free(&q);
	js = "{\"httpMethod\":\"GET\",\"isBase64Encoded\":true,\"body\":\"aGk=\","
	     "\"multiValueQueryStringParameters\":{\"k\":\"v\"}}";
	tap_ok(alb_request_decode(js, strlen(js), &q, err, sizeof err) == 0 && q.body_len == 2 &&
	           memcmp(q.body, "hi", 2) == 0 && q.multi_value && q.query.n == 1,
	       "base64 body decoded; a lone value in a multi-value field accepted");
	alb_request_free(&q);
}

static char *
read_sample(const char *name, size_t *len)
{
	const char *shared = getenv("SSP_SHARED");
	char *path, *buf = NULL;
	size_t cap = 0, n;
	FILE *f;

	xasprintf(&path, "%s/testdata/alb-events/%s", shared != NULL ? shared : "../shared", name);
	f = fopen(path, "rb");
	free(path);
	if (f == NULL)
		return NULL;
	*len = 0;
	for (;;) {
		if (cap - *len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + *len, 1, cap - *len - 1, f);
		if (n == 0)
			break;
		*len += n;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

static void
test_samples(void)
{
	struct alb_request q;
	struct alb_response p;
	char *s, err[256];
	size_t len;

	s = read_sample("alb-lambda-target-request-headers-only.json", &len);
	if (s == NULL)
		skip("single-value ALB sample event");
	else {
		tap_ok(alb_request_decode(s, len, &q, err, sizeof err) == 0,
		       "single-value sample decodes");
		tap_ok(strcmp(q.method, "GET") == 0 && strcmp(q.path, "/") == 0 && !q.multi_value &&
		           q.from_elb,
		       "single-value sample: GET /, not multi-value, from an ELB");
		tap_is_str(q.target_group_arn,
		           "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/"
		           "lambda-target/abcdefg",
		           "single-value sample: target group");
		tap_ok(q.query.n == 1 && strcmp(q.query.v[0].name, "key") == 0 &&
		           strcmp(q.query.v[0].value, "hello") == 0,
		       "single-value sample: key=hello");
		tap_ok(q.headers.n == 10, "single-value sample: ten headers");
		tap_is_str(kvlist_get(&q.headers, "Host"),
		           "lambda-test-alb-1334523864.us-east-1.elb.amazonaws.com",
		           "single-value sample: host");
		tap_is_str(kvlist_get(&q.headers, "x-myheader"), "123",
		           "single-value sample: x-myheader");
		tap_ok(q.body_len == 0, "single-value sample: no body");
		alb_request_free(&q);
		free(s);
	}

	s = read_sample("alb-lambda-target-request-multivalue-headers.json", &len);
	if (s == NULL)
		skip("multi-value ALB sample event");
	else {
		tap_ok(alb_request_decode(s, len, &q, err, sizeof err) == 0,
		       "multi-value sample decodes");
		tap_ok(q.multi_value && q.from_elb && strcmp(q.method, "GET") == 0,
		       "multi-value sample: multi_value, from an ELB");
		tap_is_str(q.target_group_arn,
		           "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/"
		           "lambda-target/abcdefgh",
		           "multi-value sample: target group");
		tap_ok(q.query.n == 1 && strcmp(q.query.v[0].value, "hello") == 0,
		       "multi-value sample: key=hello");
		tap_ok(q.headers.n == 10 && strcmp(q.headers.v[0].name, "accept") == 0,
		       "multi-value sample: ten headers, in order");
		tap_is_str(kvlist_get(&q.headers, "x-amzn-trace-id"),
		           "Root=1-5c34e7d4-00ca239424b68028d4c56d68",
		           "multi-value sample: trace id");
		alb_request_free(&q);
		free(s);
	}

	s = read_sample("alb-lambda-target-response.json", &len);
	if (s == NULL)
		skip("ALB sample response");
	else {
		tap_ok(alb_response_decode(s, len, &p, err, sizeof err) == 0,
		       "sample response decodes");
		tap_ok(p.status == 200 && p.multi_value, "sample response: 200, multi-value");
		tap_is_str(p.status_description, "200 OK", "sample response: description");
		tap_ok(kvlist_count(&p.headers, "set-cookie") == 2 && p.headers.n == 3,
		       "sample response: two Set-Cookie from multiValueHeaders, not headers");
		tap_is_str(p.headers.v[1].value, "cookie-name=cookie-value;Expires=May 8, 2019",
		           "sample response: second cookie");
		tap_ok(p.body_len == 17 && memcmp(p.body, "Hello from Lambda", 17) == 0,
		       "sample response: body");
		alb_response_free(&p);
		free(s);
	}
}

/*
 * The event is written without jansson (alb.c): it must be exactly what
 * json_dumps(JSON_COMPACT) writes for what it says, so jansson reading it
 * and writing it again must give the same bytes back (escapes, key order,
 * no duplicate keys), with tricky bytes everywhere.
 */
static void
test_request_encoding_is_janssons(void)
{
	struct alb_request r;
	static const unsigned char text_body[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\0end";
	char *s, *again;
	size_t len;
	json_t *j;
	int pass;

	for (pass = 0; pass < 3; pass++) {
		alb_request_init(&r);
		r.method = xstrdup("PATCH");
		r.path = xstrdup("/a\"b\\c/\x01");
		kvlist_add(&r.query, "k", "1");
		kvlist_add(&r.query, "K", "2");
		kvlist_add(&r.query, "k", "3\"");
		kvlist_add(&r.query, "latin\xe9", "v\xff");
		kvlist_add(&r.headers, "X-Dup", "a");
		kvlist_add(&r.headers, "x-dup", "b\t");
		kvlist_add(&r.headers, "Host", "h");
		kvlist_add(&r.headers, "X-Obs\xe9", "\xe9t\xe9");
		kvlist_add(&r.headers, "X-DUP", "c");
		if (pass == 0) {
			r.body = xmalloc(sizeof text_body - 1);
			memcpy(r.body, text_body, sizeof text_body - 1);
			r.body_len = sizeof text_body - 1;
			r.target_group_arn = xstrdup("arn:x");
			r.instance_hostname = xstrdup("h\"ost");
		} else if (pass == 1) {
			r.body = xmalloc(3);
			memcpy(r.body, "\xff\x00\x80", 3);
			r.body_len = 3;
			r.instance_id = xstrdup("i-1");
		}
		s = alb_request_encode(&r, &len);
		j = json_loadb(s, len, JSON_ALLOW_NUL, NULL);
		again = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
		tap_ok(again != NULL && strcmp(again, s) == 0 && strlen(s) == len,
		       "event %d is jansson's compact JSON, byte for byte", pass);
		if (again == NULL || strcmp(again, s) != 0)
			tap_diag("ours:    %s\njansson: %s", s, again ? again : "(does not parse)");
		if (pass == 0) {
			json_t *m = json_object_get(j, "multiValueHeaders");

			tap_ok(json_array_size(json_object_get(m, "x-dup")) == 3 &&
			           strcmp(json_string_value(json_object_get(
			                      json_object_get(j, "headers"), "x-dup")),
			                  "c") == 0,
			       "headers grouped ignoring case, the last value single");
			tap_ok(json_array_size(json_object_get(
			           json_object_get(j, "multiValueQueryStringParameters"), "k")) ==
			           2,
			       "query keys grouped exactly");
			tap_ok(json_string_length(json_object_get(j, "body")) ==
			           sizeof text_body - 1,
			       "a NUL in a UTF-8 body is kept");
		}
		free(again);
		json_decref(j);
		free(s);
		alb_request_free(&r);
	}
}

/* HTTP integration responses: what a streaming function writes. */
static void
test_integration_response(void)
{
	static const char whole[] = "{\"statusCode\":201,\"headers\":{\"A\":\"1\",\"B\":\"x\"},"
	                            "\"multiValueHeaders\":{\"B\":[\"2\",\"3\"]},"
	                            "\"cookies\":[\"c=1\",\"d=2\"]}\0\0\0\0\0\0\0\0body\0bytes";
	struct alb_response r;
	char err[256];

	tap_ok(alb_any_response_decode(whole, sizeof whole - 1, &r, err, sizeof err) == 0,
	       "integration response decodes");
	tap_ok(r.status == 201, "integration response: status");
	tap_ok(r.body_len == 10 && memcmp(r.body, "body\0bytes", 10) == 0,
	       "integration response: raw body after the 8 NUL bytes, NULs kept");
	tap_is_str(kvlist_get(&r.headers, "A"), "1", "integration response: single header");
	tap_ok(kvlist_count(&r.headers, "B") == 2, "multiValueHeaders wins over headers for B");
	tap_ok(kvlist_count(&r.headers, "Set-Cookie") == 2, "cookies become Set-Cookie headers");
	alb_response_free(&r);

	tap_ok(alb_prelude_decode("{}", 2, &r, err, sizeof err) == 0 && r.status == 200 &&
	           r.headers.n == 0,
	       "an empty prelude means 200, no headers");
	alb_response_free(&r);
	tap_ok(alb_prelude_decode("{\"statusCode\":99}", 16, &r, err, sizeof err) == -1,
	       "a prelude with a bad status is refused");
	tap_ok(alb_prelude_decode("{\"cookies\":\"x\"}", 15, &r, err, sizeof err) == -1,
	       "cookies that are not an array are refused");
	tap_ok(alb_any_response_decode("{\"statusCode\":204}", 18, &r, err, sizeof err) == 0 &&
	           r.status == 204,
	       "without the NUL bytes it is an ALB response");
	alb_response_free(&r);
}

int
main(void)
{
	test_integration_response();
	test_request_round_trip();
	test_request_encoding_is_janssons();
	test_response();
	test_decode_edges();
	test_samples();
	return tap_done();
}
