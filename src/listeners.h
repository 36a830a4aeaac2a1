/*
 * listeners.h: the master's listening sockets across configuration
 * generations and binary upgrades. An address keeps its socket for as long
 * as a generation listens on it: the running one ("cur"), or the one a
 * reload is starting ("next"). A socket handed over by an old master
 * (upgrade.h) is adopted instead of binding its address again.
 */
#ifndef SSP_LISTENERS_H
#define SSP_LISTENERS_H

#include <stddef.h>
#include <sys/socket.h>

struct config;

struct listener {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[80];
	int dualstack; /* ":PORT": [::] with IPV6_V6ONLY off (config_listen) */
	int fd;
	int cur;   /* the running configuration listens here */
	int next;  /* the configuration being started does */
	int fresh; /* bound for a start or reload that is not committed yet */
};

struct listeners {
	struct listener *l;
	size_t n;
	int *inherited; /* handed over by an old master; -1 once adopted */
	size_t ninherited;
};

/* Sockets an old master handed over (taken over: closed by listeners_free()). */
void listeners_inherit(struct listeners *, const int *fds, size_t n);
/*
 * Make sure every address of conf has a socket: adopt a handed-over one,
 * or bind; mark them cur (next: 0) or next (1). On error nothing changes
 * (what was bound here is closed again) and err says which address.
 */
int listeners_bind(struct listeners *, const struct config *conf, int next, char *err,
                   size_t errlen);
/* Undo listeners_bind(..., 1): a reload failed or was abandoned. */
void listeners_unbind_next(struct listeners *);
/* The start (next: 0) or the reload (1) went through; logs the new addresses. */
void listeners_commit(struct listeners *, int next);
/* Close the sockets no generation listens on any more (logs them). */
void listeners_close_unused(struct listeners *);
/* Close the handed-over sockets the configuration does not name. */
void listeners_close_inherited(struct listeners *);
/* The fds of a generation (next: the one starting), into fds (room for ->n). */
size_t listeners_fds(const struct listeners *, int next, int *fds);
void listeners_free(struct listeners *);

#endif
