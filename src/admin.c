/*
 * admin.c: the admin listener (the admin: block), served by the master on
 * its own event loop so that scrapes and probes never touch the request
 * path: GET /metrics (Prometheus text format, from metrics.c's shared
 * counters), /healthz (the master and at least one worker run) and /readyz
 * (metrics_ready()). It never proxies and never invokes, and its requests
 * are not counted as proxied ones.
 *
 * It also watches readiness once a second whether or not the listener is
 * on, and says every change the same way in the log and in systemd's
 * STATUS= line, so that /readyz, `systemctl status` and the journal agree.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <jansson.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "xmalloc.h"

#define ADMIN_WATCH 1.0    /* seconds between readiness checks */
#define ADMIN_TIMEOUT 10.0 /* a client has this long to ask and to read */
#define ADMIN_MAX_HEAD 16384
#define ADMIN_MAX_CONNS 64

/* One admin connection: a request, an answer, closed (Connection: close). */
struct admin_conn {
	struct bufferevent *bev;
	int from_unix;
	struct sockaddr_storage peer;
	TAILQ_ENTRY(admin_conn) entry;
};

static struct {
	struct event_base *base;
	const struct config *cfg;
	struct evconnlistener *listener;
	char *socket_path; /* the unix socket we made, to unlink */
	pid_t owner;       /* the master: a forked child must not unlink it */
	char listen_text[128];
	struct event *watch;
	int ready; /* -1: not known yet */
	char reason[64];
	TAILQ_HEAD(, admin_conn) conns;
	int nconns;
	int adopted; /* a listening socket an old master handed over, or -1 */
} admin = {.ready = -1, .adopted = -1};

static void
admin_conn_free(struct admin_conn *c)
{
	TAILQ_REMOVE(&admin.conns, c, entry);
	admin.nconns--;
	/* Closes the socket; never shutdown(2), which would reach the copy
	 * the master keeps when this runs in a forked child. */
	bufferevent_free(c->bev);
	free(c);
}

static const char *
admin_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Service Unavailable";
	}
}

/* Queue the answer; the connection closes once it is written. */
static void
admin_reply(struct admin_conn *c, int status, const char *type, const char *extra, int head,
            struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = evbuffer_get_length(body);

	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                    "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
	                    status, admin_reason(status), type, len, extra != NULL ? extra : "");
	if (!head)
		evbuffer_add_buffer(out, body);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* {"status": "...", "reason": "...", "message": "..."} */
static void
admin_json(struct admin_conn *c, int status, int head, const char *state, const char *reason,
           const char *message, const char *extra)
{
	struct evbuffer *body = evbuffer_new();
	json_t *o = json_object(), *m;
	char *s;

	json_object_set_new(o, "status", json_string(state));
	if (reason != NULL)
		json_object_set_new(o, "reason", json_string(reason));
	if (message != NULL && (m = json_string(message)) != NULL)
		json_object_set_new(o, "message", m);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL) {
		evbuffer_add_printf(body, "%s\n", s);
		free(s);
	}
	admin_reply(c, status, "application/json", extra, head, body);
	evbuffer_free(body);
}

