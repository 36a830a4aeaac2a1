/*
 * hostcheck.h: the Host header of a request, checked before anything else:
 * the host becomes part of a Parameter Store path and of the URL the
 * function calls, so only a DNS name or an IPv4 literal (with an optional
 * port) gets through. Ports 80 and 443 mean the default (the origin is
 * always reached over https on 443); another port P is keyed "host_P".
 */
#ifndef SSP_LAMBDA_HOSTCHECK_H
#define SSP_LAMBDA_HOSTCHECK_H

#include <stddef.h>

struct host_target {
	char host[254]; /* lower-case name or IPv4 literal */
	int port;       /* the port to connect to: 443 or the one given */
	char key[262];  /* parameter path element: host or host_port */
};

/* 0 on success; -1 with err set (safe to show the client). */
int hostcheck_parse(const char *value, struct host_target *, char *err, size_t errlen);

#endif
