/*
 * test_accesslog.c: the access-log line (fields, "-" for empty ones, the
 * query string dropped, escaping that keeps eleven fields), request ids,
 * the JSON line, and the file
 * destination (append, reopen after a rename, off).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accesslog.h"
#include "tap.h"

static char *
slurp(const char *path)
{
	static char buf[8192];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
count_fields(const char *s)
{
	int n = 1;

	for (; *s != '\0'; s++)
		if (*s == ' ')
			n++;
	return n;
}

int
main(void)
{
	struct accesslog_entry e;
	char line[512], dir[] = "/tmp/ssp-accesslog-XXXXXX", path[600], moved[600], err[256];
	char *text;

	memset(&e, 0, sizeof e);
	e.client = "127.0.0.1";
	e.method = "GET";
	e.host = "api.github.com";
	e.path = "/user/repos?access_token=sekrit&x=1";
	e.status = 200;
	e.bytes = 1234;
	e.duration_ms = 12.34;
	e.request_id = "5b6a0e1c-1111";
	tap_is_str(accesslog_format(&e, line, sizeof line),
	           "127.0.0.1 GET api.github.com /user/repos 200 1234 12.3 5b6a0e1c-1111 - -",
	           "all fields; the query string is dropped");
	tap_ok(strstr(line, "sekrit") == NULL, "no token from the query");

	memset(&e, 0, sizeof e);
	e.status = 502;
	tap_is_str(accesslog_format(&e, line, sizeof line), "- - - - 502 0 0.0 - - -",
	           "empty fields are -");

	e.path = "?only=query";
	tap_is_str(accesslog_format(&e, line, sizeof line), "- - - - 502 0 0.0 - - -",
	           "a path that is only a query is -");

	memset(&e, 0, sizeof e);
	e.client = "::1";
	e.method = "GET";
	e.host = "evil host\"\\\n";
	e.path = "/caf\xc3\xa9 x";
	e.status = 200;
	e.cache = "HIT";
	accesslog_format(&e, line, sizeof line);
	tap_is_str(line,
	           "::1 GET evil\\x20host\\x22\\x5c\\x0a /caf\\xc3\\xa9\\x20x 200 0 0.0 - HIT -",
	           "space, quote, backslash, control and non-ASCII bytes are \\xHH");
	tap_ok(count_fields(line) == 10, "still ten fields without the time");

	e.aborted = 1;
	accesslog_format(&e, line, sizeof line);
	tap_ok(count_fields(line) == 11 && strcmp(line + strlen(line) - 8, " aborted") == 0,
	       "a response cut short gets an eleventh field, aborted");
	e.aborted = 0;

	accesslog_format(&e, line, 20);
	tap_ok(strlen(line) < 20, "truncated to the buffer");

	/* Request ids. */
	{
		struct accesslog_req r1, r2;
		char big[200];

		accesslog_req_init(&r1, "abc-DEF_1.2", "curl/8", 5);
		tap_is_str(r1.id, "abc-DEF_1.2", "a sane client request id is kept");
		accesslog_req_init(&r1, "bad id", NULL, 0);
		accesslog_req_init(&r2, NULL, NULL, 0);
		tap_ok(strlen(r1.id) == 32 && strspn(r1.id, "0123456789abcdef") == 32,
		       "an id with a space is replaced by 32 hex digits (%s)", r1.id);
		tap_ok(strcmp(r1.id, r2.id) != 0, "new ids differ");
		memset(big, 'a', 129);
		big[129] = '\0';
		tap_ok(!accesslog_id_valid(big) && accesslog_id_valid(big + 1),
		       "128 characters at most");
		tap_ok(!accesslog_id_valid("") && !accesslog_id_valid("a\"b") &&
		           !accesslog_id_valid("\xc3\xa9"),
		       "empty, quotes and non-ASCII are refused");

		memset(&e, 0, sizeof e);
		accesslog_req_init(&r1, "rid-1", "agent \"x\"", 7);
		r1.attempts = 2;
		r1.invoke_ms = 3.5;
		r1.outcome = ACCESSLOG_FUNCTION;
		e.client = "127.0.0.1";
		e.method = "POST";
		e.host = "h.example";
		e.path = "/p?token=sekrit";
		e.status = 201;
		e.bytes = 9;
		e.duration_ms = 4.25;
		e.request_id = "lambda-1";
		e.req = &r1;
		tap_is_str(accesslog_format_json(&e, line, sizeof line),
		           "{\"client\":\"127.0.0.1\",\"method\":\"POST\",\"host\":\"h.example\","
		           "\"path\":\"/p\",\"status\":201,\"bytes_in\":7,\"bytes_out\":9,"
		           "\"duration_ms\":4.25,\"invoke_ms\":3.5,\"attempts\":2,"
		           "\"outcome\":\"function\",\"request_id\":\"rid-1\","
		           "\"lambda_request_id\":\"lambda-1\",\"user_agent\":\"agent \\\"x\\\"\"}",
		           "the JSON line: every field, no query string");
		tap_ok(strstr(accesslog_format(&e, line, sizeof line), " rid-1") != NULL,
		       "the text line ends with the request id");
		e.req = NULL;
		e.status = 403;
		tap_is_str(accesslog_outcome_name(&e), "rejected", "a 4xx of our own is rejected");
		e.status = 504;
		tap_is_str(accesslog_outcome_name(&e), "error", "a 5xx of our own is an error");
		e.cache = "HIT";
		e.status = 200;
		tap_is_str(accesslog_outcome_name(&e), "cache_hit", "a hit");
	}

	/* The file destination. */
	if (mkdtemp(dir) == NULL)
		return tap_ok(0, "mkdtemp"), tap_done();
	snprintf(path, sizeof path, "%s/access.log", dir);
	snprintf(moved, sizeof moved, "%s/access.log.1", dir);
	tap_ok(accesslog_open(path, (uid_t)-1, (gid_t)-1, err, sizeof err) == 0, "open a file");
	memset(&e, 0, sizeof e);
	e.method = "GET";
	e.path = "/first";
	e.status = 200;
	accesslog_write(&e);
	text = slurp(path);
	tap_ok(text != NULL && strstr(text, "Z - GET - /first 200 0 0.0 - - -\n") != NULL,
	       "a line with a UTC time stamp and a newline");
	tap_ok(text != NULL && count_fields(text) == 11, "eleven fields in the file");
	rename(path, moved);
	tap_ok(accesslog_reopen(err, sizeof err) == 0, "reopen after a rename");
	e.path = "/second";
	accesslog_write(&e);
	text = slurp(path);
	tap_ok(text != NULL && strstr(text, "/second") != NULL && strstr(text, "/first") == NULL,
	       "the new file has the new line only");
	text = slurp(moved);
	tap_ok(text != NULL && strstr(text, "/second") == NULL, "the old file is left alone");

	tap_ok(accesslog_open("off", (uid_t)-1, (gid_t)-1, err, sizeof err) == 0, "off");
	e.path = "/third";
	accesslog_write(&e);
	text = slurp(path);
	tap_ok(text != NULL && strstr(text, "/third") == NULL, "off writes nothing");
	tap_ok(accesslog_reopen(err, sizeof err) == 0, "reopen with off is a no-op");

	snprintf(moved, sizeof moved, "%s/no/such/dir/log", dir);
	tap_ok(accesslog_open(moved, (uid_t)-1, (gid_t)-1, err, sizeof err) == -1 &&
	           strstr(err, moved) != NULL,
	       "an unwritable path fails, naming it (%s)", err);
	accesslog_close();

	unlink(path);
	snprintf(moved, sizeof moved, "%s/access.log.1", dir);
	unlink(moved);
	rmdir(dir);
	return tap_done();
}
