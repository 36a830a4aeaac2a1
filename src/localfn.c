/*
 * localfn.c: local function mode (see localfn.h), after AWS's Runtime
 * Interface Emulator.
 *
 * Each function process ("slot") gets a Runtime API server of its own: an
 * evhttp on 127.0.0.1 with a port chosen by the kernel, made anew for every
 * process started in the slot and freed when that process is reaped. So a
 * request on it always comes from the slot's current process (or one of its
 * children), a stale connection of a dead process can never answer for the
 * next one, and freeing the server drops whatever the dead process left.
 *
 * A slot goes DOWN -> STARTING (forked, has not asked for work) -> IDLE
 * (its GET /invocation/next is held) -> BUSY (an invocation was handed out)
 * -> BETWEEN (it answered; waits for its next GET) -> IDLE ... A process
 * we kill is DYING until reaped. Timers: an invocation waits at most
 * `timeout` in the queue and runs at most `timeout`; a process has
 * `timeout` to ask for work after starting or answering. Failures (crash,
 * init error, timeout) restart the slot, at once the first time, then with
 * exponential back-off until a process answers an invocation again.
 *
 * The function runs in its own process group (so that a timeout kill takes
 * its children too and a terminal's ^C does not reach it), dies with the
 * worker (PR_SET_PDEATHSIG), and gets a clean environment: the Lambda
 * variables and `environment`, nothing from the daemon's own.
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "clock.h"
#include "httputil.h"
#include "kvlist.h"
#include "localfn.h"
#include "log.h"
#include "metrics.h"
#include "rtstream.h"
#include "xmalloc.h"

#define LOCALFN_API_PREFIX "/2018-06-01/runtime/"
/* Lambda's limit on a synchronous response. */
#define LOCALFN_MAX_RESPONSE 6291456
/* What evhttp reads of a post at most: more than the limit, so that a
 * response too large gets a clear error rather than a dropped connection. */
#define LOCALFN_MAX_POST (16 * 1024 * 1024)
/* A held GET /next may wait for work this long (a week) before evhttp's
 * idle timeout drops it; the runtime then asks again or is restarted. */
#define LOCALFN_API_IDLE (7 * 86400)
/* Longest line of function output logged as one line. */
#define LOCALFN_LINE_MAX 4096
#define LOCALFN_ACCOUNT "000000000000"
#define LOCALFN_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

enum localfn_slot_state {
	SLOT_DOWN,
	SLOT_STARTING,
	SLOT_IDLE,
	SLOT_BUSY,
	SLOT_BETWEEN,
	SLOT_DYING,
};

enum localfn_call_state {
	CALL_QUEUED,
	CALL_RUNNING,
	CALL_FINISHING, /* result decided, callback due from the event loop */
};

struct localfn_slot;

struct localfn_call {
	TAILQ_ENTRY(localfn_call) entry; /* ctx->queue while queued */
	struct localfn_ctx *ctx;
	struct localfn_slot *slot; /* while running */
	enum localfn_call_state state;
	char *payload;
	size_t len;
	char id[40];
	char method[16];
	invoke_done_cb cb;               /* buffered consumer */
	const struct fnstream_ops *sops; /* streaming consumer (localfn_start_stream) */
	void *arg;
	int live;             /* 0 once cancelled: nobody waits for the answer */
	size_t sbytes;        /* streaming consumer: bytes passed on */
	struct evbuffer *got; /* buffered consumer: a streamed answer, gathered */
	int too_large;        /* ... which went past Lambda's 6 MB */
	struct event *timer;  /* queue wait, then run time; async finish */
	int status;           /* CALL_FINISHING: what to report */
	char *message;
};
TAILQ_HEAD(localfn_call_list, localfn_call);

/* A function process's stdout and stderr, logged line by line. It outlives
 * the process until the pipe reaches EOF (children may hold it). */
struct localfn_out {
	LIST_ENTRY(localfn_out) entry;
	struct localfn_ctx *ctx;
	int fd;
	pid_t pid;
	struct event *ev;
	struct evbuffer *buf;
};

struct localfn_slot {
	struct localfn_ctx *ctx;
	int index;
	enum localfn_slot_state state;
	pid_t pid;
	int errfd; /* read end of the exec-error pipe */
	struct evhttp *http;
	char api[32]; /* 127.0.0.1:PORT */
	struct evhttp_request *next_req;
	struct localfn_call *call;
	struct rtstream *rs;         /* watching the /next connection for the answer */
	struct rtstream *srs;        /* reading the call's streaming answer (any connection) */
	struct rtstream_watch watch; /* the server's new connections */
	struct event *timer;         /* start/answer deadline, or restart back-off */
	unsigned failures;           /* since the last answered invocation */
	int was_ready;               /* a process of this slot has asked for work */
	char why[160];               /* why we killed it, for the log at reap */
};

struct localfn_ctx {
	struct event_base *base;
	char *command;
	char *name;
	char *arn;
	char *task_root;
	char **env; /* fixed part, NULL-terminated */
	size_t nenv;
	double timeout;
	double respawn;
	double respawn_cap;
	double kill_grace;
	int devnull;
	pid_t self;
	int stopping;

	struct localfn_slot *slots;
	int nslots;
	struct localfn_call_list queue;
	unsigned ncalls;
	struct event *sigchld;
	LIST_HEAD(, localfn_out) outs;

	int init_failed; /* the last process to start failed, none is ready */
	char init_msg[512];

	void (*ready)(void *); /* options' ready callback; NULL once called */
	void *ready_arg;
};

static void localfn_slot_spawn(struct localfn_slot *);
static void localfn_dispatch(struct localfn_ctx *);

/* Copy s for a client-facing message or a log line: printable ASCII only,
 * so that function text cannot inject lines or control bytes. */
static void
localfn_clean_copy(char *dst, size_t len, const char *s, size_t n)
{
	size_t i = 0, j;

	for (j = 0; s != NULL && j < n && s[j] != '\0' && i + 1 < len; j++)
		dst[i++] = (s[j] >= 0x20 && s[j] < 0x7f) ? s[j] : ' ';
	if (len > 0)
		dst[i] = '\0';
}

