/*
 * accesslog.c: the access log (see accesslog.h for the line format). One
 * write(2) per line on an O_APPEND descriptor, so that lines from several
 * workers sharing the file never interleave.
 */
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <pthread.h>

#include "accesslog.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

enum accesslog_kind {
	ACCESSLOG_OFF,
	ACCESSLOG_FILE,
	ACCESSLOG_SYSLOG,
	ACCESSLOG_STDERR,
};

static enum accesslog_kind accesslog_kind = ACCESSLOG_OFF;
static int accesslog_fd = -1;
static char *accesslog_path;
static int accesslog_json;

void
accesslog_set_format(int json)
{
	accesslog_json = json;
}

int
accesslog_id_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
	return n >= 1 && n <= ACCESSLOG_ID_MAX && s[n] == '\0';
}

/*
 * A new id: 64 random bits drawn once per process and a counter, so ids
 * never repeat across workers and restarts without a system call each. A
 * child redraws: the fork handler forgets the parent's bits (getpid() on
 * every id would be a system call per request, glibc no longer caches it).
 */
static uint64_t id_seed, id_counter;

static void
accesslog_id_forked(void)
{
	id_seed = 0;
}

static void
accesslog_new_id(char *buf, size_t len)
{
	static int atfork;
	struct timespec ts;

	if (!atfork) {
		pthread_atfork(NULL, NULL, accesslog_id_forked);
		atfork = 1;
	}
	if (id_seed == 0) {
		if (getrandom(&id_seed, sizeof id_seed, GRND_NONBLOCK) != (ssize_t)sizeof id_seed) {
			clock_gettime(CLOCK_REALTIME, &ts);
			id_seed = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
			          ((uint64_t)getpid() << 16);
		}
		id_seed |= 1;
		id_counter = 0;
	}
	id_counter++;
	snprintf(buf, len, "%016" PRIx64 "%016" PRIx64, id_seed, id_counter);
}

void
accesslog_req_init(struct accesslog_req *r, const char *client_id, const char *user_agent,
                   size_t bytes_in)
{
	memset(r, 0, sizeof *r);
	if (accesslog_id_valid(client_id))
		snprintf(r->id, sizeof r->id, "%s", client_id);
	else
		accesslog_new_id(r->id, sizeof r->id);
	if (user_agent != NULL)
		snprintf(r->user_agent, sizeof r->user_agent, "%s", user_agent);
	r->bytes_in = bytes_in;
	r->invoke_ms = -1;
}

void
accesslog_req_invoke_start(struct accesslog_req *r)
{
	r->invoke_start = clock_mono();
}

void
accesslog_req_invoke_done(struct accesslog_req *r, unsigned attempts)
{
	if (r->invoke_start > 0)
		r->invoke_ms = (clock_mono() - r->invoke_start) * 1e3;
	r->attempts = attempts;
}

const char *
accesslog_outcome_name(const struct accesslog_entry *e)
{
	enum accesslog_outcome o = e->req != NULL ? e->req->outcome : ACCESSLOG_AUTO;

	if (o == ACCESSLOG_AUTO) {
		if (e->cache != NULL && strcmp(e->cache, "HIT") == 0)
			o = ACCESSLOG_CACHE_HIT;
		else if (e->status >= 500 || e->status < 100)
			o = ACCESSLOG_ERROR;
		else if (e->status >= 400)
			o = ACCESSLOG_REJECTED;
		else
			o = ACCESSLOG_FUNCTION;
	}
	switch (o) {
	case ACCESSLOG_FUNCTION:
		return "function";
	case ACCESSLOG_CACHE_HIT:
		return "cache_hit";
	case ACCESSLOG_DENIED:
		return "denied";
	case ACCESSLOG_REJECTED:
		return "rejected";
	default:
		return "error";
	}
}

