/*
 * master.h: the master process (nginx's cycle): binds the listening
 * sockets, forks and supervises the workers and the credentials agent, and
 * owns every signal the daemon answers to.
 *
 * Signals, for operators (kill -s SIG $(cat pid_file)):
 *   SIGHUP          re-read the configuration; new workers start with it and
 *                   once all are ready the old ones retire gracefully (an
 *                   invalid file, or new workers not ready within
 *                   timeouts.start, is logged and the daemon keeps running
 *                   as it was)
 *   SIGTERM/SIGINT  stop: workers stop accepting, finish what is in flight
 *   (and SIGQUIT)   (at most timeouts.shutdown), then everything exits 0
 *   SIGUSR1         reopen the access log (after rotating it)
 *   SIGUSR2         log the response cache's statistics (cache.h)
 *   SIGURG          binary upgrade: start the binary again with the listening
 *                   sockets; once its workers are ready, this master retires
 *                   (doc/process.md, "upgrade")
 *
 * Between master and worker (see worker.h): SIGQUIT retires a worker
 * (reload), SIGTERM stops it (shutdown), SIGUSR1 reopens its access log.
 */
#ifndef SSP_MASTER_H
#define SSP_MASTER_H

#include <signal.h>

/*
 * The binary upgrade signal. nginx uses SIGUSR2, which is the cache
 * statistics here. SIGURG is ignored by default, so sending it to a daemon
 * too old to know it does nothing (SIGPWR or SIGXCPU would kill it), no
 * terminal sends it (SIGWINCH would upgrade on every resize of a
 * foreground run), and the kernel sends it only to the owner of a socket
 * that set F_SETOWN, which nothing here does.
 */
#define MASTER_SIGUPGRADE SIGURG

struct config;
struct config_cli;

/*
 * Run the master until it is stopped. Takes ownership of conf; cli must
 * live as long (SIGHUP loads the configuration again from it). Returns the
 * process's exit code: the master's (0 after a clean stop, 1 when it could
 * not start), or, in a forked worker, which returns here too so that main()
 * tears down what it set up, the worker's. argv is what a binary upgrade
 * executes the binary with again; it must live as long.
 */
int master_run(const struct config_cli *cli, struct config *conf, char **argv);

#endif
