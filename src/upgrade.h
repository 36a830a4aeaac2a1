/*
 * upgrade.h: the handover of a binary upgrade (doc/process.md, "upgrade"),
 * between an old master and the new one it executes: the listening sockets
 * stay open across exec and are named in SSP_LISTEN_FDS; a pipe named in
 * SSP_UPGRADE_FD carries the new master's "ready". The master (master.c)
 * decides when; this is how.
 */
#ifndef SSP_UPGRADE_H
#define SSP_UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Old master: fork and execute exe with argv and our environment, the
 * sockets fds kept open and named. Returns the new master's pid with *rd
 * the pipe's read end (non-blocking, close-on-exec: one byte 'R' when the
 * new master serves, end of file when it is gone), or -1 with err.
 */
pid_t upgrade_spawn(const char *exe, char *const argv[], const int *fds, size_t nfds, int *rd,
                    char *err, size_t errlen);
/*
 * New master, at start: what an old master handed over. Returns the pipe
 * (-1: this start is no upgrade) and the sockets in *fds (malloc'd, *nfds
 * of them; the caller owns both). Both variables are removed from the
 * environment, so that our own children and next upgrade start clean.
 */
int upgrade_take(int **fds, size_t *nfds);
/* New master, ready: tell the old one (and close fd). 0, or -1 with errno. */
int upgrade_ready(int fd);

#endif
