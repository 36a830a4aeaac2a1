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
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

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
	struct event ev;
	short kind;     /* what ev watches, when registered */
	int registered; /* ev is added */
	int wanted;     /* libcurl watches the socket (not CURL_POLL_REMOVE) */
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

static struct curlev_sock *
curlev_sock_find(struct curlev *cev, curl_socket_t fd)
{
	struct curlev_sock *cs;

	LIST_FOREACH(cs, &cev->socks, entry)
	{
		if (cs->fd == fd)
			return cs;
	}
	return NULL;
}

/* libevent: a socket libcurl watches is ready. A kept-alive connection
 * libcurl does not watch at the moment (see curlev_socket_cb) stops being
 * watched here, when it turns readable (the server closed it, say). */
static void
curlev_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev_sock *cs = arg;
	struct curlev *cev = cs->cev;
	int action = 0, running;

	if (!cs->wanted) {
		event_del(&cs->ev);
		cs->registered = 0;
		return;
	}
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
 *
 * Every request on a kept-alive connection used to cost four epoll_ctl
 * calls here (libcurl drops its interest when a transfer ends and takes it
 * up again for the next one): CURL_POLL_REMOVE now leaves the event as it
 * is, and the next request that waits for the same thing finds it armed.
 * The event goes when it fires unwanted, or when libcurl closes the socket
 * (curlev_closesocket_cb), so that a reused descriptor number never meets
 * a stale event.
 */
static int
curlev_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curlev *cev = userp;
	struct curlev_sock *cs = socketp;
	short kind;

	if (cs == NULL)
		cs = curlev_sock_find(cev, s);
	if (what == CURL_POLL_REMOVE) {
		if (cs != NULL)
			cs->wanted = 0;
		curl_multi_assign(cev->multi, s, NULL);
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
	}
	cs->wanted = 1;
	curl_multi_assign(cev->multi, s, cs);
	if (cs->registered && cs->kind == kind)
		return 0;
	if (cs->registered)
		event_del(&cs->ev);
	cs->registered = 0;
	/* -1 makes libcurl fail the transfer, which says why. */
	if (event_assign(&cs->ev, cev->base, s, kind, curlev_sock_event, cs) == -1 ||
	    event_add(&cs->ev, NULL) == -1)
		return -1;
	cs->kind = kind;
	cs->registered = 1;
	return 0;
}

/* libcurl closes a socket: forget its event first. */
static int
curlev_closesocket_cb(void *clientp, curl_socket_t s)
{
	struct curlev *cev = clientp;
	struct curlev_sock *cs = curlev_sock_find(cev, s);

	if (cs != NULL) {
		if (cs->registered)
			event_del(&cs->ev);
		LIST_REMOVE(cs, entry);
		free(cs);
	}
	return close(s);
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
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, curlev_closesocket_cb);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cev);
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
		if (cs->registered)
			event_del(&cs->ev);
		free(cs);
	}
	if (cev->timer != NULL)
		event_free(cev->timer);
	free(cev);
}
