/*
 * worker.c: a worker process. It serves HTTP with the front door
 * (httpconn.h) on the listening sockets inherited from the master and hands
 * every request to the proxy (proxy.h); it never blocks. On SIGQUIT
 * (retire) or SIGTERM (stop) it closes its listening sockets, closes idle
 * connections, lets the requests in flight finish within
 * timeouts.shutdown (their answers say Connection: close), and exits after
 * freeing everything; what is still waiting then gets a 503, written
 * before the exit.
 */
#include <sys/types.h>
#include <sys/prctl.h>

#include <errno.h>
#include <stdint.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "clock.h"
#include "config.h"
#include "httpconn.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "worker.h"
#include "xmalloc.h"

/* How often a draining worker looks at what is left (seconds). */
#define WORKER_POLL 0.05
/*
 * A draining worker closes a connection without a request once it has been
 * quiet this long (a client that connected just before the stop, or whose
 * kept-alive connection was idle, may be about to send its request, which
 * is then answered with "Connection: close"), and exits when nothing is in
 * flight and no connection is left. Bounded by timeouts.shutdown.
 */
#define WORKER_QUIET 0.2

struct worker {
	const struct config *conf;
	struct event_base *base;
	struct httpconn_server *srv;

	struct event *sig[5];
	size_t nsig;
	struct event *poll;     /* drain: in-flight check */
	struct event *deadline; /* drain: give up waiting */
	int draining;
	int proxy_ready;
	int ready;    /* accepting allowed (at once, or since worker_ready()) */
	int ready_fd; /* where worker_ready() reports; -1 once done */
	size_t nfds;
};

static struct worker w;

static void
worker_poll_arm(void)
{
	struct timeval tv = clock_tv(WORKER_POLL);

	if (!evtimer_pending(w.poll, NULL))
		evtimer_add(w.poll, &tv);
}

static void
worker_drain_check(void)
{
	unsigned inflight = w.proxy_ready ? proxy_inflight() : 0;
	unsigned open = httpconn_server_drain(w.srv, WORKER_QUIET);

	if (inflight == 0 && open == 0) {
		log_debug("nothing in flight, no connection left: exiting");
		event_base_loopbreak(w.base);
		return;
	}
	worker_poll_arm();
}

static void
worker_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_drain_check();
}

static void
worker_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	log_warn("%u requests still in flight after %.1fs: exiting anyway",
	         w.proxy_ready ? proxy_inflight() : 0, w.conf->timeouts.shutdown);
	event_base_loopbreak(w.base);
}

/* Stop accepting (closing our copies of the listening sockets) and wait
 * for the requests in flight, at most timeouts.shutdown. */
static void
worker_drain(const char *why)
{
	struct timeval tv;

	if (w.draining)
		return;
	w.draining = 1;
	log_info("%s: no longer accepting, %u requests in flight", why,
	         w.proxy_ready ? proxy_inflight() : 0);
	httpconn_server_stop(w.srv);
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

/* Readiness (issue 11): the one report a worker makes to its master. */
void
worker_ready(void)
{
	int32_t msg[2];

	if (!w.ready) {
		w.ready = 1;
		if (!w.draining && w.srv != NULL)
			httpconn_server_hold(w.srv, 0);
	}
	if (w.ready_fd < 0)
		return;
	log_debug("ready, serving on %zu sockets", w.nfds);
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
	size_t i;

	/* Whatever still waits gets its 503 queued, then written. */
	if (w.proxy_ready)
		proxy_free();
	httpconn_server_free(w.srv);
	for (i = 0; i < w.nsig; i++)
		event_free(w.sig[i]);
	if (w.poll != NULL)
		event_free(w.poll);
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
	struct httpconn_handlers h;
	char tag[32];
	sigset_t none;
	size_t i;
	int rc = 1;

	memset(&w, 0, sizeof w);
	w.conf = p->conf;
	w.ready_fd = p->ready_fd;
	w.ready = !p->wait_ready;
	w.nfds = p->nfds;
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
	    getppid() != p->master || (w.base = event_base_new()) == NULL) {
		for (i = 0; i < p->nfds; i++)
			close(p->fds[i]);
		goto out;
	}
	metrics_worker_start(p->conf, w.base);
	w.poll = evtimer_new(w.base, worker_poll_cb, NULL);
	w.deadline = evtimer_new(w.base, worker_deadline_cb, NULL);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		w.sig[w.nsig] = evsignal_new(w.base, sigs[i], worker_signal_cb, NULL);
		event_add(w.sig[w.nsig++], NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	memset(&h, 0, sizeof h);
	h.request = proxy_request;
	h.expect = proxy_expect;
	w.srv = httpconn_server_new(w.base, p->conf, p->fds, p->nfds, &h);
	/* Held until worker_ready() when another generation serves meanwhile. */
	if (!w.ready)
		httpconn_server_hold(w.srv, 1);
	if (proxy_init(w.base, p->conf) == -1) {
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