/* A random version 4 UUID, as Lambda's request ids are. */
static void
localfn_uuid(char *out, size_t len)
{
	unsigned char b[16];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof b) {
		n = getrandom(b + got, sizeof b - got, GRND_NONBLOCK);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	for (; got < sizeof b; got++)
		b[got] = (unsigned char)random();
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

/* "killed by signal 11 (Segmentation fault)" / "exited with status 3". */
static void
localfn_describe_status(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else
		snprintf(buf, len, "stopped (status 0x%x)", (unsigned)st);
}

/* --- invocations ---------------------------------------------------------- */

static void
localfn_call_free(struct localfn_call *call)
{
	struct localfn_ctx *ctx = call->ctx;

	if (call->state == CALL_QUEUED)
		TAILQ_REMOVE(&ctx->queue, call, entry);
	if (call->slot != NULL && call->slot->call == call)
		call->slot->call = NULL;
	event_free(call->timer);
	if (call->got != NULL)
		evbuffer_free(call->got);
	free(call->payload);
	free(call->message);
	free(call);
	ctx->ncalls--;
}

/* Report (unless cancelled) and free. */
static void
localfn_call_finish(struct localfn_call *call, int status, const char *payload, size_t len,
                    const char *message, const char *function_error)
{
	struct invoke_result r;
	struct fnstream_end e;

	if (call->live && call->sops != NULL) {
		/* A buffered answer to a streaming consumer: all of it at once. */
		if (status == 200 && len > 0) {
			call->sops->data((const unsigned char *)payload, len, call->arg);
			call->sbytes += len;
		}
		memset(&e, 0, sizeof e);
		e.status = status;
		e.message = message;
		e.request_id = call->id;
		e.function_error = function_error;
		e.bytes = call->sbytes;
		call->sops->done(&e, call->arg);
	} else if (call->live && call->cb != NULL) {
		memset(&r, 0, sizeof r);
		r.status = status;
		r.payload = payload;
		r.payload_len = len;
		r.message = message;
		r.request_id = call->id;
		r.function_error = function_error;
		call->cb(&r, call->arg);
	}
	localfn_call_free(call);
}

static void localfn_call_fail(struct localfn_call *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
localfn_call_fail(struct localfn_call *call, int status, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	localfn_call_finish(call, status, NULL, 0, msg, NULL);
}

/* The function reported an error (POST /error, or error trailers). */
static void
localfn_call_finish_error(struct localfn_call *call, const char *type, const char *msg)
{
	char text[768];

	snprintf(text, sizeof text, "the function failed (Unhandled): %s%s%s", type,
	         msg[0] ? ": " : "", msg);
	localfn_call_finish(call, 502, NULL, 0, text, "Unhandled");
}

/* Finish from the event loop: for results decided where the callback must
 * not run (inside localfn_start()). */
static void
localfn_call_fail_later(struct localfn_call *call, int status, const char *message)
{
	if (call->state == CALL_QUEUED)
		TAILQ_REMOVE(&call->ctx->queue, call, entry);
	call->state = CALL_FINISHING;
	call->status = status;
	free(call->message);
	call->message = xstrdup(message);
	evtimer_del(call->timer);
	event_active(call->timer, EV_TIMEOUT, 1);
}

/* --- slots: killing and restarting --------------------------------------- */

static int
localfn_any_ready(const struct localfn_ctx *ctx)
{
	int i;

	for (i = 0; i < ctx->nslots; i++) {
		enum localfn_slot_state s = ctx->slots[i].state;

		if (s == SLOT_IDLE || s == SLOT_BUSY || s == SLOT_BETWEEN)
			return 1;
	}
	return 0;
}

/*
 * A process failed to initialise. While no other process is ready, what is
 * queued cannot run: answer it now rather than let it wait for a timeout,
 * and answer new invocations the same way until a process is ready.
 */
static void
localfn_init_failed(struct localfn_ctx *ctx, const char *msg)
{
	struct localfn_call *call;

	snprintf(ctx->init_msg, sizeof ctx->init_msg, "%s", msg);
	if (localfn_any_ready(ctx))
		return;
	ctx->init_failed = 1;
	while ((call = TAILQ_FIRST(&ctx->queue)) != NULL)
		localfn_call_fail(call, 502, "%s", msg);
}

static void
localfn_slot_arm(struct localfn_slot *slot, double seconds)
{
	struct timeval tv = clock_tv(seconds);

	evtimer_add(slot->timer, &tv);
}

/* Kill the slot's process and its group; it is DYING until reaped. */
static void
localfn_slot_kill(struct localfn_slot *slot, const char *why)
{
	evtimer_del(slot->timer);
	snprintf(slot->why, sizeof slot->why, "%s", why);
	slot->state = SLOT_DYING;
	if (slot->pid > 0) {
		kill(-slot->pid, SIGKILL);
		kill(slot->pid, SIGKILL);
	}
}

/* Schedule the next process of a slot: at once after a single failure,
 * then with exponential back-off. */
static void
localfn_slot_schedule(struct localfn_slot *slot)
{
	struct localfn_ctx *ctx = slot->ctx;
	double delay = 0;
	unsigned i;

	slot->state = SLOT_DOWN;
	if (ctx->stopping)
		return;
	if (slot->failures > 1) {
		delay = ctx->respawn;
		for (i = 2; i < slot->failures && delay < ctx->respawn_cap; i++)
			delay *= 2;
		if (delay > ctx->respawn_cap)
			delay = ctx->respawn_cap;
		log_info("function slot %d: %u failures in a row; restarting in %.2fs", slot->index,
		         slot->failures, delay);
	}
	localfn_slot_arm(slot, delay);
}

/* The slot's process is gone (status from waitpid). */
static void
localfn_slot_reaped(struct localfn_slot *slot, int st)
{
	struct localfn_ctx *ctx = slot->ctx;
	enum localfn_slot_state was = slot->state;
	struct localfn_call *call;
	char how[160], msg[512];
	pid_t pid = slot->pid;
	int exec_errno = 0;
	ssize_t n;

	localfn_describe_status(st, how, sizeof how);
	if (slot->errfd >= 0) {
		n = read(slot->errfd, &exec_errno, sizeof exec_errno);
		if (n != (ssize_t)sizeof exec_errno)
			exec_errno = 0;
		close(slot->errfd);
		slot->errfd = -1;
	}
	slot->pid = 0;
	metrics_local_process(-1);
	if (!ctx->stopping)
		metrics_local_restart();
	evtimer_del(slot->timer);
	if (slot->next_req != NULL) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(slot->next_req), NULL,
		                              NULL);
		slot->next_req = NULL;
	}
	if (slot->http != NULL) {
		evhttp_free(slot->http);
		slot->http = NULL;
	}
	call = slot->call;
	slot->call = NULL;

	switch (was) {
	case SLOT_DYING:
		log_debug("function process %ld (%s) is gone: %s", (long)pid, slot->why, how);
		break;
	case SLOT_BUSY:
		slot->failures++;
		log_error("function process %ld crashed during invocation %s: %s", (long)pid,
		          call != NULL ? call->id : "-", how);
		break;
	case SLOT_STARTING:
		slot->failures++;
		if (exec_errno != 0)
			snprintf(msg, sizeof msg,
			         "the function failed to initialise: cannot run %s: %s",
			         ctx->command, strerror(exec_errno));
		else
			snprintf(msg, sizeof msg,
			         "the function failed to initialise: its process %s before asking "
			         "for an invocation",
			         how);
		log_error("function process %ld: %s", (long)pid, msg);
		localfn_init_failed(ctx, msg);
		break;
	default:
		slot->failures++;
		log_warn("function process %ld %s while waiting for an invocation", (long)pid, how);
		break;
	}
	if (call != NULL) {
		call->slot = NULL;
		localfn_call_fail(call, 502, "the function process crashed (%s)", how);
	}
	localfn_slot_schedule(slot);
}

