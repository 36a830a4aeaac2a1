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
 *   TIME CLIENT METHOD HOST PATH STATUS BYTES DURATION_MS REQUEST_ID CACHE ID
 *   2026-11-29T10:31:28.123Z 127.0.0.1 GET api.github.com /user/repos 200 1234 12.3 5b6a... -
 * 9f3c...
 *
 * REQUEST_ID is Lambda's (x-amzn-RequestId), ID the request's own
 * (X-Request-Id). In syslog mode TIME is left out (syslog stamps the line).
 * A streamed response cut short after its head (invoke_mode: stream) gets
 * one more field, "aborted": STATUS is what was sent, BYTES how much of the
 * body went out before the client's connection was closed ("aborted": true
 * in JSON).
 *
 * With access_log_format: json each line is one object instead: time,
 * client, method, host, path (never the query), status, bytes_in,
 * bytes_out, duration_ms, invoke_ms, attempts, cache, outcome, request_id
 * (ours), lambda_request_id, user_agent.
 */
#ifndef SSP_ACCESSLOG_H
#define SSP_ACCESSLOG_H

#include <stddef.h>
#include <sys/types.h>

/* How a request was answered, for the log and the metrics. */
enum accesslog_outcome {
	ACCESSLOG_AUTO = 0, /* from the status: rejected (4xx), error (5xx) */
	ACCESSLOG_FUNCTION, /* the function's answer */
	ACCESSLOG_CACHE_HIT,
	ACCESSLOG_DENIED,   /* not in the allow list */
	ACCESSLOG_REJECTED, /* a 4xx of the daemon's own */
	ACCESSLOG_ERROR,    /* a 5xx of the daemon's own */
};

/* Longest X-Request-Id taken from a client. */
#define ACCESSLOG_ID_MAX 128

/*
 * What the request path gathers about one request beyond the line's
 * basics; it lives in the request (proxy.c) from accept to the log line.
 */
struct accesslog_req {
	char id[ACCESSLOG_ID_MAX + 1]; /* X-Request-Id: the client's when valid, else ours */
	char user_agent[256];
	size_t bytes_in;     /* request body bytes */
	double invoke_start; /* monotonic seconds; 0: no invocation */
	double invoke_ms;    /* < 0: no invocation */
	unsigned attempts;   /* Lambda calls made */
	enum accesslog_outcome outcome;
};

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
	const struct accesslog_req *req; /* NULL: nothing more known */
	int aborted;                     /* the response was cut short after its head */
};

/*
 * Start a request's record: its id is client_id (the client's
 * X-Request-Id) when that matches [A-Za-z0-9._-]{1,128}, else a new one
 * (32 hex digits, unique across processes and restarts).
 */
void accesslog_req_init(struct accesslog_req *, const char *client_id, const char *user_agent,
                        size_t bytes_in);
/* An invocation starts / ends (invoke duration, attempts). */
void accesslog_req_invoke_start(struct accesslog_req *);
void accesslog_req_invoke_done(struct accesslog_req *, unsigned attempts);
/* Is s acceptable as a client's request id? */
int accesslog_id_valid(const char *s);
/* The outcome of e, resolved from its status when not set: "function",
 * "cache_hit", "denied", "rejected" or "error". */
const char *accesslog_outcome_name(const struct accesslog_entry *e);
/* text (the default) or json lines: CONFIG_FORMAT_TEXT or CONFIG_FORMAT_JSON. */
void accesslog_set_format(int json);
/* Format the JSON line (without newline) into buf; for tests. Returns buf. */
char *accesslog_format_json(const struct accesslog_entry *, char *buf, size_t len);

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
