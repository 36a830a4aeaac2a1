/*
 * log.h: the one logging module. Levels, stderr in the foreground, syslog
 * when asked. Never pass a secret (token, secret key, session token) to these
 * functions: use log_redact() for values that might be one.
 */
#ifndef SSP_LOG_H
#define SSP_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* ident names the program ("ssm-sign-proxy", "bootstrap"); use_syslog 0 = stderr. */
void log_init(const char *ident, enum log_level level, int use_syslog);
void log_set_level(enum log_level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *);
const char *log_level_name(enum log_level);
/* A tag printed after the ident, e.g. "worker 2"; NULL clears it. */
void log_set_tag(const char *);

void log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Redact a value that may be a secret for display: keeps at most the first
 * four characters of an access key id ("AKIA…") and nothing of anything else.
 * Writes into buf (always NUL-terminated) and returns it.
 */
const char *log_redact(const char *value, char *buf, size_t len);

#endif