/*
 * Reap pid if it exited, after killing what it left in its process group
 * (helpers it started). The group is killed while the process is still a
 * zombie, so that its id cannot have been reused by then. Returns pid when
 * reaped (status in *st), 0 when it still runs, -1 on error.
 */
static pid_t
localfn_reap(pid_t pid, int *st)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
		return -1;
	if (si.si_pid != pid)
		return 0;
	kill(-pid, SIGKILL);
	while (waitpid(pid, st, 0) == -1) {
		if (errno != EINTR)
			return -1;
	}
	return pid;
}

static void
localfn_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct localfn_ctx *ctx = arg;
	pid_t r;
	int i, st;

	/* Only our own children: the worker may have others. */
	for (i = 0; i < ctx->nslots; i++) {
		if (ctx->slots[i].pid <= 0)
			continue;
		if ((r = localfn_reap(ctx->slots[i].pid, &st)) == ctx->slots[i].pid)
			localfn_slot_reaped(&ctx->slots[i], st);
	}
}

/* The slot's timer: restart after back-off, or a process that does not ask
 * for work in time. */
static void
localfn_slot_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct localfn_slot *slot = arg;
	struct localfn_ctx *ctx = slot->ctx;
	char why[160];

	switch (slot->state) {
	case SLOT_DOWN:
		localfn_slot_spawn(slot);
		break;
	case SLOT_STARTING:
	case SLOT_BETWEEN:
		snprintf(why, sizeof why, "did not ask for an invocation within %gs of %s",
		         ctx->timeout, slot->state == SLOT_STARTING ? "starting" : "answering");
		log_warn("function process %ld %s (local_function.timeout): killing it",
		         (long)slot->pid, why);
		slot->failures++;
		localfn_slot_kill(slot, why);
		break;
	default:
		break;
	}
}

/* --- function output ----------------------------------------------------- */

/* line without a leading ISO 8601 time stamp ("2026-11-30T10:00:00.123Z "). */
static const char *
localfn_unstamped(const char *line)
{
	const char *p = line;

	if (strlen(p) < 20 || strspn(p, "0123456789") != 4 || p[4] != '-' || p[7] != '-' ||
	    (p[10] != 'T' && p[10] != ' ') || p[13] != ':' || p[16] != ':')
		return line;
	p += 19;
	p += strspn(p, ".,0123456789");
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-')
		p += strspn(p + 1, "0123456789:") + 1;
	if (*p != ' ')
		return line;
	return p + strspn(p, " ");
}

static void
localfn_out_line(struct localfn_out *o, const char *line, size_t len)
{
	char clean[LOCALFN_LINE_MAX + 1];

	if (len > 0 && line[len - 1] == '\r')
		len--;
	localfn_clean_copy(clean, sizeof clean, line, len);
	/* Labelled, and stamped once: our log line has the time already. */
	log_info("function[%ld]: %s", (long)o->pid, localfn_unstamped(clean));
}

static void
localfn_out_flush(struct localfn_out *o, int all)
{
	unsigned char *p, *nl;
	size_t len, n;

	for (;;) {
		len = evbuffer_get_length(o->buf);
		if (len == 0)
			return;
		n = len < LOCALFN_LINE_MAX ? len : LOCALFN_LINE_MAX;
		p = evbuffer_pullup(o->buf, (ev_ssize_t)n);
		nl = memchr(p, '\n', n);
		if (nl != NULL) {
			localfn_out_line(o, (const char *)p, (size_t)(nl - p));
			evbuffer_drain(o->buf, (size_t)(nl - p) + 1);
		} else if (n == LOCALFN_LINE_MAX || all) {
			localfn_out_line(o, (const char *)p, n);
			evbuffer_drain(o->buf, n);
		} else
			return;
	}
}

static void
localfn_out_free(struct localfn_out *o)
{
	localfn_out_flush(o, 1);
	LIST_REMOVE(o, entry);
	event_free(o->ev);
	evbuffer_free(o->buf);
	close(o->fd);
	free(o);
}

static void
localfn_out_cb(evutil_socket_t fd, short what, void *arg)
{
	struct localfn_out *o = arg;
	int n;

	n = evbuffer_read(o->buf, fd, 65536);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		localfn_out_free(o);
		return;
	}
	localfn_out_flush(o, 0);
}

/* --- the Runtime API ----------------------------------------------------- */

