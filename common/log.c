/*
 * log.c: levelled logging to stderr (foreground) or syslog.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "ssm-sign-proxy";
static enum log_level log_level = LOG_LVL_INFO;
static int log_syslog;
static char log_tag[64];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_init(const char *ident, enum log_level level, int use_syslog)
{
	log_ident = ident;
	log_level = level;
	if (log_syslog)
		closelog();
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
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

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[2048];
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (log_syslog) {
		if (log_tag[0] != '\0')
			syslog(prio[level], "[%s] %s", log_tag, msg);
		else
			syslog(prio[level], "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%ld]%s%s%s %s: %s\n", stamp, ts.tv_nsec / 1000000, log_ident,
	        (long)getpid(), log_tag[0] ? " [" : "", log_tag, log_tag[0] ? "]" : "",
	        level_names[level], msg);
}

#define LOG_FN(name, level)                                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vwrite(level, fmt, ap);                                                        \
		va_end(ap);                                                                        \
	}

LOG_FN(log_error, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
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
