/*
 * proxy.h: the request path inside a worker. The worker (worker.c) owns the
 * event loop and the front door (httpconn.h), which hands every complete
 * request to the proxy: it finds the target, builds the ALB event, invokes
 * the function (invoke.c), consults the cache and writes the reply.
 */
#ifndef SSP_PROXY_H
#define SSP_PROXY_H

struct event_base;
struct config;
struct httpreq;

/* Set up the Lambda client (or the local function). 0 or -1. */
int proxy_init(struct event_base *, const struct config *);
/* The front door's request callback (httpconn_handlers.request). */
void proxy_request(struct httpreq *, void *arg);
/* The front door's 100-continue check (httpconn_handlers.expect): 1 when
 * it answered (max_inflight reached), 0 to read the body. */
int proxy_expect(struct httpreq *, void *arg);
/* Requests accepted and not yet answered (for graceful retirement). */
unsigned proxy_inflight(void);
/* Stop: answer or abort what is in flight, free what proxy_init made. */
void proxy_free(void);

#endif