static void localfn_api_reply(struct evhttp_request *req, int code, const char *reason,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
localfn_api_reply(struct evhttp_request *req, int code, const char *reason, const char *fmt, ...)
{
	struct evbuffer *buf = evbuffer_new();
	va_list ap;

	if (buf != NULL) {
		va_start(ap, fmt);
		evbuffer_add_vprintf(buf, fmt, ap);
		va_end(ap);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, code, reason, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

static void
localfn_api_error(struct evhttp_request *req, int code, const char *type, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "errorMessage", message, "errorType", type);
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	localfn_api_reply(req, code, NULL, "%s", s != NULL ? s : "{}");
	free(s);
	json_decref(o);
}

/* The held GET /next went away (the process closed it). */
static void
localfn_next_closed(struct evhttp_connection *evcon, void *arg)
{
	struct localfn_slot *slot = arg;

	if (slot->state != SLOT_IDLE)
		return;
	slot->next_req = NULL;
	slot->state = SLOT_BETWEEN;
	localfn_slot_arm(slot, slot->ctx->timeout);
}

/* --- streaming answers (rtstream.h) ---------------------------------------- */

static int
localfn_rs_begin(struct rtstream *rs, const char *id, void *arg)
{
	struct localfn_slot *slot = arg;

	if (slot->state != SLOT_BUSY || slot->call == NULL || strcmp(slot->call->id, id) != 0)
		return -1;
	/* The watcher of the /next connection or of a new one: resume this. */
	slot->srs = rs;
	log_debug("invocation %s: streaming answer from function process %ld", id, (long)slot->pid);
	return 0;
}

static int
localfn_rs_data(const unsigned char *p, size_t n, void *arg)
{
	struct localfn_slot *slot = arg;
	struct localfn_call *call = slot->call;

	if (call == NULL || !call->live)
		return 0;
	if (call->sops != NULL) {
		call->sbytes += n;
		return call->sops->data(p, n, call->arg);
	}
	/* A buffered consumer gets it whole, as Invoke gives a streaming
	 * function's bytes: at most Lambda's 6 MB. */
	if (call->too_large)
		return 0;
	if (call->got == NULL && (call->got = evbuffer_new()) == NULL)
		fatal("out of memory");
	if (evbuffer_get_length(call->got) + n > LOCALFN_MAX_RESPONSE) {
		call->too_large = 1;
		evbuffer_drain(call->got, evbuffer_get_length(call->got));
		return 0;
	}
	evbuffer_add(call->got, p, n);
	return 0;
}

/* A streamed answer that reported an error in its trailers (base64 JSON
 * in Lambda-Runtime-Function-Error-Body). */
static void
localfn_trailer_error(const char *type_hdr, const char *body_hdr, char *type, size_t tlen,
                      char *msg, size_t mlen)
{
	unsigned char *raw;
	size_t n;
	json_t *root, *v;

	localfn_clean_copy(type, tlen, type_hdr, SIZE_MAX);
	msg[0] = '\0';
	if (body_hdr == NULL || (raw = http_base64_decode(body_hdr, strlen(body_hdr), &n)) == NULL)
		return;
	if ((root = json_loadb((const char *)raw, n, 0, NULL)) != NULL) {
		if (json_is_string(v = json_object_get(root, "errorMessage")))
			localfn_clean_copy(msg, mlen, json_string_value(v), SIZE_MAX);
		json_decref(root);
	}
	free(raw);
}

static void
localfn_rs_end(const struct kvlist *trailers, const char *err, void *arg)
{
	struct localfn_slot *slot = arg;
	struct localfn_ctx *ctx = slot->ctx;
	struct localfn_call *call = slot->call;
	const char *et;
	char type[128], msg[512];
	char *body;
	size_t len;

	if (call == NULL || slot->state != SLOT_BUSY)
		return;
	slot->call = NULL;
	call->slot = NULL;
	slot->state = SLOT_BETWEEN;
	slot->failures = 0;
	localfn_slot_arm(slot, ctx->timeout);
	if (err != NULL) {
		log_error("function's streamed answer cut short (request %s): %s", call->id, err);
		localfn_call_fail(call, 502, "the function's answer was cut short: %s", err);
		return;
	}
	if ((et = kvlist_get(trailers, "Lambda-Runtime-Function-Error-Type")) != NULL) {
		localfn_trailer_error(et,
		                      kvlist_get(trailers, "Lambda-Runtime-Function-Error-Body"),
		                      type, sizeof type, msg, sizeof msg);
		metrics_function_error("Unhandled");
		log_warn("function failed while streaming (request %s): %s: %s", call->id, type,
		         msg[0] ? msg : "-");
		localfn_call_finish_error(call, type, msg);
		return;
	}
	if (call->too_large) {
		localfn_call_fail(call, 502,
		                  "the function's response is more than Lambda's %d bytes",
		                  LOCALFN_MAX_RESPONSE);
		return;
	}
	len = call->got != NULL ? evbuffer_get_length(call->got) : 0;
	body = len > 0 ? (char *)evbuffer_pullup(call->got, -1) : NULL;
	localfn_call_finish(call, 200, call->sops != NULL ? NULL : body,
	                    call->sops != NULL ? 0 : len, NULL, NULL);
}

static void
localfn_rs_released(struct rtstream *rs, void *arg)
{
	struct localfn_slot *slot = arg;

	if (slot->rs == rs)
		slot->rs = NULL;
	if (slot->srs == rs)
		slot->srs = NULL;
}

static const struct rtstream_ops localfn_rs_ops = {
    localfn_rs_begin,
    localfn_rs_data,
    localfn_rs_end,
    localfn_rs_released,
};

/* Hand call to the slot's held GET /next. */
static void
localfn_slot_run(struct localfn_slot *slot, struct localfn_call *call)
{
	struct localfn_ctx *ctx = slot->ctx;
	struct evhttp_request *req = slot->next_req;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf;
	struct timeval tv;
	struct timespec now;
	unsigned char rnd[20];
	char v[128];
	long long deadline;
	size_t i;

	slot->next_req = NULL;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
	TAILQ_REMOVE(&ctx->queue, call, entry);
	call->state = CALL_RUNNING;
	call->slot = slot;
	slot->call = call;
	slot->state = SLOT_BUSY;

	clock_gettime(CLOCK_REALTIME, &now);
	deadline =
	    (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + (long long)(ctx->timeout * 1000);
	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Lambda-Runtime-Aws-Request-Id", call->id);
	snprintf(v, sizeof v, "%lld", deadline);
	evhttp_add_header(out, "Lambda-Runtime-Deadline-Ms", v);
	evhttp_add_header(out, "Lambda-Runtime-Invoked-Function-Arn", ctx->arn);
	/* An X-Ray trace id of the documented shape, not sampled. */
	if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
		for (i = 0; i < sizeof rnd; i++)
			rnd[i] = (unsigned char)random();
	i = (size_t)snprintf(v, sizeof v, "Root=1-%08lx-", (unsigned long)now.tv_sec);
	for (size_t j = 0; j < 12; j++)
		i += (size_t)snprintf(v + i, sizeof v - i, "%02x", rnd[j]);
	i += (size_t)snprintf(v + i, sizeof v - i, ";Parent=");
	for (size_t j = 12; j < 20; j++)
		i += (size_t)snprintf(v + i, sizeof v - i, "%02x", rnd[j]);
	snprintf(v + i, sizeof v - i, ";Sampled=0");
	evhttp_add_header(out, "Lambda-Runtime-Trace-Id", v);

	buf = evbuffer_new();
	if (buf != NULL)
		evbuffer_add(buf, call->payload, call->len);
	free(call->payload);
	call->payload = NULL;
	log_debug("invocation %s (%s) to function process %ld", call->id, call->method,
	          (long)slot->pid);
	/* The function answers on this connection next: watch it for a
	 * streaming answer. */
	if (slot->rs != NULL)
		rtstream_cancel(slot->rs);
	slot->rs = rtstream_arm(req, &localfn_rs_ops, slot);
	evhttp_send_reply(req, 200, "OK", buf);
	if (buf != NULL)
		evbuffer_free(buf);
	tv = clock_tv(ctx->timeout);
	evtimer_add(call->timer, &tv);
}

static void
localfn_dispatch(struct localfn_ctx *ctx)
{
	struct localfn_call *call;
	int i;

	while ((call = TAILQ_FIRST(&ctx->queue)) != NULL) {
		for (i = 0; i < ctx->nslots; i++)
			if (ctx->slots[i].state == SLOT_IDLE && ctx->slots[i].next_req != NULL)
				break;
		if (i == ctx->nslots)
			return;
		localfn_slot_run(&ctx->slots[i], call);
	}
}

/* A slot's process asked for work: when it is the last slot to, say so once. */
static void
localfn_slot_ready(struct localfn_slot *slot)
{
	struct localfn_ctx *ctx = slot->ctx;
	void (*cb)(void *) = ctx->ready;
	int i;

	slot->was_ready = 1;
	if (cb == NULL)
		return;
	for (i = 0; i < ctx->nslots; i++)
		if (!ctx->slots[i].was_ready)
			return;
	ctx->ready = NULL;
	cb(ctx->ready_arg);
}

static void
localfn_api_next(struct localfn_slot *slot, struct evhttp_request *req)
{
	struct localfn_ctx *ctx = slot->ctx;
	struct localfn_call *call;

	switch (slot->state) {
	case SLOT_DYING:
	case SLOT_DOWN:
		/* Held until the server is freed with the process. */
		return;
	case SLOT_IDLE:
		/*
		 * A new GET while one is held: the runtime gave up on the
		 * first (a client timeout) and asked again. evhttp does not
		 * notice a held request's client leaving, so the newest wins;
		 * the old one gets an error, which goes nowhere if its
		 * connection is gone.
		 */
		evhttp_connection_set_closecb(evhttp_request_get_connection(slot->next_req), NULL,
		                              NULL);
		localfn_api_error(slot->next_req, 409, "InvalidStateTransition",
		                  "replaced by a newer GET /runtime/invocation/next");
		slot->next_req = NULL;
		break;
	case SLOT_BUSY:
		call = slot->call;
		slot->call = NULL;
		log_warn("function process %ld asked for its next invocation without answering %s",
		         (long)slot->pid, call->id);
		call->slot = NULL;
		localfn_call_fail(call, 502,
		                  "the function asked for its next invocation without answering "
		                  "this one");
		break;
	case SLOT_STARTING:
		log_debug("function process %ld is ready", (long)slot->pid);
		localfn_slot_ready(slot);
		break;
	case SLOT_BETWEEN:
		break;
	}
	ctx->init_failed = 0;
	evtimer_del(slot->timer);
	slot->next_req = req;
	slot->state = SLOT_IDLE;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), localfn_next_closed,
	                              slot);
	localfn_dispatch(ctx);
}

/* errorType and errorMessage of an error the function posted (cleaned). */
static void
localfn_parse_error(struct evhttp_request *req, char *type, size_t tlen, char *msg, size_t mlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *hdr;
	json_t *root, *v;

	type[0] = msg[0] = '\0';
	root = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
	if (root != NULL) {
		if (json_is_string(v = json_object_get(root, "errorType")))
			localfn_clean_copy(type, tlen, json_string_value(v), SIZE_MAX);
		if (json_is_string(v = json_object_get(root, "errorMessage")))
			localfn_clean_copy(msg, mlen, json_string_value(v), SIZE_MAX);
		json_decref(root);
	}
	hdr = evhttp_find_header(evhttp_request_get_input_headers(req),
	                         "Lambda-Runtime-Function-Error-Type");
	if (type[0] == '\0' && hdr != NULL)
		localfn_clean_copy(type, tlen, hdr, SIZE_MAX);
	if (type[0] == '\0')
		snprintf(type, tlen, "error");
}

/* POST /invocation/{id}/response or /error. */
static void
localfn_api_answer(struct localfn_slot *slot, struct evhttp_request *req, const char *id,
                   size_t idlen, int is_error)
{
	struct localfn_ctx *ctx = slot->ctx;
	struct localfn_call *call = slot->call;
	struct evbuffer *in;
	struct evkeyvalq *hdrs;
	const char *mode, *et;
	char type[128], msg[512], *body;
	size_t len;

	if (slot->state != SLOT_BUSY || call == NULL || strlen(call->id) != idlen ||
	    memcmp(call->id, id, idlen) != 0) {
		localfn_api_error(req, 400, "InvalidRequestID",
		                  "no invocation with this request id is in progress");
		return;
	}
	slot->call = NULL;
	call->slot = NULL;
	slot->state = SLOT_BETWEEN;
	slot->failures = 0;
	localfn_slot_arm(slot, ctx->timeout);
	if (is_error) {
		localfn_parse_error(req, type, sizeof type, msg, sizeof msg);
		localfn_api_reply(req, 202, "Accepted", "{\"status\":\"OK\"}");
		metrics_function_error("Unhandled");
		log_warn("function failed (request %s): %s: %s", call->id, type,
		         msg[0] ? msg : "-");
		localfn_call_finish_error(call, type, msg);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	/* A streaming answer that evhttp read whole (it came on a connection
	 * rtstream did not watch): its trailers are among the headers. */
	hdrs = evhttp_request_get_input_headers(req);
	if ((mode = evhttp_find_header(hdrs, "Lambda-Runtime-Function-Response-Mode")) != NULL &&
	    strcasecmp(mode, "streaming") == 0 &&
	    (et = evhttp_find_header(hdrs, "Lambda-Runtime-Function-Error-Type")) != NULL) {
		localfn_trailer_error(
		    et, evhttp_find_header(hdrs, "Lambda-Runtime-Function-Error-Body"), type,
		    sizeof type, msg, sizeof msg);
		localfn_api_reply(req, 202, "Accepted", "{\"status\":\"OK\"}");
		metrics_function_error("Unhandled");
		log_warn("function failed while streaming (request %s): %s: %s", call->id, type,
		         msg[0] ? msg : "-");
		localfn_call_finish_error(call, type, msg);
		return;
	}
	if (len > LOCALFN_MAX_RESPONSE && (call->sops == NULL || !call->live)) {
		localfn_api_error(req, 413, "RequestEntityTooLarge",
		                  "the response is larger than 6291456 bytes");
		log_error("function response too large (request %s): %zu bytes", call->id, len);
		localfn_call_fail(call, 502,
		                  "the function's response is %zu bytes, more than Lambda's %d",
		                  len, LOCALFN_MAX_RESPONSE);
		return;
	}
	body = xmalloc(len + 1);
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	localfn_api_reply(req, 202, "Accepted", "{\"status\":\"OK\"}");
	localfn_call_finish(call, 200, body, len, NULL, NULL);
	free(body);
}

/* POST /init/error: the process could not start; it is replaced. */
static void
localfn_api_init_error(struct localfn_slot *slot, struct evhttp_request *req)
{
	struct localfn_ctx *ctx = slot->ctx;
	struct localfn_call *call;
	char type[128], msg[512], text[768];

	localfn_parse_error(req, type, sizeof type, msg, sizeof msg);
	localfn_api_reply(req, 202, "Accepted", "{\"status\":\"OK\"}");
	if (slot->state == SLOT_DYING || slot->state == SLOT_DOWN)
		return;
	log_error("function process %ld failed to initialise: %s: %s", (long)slot->pid, type,
	          msg[0] ? msg : "-");
	snprintf(text, sizeof text, "the function failed to initialise: %s%s%s", type,
	         msg[0] ? ": " : "", msg);
	if ((call = slot->call) != NULL) {
		slot->call = NULL;
		call->slot = NULL;
		localfn_call_fail(call, 502, "%s", text);
	}
	if (slot->next_req != NULL) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(slot->next_req), NULL,
		                              NULL);
		slot->next_req = NULL;
	}
	slot->failures++;
	localfn_slot_kill(slot, "init error");
	localfn_init_failed(ctx, text);
}

