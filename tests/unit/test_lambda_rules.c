/*
 * test_lambda_rules.c: the function's pure rules: Host validation and the
 * parameter key, the prefix, the signer (headers, basic, rewrite, queries,
 * request-target escaping), the parameters file parser, SSM error types.
 */
#include <string.h>

#include "fnconf.h"
#include "handler.h"
#include "hostcheck.h"
#include "kvlist.h"
#include "origin.h"
#include "paramfile.h"
#include "params.h"
#include "signer.h"
#include "ssm.h"
#include "tap.h"

static void
test_hosts(void)
{
	static const char *bad[] = {"",
	                            "/",
	                            "..",
	                            "*",
	                            "a_b.com",
	                            "[::1]",
	                            "[::1]:443",
	                            "::1",
	                            "a..b",
	                            ".a",
	                            "a.",
	                            "-a.com",
	                            "a-.com",
	                            "a b",
	                            "a\x01"
	                            "b",
	                            "1.2.3.999",
	                            "1.2.3",
	                            "01.2.3.4",
	                            "a.com:",
	                            "a.com:0",
	                            "a.com:99999",
	                            "a.com:+80",
	                            "a.com:80:80",
	                            "a.com/x",
	                            "a%2e.com",
	                            "xn--é.com",
	                            "a.123",
	                            "a.com:0443"};
	struct host_target t;
	char err[256], label[80];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		tap_ok(hostcheck_parse(bad[i], &t, err, sizeof err) == -1, "host \"%s\" refused",
		       bad[i]);
	tap_ok(hostcheck_parse(NULL, &t, err, sizeof err) == -1, "no Host refused");
	memset(label, 'a', 63);
	label[63] = '\0';
	strcat(label, ".com");
	tap_ok(hostcheck_parse(label, &t, err, sizeof err) == 0, "63-character label accepted");
	label[0] = 'b';
	memmove(label + 1, label, strlen(label) + 1);
	tap_ok(hostcheck_parse(label, &t, err, sizeof err) == -1, "64-character label refused");

	tap_ok(hostcheck_parse("API.GitHub.com", &t, err, sizeof err) == 0, "mixed case accepted");
	tap_is_str(t.host, "api.github.com", "host lower-cased");
	tap_is_str(t.key, "api.github.com", "key without port");
	tap_ok(t.port == 443, "default port 443");
	tap_ok(hostcheck_parse("api.github.com:80", &t, err, sizeof err) == 0 && t.port == 443 &&
	           strcmp(t.key, "api.github.com") == 0,
	       "port 80 means the default");
	tap_ok(hostcheck_parse("api.github.com:443", &t, err, sizeof err) == 0 && t.port == 443 &&
	           strcmp(t.key, "api.github.com") == 0,
	       "port 443 means the default");
	tap_ok(hostcheck_parse("Example.test:8443", &t, err, sizeof err) == 0 && t.port == 8443,
	       "other port kept");
	tap_is_str(t.key, "example.test_8443", "other port keyed host_port");
	tap_ok(hostcheck_parse("10.0.0.1", &t, err, sizeof err) == 0, "IPv4 literal accepted");
	tap_ok(hostcheck_parse("255.255.255.255:1", &t, err, sizeof err) == 0,
	       "IPv4 literal with port accepted");
	tap_ok(hostcheck_parse("localhost", &t, err, sizeof err) == 0, "single label accepted");
	tap_ok(hostcheck_parse("3com.example", &t, err, sizeof err) == 0,
	       "digit-leading label accepted");
}

static void
test_prefix(void)
{
	char err[256], *p;

	p = fnconf_prefix("", err, sizeof err);
	tap_is_str(p, "", "empty prefix");
	free(p);
	p = fnconf_prefix("/", err, sizeof err);
	tap_is_str(p, "", "\"/\" is the empty prefix");
	free(p);
	p = fnconf_prefix("//prod/tokens//", err, sizeof err);
	tap_is_str(p, "prod/tokens", "leading and trailing slashes tolerated");
	free(p);
	p = fnconf_prefix("a-b_c.d", err, sizeof err);
	tap_is_str(p, "a-b_c.d", "allowed characters");
	free(p);
	tap_ok(fnconf_prefix("a b", err, sizeof err) == NULL, "space refused");
	tap_ok(fnconf_prefix("a:b", err, sizeof err) == NULL, "colon refused");
	tap_ok(fnconf_prefix("a//b", err, sizeof err) == NULL, "empty segment refused");
	p = params_base("", "api.github.com");
	tap_is_str(p, "/api.github.com", "path with empty prefix");
	free(p);
	p = params_base("prod", "h_8443");
	tap_is_str(p, "/prod/h_8443", "path with prefix");
	free(p);
}

