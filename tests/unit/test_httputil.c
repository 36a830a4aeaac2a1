/*
 * test_httputil.c: hop-by-hop removal, strict UTF-8, base64, reason phrases,
 * idempotent methods.
 */
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

#include "httputil.h"
#include "tap.h"

static void
test_hop_by_hop(void)
{
	struct kvlist h = KVLIST_INIT;

	kvlist_add(&h, "Host", "example.com");
	kvlist_add(&h, "Connection", "close, X-Secret-Hop");
	kvlist_add(&h, "connection", " x-other ,,");
	kvlist_add(&h, "X-Secret-Hop", "1");
	kvlist_add(&h, "X-Other", "2");
	kvlist_add(&h, "Proxy-Connection", "keep-alive");
	kvlist_add(&h, "Keep-Alive", "timeout=5");
	kvlist_add(&h, "Proxy-Authorization", "Basic Zm9vOmJhcg==");
	kvlist_add(&h, "Proxy-Authenticate", "Basic");
	kvlist_add(&h, "TE", "gzip");
	kvlist_add(&h, "te", " Trailers ");
	kvlist_add(&h, "TE", "trailers, deflate");
	kvlist_add(&h, "Trailer", "X-Checksum");
	kvlist_add(&h, "Transfer-Encoding", "chunked");
	kvlist_add(&h, "Upgrade", "websocket");
	kvlist_add(&h, "Set-Cookie", "a=1");
	kvlist_add(&h, "Set-Cookie", "b=2");
	http_strip_hop_by_hop(&h, 0);
	tap_ok(kvlist_get(&h, "connection") == NULL, "Connection removed");
	tap_ok(kvlist_get(&h, "x-secret-hop") == NULL && kvlist_get(&h, "x-other") == NULL,
	       "headers named by Connection removed (both Connection headers)");
	tap_ok(kvlist_get(&h, "proxy-connection") == NULL && kvlist_get(&h, "keep-alive") == NULL,
	       "Proxy-Connection, Keep-Alive removed");
	tap_ok(kvlist_get(&h, "proxy-authorization") == NULL, "Proxy-Authorization removed");
	tap_ok(kvlist_get(&h, "proxy-authenticate") == NULL, "Proxy-Authenticate removed");
	tap_ok(kvlist_count(&h, "te") == 1 && strcmp(kvlist_get(&h, "te"), " Trailers ") == 0,
	       "only TE: trailers kept");
	tap_ok(kvlist_get(&h, "trailer") == NULL && kvlist_get(&h, "transfer-encoding") == NULL &&
	           kvlist_get(&h, "upgrade") == NULL,
	       "Trailer, Transfer-Encoding, Upgrade removed");
	tap_ok(h.n == 4 && strcmp(h.v[0].name, "Host") == 0 && kvlist_count(&h, "set-cookie") == 2,
	       "end-to-end headers kept in order (%zu left)", h.n);
	kvlist_free(&h);

	kvlist_add(&h, "Proxy-Authenticate", "Basic realm=\"x\"");
	kvlist_add(&h, "Connection", "keep-alive");
	http_strip_hop_by_hop(&h, 1);
	tap_ok(h.n == 1 && kvlist_get(&h, "proxy-authenticate") != NULL,
	       "Proxy-Authenticate kept when asked (407)");
	kvlist_free(&h);
	http_strip_hop_by_hop(&h, 0);
	tap_ok(h.n == 0, "empty list is fine");
}

#define U8(s) (const unsigned char *)(s), sizeof(s) - 1

static void
test_utf8(void)
{
	tap_ok(http_is_valid_utf8(U8("")), "empty is UTF-8");
	tap_ok(http_is_valid_utf8(U8("plain ascii\n")), "ASCII");
	tap_ok(http_is_valid_utf8(U8("caf\xc3\xa9 \xe1\x88\xb4 \xf0\x9f\x98\x80")),
	       "2-, 3- and 4-byte sequences");
	tap_ok(http_is_valid_utf8(U8("\xef\xbf\xbf\xf4\x8f\xbf\xbf")), "U+FFFF and U+10FFFF");
	tap_ok(http_is_valid_utf8(U8("a\0b")), "NUL is valid UTF-8");
	tap_ok(!http_is_valid_utf8(U8("\xc0\xaf")), "overlong 2-byte rejected");
	tap_ok(!http_is_valid_utf8(U8("\xc1\xbf")), "overlong C1 rejected");
	tap_ok(!http_is_valid_utf8(U8("\xe0\x80\xaf")), "overlong 3-byte rejected");
	tap_ok(!http_is_valid_utf8(U8("\xf0\x80\x80\xaf")), "overlong 4-byte rejected");
	tap_ok(!http_is_valid_utf8(U8("\xed\xa0\x80")), "surrogate U+D800 rejected");
	tap_ok(!http_is_valid_utf8(U8("\xed\xbf\xbf")), "surrogate U+DFFF rejected");
	tap_ok(http_is_valid_utf8(U8("\xed\x9f\xbf")), "U+D7FF accepted");
	tap_ok(!http_is_valid_utf8(U8("\xf4\x90\x80\x80")), "U+110000 rejected");
	tap_ok(!http_is_valid_utf8(U8("\xf5\x80\x80\x80")), "F5 lead rejected");
	tap_ok(!http_is_valid_utf8(U8("\xff")), "FF rejected");
	tap_ok(!http_is_valid_utf8(U8("\x80")), "lone continuation rejected");
	tap_ok(!http_is_valid_utf8(U8("\xe1\x88")), "truncated sequence rejected");
	tap_ok(!http_is_valid_utf8(U8("\xe1\x88x")), "bad continuation rejected");
	tap_ok(!http_is_valid_utf8(U8("\xf0\x9f\x98")), "truncated 4-byte rejected");
}

