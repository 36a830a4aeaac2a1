/*
 * log.h: the one logging module. Levels, stderr in the foreground, syslog
 * when asked. Never pass a secret (token, secret key, session token) to these
 * functions: use log_redact() for values that might be one.
 */
#ifndef SSP_LOG_H
#define SSP_LOG_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* ident names the program ("ssm-sign-proxy", "bootstrap"); use_syslog 0 = stderr. */
void log_init(const char *ident, enum log_level level, int use_syslog);
/*
 * Send the log to dest ("stderr", "syslog" or a file path, appended to; a
 * file we create is given to owner:group unless owner is (uid_t)-1) as
 * text or, with json, one JSON object per line (time, level, program,
 * role, worker, pid, msg and the fields). 0, or -1 with err set (the
 * previous destination stays).
 */
/* Open path for appending (O_APPEND, close-on-exec), creating it 0640 and
 * giving a file it created (only) to owner:group when running as root.
 * Returns the descriptor, or -1 with "WHAT PATH: reason" in err. */
int log_open_file(const char *path, const char *what, uid_t owner, gid_t group, char *err,
                  size_t errlen);
int log_open(const char *dest, int json, uid_t owner, gid_t group, char *err, size_t errlen);
/* Only the format (before log_open() knows the destination). */
void log_set_json(int json);
/* Reopen the file by its path (log rotation); a no-op for stderr and syslog. */
int log_reopen(char *err, size_t errlen);
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
 * A line with structured fields: fields is NULL or a NULL-terminated list
 * of name, value pairs ("request_id", id, "host", host, NULL); NULL and
 * empty values are left out. JSON lines carry them as keys, text lines as " name=value".
 */
void log_fields(enum log_level, const char *const *fields, const char *, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * A problem that may repeat (throttling, expired credentials): the first
 * one is written; repeats of the same what within a minute are counted and
 * summarised when the minute is over ("throttled by Lambda 1,234 times in
 * the last 60 s (last: ...)"), by the next log_repeat() or by
 * log_repeat_flush(), which a daemon calls from a timer every few seconds.
 * fields as for log_fields() (the summary carries "repeated": what).
 */
void log_repeat(enum log_level, const char *what, const char *const *fields, const char *, ...)
    __attribute__((format(printf, 4, 5)));
void log_repeat_flush(void);
/* The clock of the repeat windows (tests inject theirs; NULL: time()). */
void log_set_clock(time_t (*now)(void));

/*
 * Redact a value that may be a secret for display: keeps at most the first
 * four characters of an access key id ("AKIA…") and nothing of anything else.
 * Writes into buf (always NUL-terminated) and returns it.
 */
const char *log_redact(const char *value, char *buf, size_t len);

#endif
