/*
 * worker.c: a worker process. It serves HTTP with evhttp on the listening
 * sockets inherited from the master and hands every request to the proxy
 * (proxy.h); it never blocks. On SIGQUIT (retire) or SIGTERM (stop) it
 * stops accepting, lets the requests in flight finish within
 * timeouts.shutdown, and exits after freeing everything.
 *
 * libevent 2.1's evhttp tells nobody when a connection closes, so to honour
 * limits.max_connections the worker makes every connection's bufferevent
 * itself (evhttp_set_bevcb), holds a reference to it, and recognises a
 * closed connection by evhttp having freed its side (the callbacks are
 * cleared). Accepting is paused at the limit and resumed when a sweep finds
 * a connection gone.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/queue.h>

#include <errno.h>
#include <stdint.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "accesslog.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "worker.h"
#include "xmalloc.h"

/* How often a draining worker looks at proxy_inflight(), and a worker at
 * its connection limit looks for closed connections (seconds). */
#define WORKER_POLL 0.05
/* How often an idle worker closes the sockets of connections evhttp has
 * finished with (they stay open until our reference goes; see
 * worker_bevcb()). Accepting a connection sweeps too. */
#define WORKER_REAP 1.0
/*
 * A draining worker exits once nothing is in flight and no client has sent
 * a byte for this long (or every connection is closed). Closing an idle
 * keep-alive connection races with a client that is sending its next
 * request on it right then; waiting for a quiet moment lets such a request
 * arrive and be answered (with "Connection: close", see worker_draining()).
 * Bounded by timeouts.shutdown.
 */
#define WORKER_QUIET 0.2

struct worker_conn {
	struct bufferevent *bev;
	TAILQ_ENTRY(worker_conn) entry;
};
TAILQ_HEAD(worker_conn_list, worker_conn);

struct worker {
	const struct config *conf;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket **bound;
	size_t nbound;
	int accepting;

	struct worker_conn_list conns;
	int nconns;

	struct event *sig[5];
	size_t nsig;
	struct event *poll;     /* drain: in-flight check; at limit: sweep */
	struct event *reap;     /* while connections exist: sweep now and then */
	struct event *deadline; /* drain: give up waiting */
	double last_activity;   /* monotonic: a connection or bytes from a client */
	int draining;
	int proxy_ready;
	int ready;    /* accepting allowed (at once, or since worker_ready()) */
	int ready_fd; /* where worker_ready() reports; -1 once done */
};

static struct worker w;

int
worker_draining(void)
{
	return w.draining;
}

static void
worker_set_accepting(int on)
{
	size_t i;

	if (w.accepting == on || (on && !w.ready))
		return;
	for (i = 0; i < w.nbound; i++) {
		struct evconnlistener *l = evhttp_bound_socket_get_listener(w.bound[i]);

		if (on)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
	}
	w.accepting = on;
}

/*
 * Drop the connections evhttp has finished with; returns how many are
 * left. *busy (when not NULL) counts those with a response still waiting
 * to be written.
 */
