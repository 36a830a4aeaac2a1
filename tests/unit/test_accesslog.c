/*
 * test_accesslog.c: the access-log line (fields, "-" for empty ones, the
 * query string dropped, escaping that keeps ten fields) and the file
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
	           "127.0.0.1 GET api.github.com /user/repos 200 1234 12.3 5b6a0e1c-1111 -",
	           "all fields; the query string is dropped");
	tap_ok(strstr(line, "sekrit") == NULL, "no token from the query");

	memset(&e, 0, sizeof e);
	e.status = 502;
	tap_is_str(accesslog_format(&e, line, sizeof line), "- - - - 502 0 0.0 - -",
	           "empty fields are -");

	e.path = "?only=query";
	tap_is_str(accesslog_format(&e, line, sizeof line), "- - - - 502 0 0.0 - -",
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
	           "::1 GET evil\\x20host\\x22\\x5c\\x0a /caf\\xc3\\xa9\\x20x 200 0 0.0 - HIT",
	           "space, quote, backslash, control and non-ASCII bytes are \\xHH");
	tap_ok(count_fields(line) == 9, "still nine fields without the time");

	e.aborted = 1;
	accesslog_format(&e, line, sizeof line);
	tap_ok(count_fields(line) == 10 && strcmp(line + strlen(line) - 8, " aborted") == 0,
	       "a response cut short gets a tenth field, aborted");
	e.aborted = 0;

	accesslog_format(&e, line, 20);
	tap_ok(strlen(line) < 20, "truncated to the buffer");

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
	tap_ok(text != NULL && strstr(text, "Z - GET - /first 200 0 0.0 - -\n") != NULL,
	       "a line with a UTC time stamp and a newline");
	tap_ok(text != NULL && count_fields(text) == 10, "ten fields in the file");
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
