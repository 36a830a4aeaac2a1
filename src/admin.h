/*
 * admin.h: the admin listener (/metrics, /healthz, /readyz) and the
 * readiness watch, both in the master (see admin.c).
 */
#ifndef SSP_ADMIN_H
#define SSP_ADMIN_H

#include <stddef.h>

struct config;
struct event_base;

/*
 * Master, at start and after every reload: serve cfg's admin.listen on
 * base (keeping the socket when it did not change) and watch readiness.
 * cfg must stay valid until the next call or admin_stop(). 0, or -1 with
 * err set (the previous listener stays).
 */
int admin_configure(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
/*
 * New master of a binary upgrade, before admin_configure(): take the
 * handed-over socket that is cfg's admin listener out of fds (set to -1),
 * to serve it instead of binding again (which the old master's would
 * refuse, or, for a unix socket, orphan).
 */
void admin_adopt(int *fds, size_t n, const struct config *cfg);
/* The listening socket (to hand over on an upgrade), or -1. */
int admin_fd(void);
/* Master, at exit: close the listener, remove its unix socket. */
void admin_stop(void);
/* A forked child: drop the master's listener without touching its socket file. */
void admin_forget(void);

#endif
