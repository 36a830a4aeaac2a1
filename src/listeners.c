/*
 * listeners.c: the master's listening sockets (listeners.h): bound once and
 * kept across reloads while a generation uses them, so that connections
 * wait in the kernel's queue instead of being refused while workers come
 * and go; adopted from an old master on a binary upgrade.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listeners.h"
#include "log.h"
#include "xmalloc.h"

/* listen(2) backlog, as nginx on Linux. */
#define LISTENERS_BACKLOG 511

static int
listeners_same_addr(const struct sockaddr_storage *a, socklen_t alen,
                    const struct sockaddr_storage *b, socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* A listening socket the old master handed over for l (binary upgrade), or -1. */
static int
listeners_adopt(struct listeners *ls, const struct config_listen *l)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;
	int fd;

	for (i = 0; i < ls->ninherited; i++) {
		if ((fd = ls->inherited[i]) < 0)
			continue;
		memset(&ss, 0, sizeof ss);
		len = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
			continue;
		if (!listeners_same_addr(&ss, len, &l->addr, l->addrlen))
			continue;
		ls->inherited[i] = -1;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
	return -1;
}

static int listeners_bind_one(struct listeners *, const struct config_listen *, char *, size_t);

/* ":PORT" on a host without IPv6: 0.0.0.0:PORT. */
static int
listeners_bind_v4_any(struct listeners *ls, const struct config_listen *l, char *err, size_t errlen)
{
	struct config_listen v4 = *l;
	struct sockaddr_in *sin = (struct sockaddr_in *)&v4.addr;
	uint16_t port = ((const struct sockaddr_in6 *)&l->addr)->sin6_port;

	memset(&v4.addr, 0, sizeof v4.addr);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_ANY);
	sin->sin_port = port;
	v4.addrlen = sizeof *sin;
	v4.dualstack = 0;
	log_info("listen %s: no IPv6 on this host: IPv4 only", l->text);
	return listeners_bind_one(ls, &v4, err, errlen);
}

static int
listeners_bind_one(struct listeners *ls, const struct config_listen *l, char *err, size_t errlen)
{
	int fd, on = 1, off = 0, family = l->addr.ss_family;

	if ((fd = listeners_adopt(ls, l)) != -1)
		return fd;
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 && l->dualstack && errno == EAFNOSUPPORT)
		return listeners_bind_v4_any(ls, l, err, errlen);
	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
		goto fail;
	/* [::]:8000 means IPv6 only, so that 0.0.0.0:8000 can be listed too;
	 * :8000 means both (v4 clients arrive as ::ffff:a.b.c.d), as Go's. */
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, l->dualstack ? &off : &on, sizeof on) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1) {
		if (l->dualstack && errno == EADDRNOTAVAIL) {
			close(fd);
			return listeners_bind_v4_any(ls, l, err, errlen);
		}
		goto fail;
	}
	if (listen(fd, LISTENERS_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listen %s: %s", l->text, strerror(errno));
	close(fd);
	return -1;
}

void
listeners_unbind_next(struct listeners *ls)
{
	size_t i, j;

	for (i = 0, j = 0; i < ls->n; i++) {
		if (ls->l[i].fresh) {
			close(ls->l[i].fd);
			continue;
		}
		ls->l[i].next = 0;
		ls->l[j++] = ls->l[i];
	}
	ls->n = j;
}

int
listeners_bind(struct listeners *ls, const struct config *conf, int next, char *err, size_t errlen)
{
	struct listener *l;
	size_t i, j;
	int fd;

	for (i = 0; i < conf->nlisten; i++) {
		const struct config_listen *cl = &conf->listen[i];

		for (j = 0; j < ls->n; j++)
			if (listeners_same_addr(&ls->l[j].addr, ls->l[j].addrlen, &cl->addr,
			                        cl->addrlen) &&
			    ls->l[j].dualstack == cl->dualstack)
				break;
		if (j < ls->n) {
			if (next)
				ls->l[j].next = 1;
			else
				ls->l[j].cur = 1;
			continue;
		}
		if ((fd = listeners_bind_one(ls, cl, err, errlen)) == -1) {
			listeners_unbind_next(ls);
			return -1;
		}
		ls->l = xreallocarray(ls->l, ls->n + 1, sizeof *ls->l);
		l = &ls->l[ls->n++];
		memset(l, 0, sizeof *l);
		l->addr = cl->addr;
		l->addrlen = cl->addrlen;
		l->dualstack = cl->dualstack;
		snprintf(l->text, sizeof l->text, "%s", cl->text);
		l->fd = fd;
		if (next)
			l->next = 1;
		else
			l->cur = 1;
		l->fresh = 1;
	}
	return 0;
}

void
listeners_commit(struct listeners *ls, int next)
{
	size_t i;

	for (i = 0; i < ls->n; i++) {
		if (next) {
			ls->l[i].cur = ls->l[i].next;
			ls->l[i].next = 0;
		}
		if (ls->l[i].fresh) {
			ls->l[i].fresh = 0;
			log_info("listening on %s", ls->l[i].text);
		}
	}
}

void
listeners_close_unused(struct listeners *ls)
{
	size_t i, j;

	for (i = 0, j = 0; i < ls->n; i++) {
		if (!ls->l[i].cur && !ls->l[i].next) {
			log_info("no longer listening on %s", ls->l[i].text);
			close(ls->l[i].fd);
			continue;
		}
		ls->l[j++] = ls->l[i];
	}
	ls->n = j;
}

void
listeners_close_inherited(struct listeners *ls)
{
	size_t i;

	for (i = 0; i < ls->ninherited; i++)
		if (ls->inherited[i] >= 0) {
			close(ls->inherited[i]);
			ls->inherited[i] = -1;
		}
}

void
listeners_inherit(struct listeners *ls, const int *fds, size_t n)
{
	size_t i;

	ls->inherited = xreallocarray(ls->inherited, ls->ninherited + n + 1, sizeof *fds);
	for (i = 0; i < n; i++)
		ls->inherited[ls->ninherited++] = fds[i];
}

size_t
listeners_fds(const struct listeners *ls, int next, int *fds)
{
	size_t i, n = 0;

	for (i = 0; i < ls->n; i++)
		if (next ? ls->l[i].next : ls->l[i].cur)
			fds[n++] = ls->l[i].fd;
	return n;
}

void
listeners_free(struct listeners *ls)
{
	size_t i;

	for (i = 0; i < ls->n; i++)
		close(ls->l[i].fd);
	free(ls->l);
	listeners_close_inherited(ls);
	free(ls->inherited);
	memset(ls, 0, sizeof *ls);
}