static void
localfn_api_cb(struct evhttp_request *req, void *arg)
{
	struct localfn_slot *slot = arg;
	const char *uri = evhttp_request_get_uri(req), *p, *end;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	size_t plen, idlen;

	if (uri == NULL || strncmp(uri, LOCALFN_API_PREFIX, strlen(LOCALFN_API_PREFIX)) != 0) {
		localfn_api_error(req, 404, "NotFound", "unknown Runtime API path");
		return;
	}
	p = uri + strlen(LOCALFN_API_PREFIX);
	plen = strcspn(p, "?");
	if (plen == strlen("invocation/next") && strncmp(p, "invocation/next", plen) == 0) {
		if (cmd != EVHTTP_REQ_GET)
			localfn_api_error(req, 405, "MethodNotAllowed", "use GET");
		else
			localfn_api_next(slot, req);
		return;
	}
	if (plen == strlen("init/error") && strncmp(p, "init/error", plen) == 0) {
		if (cmd != EVHTTP_REQ_POST)
			localfn_api_error(req, 405, "MethodNotAllowed", "use POST");
		else
			localfn_api_init_error(slot, req);
		return;
	}
	if (strncmp(p, "invocation/", 11) == 0) {
		p += 11;
		plen -= 11;
		end = memchr(p, '/', plen);
		if (end != NULL) {
			idlen = (size_t)(end - p);
			plen -= idlen;
			if (plen == strlen("/response") && strncmp(end, "/response", plen) == 0) {
				if (cmd != EVHTTP_REQ_POST)
					localfn_api_error(req, 405, "MethodNotAllowed", "use POST");
				else
					localfn_api_answer(slot, req, p, idlen, 0);
				return;
			}
			if (plen == strlen("/error") && strncmp(end, "/error", plen) == 0) {
				if (cmd != EVHTTP_REQ_POST)
					localfn_api_error(req, 405, "MethodNotAllowed", "use POST");
				else
					localfn_api_answer(slot, req, p, idlen, 1);
				return;
			}
		}
	}
	localfn_api_error(req, 404, "NotFound", "unknown Runtime API path");
}

