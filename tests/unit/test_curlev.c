/*
 * test_curlev.c: libcurl's multi interface on a libevent loop (curlev.c)
 * against an in-process evhttp server on loopback: transfers run at once
 * (a slow one does not hold up a fast one), callbacks come once with the
 * result, connections are reused, a removed transfer gets no callback, and
 * freeing with transfers in flight leaks nothing (ASan checks that).
 */
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "curlev.h"
#include "tap.h"

static struct event_base *base;

/* The server: /ok answers at once, /slow after 300 ms, /close closes. */
struct delayed {
	struct evhttp_request *req;
	struct event *ev;
};

static void
server_slow_done(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *d = arg;
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "slow");
	evhttp_send_reply(d->req, 200, "OK", b);
	evbuffer_free(b);
	event_free(d->ev);
	free(d);
}

static void
server_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *b;
	struct delayed *d;
	struct timeval tv = {0, 300000};

	if (strcmp(uri, "/slow") == 0) {
		d = calloc(1, sizeof *d);
		d->req = req;
		d->ev = evtimer_new(base, server_slow_done, d);
		evtimer_add(d->ev, &tv);
		return;
	}
	b = evbuffer_new();
	evbuffer_add_printf(b, "ok %s", uri);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* One transfer. */
struct xfer {
	CURL *easy;
	char body[256];
	size_t len;
	int done;
	CURLcode result;
	struct timeval when;
	long connects;
};

static size_t
xfer_write(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	if (x->len + len < sizeof x->body) {
		memcpy(x->body + x->len, p, len);
		x->len += len;
		x->body[x->len] = '\0';
	}
	return len;
}

static int pending;

static void
xfer_done(CURL *easy, CURLcode res, void *arg)
{
	struct xfer *x = arg;

	x->done++;
	x->result = res;
	gettimeofday(&x->when, NULL);
	curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &x->connects);
	if (--pending == 0)
		event_base_loopbreak(base);
}

static void
xfer_init(struct xfer *x, int port, const char *path)
{
	char url[128];

	memset(x, 0, sizeof *x);
	x->easy = curl_easy_init();
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 3000L);
}

/* Run the loop until pending transfers are done or 3 s pass. */
static void
run(void)
{
	struct timeval tv = {3, 0};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Run the loop for ms milliseconds. */
static void
wait_ms(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static double
ms_between(const struct timeval *a, const struct timeval *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_usec - a->tv_usec) / 1e3;
}

int
main(void)
{
	struct evhttp *http;
	struct evhttp_bound_socket *bs;
	struct curlev *cev;
	struct xfer slow, fast, seq[3], gone;
	struct sockaddr_storage ss;
	ev_socklen_t sslen = sizeof ss;
	int port, i, ok;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	base = event_base_new();
	http = evhttp_new(base);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (bs == NULL)
		tap_skip_all("cannot listen on 127.0.0.1");
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sslen);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	evhttp_set_gencb(http, server_cb, NULL);

	cev = curlev_new(base, 4);
	tap_ok(cev != NULL, "curlev_new");

	/* A slow and a fast transfer at once: the fast one ends first. */
	xfer_init(&slow, port, "/slow");
	xfer_init(&fast, port, "/fast");
	pending = 2;
	tap_ok(curlev_add(cev, slow.easy, xfer_done, &slow) == 0, "add the slow transfer");
	tap_ok(curlev_add(cev, fast.easy, xfer_done, &fast) == 0, "add the fast transfer");
	tap_ok(curlev_running(cev) == 2, "two transfers running");
	run();
	tap_ok(slow.done == 1 && fast.done == 1, "each callback called once (%d, %d)", slow.done,
	       fast.done);
	tap_ok(slow.result == CURLE_OK && fast.result == CURLE_OK, "both succeeded");
	tap_is_str(fast.body, "ok /fast", "fast body");
	tap_is_str(slow.body, "slow", "slow body");
	tap_ok(ms_between(&fast.when, &slow.when) > 200,
	       "the fast one did not wait for the slow one");
	tap_ok(curlev_running(cev) == 0, "nothing running");

	/* Sequential transfers reuse one kept-alive connection. */
	ok = 1;
	for (i = 0; i < 3; i++) {
		xfer_init(&seq[i], port, "/seq");
		pending = 1;
		curlev_add(cev, seq[i].easy, xfer_done, &seq[i]);
		run();
		ok = ok && seq[i].done == 1 && seq[i].result == CURLE_OK;
	}
	tap_ok(ok, "sequential transfers succeed");
	tap_ok(seq[1].connects == 0 && seq[2].connects == 0,
	       "later transfers reuse the connection (new connects: %ld, %ld)", seq[1].connects,
	       seq[2].connects);

	/* A refused connection is a result, not a hang. */
	xfer_init(&gone, 1, "/refused");
	pending = 1;
	curlev_add(cev, gone.easy, xfer_done, &gone);
	run();
	tap_ok(gone.done == 1 && gone.result == CURLE_COULDNT_CONNECT,
	       "a refused connection reports CURLE_COULDNT_CONNECT (%d)", gone.result);
	curl_easy_cleanup(gone.easy);

	/* Removed in flight: no callback, and the loop has nothing left. */
	xfer_init(&gone, port, "/slow");
	pending = 1;
	curlev_add(cev, gone.easy, xfer_done, &gone);
	wait_ms(100);
	curlev_remove(cev, gone.easy);
	tap_ok(curlev_running(cev) == 0, "removed transfer is gone");
	wait_ms(400);
	tap_ok(gone.done == 0, "no callback for a removed transfer");
	curl_easy_cleanup(gone.easy);

	/* Freed with a transfer in flight: no callback, nothing leaked. */
	xfer_init(&gone, port, "/slow");
	curlev_add(cev, gone.easy, xfer_done, &gone);
	wait_ms(50);
	curlev_free(cev);
	tap_ok(gone.done == 0, "curlev_free calls no callback");
	curl_easy_cleanup(gone.easy);

	curl_easy_cleanup(slow.easy);
	curl_easy_cleanup(fast.easy);
	for (i = 0; i < 3; i++)
		curl_easy_cleanup(seq[i].easy);
	/* Let the server finish its delayed replies before freeing it. */
	wait_ms(400);
	evhttp_free(http);
	event_base_free(base);
	curl_global_cleanup();
	return tap_done();
}
