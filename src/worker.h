/*
 * worker.h: one worker process: an event loop serving HTTP on the
 * listening sockets the master bound, handing every request to the proxy
 * (proxy.h).
 *
 * Signals a worker answers to (sent by the master):
 *   SIGQUIT  retire (reload): stop accepting, finish in-flight requests,
 *            exit 0; at most timeouts.shutdown
 *   SIGTERM  stop (shutdown, or the master died: PR_SET_PDEATHSIG): the same
 *   SIGUSR1  reopen the access log
 * SIGINT and SIGHUP are ignored: a terminal sends them to the whole process
 * group, and the master decides what they mean.
 */
#ifndef SSP_WORKER_H
#define SSP_WORKER_H

#include <stddef.h>
#include <sys/types.h>

struct config;

struct worker_params {
	int slot;                  /* 1..workers, for the log tag */
	pid_t master;              /* exit at once if the master is already gone */
	const struct config *conf; /* borrowed; outlives worker_run() */
	const int *fds;            /* the listening sockets to serve */
	size_t nfds;
	const char *user; /* NULL: keep the master's identity */
	uid_t uid;
	gid_t gid;
	int ready_fd;   /* worker_ready() reports here (the master's status pipe) */
	int wait_ready; /* accept nothing before worker_ready() (a reload's new worker) */
};

/*
 * Run a worker in the calling (freshly forked) process until it is told to
 * stop. Expects every signal blocked on entry (the master blocks them
 * around fork) and unblocks them once its own handlers are in place.
 * Returns the exit code. Closes the fds it was given.
 */
int worker_run(const struct worker_params *);

/*
 * The worker can serve: tell the master (once; later calls do nothing),
 * and start accepting if it was held (wait_ready). worker_run() calls it
 * when its listeners and request path are set up, except in local function
 * mode, where the request path calls it once every function process has
 * asked for work. A reload waits for it (doc/process.md); its new workers
 * accept nothing before, so that a broken function answers no client while
 * the old workers still serve.
 */
void worker_ready(void);

#endif