/* --- starting a process --------------------------------------------------- */

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
localfn_child(const struct localfn_ctx *ctx, int outw, int errw, char *const argv[],
              char *const envp[])
{
	sigset_t none;
	int sig, e;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ctx->self)
		_exit(1);
	for (sig = 1; sig < 32; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(ctx->devnull, 0) == -1 || dup2(outw, 1) == -1 || dup2(outw, 2) == -1)
		_exit(126);
	if (errw != 3 && dup2(errw, 3) == -1)
		_exit(126);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	closefrom(4);
	if (chdir(ctx->task_root) == -1) {
		/* Lambda runs the function in its task root; carry on anyway. */
	}
	execve(argv[0], argv, envp);
	e = errno;
	if (write(3, &e, sizeof e) != (ssize_t)sizeof e) {
		/* Nothing more to report with. */
	}
	_exit(127);
}

/* A fresh Runtime API server for the slot's next process. */
static int
localfn_slot_listen(struct localfn_slot *slot)
{
	struct localfn_ctx *ctx = slot->ctx;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t slen = sizeof sin;
	struct timeval tv;

	if ((slot->http = evhttp_new(ctx->base)) == NULL)
		return -1;
	bs = evhttp_bind_socket_with_handle(slot->http, "127.0.0.1", 0);
	if (bs == NULL ||
	    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen) == -1) {
		evhttp_free(slot->http);
		slot->http = NULL;
		return -1;
	}
	snprintf(slot->api, sizeof slot->api, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	evhttp_set_allowed_methods(slot->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_default_content_type(slot->http, NULL);
	evhttp_set_max_body_size(slot->http, LOCALFN_MAX_POST);
	tv = clock_tv(LOCALFN_API_IDLE);
	evhttp_set_timeout_tv(slot->http, &tv);
	evhttp_set_gencb(slot->http, localfn_api_cb, slot);
	slot->watch.ops = &localfn_rs_ops;
	slot->watch.arg = slot;
	rtstream_watch(slot->http, &slot->watch);
	return 0;
}

static void
localfn_slot_spawn(struct localfn_slot *slot)
{
	struct localfn_ctx *ctx = slot->ctx;
	struct localfn_out *o;
	char *argv[2], **envp, *api;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	pid_t pid;
	size_t i;

	if (localfn_slot_listen(slot) == -1) {
		log_error("function slot %d: cannot start a Runtime API server on 127.0.0.1: %s",
		          slot->index, strerror(errno));
		goto fail;
	}
	if (pipe2(outp, O_CLOEXEC) == -1 || pipe2(errp, O_CLOEXEC) == -1) {
		log_error("function slot %d: pipe: %s", slot->index, strerror(errno));
		goto fail;
	}
	/* Everything the child needs is made before fork(). */
	envp = xcalloc(ctx->nenv + 2, sizeof *envp);
	for (i = 0; i < ctx->nenv; i++)
		envp[i] = ctx->env[i];
	xasprintf(&api, "AWS_LAMBDA_RUNTIME_API=%s", slot->api);
	envp[i] = api;
	argv[0] = ctx->command;
	argv[1] = NULL;

	pid = fork();
	if (pid == 0)
		localfn_child(ctx, outp[1], errp[1], argv, envp);
	free(api);
	free(envp);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (pid == -1) {
		log_error("function slot %d: fork: %s", slot->index, strerror(errno));
		goto fail;
	}
	/* Also here, so that a kill of the group works before the child ran. */
	setpgid(pid, pid);
	slot->pid = pid;
	metrics_local_process(1);
	slot->errfd = errp[0];
	slot->state = SLOT_STARTING;
	slot->why[0] = '\0';
	localfn_slot_arm(slot, ctx->timeout);

	fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
	o = xcalloc(1, sizeof *o);
	o->ctx = ctx;
	o->fd = outp[0];
	o->pid = pid;
	o->buf = evbuffer_new();
	o->ev = event_new(ctx->base, o->fd, EV_READ | EV_PERSIST, localfn_out_cb, o);
	if (o->buf == NULL || o->ev == NULL)
		fatal("out of memory");
	event_add(o->ev, NULL);
	LIST_INSERT_HEAD(&ctx->outs, o, entry);
	log_debug("function slot %d: started %s as process %ld (Runtime API %s)", slot->index,
	          ctx->command, (long)pid, slot->api);
	return;

fail:
	for (i = 0; i < 2; i++) {
		if (outp[i] != -1)
			close(outp[i]);
		if (errp[i] != -1)
			close(errp[i]);
	}
	if (slot->http != NULL) {
		evhttp_free(slot->http);
		slot->http = NULL;
	}
	slot->failures++;
	localfn_slot_schedule(slot);
}

/* --- the context ------------------------------------------------------------ */

/* The invocation's timer: waited too long in the queue, ran too long, or a
 * result decided in localfn_start() is due. */
static void
localfn_call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct localfn_call *call = arg;
	struct localfn_ctx *ctx = call->ctx;
	struct localfn_slot *slot;
	char why[160];

	switch (call->state) {
	case CALL_FINISHING:
		localfn_call_finish(call, call->status, NULL, 0, call->message, NULL);
		break;
	case CALL_QUEUED:
		log_warn("invocation %s waited %gs for a function process: giving up", call->id,
		         ctx->timeout);
		localfn_call_fail(call, 504,
		                  "no function process took the invocation within %gs "
		                  "(local_function.timeout)",
		                  ctx->timeout);
		break;
	case CALL_RUNNING:
		slot = call->slot;
		metrics_local_timeout();
		log_warn("invocation %s: the function timed out after %gs: killing process %ld",
		         call->id, ctx->timeout, slot != NULL ? (long)slot->pid : -1L);
		if (slot != NULL) {
			slot->call = NULL;
			call->slot = NULL;
			slot->failures++;
			snprintf(why, sizeof why, "timed out after %gs", ctx->timeout);
			localfn_slot_kill(slot, why);
		}
		localfn_call_fail(call, 504,
		                  "the function timed out after %gs (local_function.timeout)",
		                  ctx->timeout);
		break;
	}
}

