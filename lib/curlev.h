/*
 * curlev.h: libcurl's multi interface driven by a libevent loop
 * (curl_multi_socket_action with CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION), so that one loop runs many HTTP transfers at once
 * without blocking. One curlev per loop; its connection cache gives
 * keep-alive reuse to the endpoints it talks to.
 */
#ifndef SSP_CURLEV_H
#define SSP_CURLEV_H

#include <curl/curl.h>

struct event_base;
struct curlev;

/* Called once when a transfer added with curlev_add() ends (success or
 * failure, result says which). The easy handle is no longer attached to
 * the multi handle; the callback owns it again and may add it anew. */
typedef void (*curlev_done_cb)(CURL *easy, CURLcode result, void *arg);

/* A multi handle on base; max_host_connections caps the connections to
 * one host (0 = no cap). Returns NULL when libcurl refuses. The caller
 * frees it with curlev_free(). */
struct curlev *curlev_new(struct event_base *, long max_host_connections);
/* Start a transfer; the easy handle must not use CURLOPT_PRIVATE (curlev
 * keeps its own bookkeeping there). 0, or -1 when libcurl refuses (the
 * callback is then not called). */
int curlev_add(struct curlev *, CURL *easy, curlev_done_cb, void *arg);
/* Abort a transfer added with curlev_add() without calling its callback. */
void curlev_remove(struct curlev *, CURL *easy);
/* Transfers running. */
unsigned curlev_running(const struct curlev *);
/* Abort every transfer (no callbacks), close the connections, free. The
 * easy handles stay the callers' to clean up. */
void curlev_free(struct curlev *);

#endif