static int
worker_sweep(int *busy)
{
	struct worker_conn *c, *next;
	bufferevent_data_cb readcb, writecb;
	bufferevent_event_cb eventcb;

	if (busy != NULL)
		*busy = 0;
	for (c = TAILQ_FIRST(&w.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		readcb = writecb = NULL;
		eventcb = NULL;
		bufferevent_getcb(c->bev, &readcb, &writecb, &eventcb, NULL);
		/* While it writes a response evhttp clears only the read
		 * callback; bufferevent_free() clears all three. */
		if (readcb != NULL || writecb != NULL || eventcb != NULL) {
			if (busy != NULL && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
				(*busy)++;
			continue;
		}
		/* evhttp is done with it; ours is the last reference, and
		 * dropping it closes the socket (BEV_OPT_CLOSE_ON_FREE). */
		TAILQ_REMOVE(&w.conns, c, entry);
		bufferevent_decref(c->bev);
		free(c);
		w.nconns--;
		metrics_connection(-1);
	}
	return w.nconns;
}

static void
worker_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = clock_tv(WORKER_REAP);

	if (worker_sweep(NULL) > 0)
		evtimer_add(w.reap, &tv);
}

static void
worker_poll_arm(void)
{
	struct timeval tv = clock_tv(WORKER_POLL);

	if (!evtimer_pending(w.poll, NULL))
		evtimer_add(w.poll, &tv);
}

/* Bytes arrived from a client (evbuffer callback on its input). */
static void
worker_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct bufferevent *bev = arg;
	bufferevent_data_cb readcb = NULL, writecb = NULL;
	bufferevent_event_cb eventcb = NULL;

	if (info->n_added == 0)
		return;
	bufferevent_getcb(bev, &readcb, &writecb, &eventcb, NULL);
	if (readcb == NULL && writecb == NULL && eventcb == NULL) {
		/* evhttp let go of this connection, whose socket stays open
		 * until worker_sweep(): what a client still sends is read by
		 * nobody, so stop reading it rather than buffer it. */
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		return;
	}
	w.last_activity = clock_mono();
}

/*
 * Bytes went out to a client (evbuffer callback on its output). A client's
 * quiet moment starts when it has its answer, not when it sent the
 * request: a draining worker measuring from the request would close a
 * keep-alive connection right after a slow answer, while the client sends
 * its next request on it (the chaos test caught that).
 */
static void
worker_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	if (info->n_deleted > 0)
		w.last_activity = clock_mono();
}

/*
 * evhttp asks for a bufferevent for each new connection. It is created
 * with BEV_OPT_CLOSE_ON_FREE, so that the socket stays open (evhttp only
 * shuts down its sending side) until our reference goes in worker_sweep():
 * were evhttp to close it while our reference keeps the bufferevent and its
 * events, the kernel could hand the same descriptor number to a new
 * connection, which libevent would then believe already watched, and it
 * would never be read (a request stalled until its timeout).
 */
static struct bufferevent *
worker_bevcb(struct event_base *base, void *arg)
{
	struct worker_conn *c;
	struct bufferevent *bev;

	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;
	worker_sweep(NULL);
	c = xcalloc(1, sizeof *c);
	c->bev = bev;
	bufferevent_incref(bev);
	evbuffer_add_cb(bufferevent_get_input(bev), worker_input_cb, bev);
	evbuffer_add_cb(bufferevent_get_output(bev), worker_output_cb, NULL);
	w.last_activity = clock_mono();
	TAILQ_INSERT_TAIL(&w.conns, c, entry);
	w.nconns++;
	metrics_connection(1);
	if (!evtimer_pending(w.reap, NULL)) {
		struct timeval tv = clock_tv(WORKER_REAP);

		evtimer_add(w.reap, &tv);
	}
	if (w.conf->limits.max_connections > 0 && w.nconns >= w.conf->limits.max_connections &&
	    !w.draining) {
		log_debug("%d connections: pausing accept", w.nconns);
		worker_set_accepting(0);
		worker_poll_arm();
	}
	return bev;
}

static void
worker_drain_check(void)
{
	unsigned inflight = w.proxy_ready ? proxy_inflight() : 0;
	int open, busy;

	open = worker_sweep(&busy);
	if (inflight == 0 && busy == 0 &&
	    (open == 0 || clock_mono() - w.last_activity >= WORKER_QUIET)) {
		log_debug("nothing in flight, %d idle connections: exiting", open);
		event_base_loopbreak(w.base);
		return;
	}
	worker_poll_arm();
}

static void
worker_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	if (w.draining) {
		worker_drain_check();
		return;
	}
	if (worker_sweep(NULL) < w.conf->limits.max_connections) {
		log_debug("%d connections: accepting again", w.nconns);
		worker_set_accepting(1);
		return;
	}
	worker_poll_arm();
}

