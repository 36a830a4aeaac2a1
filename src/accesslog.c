/*
 * accesslog.c: the access log (see accesslog.h for the line format). One
 * write(2) per line on an O_APPEND descriptor, so that lines from several
 * workers sharing the file never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
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

/* Open path for appending; give a file we created to owner:group. */
static int
accesslog_open_file(const char *path, uid_t owner, gid_t group, char *err, size_t errlen)
{
	int fd, created = 0;

	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd == -1 && errno == EEXIST)
			fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		else if (fd != -1)
			created = 1;
	}
	if (fd == -1) {
		snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
		return -1;
	}
	/* Only a file we made: never take over a file someone else owns. */
	if (created && owner != (uid_t)-1 && geteuid() == 0 && fchown(fd, owner, group) == -1) {
		snprintf(err, errlen, "access log %s: chown: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
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
		if ((fd = accesslog_open_file(spec, owner, group, err, errlen)) == -1)
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
	fd = accesslog_open_file(accesslog_path, (uid_t)-1, (gid_t)-1, err, errlen);
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
	if (e->aborted)
		accesslog_field(buf, len, &off, "aborted", '\0');
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

	if (accesslog_kind == ACCESSLOG_OFF)
		return;
	if (accesslog_kind == ACCESSLOG_SYSLOG) {
		accesslog_format(e, line, sizeof line);
		syslog(LOG_INFO | LOG_DAEMON, "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof stamp - n, ".%03ldZ ", ts.tv_nsec / 1000000);
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
