/*
 * test_sigv4_rules.c: SigV4 rules the AWS test suite does not cover: double
 * encoding of Lambda ARNs in the path, query re-encoding, unsigned headers,
 * the signing-key cache, session tokens, sigv4_apply, errors.
 */
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "sigv4.h"
#include "tap.h"

static struct aws_creds test_creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                      NULL, 0, "test"};

/* Sign a request with the standard test credentials; caller frees out. */
static int
sign_simple(const struct aws_creds *creds, const char *method, const char *path, const char *query,
            struct kvlist *h, struct sigv4_output *out)
{
	struct sigv4_input in;
	char err[256];

	memset(&in, 0, sizeof in);
	in.method = method;
	in.path = path;
	in.query = query;
	in.headers = h;
	in.region = "us-east-1";
	in.service = "lambda";
	in.when = 1440938160; /* 2015-08-30T12:36:00Z */
	in.normalize = 1;
	return sigv4_sign(creds, &in, out, err, sizeof err);
}

int
main(void)
{
	struct kvlist h = KVLIST_INIT;
	struct sigv4_output o1, o2;
	struct sigv4_input in;
	struct aws_creds other = test_creds, tok = test_creds;
	char err[256], *e, hash[65];

	e = sigv4_uri_encode("a b/c:~d", 8, 1);
	tap_is_str(e, "a%20b/c%3A~d", "uri_encode keeps '/' when asked");
	free(e);
	e = sigv4_uri_encode("a/b", 3, 0);
	tap_is_str(e, "a%2Fb", "uri_encode encodes '/' otherwise");
	free(e);
	sigv4_sha256_hex("", 0, hash);
	tap_is_str(hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	           "sha256 of nothing");

	kvlist_add(&h, "Host", "lambda.us-east-1.amazonaws.com");
	tap_ok(sign_simple(&test_creds, "POST",
	                   "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012"
	                   "%3Afunction%3Afoo/invocations",
	                   NULL, &h, &o1) == 0,
	       "Lambda invoke signs");
	tap_ok(strstr(o1.canonical_request,
	              "\n/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A"
	              "123456789012%253Afunction%253Afoo/invocations\n") != NULL,
	       "an encoded ARN in the path is encoded again in the canonical URI");
	sigv4_output_free(&o1);

	/* Query: decoded then encoded again; '+' is literal; key alone is "k=". */
	tap_ok(sign_simple(&test_creds, "GET", "/", "b=%7e&a=+&a=%2B&c&&z=%zz", &h, &o1) == 0,
	       "query signs");
	tap_ok(strstr(o1.canonical_request, "\na=%2B&a=%2B&b=~&c=&z=%25zz\n") != NULL,
	       "query canonicalized (%s)", o1.canonical_request);
	sigv4_output_free(&o1);

	/* Unsigned headers and whitespace folding. */
	kvlist_add(&h, "User-Agent", "curl/8");
	kvlist_add(&h, "Connection", "keep-alive");
	kvlist_add(&h, "X-Amz-Target", "  AmazonSSM.GetParametersByPath\t ");
	tap_ok(sign_simple(&test_creds, "POST", "/", NULL, &h, &o1) == 0, "signs with extras");
	tap_is_str(o1.signed_headers, "host;x-amz-date;x-amz-target",
	           "User-Agent and Connection are not signed");
	tap_ok(strstr(o1.canonical_request, "x-amz-target:AmazonSSM.GetParametersByPath\n") != NULL,
	       "header value trimmed");

	/* Cache: same inputs sign the same; another secret under the same id differs. */
	tap_ok(sign_simple(&test_creds, "POST", "/", NULL, &h, &o2) == 0 &&
	           strcmp(o1.signature, o2.signature) == 0,
	       "signing twice gives the same signature (cached key)");
	sigv4_output_free(&o2);
	other.secret_access_key = "another-secret";
	tap_ok(sign_simple(&other, "POST", "/", NULL, &h, &o2) == 0 &&
	           strcmp(o1.signature, o2.signature) != 0,
	       "a rotated secret under the same key id is not served from the cache");
	sigv4_output_free(&o2);
	tap_ok(sign_simple(&test_creds, "POST", "/", NULL, &h, &o2) == 0 &&
	           strcmp(o1.signature, o2.signature) == 0,
	       "the first secret still signs as before");
	sigv4_output_free(&o2);
	sigv4_output_free(&o1);

	/* Session token: signed, and sigv4_apply adds it with the date and auth. */
	tok.session_token = "TOKEN123";
	tap_ok(sign_simple(&tok, "POST", "/", NULL, &h, &o1) == 0, "signs with a session token");
	tap_is_str(o1.signed_headers, "host;x-amz-date;x-amz-security-token;x-amz-target",
	           "the session token is signed");
	tap_is_str(o1.amz_date, "20150830T123600Z", "X-Amz-Date from when");
	kvlist_add(&h, "X-Amz-Date", "19990101T000000Z");
	sigv4_apply(&tok, &o1, &h);
	tap_is_str(kvlist_get(&h, "x-amz-date"), "20150830T123600Z", "apply sets X-Amz-Date");
	tap_ok(kvlist_count(&h, "x-amz-date") == 1, "apply replaces an old X-Amz-Date");
	tap_is_str(kvlist_get(&h, "x-amz-security-token"), "TOKEN123", "apply adds the token");
	tap_is_str(kvlist_get(&h, "authorization"), o1.authorization, "apply adds Authorization");
	tap_ok(strncmp(o1.authorization,
	               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/"
	               "aws4_request, SignedHeaders=",
	               90) == 0,
	       "Authorization format");
	sigv4_output_free(&o1);

	/* An X-Amz-Date header in the input is the signing time. */
	kvlist_set(&h, "X-Amz-Date", "20200102T030405Z");
	tap_ok(sign_simple(&test_creds, "GET", "/", NULL, &h, &o1) == 0 &&
	           strcmp(o1.amz_date, "20200102T030405Z") == 0 &&
	           strstr(o1.string_to_sign, "\n20200102/us-east-1/lambda/aws4_request\n") != NULL,
	       "X-Amz-Date header used as the signing time");
	sigv4_output_free(&o1);
	kvlist_set(&h, "X-Amz-Date", "yesterday");
	tap_ok(sign_simple(&test_creds, "GET", "/", NULL, &h, &o1) == -1,
	       "malformed X-Amz-Date is an error");
	kvlist_free(&h);

	/* Payload hash given by the caller is used as is. */
	kvlist_add(&h, "Host", "x");
	memset(&in, 0, sizeof in);
	in.method = "PUT";
	in.path = "/";
	in.headers = &h;
	in.body = "data";
	in.body_len = 4;
	in.payload_hash = "UNSIGNED-PAYLOAD";
	in.region = "r";
	in.service = "s";
	tap_ok(sigv4_sign(&test_creds, &in, &o1, err, sizeof err) == 0 &&
	           strstr(o1.canonical_request, "\nUNSIGNED-PAYLOAD") != NULL,
	       "payload_hash is used");
	sigv4_output_free(&o1);
	in.payload_hash = NULL;
	tap_ok(sigv4_sign(&test_creds, &in, &o1, err, sizeof err) == 0 &&
	           strstr(o1.canonical_request,
	                  "\n3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7") !=
	               NULL,
	       "the body is hashed otherwise");
	sigv4_output_free(&o1);

	/* Errors. */
	kvlist_free(&h);
	kvlist_add(&h, "X-Other", "1");
	err[0] = '\0';
	tap_ok(sigv4_sign(&test_creds, &in, &o1, err, sizeof err) == -1 &&
	           strstr(err, "Host") != NULL,
	       "no Host header is an error (%s)", err);
	kvlist_add(&h, "Host", "x");
	in.region = NULL;
	tap_ok(sigv4_sign(&test_creds, &in, &o1, err, sizeof err) == -1, "no region is an error");
	in.region = "r";
	other.secret_access_key = NULL;
	tap_ok(sigv4_sign(&other, &in, &o1, err, sizeof err) == -1 &&
	           strstr(err, "credentials") != NULL,
	       "no secret is an error");
	kvlist_free(&h);
	return tap_done();
}