/* The request line is in: answer it. */
static void
admin_request(struct admin_conn *c, const char *line)
{
	char method[16], target[256], version[16], path[256], why[512];
	const char *reason;
	struct evbuffer *body;
	int head;

	if (sscanf(line, "%15s %255s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		admin_json(c, 400, 0, "bad_request", NULL, "not an HTTP/1.x request line", NULL);
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!c->from_unix && !config_admin_allowed(admin.cfg, (struct sockaddr *)&c->peer)) {
		admin_json(c, 403, head, "forbidden", "not_allowed",
		           "this client is not in admin.allow", NULL);
		return;
	}
	snprintf(path, sizeof path, "%.*s", (int)strcspn(target, "?"), target);
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0 &&
	    strcmp(path, "/readyz") != 0) {
		admin_json(c, 404, head, "not_found", NULL,
		           "the admin listener serves /metrics, /healthz and /readyz", NULL);
		return;
	}
	if (strcmp(method, "GET") != 0 && !head) {
		admin_json(c, 405, 0, "method_not_allowed", NULL, "only GET and HEAD",
		           "Allow: GET, HEAD\r\n");
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		body = evbuffer_new();
		metrics_render(body, admin.cfg);
		admin_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, head, body);
		evbuffer_free(body);
	} else if (strcmp(path, "/healthz") == 0) {
		if (metrics_workers_alive() > 0)
			admin_json(c, 200, head, "ok", NULL, NULL, NULL);
		else
			admin_json(c, 503, head, "unhealthy", "no_workers",
			           "no worker process is running", NULL);
	} else if (metrics_ready(admin.cfg, &reason, why, sizeof why))
		admin_json(c, 200, head, "ready", NULL, NULL, NULL);
	else
		admin_json(c, 503, head, "not_ready", reason, why, NULL);
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char *line;
	size_t n;

	/* The whole head first (headers are read and ignored). */
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos == -1)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos == -1) {
		if (evbuffer_get_length(in) > ADMIN_MAX_HEAD)
			admin_json(c, 431, 0, "bad_request", NULL, "request head too large", NULL);
		return;
	}
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	admin_request(c, line != NULL ? line : "");
	free(line);
}

static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
	    !(bufferevent_get_enabled(bev) & EV_READ))
		admin_conn_free(c);
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	admin_conn_free(arg);
}