int
accesslog_open(const char *spec, uid_t owner, gid_t group, char *err, size_t errlen)
{
	enum accesslog_kind kind;
	int fd = -1;

	if (spec == NULL || *spec == '\0' || strcmp(spec, "off") == 0)
		kind = ACCESSLOG_OFF;
	else if (strcmp(spec, "syslog") == 0)
		kind = ACCESSLOG_SYSLOG;
	else if (strcmp(spec, "-") == 0 || strcmp(spec, "stderr") == 0)
		kind = ACCESSLOG_STDERR;
	else {
		kind = ACCESSLOG_FILE;
		if ((fd = log_open_file(spec, "access log", owner, group, err, errlen)) == -1)
			return -1;
	}
	accesslog_close();
	accesslog_kind = kind;
	accesslog_fd = fd;
	if (kind == ACCESSLOG_FILE)
		accesslog_path = xstrdup(spec);
	return 0;
}

int
accesslog_reopen(char *err, size_t errlen)
{
	int fd;

	if (accesslog_kind != ACCESSLOG_FILE)
		return 0;
	/* A worker runs unprivileged: it reopens a file the master created
	 * (and gave to it) a moment before, so no chown here. */
	fd = log_open_file(accesslog_path, "access log", (uid_t)-1, (gid_t)-1, err, errlen);
	if (fd == -1)
		return -1;
	close(accesslog_fd);
	accesslog_fd = fd;
	return 0;
}

void
accesslog_close(void)
{
	if (accesslog_fd != -1)
		close(accesslog_fd);
	accesslog_fd = -1;
	free(accesslog_path);
	accesslog_path = NULL;
	accesslog_kind = ACCESSLOG_OFF;
}

/*
 * Append one field to buf at *off: "-" when empty; bytes that would split
 * the line into other fields (space, quote, backslash, control, DEL) and
 * non-ASCII bytes become \xHH. Stops at stop (a '?' for the path) when
 * stop is not NUL.
 */
static void
accesslog_field(char *buf, size_t len, size_t *off, const char *s, char stop)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	size_t o = *off;

	if (o + 1 >= len)
		return;
	if (o != 0)
		buf[o++] = ' ';
	if (s == NULL || *s == '\0' || *s == stop) {
		if (o + 1 < len)
			buf[o++] = '-';
		buf[o] = '\0';
		*off = o;
		return;
	}
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (stop != '\0' && *p == (unsigned char)stop)
			break;
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
			if (o + 4 >= len)
				break;
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 0xf];
		} else {
			if (o + 1 >= len)
				break;
			buf[o++] = (char)*p;
		}
	}
	buf[o] = '\0';
	*off = o;
}

char *
accesslog_format(const struct accesslog_entry *e, char *buf, size_t len)
{
	char num[64];
	size_t off = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	accesslog_field(buf, len, &off, e->client, '\0');
	accesslog_field(buf, len, &off, e->method, '\0');
	accesslog_field(buf, len, &off, e->host, '\0');
	/* The query string often carries a token (?access_token=...). */
	accesslog_field(buf, len, &off, e->path, '?');
	snprintf(num, sizeof num, "%d", e->status);
	accesslog_field(buf, len, &off, num, '\0');
	snprintf(num, sizeof num, "%zu", e->bytes);
	accesslog_field(buf, len, &off, num, '\0');
	snprintf(num, sizeof num, "%.1f", e->duration_ms < 0 ? 0.0 : e->duration_ms);
	accesslog_field(buf, len, &off, num, '\0');
	accesslog_field(buf, len, &off, e->request_id, '\0');
	accesslog_field(buf, len, &off, e->cache, '\0');
	accesslog_field(buf, len, &off, e->req != NULL ? e->req->id : NULL, '\0');
	if (e->aborted)
		accesslog_field(buf, len, &off, "aborted", '\0');
	return buf;
}

/* A JSON string member; bytes that are not UTF-8 become '?'. */
static void
accesslog_json_str(json_t *o, const char *key, const char *s, size_t n)
{
	json_t *v;
	char *copy;
	size_t i;

	if (s == NULL || n == 0)
		return;
	if ((v = json_stringn(s, n)) == NULL) {
		copy = xmalloc(n + 1);
		for (i = 0; i < n; i++)
			copy[i] = (unsigned char)s[i] >= 0x80 || s[i] == '\0' ? '?' : s[i];
		v = json_stringn(copy, n);
		free(copy);
	}
	if (v != NULL)
		json_object_set_new(o, key, v);
}