static struct localfn_call *
localfn_queue(struct localfn_ctx *ctx, const char *method, char *payload, size_t len,
              invoke_done_cb cb, const struct fnstream_ops *sops, void *arg)
{
	struct localfn_call *call;
	struct timeval tv;

	call = xcalloc(1, sizeof *call);
	call->ctx = ctx;
	call->payload = payload;
	call->len = len;
	call->cb = cb;
	call->sops = sops;
	call->arg = arg;
	call->live = 1;
	snprintf(call->method, sizeof call->method, "%s", method != NULL ? method : "-");
	localfn_uuid(call->id, sizeof call->id);
	call->timer = evtimer_new(ctx->base, localfn_call_timer_cb, call);
	if (call->timer == NULL)
		fatal("out of memory");
	call->state = CALL_QUEUED;
	TAILQ_INSERT_TAIL(&ctx->queue, call, entry);
	ctx->ncalls++;
	if (ctx->init_failed && !localfn_any_ready(ctx)) {
		localfn_call_fail_later(call, 502, ctx->init_msg);
		return call;
	}
	tv = clock_tv(ctx->timeout);
	evtimer_add(call->timer, &tv);
	localfn_dispatch(ctx);
	return call;
}

struct localfn_call *
localfn_start(struct localfn_ctx *ctx, const char *method, char *payload, size_t len,
              invoke_done_cb cb, void *arg)
{
	return localfn_queue(ctx, method, payload, len, cb, NULL, arg);
}

struct localfn_call *
localfn_start_stream(struct localfn_ctx *ctx, const char *method, char *payload, size_t len,
                     const struct fnstream_ops *ops, void *arg)
{
	return localfn_queue(ctx, method, payload, len, NULL, ops, arg);
}

void
localfn_stream_resume(struct localfn_call *call)
{
	if (call->slot != NULL && call->slot->call == call && call->slot->srs != NULL)
		rtstream_resume(call->slot->srs);
}

void
localfn_cancel(struct localfn_call *call)
{
	if (call->state == CALL_RUNNING && call->slot != NULL) {
		/* The function is working on it: let it finish, drop the answer.
		 * The timer still bounds it. */
		call->live = 0;
		call->cb = NULL;
		call->sops = NULL;
		/* A paused stream goes on (and is dropped) so that it ends. */
		if (call->slot->srs != NULL)
			rtstream_resume(call->slot->srs);
		return;
	}
	localfn_call_free(call);
}

unsigned
localfn_inflight(const struct localfn_ctx *ctx)
{
	return ctx->ncalls;
}

/* NAME from "NAME", "NAME:ALIAS", "ACCOUNT:function:NAME[:Q]" or an ARN. */
static char *
localfn_function_name(const char *s)
{
	const char *p = strstr(s, "function:");

	if (p != NULL)
		s = p + strlen("function:");
	return xstrndup(s, strcspn(s, ":"));
}

static void
localfn_env_add(struct localfn_ctx *ctx, const struct kvlist *extra, const char *name,
                const char *value)
{
	if (extra != NULL && kvlist_get_exact(extra, name) != NULL)
		return; /* the configured value wins */
	ctx->env = xreallocarray(ctx->env, ctx->nenv + 2, sizeof *ctx->env);
	xasprintf(&ctx->env[ctx->nenv++], "%s=%s", name, value);
	ctx->env[ctx->nenv] = NULL;
}