static void
worker_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	log_warn("%u requests still in flight after %.1fs: exiting anyway",
	         w.proxy_ready ? proxy_inflight() : 0, w.conf->timeouts.shutdown);
	event_base_loopbreak(w.base);
}

/* Stop accepting (the master keeps the sockets open) and wait for the
 * requests in flight, at most timeouts.shutdown. */
static void
worker_drain(const char *why)
{
	struct timeval tv;
	size_t i;

	if (w.draining)
		return;
	w.draining = 1;
	log_info("%s: no longer accepting, %u requests in flight", why,
	         w.proxy_ready ? proxy_inflight() : 0);
	for (i = 0; i < w.nbound; i++)
		evhttp_del_accept_socket(w.http, w.bound[i]);
	w.nbound = 0;
	tv = clock_tv(w.conf->timeouts.shutdown);
	evtimer_add(w.deadline, &tv);
	worker_drain_check();
}

static void
worker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[512];

	switch (sig) {
	case SIGQUIT:
		worker_drain("retiring");
		break;
	case SIGTERM:
		worker_drain("stopping");
		break;
	case SIGUSR1:
		if (accesslog_reopen(err, sizeof err) == -1 || log_reopen(err, sizeof err) == -1)
			log_error("%s", err);
		break;
	}
}

/* Become p->user (the master resolved it; initgroups reads the group file,
 * once, before the loop starts). */
static int
worker_drop_privileges(const struct worker_params *p)
{
	if (p->user == NULL || p->uid == (uid_t)-1)
		return 0;
	if (geteuid() == p->uid && getegid() == p->gid)
		return 0;
	if (initgroups(p->user, p->gid) == -1) {
		log_error("initgroups %s: %s", p->user, strerror(errno));
		return -1;
	}
	if (setgid(p->gid) == -1 || setuid(p->uid) == -1) {
		log_error("cannot become user %s: %s", p->user, strerror(errno));
		return -1;
	}
	/* The master stays root; a worker must never get it back. */
	if (setuid(0) == 0 && p->uid != 0) {
		log_error("could regain root after becoming %s", p->user);
		return -1;
	}
	return 0;
}