static char *
sign(const char *const *params, const char *path, const char *const *query, struct kvlist *headers)
{
	struct kvlist p = KVLIST_INIT, q = KVLIST_INIT;
	char *target = NULL, err[256];
	size_t i;

	for (i = 0; params[i] != NULL; i += 2)
		kvlist_add(&p, params[i], params[i + 1]);
	for (i = 0; query != NULL && query[i] != NULL; i += 2)
		kvlist_add(&q, query[i], query[i + 1]);
	if (signer_apply(&p, headers, path, &q, &target, err, sizeof err) != 0) {
		tap_diag("signer_apply: %s", err);
		target = NULL;
	}
	kvlist_free(&p);
	kvlist_free(&q);
	return target;
}

static void
test_signer(void)
{
	struct kvlist h = KVLIST_INIT;
	char *t;

	kvlist_add(&h, "host", "api.example.test");
	kvlist_add(&h, "x-api-key", "from-client");
	kvlist_add(&h, "X-API-KEY", "again");
	t = sign((const char *const[]){"headers/X-Api-Key", "secret", NULL}, "/v1",
	         (const char *const[]){"a", "%20b", "flag", "", NULL}, &h);
	tap_is_str(t, "/v1?a=%20b&flag=", "client path and query kept byte for byte");
	tap_ok(kvlist_count(&h, "x-api-key") == 1, "header replaced, no duplicate");
	tap_is_str(kvlist_get(&h, "X-Api-Key"), "secret", "header value set");
	free(t);

	t = sign((const char *const[]){"basic/username", "chooblarin", "basic/password",
	                               "very-secret", "headers/Authorization", "token x", NULL},
	         "/", NULL, &h);
	tap_is_str(kvlist_get(&h, "Authorization"), "Basic Y2hvb2JsYXJpbjp2ZXJ5LXNlY3JldA==",
	           "basic wins over headers/Authorization");
	tap_ok(kvlist_count(&h, "authorization") == 1, "one Authorization");
	free(t);
	kvlist_free(&h);

	t = sign((const char *const[]){"basic/password", "p", NULL}, "/", NULL, &h);
	tap_ok(kvlist_get(&h, "Authorization") == NULL, "password alone does nothing");
	free(t);

	t = sign((const char *const[]){"rewrite/path", "very/%20secret%2f/path", NULL},
	         "/dummy/path", (const char *const[]){"k", "v", NULL}, &h);
	tap_is_str(t, "/very/%20secret%2f/path?k=v", "rewrite verbatim, '/' added, query kept");
	free(t);

	t = sign((const char *const[]){"queries/q", "very secret%!#WE^T&*", NULL}, "/x",
	         (const char *const[]){"a", "1", "q", "client", "b", "%2F", "q", "again", NULL},
	         &h);
	tap_is_str(t, "/x?a=1&q=very%20secret%25%21%23WE%5ET%26%2A&b=%2F",
	           "query set in place, encoded once, duplicates dropped");
	free(t);

	t = sign((const char *const[]){"queries/access_token", "tok", NULL}, "/x",
	         (const char *const[]){"access%5Ftoken", "client", NULL}, &h);
	tap_is_str(t, "/x?access_token=tok", "client key compared decoded");
	free(t);

	t = sign((const char *const[]){"queries/k", "v", NULL}, "/x", NULL, &h);
	tap_is_str(t, "/x?k=v", "query added when absent");
	free(t);

	t = sign((const char *const[]){"other/thing", "v", NULL}, "/a b#c\x7f\xc3\xa9%41", NULL,
	         &h);
	tap_is_str(t, "/a%20b%23c%7F%C3%A9%41", "unsafe bytes escaped, escapes kept");
	free(t);

	t = sign((const char *const[]){"other/thing", "v", NULL}, "/a{b}|c\"d<e>^`\\",
	         (const char *const[]){"q", "{a}|\"x\"", NULL}, &h);
	tap_is_str(t, "/a{b}|c\"d<e>^`\\?q={a}|\"x\"", "printable bytes go as sent");
	free(t);

	t = sign((const char *const[]){"headers/Bad Name", "v", NULL}, "/", NULL, &h);
	tap_ok(t == NULL, "invalid header name refused");
	t = sign((const char *const[]){"headers/X-Ok", "a\r\nInjected: 1", NULL}, "/", NULL, &h);
	tap_ok(t == NULL, "CR/LF in a header value refused");
	kvlist_free(&h);
}

