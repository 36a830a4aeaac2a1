/*
 * curlev.c: libcurl's multi interface on a libevent loop. libcurl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it up
 * (CURLMOPT_TIMERFUNCTION); libevent tells libcurl what happened through
 * curl_multi_socket_action(). Finished transfers are collected after each
 * action and handed to their callbacks outside of any libcurl callback, so
 * that a callback may start a new transfer (a retry) or drop others.
 */
#include <sys/queue.h>
#include <stdlib.h>

#include <event2/event.h>

#include "curlev.h"
#include "xmalloc.h"

struct curlev_xfer {
	CURL *easy;
	curlev_done_cb cb;
	void *arg;
	TAILQ_ENTRY(curlev_xfer) entry;
};

struct curlev_sock {
	struct curlev *cev;
	curl_socket_t fd;
	struct event *ev;
	LIST_ENTRY(curlev_sock) entry;
};

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	TAILQ_HEAD(, curlev_xfer) xfers;
	LIST_HEAD(, curlev_sock) socks;
	unsigned nxfers;
};

static void curlev_check_done(struct curlev *);

/* libevent: a socket libcurl watches is ready. */
static void
curlev_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cev = arg;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cev->multi, fd, action, &running);
	curlev_check_done(cev);
}

/* libevent: libcurl's timeout expired. */
static void
curlev_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cev = arg;
	int running;

	curl_multi_socket_action(cev->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curlev_check_done(cev);
}

/*
 * libcurl: watch s for what (or stop watching it). Called from inside
 * libcurl, so it only (re)arms events; socketp is what curl_multi_assign()
 * attached to the socket earlier.
 */
static int
curlev_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curlev *cev = userp;
	struct curlev_sock *cs = socketp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (cs != NULL) {
			if (cs->ev != NULL)
				event_free(cs->ev);
			LIST_REMOVE(cs, entry);
			free(cs);
			curl_multi_assign(cev->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (cs == NULL) {
		cs = xcalloc(1, sizeof *cs);
		cs->cev = cev;
		cs->fd = s;
		LIST_INSERT_HEAD(&cev->socks, cs, entry);
		curl_multi_assign(cev->multi, s, cs);
	} else {
		/* A change of interest: replace the event (an fd number can
		 * also be reused by a new socket after REMOVE, never here). */
		if (cs->ev != NULL)
			event_free(cs->ev);
	}
	cs->ev = event_new(cev->base, s, kind, curlev_sock_event, cev);
	/* -1 makes libcurl fail the transfer, which says why. */
	if (cs->ev == NULL || event_add(cs->ev, NULL) == -1)
		return -1;
	return 0;
}

/* libcurl: call me back in timeout_ms (-1: never). Calling
 * curl_multi_socket_action() from here would recurse, so even a zero
 * timeout goes through the event loop. */
static int
curlev_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlev *cev = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(cev->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(cev->timer, &tv) == 0 ? 0 : -1;
}

/* Hand finished transfers to their callbacks. A callback may add or remove
 * transfers: curl_multi_remove_handle() drops pending messages of the
 * handle it removes, so the loop never sees a stale one. */
static void
curlev_check_done(struct curlev *cev)
{
	struct curlev_xfer *x;
	CURLMsg *msg;
	CURL *easy;
	CURLcode res;
	curlev_done_cb cb;
	void *arg;
	int left;

	while ((msg = curl_multi_info_read(cev->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		res = msg->data.result;
		x = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(cev->multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		if (x == NULL)
			continue;
		TAILQ_REMOVE(&cev->xfers, x, entry);
		cev->nxfers--;
		cb = x->cb;
		arg = x->arg;
		free(x);
		cb(easy, res, arg);
	}
}

struct curlev *
curlev_new(struct event_base *base, long max_host_connections)
{
	struct curlev *cev;

	cev = xcalloc(1, sizeof *cev);
	cev->base = base;
	TAILQ_INIT(&cev->xfers);
	LIST_INIT(&cev->socks);
	cev->multi = curl_multi_init();
	cev->timer = evtimer_new(base, curlev_timer_event, cev);
	if (cev->multi == NULL || cev->timer == NULL) {
		curlev_free(cev);
		return NULL;
	}
	curl_multi_setopt(cev->multi, CURLMOPT_SOCKETFUNCTION, curlev_socket_cb);
	curl_multi_setopt(cev->multi, CURLMOPT_SOCKETDATA, cev);
	curl_multi_setopt(cev->multi, CURLMOPT_TIMERFUNCTION, curlev_timer_cb);
	curl_multi_setopt(cev->multi, CURLMOPT_TIMERDATA, cev);
	if (max_host_connections > 0) {
		curl_multi_setopt(cev->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
		/* Keep as many idle connections as may be busy at once, so a
		 * burst does not end in a storm of new TLS handshakes. */
		curl_multi_setopt(cev->multi, CURLMOPT_MAXCONNECTS, max_host_connections);
	}
	return cev;
}

int
curlev_add(struct curlev *cev, CURL *easy, curlev_done_cb cb, void *arg)
{
	struct curlev_xfer *x;

	x = xcalloc(1, sizeof *x);
	x->easy = easy;
	x->cb = cb;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(cev->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	TAILQ_INSERT_TAIL(&cev->xfers, x, entry);
	cev->nxfers++;
	return 0;
}

void
curlev_remove(struct curlev *cev, CURL *easy)
{
	struct curlev_xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	curl_multi_remove_handle(cev->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	if (x != NULL) {
		TAILQ_REMOVE(&cev->xfers, x, entry);
		cev->nxfers--;
		free(x);
	}
}

unsigned
curlev_running(const struct curlev *cev)
{
	return cev->nxfers;
}

void
curlev_free(struct curlev *cev)
{
	struct curlev_xfer *x;
	struct curlev_sock *cs;

	if (cev == NULL)
		return;
	while ((x = TAILQ_FIRST(&cev->xfers)) != NULL)
		curlev_remove(cev, x->easy);
	/* Cleanup closes the cached connections and may still call the
	 * socket and timer callbacks: free their state only afterwards. */
	if (cev->multi != NULL)
		curl_multi_cleanup(cev->multi);
	while ((cs = LIST_FIRST(&cev->socks)) != NULL) {
		LIST_REMOVE(cs, entry);
		if (cs->ev != NULL)
			event_free(cs->ev);
		free(cs);
	}
	if (cev->timer != NULL)
		event_free(cev->timer);
	free(cev);
}