/* The function's environment, but for AWS_LAMBDA_RUNTIME_API (per process). */
static void
localfn_env_build(struct localfn_ctx *ctx, const struct localfn_options *o, const char *handler)
{
	const struct kvlist *extra = o->environment;
	size_t i;

	ctx->env = xcalloc(1, sizeof *ctx->env);
	localfn_env_add(ctx, extra, "AWS_LAMBDA_FUNCTION_NAME", ctx->name);
	localfn_env_add(ctx, extra, "AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
	localfn_env_add(ctx, extra, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
	if (o->region != NULL && *o->region != '\0') {
		localfn_env_add(ctx, extra, "AWS_REGION", o->region);
		localfn_env_add(ctx, extra, "AWS_DEFAULT_REGION", o->region);
	}
	localfn_env_add(ctx, extra, "LAMBDA_TASK_ROOT", ctx->task_root);
	localfn_env_add(ctx, extra, "_HANDLER", handler);
	localfn_env_add(ctx, extra, "TZ", ":UTC");
	localfn_env_add(ctx, extra, "PATH", LOCALFN_DEFAULT_PATH);
	for (i = 0; extra != NULL && i < extra->n; i++) {
		if (strcmp(extra->v[i].name, "AWS_LAMBDA_RUNTIME_API") == 0) {
			log_warn("local_function.environment: AWS_LAMBDA_RUNTIME_API is set by the "
			         "daemon; ignoring the configured value");
			continue;
		}
		ctx->env = xreallocarray(ctx->env, ctx->nenv + 2, sizeof *ctx->env);
		xasprintf(&ctx->env[ctx->nenv++], "%s=%s", extra->v[i].name, extra->v[i].value);
		ctx->env[ctx->nenv] = NULL;
	}
}

struct localfn_ctx *
localfn_ctx_new(struct event_base *base, const struct localfn_options *o, char *err, size_t errlen)
{
	struct localfn_ctx *ctx;
	char *real, *slash;
	const char *handler;
	int i;

	if (o->command == NULL || *o->command == '\0') {
		snprintf(err, errlen, "local_function.command is empty");
		return NULL;
	}
	ctx = xcalloc(1, sizeof *ctx);
	ctx->base = base;
	ctx->devnull = -1;
	TAILQ_INIT(&ctx->queue);
	LIST_INIT(&ctx->outs);
	ctx->self = getpid();
	ctx->timeout = o->timeout > 0 ? o->timeout : 30;
	ctx->respawn = o->respawn > 0 ? o->respawn : 0.5;
	ctx->respawn_cap = o->respawn_cap >= ctx->respawn ? o->respawn_cap : ctx->respawn;
	ctx->kill_grace = o->kill_grace >= 0 ? o->kill_grace : 1;
	ctx->ready = o->ready;
	ctx->ready_arg = o->ready_arg;

	/* Absolute, so that the chdir into the task root cannot break it. */
	real = realpath(o->command, NULL);
	if (real == NULL) {
		log_error("local_function.command %s: %s (retrying with back-off; invocations "
		          "get 502 until it can run)",
		          o->command, strerror(errno));
		ctx->command = xstrdup(o->command);
	} else
		ctx->command = real;
	slash = strrchr(ctx->command, '/');
	ctx->task_root = slash == NULL ? xstrdup(".")
	                 : slash == ctx->command
	                     ? xstrdup("/")
	                     : xstrndup(ctx->command, (size_t)(slash - ctx->command));
	handler = slash != NULL ? slash + 1 : ctx->command;
	ctx->name = o->function_name != NULL && *o->function_name != '\0'
	                ? localfn_function_name(o->function_name)
	                : xstrdup(handler);
	xasprintf(&ctx->arn, "arn:aws:lambda:%s:%s:function:%s",
	          o->region != NULL && *o->region != '\0' ? o->region : "us-east-1",
	          LOCALFN_ACCOUNT, ctx->name);
	localfn_env_build(ctx, o, handler);

	ctx->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ctx->sigchld = evsignal_new(base, SIGCHLD, localfn_sigchld_cb, ctx);
	if (ctx->devnull == -1 || ctx->sigchld == NULL || event_add(ctx->sigchld, NULL) == -1) {
		snprintf(err, errlen, "cannot set up local function mode: %s",
		         ctx->devnull == -1 ? strerror(errno) : "SIGCHLD event");
		localfn_ctx_free(ctx);
		return NULL;
	}

	ctx->nslots = o->concurrency > 0 ? o->concurrency : 1;
	ctx->slots = xcalloc((size_t)ctx->nslots, sizeof *ctx->slots);
	for (i = 0; i < ctx->nslots; i++) {
		struct localfn_slot *slot = &ctx->slots[i];

		slot->ctx = ctx;
		slot->index = i + 1;
		slot->errfd = -1;
		slot->state = SLOT_DOWN;
		slot->timer = evtimer_new(base, localfn_slot_timer_cb, slot);
		if (slot->timer == NULL)
			fatal("out of memory");
	}
	for (i = 0; i < ctx->nslots; i++)
		localfn_slot_spawn(&ctx->slots[i]);
	log_info("local function mode: %d process%s of %s (Runtime API on 127.0.0.1)", ctx->nslots,
	         ctx->nslots == 1 ? "" : "es", ctx->command);
	return ctx;
}

/* Stop every process: SIGTERM to its group, SIGKILL after the grace. */
static void
localfn_stop_processes(struct localfn_ctx *ctx)
{
	struct timespec start, now, pause = {0, 10 * 1000 * 1000};
	int i, left, st;
	pid_t pid, r;

	for (i = 0; i < ctx->nslots; i++) {
		if ((pid = ctx->slots[i].pid) > 0) {
			kill(-pid, SIGTERM);
			kill(pid, SIGTERM);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		left = 0;
		for (i = 0; i < ctx->nslots; i++) {
			if ((pid = ctx->slots[i].pid) <= 0)
				continue;
			r = localfn_reap(pid, &st);
			if (r == pid || r == -1) {
				ctx->slots[i].pid = 0;
			} else
				left++;
		}
		if (left == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
		        (double)(now.tv_nsec - start.tv_nsec) / 1e9 >=
		    ctx->kill_grace)
			break;
		nanosleep(&pause, NULL);
	}
	for (i = 0; i < ctx->nslots; i++) {
		if ((pid = ctx->slots[i].pid) <= 0)
			continue;
		log_warn("function process %ld did not stop within %gs of SIGTERM: killing it",
		         (long)pid, ctx->kill_grace);
		kill(pid, SIGKILL);
		kill(-pid, SIGKILL);
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
		ctx->slots[i].pid = 0;
	}
}

void
localfn_ctx_free(struct localfn_ctx *ctx)
{
	struct localfn_call *call;
	struct localfn_out *o;
	size_t j;
	int i;

	if (ctx == NULL)
		return;
	ctx->stopping = 1;
	while ((call = TAILQ_FIRST(&ctx->queue)) != NULL)
		localfn_call_free(call);
	for (i = 0; ctx->slots != NULL && i < ctx->nslots; i++)
		if (ctx->slots[i].call != NULL)
			localfn_call_free(ctx->slots[i].call);
	if (ctx->slots != NULL)
		localfn_stop_processes(ctx);
	for (i = 0; ctx->slots != NULL && i < ctx->nslots; i++) {
		struct localfn_slot *slot = &ctx->slots[i];

		if (slot->next_req != NULL)
			evhttp_connection_set_closecb(evhttp_request_get_connection(slot->next_req),
			                              NULL, NULL);
		slot->next_req = NULL;
		if (slot->http != NULL)
			evhttp_free(slot->http);
		if (slot->errfd >= 0)
			close(slot->errfd);
		if (slot->timer != NULL)
			event_free(slot->timer);
	}
	/* The processes are gone: read what they wrote last, then close. */
	while ((o = LIST_FIRST(&ctx->outs)) != NULL) {
		while (evbuffer_read(o->buf, o->fd, 65536) > 0)
			;
		localfn_out_free(o);
	}
	if (ctx->sigchld != NULL)
		event_free(ctx->sigchld);
	if (ctx->devnull >= 0)
		close(ctx->devnull);
	for (j = 0; j < ctx->nenv; j++)
		free(ctx->env[j]);
	free(ctx->env);
	free(ctx->slots);
	free(ctx->command);
	free(ctx->name);
	free(ctx->arn);
	free(ctx->task_root);
	free(ctx);
}
