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

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <jansson.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "xmalloc.h"

#define ADMIN_WATCH 1.0 /* seconds between readiness checks */

static struct {
	struct event_base *base;
	const struct config *cfg;
	struct evhttp *http;
	char *socket_path; /* the unix socket we made, to unlink */
	pid_t owner;       /* the master: a forked child must not unlink it */
	char listen_text[128];
	struct event *watch;
	int ready; /* -1: not known yet */
	char reason[64];
} admin = {.ready = -1};

static void
admin_reply(struct evhttp_request *req, int status, const char *type, struct evbuffer *body)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Content-Type", type);
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		evbuffer_drain(body, evbuffer_get_length(body));
	evhttp_send_reply(req, status, status == 200   ? "OK"
	                               : status == 403 ? "Forbidden"
	                               : status == 404 ? "Not Found"
	                               : status == 405 ? "Method Not Allowed"
	                                               : "Service Unavailable",
	                  body);
}

/* {"status": "...", "reason": "...", "message": "..."} */
static void
admin_json(struct evhttp_request *req, int status, const char *state, const char *reason,
           const char *message)
{
	struct evbuffer *body = evbuffer_new();
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "status", json_string(state));
	if (reason != NULL)
		json_object_set_new(o, "reason", json_string(reason));
	if (message != NULL && json_string(message) != NULL)
		json_object_set_new(o, "message", json_string(message));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL) {
		evbuffer_add_printf(body, "%s\n", s);
		free(s);
	}
	admin_reply(req, status, "application/json", body);
	evbuffer_free(body);
}

static void
admin_request(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *body;
	const char *reason;
	char path[64], why[512];
	size_t n;
	int ok;

	if (sa != NULL && !config_admin_allowed(admin.cfg, sa)) {
		admin_json(req, 403, "forbidden", "not_allowed",
		           "this client is not in admin.allow");
		return;
	}
	n = strcspn(uri != NULL ? uri : "", "?");
	snprintf(path, sizeof path, "%.*s", (int)(n < sizeof path ? n : 0), uri != NULL ? uri : "");
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0 &&
	    strcmp(path, "/readyz") != 0) {
		admin_json(req, 404, "not_found", NULL,
		           "the admin listener serves /metrics, /healthz and /readyz");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		admin_json(req, 405, "method_not_allowed", NULL, "only GET and HEAD");
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		body = evbuffer_new();
		metrics_render(body, admin.cfg);
		admin_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", body);
		evbuffer_free(body);
	} else if (strcmp(path, "/healthz") == 0) {
		n = (size_t)metrics_workers_alive();
		if (n > 0)
			admin_json(req, 200, "ok", NULL, NULL);
		else
			admin_json(req, 503, "unhealthy", "no_workers", "no worker process is running");
	} else {
		ok = metrics_ready(admin.cfg, &reason, why, sizeof why);
		if (ok)
			admin_json(req, 200, "ready", NULL, NULL);
		else
			admin_json(req, 503, "not_ready", reason, why);
	}
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
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 || chmod(path, (mode_t)mode) == -1 ||
	    listen(fd, 64) == -1) {
		snprintf(err, errlen, "admin.listen %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void
admin_stop(void)
{
	if (admin.http != NULL)
		evhttp_free(admin.http);
	admin.http = NULL;
	if (admin.socket_path != NULL && admin.owner == getpid())
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

int
admin_configure(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	const char *want = cfg->admin.socket != NULL   ? cfg->admin.socket
	                   : cfg->admin.listen != NULL ? cfg->admin.listen->text
	                                               : "";
	struct timeval tv;
	struct evhttp *http;
	int fd;

	admin.base = base;
	admin.cfg = cfg;
	admin.owner = getpid();
	if (admin.watch == NULL) {
		admin.watch = event_new(base, -1, EV_PERSIST, admin_watch_cb, NULL);
		tv = clock_tv(ADMIN_WATCH);
		event_add(admin.watch, &tv);
	}
	/* The same address on a reload: keep the socket (no scrape fails). */
	if (strcmp(want, admin.listen_text) == 0)
		return 0;
	http = NULL;
	if (*want != '\0') {
		if ((http = evhttp_new(base)) == NULL) {
			snprintf(err, errlen, "admin: evhttp_new failed");
			return -1;
		}
		evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
		                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
		                                     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
		evhttp_set_gencb(http, admin_request, NULL);
		evhttp_set_timeout(http, 10);
		evhttp_set_max_headers_size(http, 16384);
		evhttp_set_max_body_size(http, 0);
		if (cfg->admin.socket != NULL) {
			if ((fd = admin_bind_unix(cfg->admin.socket, cfg->admin.socket_mode, err,
			                          errlen)) == -1 ||
			    evhttp_accept_socket_with_handle(http, fd) == NULL) {
				if (fd != -1) {
					close(fd);
					unlink(cfg->admin.socket);
					snprintf(err, errlen, "admin.listen %s: cannot serve it",
					         cfg->admin.socket);
				}
				evhttp_free(http);
				return -1;
			}
		} else {
			char host[80], *colon;

			/* "127.0.0.1:9180", "[::1]:9180", "localhost:9180" */
			snprintf(host, sizeof host, "%s", cfg->admin.listen->text);
			if ((colon = strrchr(host, ':')) == NULL) {
				evhttp_free(http);
				snprintf(err, errlen, "admin.listen %s: no port", host);
				return -1;
			}
			*colon = '\0';
			if (host[0] == '[') {
				memmove(host, host + 1, strlen(host));
				host[strlen(host) - 1] = '\0';
			}
			if (strcasecmp(host, "localhost") == 0)
				snprintf(host, sizeof host, "127.0.0.1");
			if (evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)atoi(colon + 1)) ==
			    NULL) {
				snprintf(err, errlen, "admin.listen %s: cannot bind: %s",
				         cfg->admin.listen->text, strerror(errno));
				evhttp_free(http);
				return -1;
			}
		}
	}
	/* The new one is up: drop the old. */
	if (admin.http != NULL)
		evhttp_free(admin.http);
	if (admin.socket_path != NULL &&
	    (cfg->admin.socket == NULL || strcmp(admin.socket_path, cfg->admin.socket) != 0))
		unlink(admin.socket_path);
	free(admin.socket_path);
	admin.socket_path = cfg->admin.socket != NULL ? xstrdup(cfg->admin.socket) : NULL;
	admin.http = http;
	snprintf(admin.listen_text, sizeof admin.listen_text, "%s", want);
	if (*want != '\0')
		log_info("admin listener on %s (/metrics, /healthz, /readyz)", want);
	return 0;
}

void
admin_forget(void)
{
	/* In a forked child: the master's listener is not ours to serve or unlink. */
	if (admin.http != NULL)
		evhttp_free(admin.http);
	admin.http = NULL;
	free(admin.socket_path);
	admin.socket_path = NULL;
	if (admin.watch != NULL)
		event_free(admin.watch);
	admin.watch = NULL;
	admin.listen_text[0] = '\0';
	admin.cfg = NULL;
}