static void
admin_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                void *arg)
{
	struct timeval tv = clock_tv(ADMIN_TIMEOUT);
	struct admin_conn *c;
	struct bufferevent *bev;

	if (admin.nconns >= ADMIN_MAX_CONNS ||
	    (bev = bufferevent_socket_new(admin.base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->bev = bev;
	c->from_unix = sa == NULL || sa->sa_family == AF_UNIX;
	if (sa != NULL && (size_t)salen <= sizeof c->peer)
		memcpy(&c->peer, sa, (size_t)salen);
	TAILQ_INSERT_TAIL(&admin.conns, c, entry);
	admin.nconns++;
	bufferevent_setcb(bev, admin_read_cb, admin_write_cb, admin_event_cb, c);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

/* Readiness changed (or is known for the first time): log and tell systemd. */
static void
admin_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	char why[512], status[600];
	const char *reason;
	int ready;

	log_repeat_flush();
	if (admin.cfg == NULL)
		return;
	ready = metrics_ready(admin.cfg, &reason, why, sizeof why);
	if (ready == admin.ready && strcmp(reason, admin.reason) == 0)
		return;
	if (ready)
		snprintf(status, sizeof status, "STATUS=ready");
	else
		snprintf(status, sizeof status, "STATUS=not ready: %s", why);
	sdnotify(status);
	if (ready && admin.ready != -1)
		log_info("ready again");
	else if (!ready) {
		const char *fields[] = {"reason", reason, NULL};

		log_fields(LOG_LVL_WARN, fields, "not ready: %s", why);
	}
	admin.ready = ready;
	snprintf(admin.reason, sizeof admin.reason, "%s", reason);
}

static int
admin_bind_unix(const char *path, int mode, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "admin.listen %s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "admin.listen %s: socket: %s", path, strerror(errno));
		return -1;
	}
	/* A socket file left by a previous run (a crash) is ours to replace. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    chmod(path, (mode_t)mode) == -1 || listen(fd, 64) == -1) {
		snprintf(err, errlen, "admin.listen %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Drop connections and the listener; unlink the socket only in the master. */
static void
admin_close(int unlink_socket)
{
	while (!TAILQ_EMPTY(&admin.conns))
		admin_conn_free(TAILQ_FIRST(&admin.conns));
	if (admin.listener != NULL)
		evconnlistener_free(admin.listener);
	admin.listener = NULL;
	if (unlink_socket && admin.socket_path != NULL && admin.owner == getpid())
		unlink(admin.socket_path);
	free(admin.socket_path);
	admin.socket_path = NULL;
	admin.listen_text[0] = '\0';
	if (admin.watch != NULL)
		event_free(admin.watch);
	admin.watch = NULL;
	admin.cfg = NULL;
	admin.ready = -1;
	admin.reason[0] = '\0';
}

void
admin_stop(void)
{
	admin_close(1);
}

void
admin_forget(void)
{
	admin_close(0);
}

void
admin_adopt(int *fds, size_t n, const struct config *cfg)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
	socklen_t len;
	size_t i;

	for (i = 0; i < n && admin.adopted < 0; i++) {
		if (fds[i] < 0)
			continue;
		memset(&ss, 0, sizeof ss);
		len = sizeof ss;
		if (getsockname(fds[i], (struct sockaddr *)&ss, &len) == -1)
			continue;
		if ((cfg->admin.socket != NULL && ss.ss_family == AF_UNIX &&
		     strcmp(sun->sun_path, cfg->admin.socket) == 0) ||
		    (cfg->admin.socket == NULL && cfg->admin.listen != NULL &&
		     len == cfg->admin.listen->addrlen &&
		     memcmp(&ss, &cfg->admin.listen->addr, len) == 0)) {
			admin.adopted = fds[i];
			fds[i] = -1;
		}
	}
}

int
admin_fd(void)
{
	return admin.listener != NULL ? evconnlistener_get_fd(admin.listener) : -1;
}

int
admin_configure(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	const char *want = cfg->admin.socket != NULL   ? cfg->admin.socket
	                   : cfg->admin.listen != NULL ? cfg->admin.listen->text
	                                               : "";
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
	struct evconnlistener *l = NULL;
	struct timeval tv;
	int fd;

	if (admin.base == NULL)
		TAILQ_INIT(&admin.conns);
	admin.base = base;
	admin.cfg = cfg;
	admin.owner = getpid();
	if (admin.watch == NULL) {
		admin.watch = event_new(base, -1, EV_PERSIST, admin_watch_cb, NULL);
		tv = clock_tv(ADMIN_WATCH);
		event_add(admin.watch, &tv);
	}
	/* The same address on a reload: keep the socket (no scrape fails). */
	if (strcmp(want, admin.listen_text) == 0) {
		if (cfg->admin.socket != NULL &&
		    chmod(cfg->admin.socket, (mode_t)cfg->admin.socket_mode) == -1)
			log_warn("admin.listen %s: chmod: %s", cfg->admin.socket, strerror(errno));
		return 0;
	}
	if (admin.adopted >= 0) {
		/* Handed over by the old master (binary upgrade): no gap, and its
		 * socket file stays. */
		fd = admin.adopted;
		admin.adopted = -1;
		if ((l = evconnlistener_new(base, admin_accept_cb, NULL, flags, -1, fd)) == NULL) {
			close(fd);
			snprintf(err, errlen, "admin.listen %s: cannot serve it", want);
			return -1;
		}
	} else if (cfg->admin.socket != NULL) {
		if ((fd = admin_bind_unix(cfg->admin.socket, cfg->admin.socket_mode, err,
		                          errlen)) == -1)
			return -1;
		if ((l = evconnlistener_new(base, admin_accept_cb, NULL, flags, -1, fd)) == NULL) {
			close(fd);
			unlink(cfg->admin.socket);
			snprintf(err, errlen, "admin.listen %s: cannot serve it",
			         cfg->admin.socket);
			return -1;
		}
	} else if (cfg->admin.listen != NULL) {
		l = evconnlistener_new_bind(base, admin_accept_cb, NULL, flags, 64,
		                            (struct sockaddr *)&cfg->admin.listen->addr,
		                            (int)cfg->admin.listen->addrlen);
		if (l == NULL) {
			snprintf(err, errlen, "admin.listen %s: cannot bind: %s",
			         cfg->admin.listen->text, strerror(errno));
			return -1;
		}
	}
	/* The new one is up: drop the old. */
	if (admin.listener != NULL)
		evconnlistener_free(admin.listener);
	if (admin.socket_path != NULL &&
	    (cfg->admin.socket == NULL || strcmp(admin.socket_path, cfg->admin.socket) != 0))
		unlink(admin.socket_path);
	free(admin.socket_path);
	admin.socket_path = cfg->admin.socket != NULL ? xstrdup(cfg->admin.socket) : NULL;
	admin.listener = l;
	snprintf(admin.listen_text, sizeof admin.listen_text, "%s", want);
	if (*want != '\0')
		log_info("admin listener on %s (/metrics, /healthz, /readyz)", want);
	return 0;
}