static void
accesslog_json_add(json_t *o, const char *key, const char *s)
{
	if (s != NULL)
		accesslog_json_str(o, key, s, strlen(s));
}

static json_t *
accesslog_json_object(const struct accesslog_entry *e, const char *stamp)
{
	const struct accesslog_req *r = e->req;
	json_t *o = json_object();

	accesslog_json_add(o, "time", stamp);
	accesslog_json_add(o, "client", e->client);
	accesslog_json_add(o, "method", e->method);
	accesslog_json_add(o, "host", e->host);
	/* The query string often carries a token (?access_token=...). */
	if (e->path != NULL)
		accesslog_json_str(o, "path", e->path, strcspn(e->path, "?"));
	json_object_set_new(o, "status", json_integer(e->status));
	json_object_set_new(o, "bytes_in", json_integer(r != NULL ? (json_int_t)r->bytes_in : 0));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)e->bytes));
	json_object_set_new(o, "duration_ms",
	                    json_real(e->duration_ms < 0
	                                  ? 0.0
	                                  : (double)(long long)(e->duration_ms * 1000) / 1000));
	if (r != NULL && r->invoke_ms >= 0)
		json_object_set_new(o, "invoke_ms",
		                    json_real((double)(long long)(r->invoke_ms * 1000) / 1000));
	json_object_set_new(o, "attempts", json_integer(r != NULL ? r->attempts : 0));
	accesslog_json_add(o, "cache", e->cache);
	accesslog_json_add(o, "outcome", accesslog_outcome_name(e));
	if (e->aborted)
		json_object_set_new(o, "aborted", json_true());
	accesslog_json_add(o, "request_id", r != NULL ? r->id : NULL);
	if (e->request_id != NULL && *e->request_id != '\0')
		accesslog_json_add(o, "lambda_request_id", e->request_id);
	if (r != NULL && r->user_agent[0] != '\0')
		accesslog_json_add(o, "user_agent", r->user_agent);
	return o;
}

char *
accesslog_format_json(const struct accesslog_entry *e, char *buf, size_t len)
{
	json_t *o = accesslog_json_object(e, NULL);

	if (len == 0)
		return buf;
	if (json_dumpb(o, buf, len - 1, JSON_COMPACT | JSON_PRESERVE_ORDER) >= len - 1)
		buf[0] = '\0';
	else
		buf[json_dumpb(o, buf, len - 1, JSON_COMPACT | JSON_PRESERVE_ORDER)] = '\0';
	json_decref(o);
	return buf;
}

void
accesslog_write(const struct accesslog_entry *e)
{
	char line[4096], stamp[40];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int fd;

	/* Every request counts in /metrics, logged or not. */
	metrics_request(e);
	if (accesslog_kind == ACCESSLOG_OFF)
		return;
	if (accesslog_kind == ACCESSLOG_SYSLOG) {
		if (accesslog_json)
			accesslog_format_json(e, line, sizeof line);
		else
			accesslog_format(e, line, sizeof line);
		syslog(LOG_INFO | LOG_DAEMON, "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof stamp - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	if (accesslog_json) {
		json_t *o;

		stamp[strlen(stamp) - 1] = '\0';
		o = accesslog_json_object(e, stamp);
		n = json_dumpb(o, line, sizeof line - 1, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (n == 0 || n > sizeof line - 1)
			return;
		line[n++] = '\n';
		fd = accesslog_kind == ACCESSLOG_FILE ? accesslog_fd : STDERR_FILENO;
		if (write(fd, line, n) == -1)
			return;
		return;
	}
	n = strlen(stamp);
	memcpy(line, stamp, n);
	/* Leave room for the newline. */
	accesslog_format(e, line + n, sizeof line - n - 1);
	n = strlen(line);
	line[n++] = '\n';
	fd = accesslog_kind == ACCESSLOG_FILE ? accesslog_fd : STDERR_FILENO;
	/* One write: O_APPEND makes it atomic against the other workers. A
	 * short or failed write (disk full) loses this line only. */
	if (write(fd, line, n) == -1)
		return;
}
