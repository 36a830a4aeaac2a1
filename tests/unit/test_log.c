/*
 * test_log.c: the log module: a file destination reopened after a rename,
 * text and JSON lines with fields, and repeated problems counted and
 * summarised once their minute is over (with an injected clock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "tap.h"

static time_t fake_now = 1000000;

static time_t
fake_clock(void)
{
	return fake_now;
}

static char *
slurp(const char *path)
{
	static char buf[16384];
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
count(const char *text, const char *needle)
{
	int n = 0;

	for (; text != NULL && (text = strstr(text, needle)) != NULL; text++)
		n++;
	return n;
}

int
main(void)
{
	char dir[] = "/tmp/ssp-log-XXXXXX", path[600], moved[600], err[256], *text, *line, *nl;
	const char *fields[] = {"request_id", "r-1", "host", "h.example", "empty", "", NULL};
	json_t *doc;
	int i, lines, ok;

	if (mkdtemp(dir) == NULL)
		return tap_ok(0, "mkdtemp"), tap_done();
	snprintf(path, sizeof path, "%s/daemon.log", dir);
	snprintf(moved, sizeof moved, "%s/daemon.log.1", dir);
	log_init("test", LOG_LVL_INFO, 0);
	log_set_tag("worker 3");
	log_set_clock(fake_clock);

	/* Text lines with fields. */
	tap_ok(log_open(path, 0, (uid_t)-1, (gid_t)-1, err, sizeof err) == 0, "open a file");
	log_fields(LOG_LVL_WARN, fields, "something %s", "failed");
	log_debug("not at info");
	text = slurp(path);
	tap_ok(text != NULL && strstr(text, "test[") != NULL &&
	           strstr(text, " [worker 3] warn: something failed request_id=r-1 "
	                        "host=h.example\n") != NULL,
	       "a text line: tag, level, message, fields (empty ones left out)");
	tap_ok(count(text, "\n") == 1, "debug is below the level");

	/* Reopen after a rename (logrotate). */
	rename(path, moved);
	tap_ok(log_reopen(err, sizeof err) == 0, "reopen");
	log_info("second");
	text = slurp(path);
	tap_ok(text != NULL && strstr(text, "second") != NULL && strstr(text, "failed") == NULL,
	       "the new file has the new line only");

	/* JSON lines. */
	tap_ok(log_open(path, 1, (uid_t)-1, (gid_t)-1, err, sizeof err) == 0, "json");
	truncate(path, 0);
	log_fields(LOG_LVL_ERROR, fields, "quote \" backslash \\ bad utf-8 \xff end");
	text = slurp(path);
	doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
	tap_ok(doc != NULL, "the line parses as JSON");
	tap_is_str(json_string_value(json_object_get(doc, "level")), "error", "level");
	tap_is_str(json_string_value(json_object_get(doc, "role")), "worker", "role");
	tap_ok(json_integer_value(json_object_get(doc, "worker")) == 3, "worker number");
	tap_ok(json_integer_value(json_object_get(doc, "pid")) == getpid(), "pid");
	tap_is_str(json_string_value(json_object_get(doc, "msg")),
	           "quote \" backslash \\ bad utf-8 ? end", "message, invalid UTF-8 replaced");
	tap_is_str(json_string_value(json_object_get(doc, "request_id")), "r-1", "a field");
	tap_ok(json_object_get(doc, "empty") == NULL, "an empty field is left out");
	tap_ok(json_object_get(doc, "time") != NULL, "time");
	json_decref(doc);

	/* Repeats: the first written, the rest counted, one summary per minute. */
	truncate(path, 0);
	for (i = 0; i < 1234; i++)
		log_repeat(LOG_LVL_WARN, "throttled by Lambda", NULL, "throttled (attempt %d)", i);
	log_repeat(LOG_LVL_WARN, "other problem", NULL, "another one");
	text = slurp(path);
	tap_ok(count(text, "throttled (attempt 0)") == 1 && count(text, "\n") == 2,
	       "first occurrences written, repeats held");
	fake_now += 30;
	log_repeat_flush();
	tap_ok(count(slurp(path), "\n") == 2, "no summary within the minute");
	fake_now += 31;
	log_repeat_flush();
	text = slurp(path);
	tap_ok(strstr(text, "throttled by Lambda 1,233 times in the last 61 s (last: throttled "
	                    "(attempt 1233))") != NULL,
	       "the summary: count, window, last message");
	tap_ok(strstr(text, "\"repeated\":\"throttled by Lambda\"") != NULL,
	       "the summary names what repeated as a field");
	tap_ok(count(text, "another one") == 1 && count(text, "other problem 0 times") == 0,
	       "nothing repeated, no summary");
	log_repeat(LOG_LVL_WARN, "throttled by Lambda", NULL, "throttled again");
	tap_ok(strstr(slurp(path), "throttled again") != NULL,
	       "after a quiet minute the next one is written again");

	/* Every line of the file parses. */
	text = slurp(path);
	lines = 0;
	ok = 1;
	for (line = text; line != NULL && *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		*nl = '\0';
		if ((doc = json_loads(line, 0, NULL)) == NULL)
			ok = 0;
		json_decref(doc);
		lines++;
	}
	tap_ok(ok && lines == 4, "every JSON line parses (%d lines)", lines);

	tap_ok(log_open(moved, 0, (uid_t)-1, (gid_t)-1, err, sizeof err) == 0 &&
	           log_open("stderr", 0, (uid_t)-1, (gid_t)-1, err, sizeof err) == 0,
	       "back to stderr");
	snprintf(moved, sizeof moved, "%s/no/such/dir/log", dir);
	tap_ok(log_open(moved, 0, (uid_t)-1, (gid_t)-1, err, sizeof err) == -1 &&
	           strstr(err, moved) != NULL,
	       "an unwritable path fails, naming it");
	unlink(path);
	snprintf(moved, sizeof moved, "%s/daemon.log.1", dir);
	unlink(moved);
	rmdir(dir);
	return tap_done();
}