static void
test_paramfile(void)
{
	struct kvlist l = KVLIST_INIT;
	char err[256];
	const char *ok = "# tokens\n"
	                 "/api.github.com/headers/Authorization: \"token ghp_xxx\"\n"
	                 "/hooks.slack.com/rewrite/path: /services/T000/B000/XXXX\n"
	                 "/p/h_8443/queries/n: 12\n";

	tap_ok(paramfile_parse(ok, strlen(ok), &l, err, sizeof err) == 0, "valid file parsed");
	tap_ok(l.n == 3, "three parameters");
	tap_is_str(kvlist_get_exact(&l, "/hooks.slack.com/rewrite/path"),
	           "/services/T000/B000/XXXX", "plain scalar value");
	tap_is_str(kvlist_get_exact(&l, "/p/h_8443/queries/n"), "12", "number read as text");
	kvlist_free(&l);

	tap_ok(paramfile_parse("", 0, &l, err, sizeof err) == 0 && l.n == 0, "empty file: none");

#define BAD(text, line, what)                                                                      \
	do {                                                                                       \
		int r_ = paramfile_parse(text, strlen(text), &l, err, sizeof err);                 \
		tap_ok(r_ == -1 && strncmp(err, line, strlen(line)) == 0, "%s (%s)", what, err);   \
		kvlist_free(&l);                                                                   \
	} while (0)
	BAD("/a/headers/X: \"1\"\n/a/headers/Y: [1, 2]\n", "line 2:", "list value refused");
	BAD("/a/headers/X: \"1\"\n/b:\n  c: d\n", "line 2:", "mapping value refused");
	BAD("- /a/headers/X\n", "line 1:", "top-level list refused");
	BAD("/a/headers/X: 1\n/a/headers/X: 2\n", "line 2:", "duplicate refused");
	BAD("a/headers/X: 1\n", "line 1:", "name without leading '/' refused");
	BAD("/a:8443/headers/X: 1\n", "line 1:", "':' in a name refused");
	BAD("/a/headers/X: \"1\n", "line 1:", "unterminated string refused");
	BAD("/a/headers/X: 1\n---\n/b/headers/Y: 2\n", "line 2:", "second document refused");
	BAD("just text\n", "line 1:", "scalar document refused");
#undef BAD
}

static void
test_ssm_errors(void)
{
	char buf[64];

	ssm_error_type("com.amazonaws.ssm#ThrottlingException", buf, sizeof buf);
	tap_is_str(buf, "ThrottlingException", "namespaced __type");
	ssm_error_type("AccessDeniedException:http://internal.amazon.com/coral/", buf, sizeof buf);
	tap_is_str(buf, "AccessDeniedException", "X-Amzn-ErrorType suffix");
	ssm_error_type(NULL, buf, sizeof buf);
	tap_is_str(buf, "UnknownError", "missing type");
}

static void
test_connect_to(void)
{
	static const char *good[] = {"api.example.test:443:127.0.0.1:8443",
	                             ":443:proxy.internal:3128",
	                             "a.test::[::1]:443",
	                             "a.test:443:b.test:",
	                             "a.test:443::8443",
	                             " a.test:443:127.0.0.1:1 , b.test:443:127.0.0.1:2 "};
	static const char *bad[] = {"nonsense",
	                            "api.example.test:notaport:127.0.0.1:1",
	                            "a.test:443:127.0.0.1:99999",
	                            "a.test:443:127.0.0.1:0",
	                            "a.test:443:127.0.0.1",
	                            "a.test:443:127.0.0.1:1:2",
	                            "a.test:443::",
	                            "a.test:443:[::1:443",
	                            "a.test:443:b/c:443",
	                            "a.test:443:127.0.0.1:1,junk"};
	struct origin *o;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		o = origin_new(good[i], 1000, 0, err, sizeof err);
		tap_ok(o != NULL, "connect-to \"%s\" accepted", good[i]);
		origin_free(o);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o = origin_new(bad[i], 1000, 0, err, sizeof err);
		tap_ok(o == NULL && strstr(err, "SSM_SIGN_PROXY_CONNECT_TO") != NULL,
		       "connect-to \"%s\" refused", bad[i]);
		origin_free(o);
	}
}

/* Events the handler must refuse before any parameter is read (params and
 * origin are NULL: touching them would crash the test). */
static void
test_handler_refusals(void)
{
	static const struct {
		const char *event;
		int status;
		const char *what;
	} cases[] = {
	    {"not json", 400, "not JSON"},
	    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":{\"host\":"
	     "\"api\\u0000.example.test\"}}",
	     400, "NUL in Host"},
	    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"headers\":{}}", 400, "no Host"},
	    {"{\"httpMethod\":\"TRACE\",\"path\":\"/\",\"headers\":{\"host\":\"a.test\"}}", 405,
	     "TRACE"},
	    {"{\"httpMethod\":\"G T\",\"path\":\"/\",\"headers\":{\"host\":\"a.test\"}}", 400,
	     "bad method"},
	    {"{\"httpMethod\":\"GET\",\"path\":\"/\",\"multiValueHeaders\":{\"host\":"
	     "[\"a.test\",\"b.test\"]}}",
	     400, "two Host headers"},
	};
	struct handler h = {NULL, NULL, 500, 6291456, 65536};
	struct handler_result r;
	size_t i, len;
	char *json;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json = handler_invoke(&h, cases[i].event, strlen(cases[i].event), 0, &r, &len);
		tap_ok(json != NULL && r.status == cases[i].status, "%s: %d", cases[i].what,
		       r.status);
		free(json);
		handler_result_free(&r);
	}
}

int
main(void)
{
	test_hosts();
	test_prefix();
	test_signer();
	test_paramfile();
	test_ssm_errors();
	test_connect_to();
	test_handler_refusals();
	return tap_done();
}
