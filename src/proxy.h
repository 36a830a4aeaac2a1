/*
 * proxy.h: the request path inside a worker. The worker (worker.c) owns the
 * event loop, the listening sockets and the evhttp server; it hands every
 * request to the proxy, which checks the client, builds the ALB event,
 * invokes the function (invoke.c) and writes the reply.
 */
#ifndef SSP_PROXY_H
#define SSP_PROXY_H

struct event_base;
struct evhttp;
struct config;

/* Install the request callback and the evhttp settings (allowed methods,
 * no default Content-Type, limits, timeouts) on http. 0 or -1. */
int proxy_init(struct event_base *, struct evhttp *, const struct config *);
/* Requests accepted and not yet answered (for graceful retirement). */
unsigned proxy_inflight(void);
/* Stop: answer or abort what is in flight, free what proxy_init made. */
void proxy_free(void);

#endif