static void
test_base64(void)
{
	static const unsigned char bin[] = {0x00, 0xff, 0x10, 0x80, 0x7f};
	unsigned char *d;
	char *e;
	size_t n;

	e = http_base64_encode((const unsigned char *)"hello", 5, &n);
	tap_ok(e != NULL && strcmp(e, "aGVsbG8=") == 0 && n == 8, "encode hello");
	free(e);
	e = http_base64_encode(NULL, 0, &n);
	tap_ok(e != NULL && *e == '\0' && n == 0, "encode nothing");
	free(e);
	e = http_base64_encode(bin, sizeof bin, &n);
	tap_ok(e != NULL && strcmp(e, "AP8QgH8=") == 0, "encode binary");
	d = http_base64_decode(e, n, &n);
	tap_ok(d != NULL && n == sizeof bin && memcmp(d, bin, n) == 0, "binary round trip");
	free(d);
	free(e);
	d = http_base64_decode("aGVsbG8=", 8, &n);
	tap_ok(d != NULL && n == 5 && strcmp((char *)d, "hello") == 0, "decode, NUL-terminated");
	free(d);
	d = http_base64_decode("", 0, &n);
	tap_ok(d != NULL && n == 0, "decode nothing");
	free(d);
	tap_ok(http_base64_decode("aGV*bG8=", 8, &n) == NULL, "bad character rejected");
	tap_ok(http_base64_decode("aGVsbG8", 7, &n) == NULL, "bad length rejected");
	tap_ok(http_base64_decode("a===", 4, &n) == NULL, "bad padding rejected");
}

static void
test_misc(void)
{
	tap_is_str(http_reason(200), "OK", "reason 200");
	tap_is_str(http_reason(404), "Not Found", "reason 404");
	tap_is_str(http_reason(502), "Bad Gateway", "reason 502");
	tap_is_str(http_reason(599), "Unknown", "reason unknown");
	tap_ok(http_method_idempotent("GET") && http_method_idempotent("PUT") &&
	           http_method_idempotent("DELETE") && http_method_idempotent("HEAD") &&
	           http_method_idempotent("OPTIONS") && http_method_idempotent("TRACE"),
	       "idempotent methods");
	tap_ok(!http_method_idempotent("POST") && !http_method_idempotent("PATCH") &&
	           !http_method_idempotent("get") && !http_method_idempotent(NULL),
	       "non-idempotent methods (methods are case-sensitive)");
}

static size_t
error_text(char *out, size_t len, const char *rid, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = http_error_text(out, len, rid, fmt, ap);
	va_end(ap);
	return n;
}

static void
test_error_text(void)
{
	char buf[512];
	size_t n;

	n = error_text(buf, sizeof buf, "r-1", "lambda invoke failed: %s",
	               "Function not found: arn:aws:lambda:us-east-1:123456789012:function:f");
	tap_is_str(buf,
	           "lambda invoke failed: Function not found: "
	           "arn:aws:lambda:us-east-1:************:function:f (request id r-1)\n",
	           "an account id is masked, the request id appended");
	tap_ok(n == strlen(buf), "the length is returned");
	error_text(buf, sizeof buf, NULL, "cannot read /home/alice/.aws/credentials\nline two");
	tap_is_str(buf, "cannot read ~/.aws/credentials line two\n",
	           "a home directory is masked, one line, no id");
	error_text(buf, sizeof buf, "x", "/root/.aws/config and 1234567890123 and 12345");
	tap_is_str(buf, "~/.aws/config and 1234567890123 and 12345 (request id x)\n",
	           "/root is masked; other numbers stay");
	error_text(buf, 10, "x", "a long message");
	tap_ok(strlen(buf) < 10, "truncated to the buffer");
}

int
main(void)
{
	test_error_text();
	test_hop_by_hop();
	test_utf8();
	test_base64();
	test_misc();
	return tap_done();
}
