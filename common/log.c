/*
 * log.c: levelled logging to stderr, syslog or a file, as text or as one
 * JSON object per line, with structured fields, and repeated warnings
 * counted and summarised instead of flooding or going silent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"

/* How long repeats of one warning are counted before the summary. */
#define LOG_REPEAT_WINDOW 60
#define LOG_REPEAT_SLOTS 32

enum log_dest {
	LOG_DEST_STDERR,
	LOG_DEST_SYSLOG,
	LOG_DEST_FILE,
};

static const char *log_ident = "ssm-sign-proxy";
static enum log_level log_level = LOG_LVL_INFO;
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_json;
static int log_fd = -1;
static char *log_path;
static char log_tag[64];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* A warning being counted: its key, how many since it was last written. */
static struct log_repeat {
	char what[96];
	enum log_level level;
	time_t since; /* 0: free */
	unsigned long count;
	char last[256];
} log_repeats[LOG_REPEAT_SLOTS];

static void log_emit(enum log_level, const char *const *fields, const char *msg);

static time_t
log_clock_default(void)
{
	return time(NULL);
}

static time_t (*log_now)(void) = log_clock_default;

void
log_set_clock(time_t (*now)(void))
{
	log_now = now != NULL ? now : log_clock_default;
}

void
log_init(const char *ident, enum log_level level, int use_syslog)
{
	log_ident = ident;
	log_level = level;
	if (log_dest == LOG_DEST_SYSLOG)
		closelog();
	log_dest = use_syslog ? LOG_DEST_SYSLOG : LOG_DEST_STDERR;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int
log_open_file(const char *path, const char *what, uid_t owner, gid_t group, char *err,
              size_t errlen)
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
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	/* Only a file we made (never take over a file someone else owns), so
	 * that unprivileged workers can reopen it. */
	if (created && owner != (uid_t)-1 && geteuid() == 0 && fchown(fd, owner, group) == -1) {
		snprintf(err, errlen, "%s %s: chown: %s", what, path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
log_open(const char *dest, int json, uid_t owner, gid_t group, char *err, size_t errlen)
{
	enum log_dest d;
	int fd = -1;

	if (dest == NULL || *dest == '\0' || strcmp(dest, "stderr") == 0 || strcmp(dest, "-") == 0)
		d = LOG_DEST_STDERR;
	else if (strcmp(dest, "syslog") == 0)
		d = LOG_DEST_SYSLOG;
	else {
		d = LOG_DEST_FILE;
		if ((fd = log_open_file(dest, "log", owner, group, err, errlen)) == -1)
			return -1;
	}
	if (log_dest == LOG_DEST_SYSLOG && d != LOG_DEST_SYSLOG)
		closelog();
	if (d == LOG_DEST_SYSLOG && log_dest != LOG_DEST_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	if (log_fd != -1)
		close(log_fd);
	free(log_path);
	log_path = d == LOG_DEST_FILE ? strdup(dest) : NULL;
	log_fd = fd;
	log_dest = d;
	log_json = json;
	return 0;
}

void
log_set_json(int json)
{
	log_json = json;
}

int
log_reopen(char *err, size_t errlen)
{
	int fd;

	if (log_dest != LOG_DEST_FILE || log_path == NULL)
		return 0;
	if ((fd = log_open_file(log_path, "log", (uid_t)-1, (gid_t)-1, err, errlen)) == -1)
		return -1;
	close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	if ((size_t)level < sizeof level_names / sizeof level_names[0])
		return level_names[level];
	return "unknown";
}

void
log_set_tag(const char *tag)
{
	if (tag == NULL)
		log_tag[0] = '\0';
	else
		snprintf(log_tag, sizeof log_tag, "%s", tag);
}

/* One write(2) per line: lines from several processes never interleave. */
static void
log_put(const char *line, size_t len)
{
	int fd = log_dest == LOG_DEST_FILE ? log_fd : STDERR_FILENO;

	if (write(fd, line, len) == -1)
		return;
}

static void
log_stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* A JSON string of s; bytes that are not UTF-8 become '?' rather than
 * losing the value. */
static json_t *
log_json_str(const char *s)
{
	json_t *v;
	char *copy, *p;

	if ((v = json_string(s)) != NULL)
		return v;
	if ((copy = strdup(s)) == NULL)
		return json_string("?");
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

/* The JSON line: time, level, role (and worker), pid, msg, then the fields. */
static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

static void
log_emit_json(enum log_level level, const char *const *fields, const char *msg)
{
	char stamp[40], role[64];
	const char *sp;
	json_t *o;
	char *s;
	size_t i, n;

	log_stamp(stamp, sizeof stamp);
	o = json_object();
	json_object_set_new(o, "time", json_string(stamp));
	json_object_set_new(o, "level", json_string(level_names[level]));
	json_object_set_new(o, "program", json_string(log_ident));
	/* "worker 2" is role worker, worker 2. */
	snprintf(role, sizeof role, "%s", log_tag[0] != '\0' ? log_tag : "main");
	if ((sp = strrchr(role, ' ')) != NULL && strspn(sp + 1, "0123456789") == strlen(sp + 1) &&
	    sp[1] != '\0') {
		json_object_set_new(o, "worker", json_integer(atoi(sp + 1)));
		role[sp - role] = '\0';
	}
	json_object_set_new(o, "role", json_string(role));
	json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(o, "msg", log_json_str(msg));
	for (i = 0; fields != NULL && fields[i] != NULL; i += 2)
		if (fields[i + 1] != NULL && fields[i + 1][0] != '\0')
			json_object_set_new(o, fields[i], log_json_str(fields[i + 1]));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (s == NULL)
		return;
	if (log_dest == LOG_DEST_SYSLOG) {
		syslog(prio[level], "%s", s);
		free(s);
		return;
	}
	n = strlen(s);
	s[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
	log_put(s, n + 1);
	free(s);
}

static void
log_emit(enum log_level level, const char *const *fields, const char *msg)
{
	char line[4096], stamp[40], extra[1024];
	size_t i, off = 0;
	int n;

	if (log_json) {
		log_emit_json(level, fields, msg);
		return;
	}
	extra[0] = '\0';
	for (i = 0; fields != NULL && fields[i] != NULL; i += 2) {
		if (fields[i + 1] == NULL || fields[i + 1][0] == '\0' || off >= sizeof extra - 1)
			continue;
		n = snprintf(extra + off, sizeof extra - off, " %s=%s", fields[i], fields[i + 1]);
		if (n > 0)
			off += (size_t)n;
	}
	if (off >= sizeof extra)
		off = sizeof extra - 1;
	if (log_dest == LOG_DEST_SYSLOG) {
		if (log_tag[0] != '\0')
			syslog(prio[level], "[%s] %s%s", log_tag, msg, extra);
		else
			syslog(prio[level], "%s%s", msg, extra);
		return;
	}
	log_stamp(stamp, sizeof stamp);
	n = snprintf(line, sizeof line - 1, "%s %s[%ld]%s%s%s %s: %s%s", stamp, log_ident,
	             (long)getpid(), log_tag[0] ? " [" : "", log_tag, log_tag[0] ? "]" : "",
	             level_names[level], msg, extra);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)(sizeof line - 2);
	line[n++] = '\n';
	log_put(line, (size_t)n);
}

static void
log_vwrite(enum log_level level, const char *const *fields, const char *fmt, va_list ap)
{
	char msg[2048];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	log_emit(level, fields, msg);
}

#define LOG_FN(name, level)                                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vwrite(level, NULL, fmt, ap);                                                  \
		va_end(ap);                                                                        \
	}

LOG_FN(log_error, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void
log_fields(enum log_level level, const char *const *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, fields, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

/* "1,234": counts in summaries are read by people. */
static const char *
log_thousands(unsigned long v, char *buf, size_t len)
{
	char raw[32];
	size_t n, i, o = 0;

	n = (size_t)snprintf(raw, sizeof raw, "%lu", v);
	for (i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
	return buf;
}

static void
log_repeat_summary(struct log_repeat *r, time_t now)
{
	const char *fields[] = {"repeated", r->what, NULL};
	char count[32], msg[512];

	snprintf(msg, sizeof msg, "%s %s times in the last %lld s (last: %s)", r->what,
	         log_thousands(r->count, count, sizeof count), (long long)(now - r->since),
	         r->last);
	if (r->level <= log_level)
		log_emit(r->level, fields, msg);
}

void
log_repeat_flush(void)
{
	time_t now = log_now();
	size_t i;

	for (i = 0; i < LOG_REPEAT_SLOTS; i++) {
		struct log_repeat *r = &log_repeats[i];

		if (r->since == 0 || now - r->since < LOG_REPEAT_WINDOW)
			continue;
		if (r->count > 0)
			log_repeat_summary(r, now);
		r->since = 0; /* quiet for a window: the next one is written again */
	}
}

void
log_repeat(enum log_level level, const char *what, const char *const *fields, const char *fmt, ...)
{
	struct log_repeat *r = NULL, *free_slot = NULL, *oldest = NULL;
	char msg[2048];
	va_list ap;
	size_t i;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_repeat_flush();
	for (i = 0; i < LOG_REPEAT_SLOTS; i++) {
		if (log_repeats[i].since == 0) {
			if (free_slot == NULL)
				free_slot = &log_repeats[i];
		} else if (strcmp(log_repeats[i].what, what) == 0) {
			r = &log_repeats[i];
			break;
		} else if (oldest == NULL || log_repeats[i].since < oldest->since)
			oldest = &log_repeats[i];
	}
	if (r != NULL) {
		/* Within the window: counted, summarised when it ends. */
		r->count++;
		snprintf(r->last, sizeof r->last, "%.*s", (int)sizeof r->last - 1, msg);
		return;
	}
	if ((r = free_slot) == NULL) {
		r = oldest;
		if (r->count > 0)
			log_repeat_summary(r, log_now());
	}
	memset(r, 0, sizeof *r);
	snprintf(r->what, sizeof r->what, "%s", what);
	r->level = level;
	r->since = log_now();
	log_emit(level, fields, msg);
}

const char *
log_redact(const char *value, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (value == NULL || *value == '\0')
		snprintf(buf, len, "(none)");
	else if (strncmp(value, "AKIA", 4) == 0 || strncmp(value, "ASIA", 4) == 0)
		snprintf(buf, len, "%.4s****", value);
	else
		snprintf(buf, len, "****");
	return buf;
}