static int
worker_listen(const int *fds, size_t nfds)
{
	struct evconnlistener *l;
	size_t i;

	w.bound = xcalloc(nfds + 1, sizeof *w.bound);
	for (i = 0; i < nfds; i++) {
		/* backlog -1: the master already called listen(). Our copy of
		 * the socket is closed when evhttp lets go of it. */
		l = evconnlistener_new(w.base, NULL, NULL,
		                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
		if (l == NULL) {
			log_error("evconnlistener_new failed");
			for (; i < nfds; i++)
				close(fds[i]);
			return -1;
		}
		if ((w.bound[w.nbound] = evhttp_bind_listener(w.http, l)) == NULL) {
			log_error("evhttp_bind_listener failed");
			evconnlistener_free(l);
			for (i++; i < nfds; i++)
				close(fds[i]);
			return -1;
		}
		w.nbound++;
	}
	w.accepting = 1;
	return 0;
}

/* Readiness (issue 11): the one report a worker makes to its master. */
void
worker_ready(void)
{
	int32_t msg[2];

	if (!w.ready) {
		w.ready = 1;
		if (!w.draining)
			worker_set_accepting(1);
	}
	if (w.ready_fd < 0)
		return;
	log_debug("ready, serving on %zu sockets", w.nbound);
	/* 8 bytes: one atomic write on a pipe, whoever else writes there. */
	msg[0] = (int32_t)getpid();
	msg[1] = 1;
	if (write(w.ready_fd, msg, sizeof msg) != (ssize_t)sizeof msg)
		log_warn("cannot tell the master this worker is ready: %s", strerror(errno));
	close(w.ready_fd);
	w.ready_fd = -1;
}

static void
worker_free(void)
{
	struct worker_conn *c;
	size_t i;

	if (w.proxy_ready)
		proxy_free();
	if (w.http != NULL)
		evhttp_free(w.http);
	/* evhttp_free() freed every connection: drop our references. */
	while ((c = TAILQ_FIRST(&w.conns)) != NULL) {
		TAILQ_REMOVE(&w.conns, c, entry);
		bufferevent_decref(c->bev);
		free(c);
	}
	free(w.bound);
	for (i = 0; i < w.nsig; i++)
		event_free(w.sig[i]);
	if (w.poll != NULL)
		event_free(w.poll);
	if (w.reap != NULL)
		event_free(w.reap);
	if (w.deadline != NULL)
		event_free(w.deadline);
	if (w.base != NULL)
		event_base_free(w.base);
	if (w.ready_fd >= 0)
		close(w.ready_fd);
	memset(&w, 0, sizeof w);
}

int
worker_run(const struct worker_params *p)
{
	static const int sigs[] = {SIGQUIT, SIGTERM, SIGUSR1};
	struct timeval tv;
	char tag[32];
	sigset_t none;
	size_t i;
	int rc = 1;

	memset(&w, 0, sizeof w);
	TAILQ_INIT(&w.conns);
	w.conf = p->conf;
	w.ready_fd = p->ready_fd;
	w.ready = !p->wait_ready;
	snprintf(tag, sizeof tag, "worker %d", p->slot);
	log_set_tag(tag);
	log_set_level(p->conf->log_level);

	/* "ssp-worker" in ps and /proc/PID/comm tells workers from the master. */
	prctl(PR_SET_NAME, "ssp-worker", 0, 0, 0);
	/* A master killed outright (SIGKILL) must not leave us behind: the
	 * kernel sends SIGTERM, which drains as a stop does. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		log_warn("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	if (getppid() != p->master) {
		for (i = 0; i < p->nfds; i++)
			close(p->fds[i]);
		return 0;
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN); /* the master logs the cache stats */
	signal(SIGPIPE, SIG_IGN);

	/* Changing credentials clears the parent-death signal: set it again,
	 * and look again whether the master went meanwhile. */
	if (worker_drop_privileges(p) == -1 || prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    getppid() != p->master || (w.base = event_base_new()) == NULL ||
	    (w.http = evhttp_new(w.base)) == NULL) {
		for (i = 0; i < p->nfds; i++)
			close(p->fds[i]);
		goto out;
	}
	metrics_worker_start(p->conf, w.base);
	w.poll = evtimer_new(w.base, worker_poll_cb, NULL);
	w.reap = evtimer_new(w.base, worker_reap_cb, NULL);
	w.deadline = evtimer_new(w.base, worker_deadline_cb, NULL);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		w.sig[w.nsig] = evsignal_new(w.base, sigs[i], worker_signal_cb, NULL);
		event_add(w.sig[w.nsig++], NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* The server side of evhttp; proxy_init() refines what it needs. */
	evhttp_set_bevcb(w.http, worker_bevcb, NULL);
	evhttp_set_max_headers_size(w.http, (ev_ssize_t)p->conf->limits.max_header);
	evhttp_set_max_body_size(w.http, (ev_ssize_t)p->conf->limits.max_body);
	tv = clock_tv(p->conf->timeouts.client_header > p->conf->timeouts.keepalive
	                  ? p->conf->timeouts.client_header
	                  : p->conf->timeouts.keepalive);
	evhttp_set_timeout_tv(w.http, &tv);
	if (worker_listen(p->fds, p->nfds) == -1)
		goto out;
	/* Held until worker_ready() when another generation serves meanwhile. */
	if (!w.ready)
		worker_set_accepting(0);
	if (proxy_init(w.base, w.http, p->conf) == -1) {
		log_error("cannot set up the request path");
		goto out;
	}
	w.proxy_ready = 1;
	if (p->conf->local_function.command == NULL)
		worker_ready();
	event_base_dispatch(w.base);
	rc = 0;
out:
	worker_free();
	return rc;
}
