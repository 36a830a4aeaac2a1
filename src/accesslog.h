/*
 * accesslog.h: one line per proxied request, to a file (appended to), to
 * syslog, to stderr, or nowhere (the access_log key). The master opens the
 * destination before forking, so workers inherit it; SIGUSR1 reopens it (log
 * rotation). The query string is never logged: clients put tokens there.
 *
 * Line format (fields separated by one space, "-" when empty; spaces,
 * quotes, backslashes and control bytes inside a field are written \xHH so
 * that a line always splits into the same fields):
 *
 *   TIME CLIENT METHOD HOST PATH STATUS BYTES DURATION_MS REQUEST_ID CACHE
 *   2026-11-29T10:31:28.123Z 127.0.0.1 GET api.github.com /user/repos 200 1234 12.3 5b6a... -
 *
 * A streamed response cut short after its head (invoke_mode: stream) gets
 * one more field, "aborted": STATUS is what was sent, BYTES how much of the
 * body went out before the client's connection was closed.
 *
 * In syslog mode TIME is left out (syslog stamps the line).
 */
#ifndef SSP_ACCESSLOG_H
#define SSP_ACCESSLOG_H

#include <stddef.h>
#include <sys/types.h>

/* What proxy.c knows about a finished request. Pointers are borrowed for
 * the duration of the call; any of them may be NULL (logged as "-"). */
struct accesslog_entry {
	const char *client;     /* client address, without port: "127.0.0.1", "::1" */
	const char *method;     /* "GET" */
	const char *host;       /* target host: "api.github.com" */
	const char *path;       /* as sent; anything from '?' on is dropped */
	int status;             /* HTTP status sent to the client */
	size_t bytes;           /* response body bytes sent */
	double duration_ms;     /* from request accepted to reply sent */
	const char *request_id; /* Lambda's x-amzn-RequestId */
	const char *cache;      /* cache status ("HIT", "MISS"); NULL = "-" (not considered) */
	int aborted;            /* the response was cut short after its head */
};

/*
 * Open the destination named by spec: a file path, "syslog", "-" or
 * "stderr", "off" (or NULL: nothing is logged). A file is created 0640 and
 * appended to; when owner is not (uid_t)-1 a file we create is given to
 * owner:group so that unprivileged workers can reopen it. Replaces what was
 * open before. 0, or -1 with err set (the previous destination stays).
 */
int accesslog_open(const char *spec, uid_t owner, gid_t group, char *err, size_t errlen);
/* Reopen the same file by its path (log rotation); 0, or -1 with err set
 * (the old file stays open). A no-op for syslog, stderr and off. */
int accesslog_reopen(char *err, size_t errlen);
/* Write one line. Never blocks on anything but a local write. */
void accesslog_write(const struct accesslog_entry *);
/* Format the line (without TIME and newline) into buf; for tests. Returns buf. */
char *accesslog_format(const struct accesslog_entry *, char *buf, size_t len);
/* Close and forget the destination. */
void accesslog_close(void);

#endif
