/*
 * master.c: the master process, after nginx's cycle. This one file owns the
 * signals, the pid file and the life of every child: the workers
 * (worker.c) and the credentials agent (credstore.h), in every generation.
 * It spawns them, replaces the ones that die (backing off when they keep
 * dying), reloads the configuration on SIGHUP without failing a client
 * request, upgrades its own binary on SIGURG, and stops everything on
 * SIGTERM/SIGINT. The listening sockets are listeners.c's; the upgrade's
 * handover protocol is upgrade.c's.
 *
 * Reload is a transaction: the new generation's workers start beside the
 * old ones and report ready on a pipe (worker_ready()); once all have, the
 * old ones retire (master_commit()); if they do not within timeouts.start,
 * or one dies, they go and the old ones never noticed (master_abandon()).
 * The listening sockets stay open in the master the whole time, so
 * connections wait in the kernel's accept queue instead of being refused.
 * Addresses in both configurations keep their socket; removed ones are
 * closed once the last worker that may use them has gone.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "admin.h"
#include "cache.h"
#include "clock.h"
#include "config.h"
#include "credstore.h"
#include "listeners.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "sdnotify.h"
#include "upgrade.h"
#include "worker.h"
#include "xmalloc.h"

/* A worker that dies sooner than this after it started "dies quickly". */
#define MASTER_QUICK_DEATH 2.0
/* Grace beyond timeouts.shutdown before a child that will not go is killed. */
#define MASTER_KILL_MARGIN 1.0

enum child_kind {
	CHILD_WORKER,
	CHILD_AGENT,
};

struct child {
	pid_t pid;
	enum child_kind kind;
	int slot;        /* worker number, 1..workers */
	unsigned gen;    /* configuration generation it runs */
	int retiring;    /* told to go (reload or stop): do not replace */
	double deadline; /* retiring: killed if still there then (monotonic) */
	int ready;       /* reported ready (worker_ready()) */
	double started;  /* monotonic seconds */
	TAILQ_ENTRY(child) entry;
};
TAILQ_HEAD(child_list, child);

/* A slot waiting to be (re)spawned after a back-off. */
struct respawn {
	enum child_kind kind;
	int slot;
	double delay; /* the back-off used last, for doubling */
	double last_start;
	struct event *ev;
};

/*
 * A generation being started by a reload: its workers run beside the old
 * ones until every one of them has reported ready (then it is committed and
 * the old ones retire) or timeouts.start passes or one of them dies (then
 * it is stopped and the old generation goes on as if nothing happened).
 */
struct pending {
	struct config *conf; /* NULL: no reload in flight */
	unsigned gen;
	uid_t uid;
	gid_t gid;
	const char *user; /* for initgroups(); in conf or static */
	double started;
	struct event *timer;
};

struct master {
	const struct config_cli *cli;
	struct config *conf;
	unsigned gen;
	pid_t pid;

	struct event_base *base;
	struct event *sig[10];
	size_t nsig;
	struct event *killtimer; /* shutdown: kill what is left */

	struct listeners listeners;

	struct child_list children;
	struct respawn *slots; /* index 0: the agent; 1..n: workers */
	size_t nslots;

	struct pending next;

	/* Workers report ready here (worker_ready()): 8-byte messages. */
	int status_rd, status_wr;
	struct event *status_ev;
	int start_pending; /* the first generation has not been ready yet */
	struct event *start_timer;

	/* Binary upgrade, the old master's side. */
	char *exe;   /* our binary, resolved at start */
	char **argv; /* as we were started */
	pid_t upgrade_pid;
	int upgrade_rd;
	struct event *upgrade_ev;
	struct event *upgrade_timer;
	int handed_over;
	int reload_queued; /* a SIGHUP came during a reload or an upgrade */
	struct event *queued_ev;
	/* The new master's side: tell the old one here once ready (-1: no). */
	int upgrade_fd;

	char *pid_file; /* the one we wrote */
	uid_t uid;
	gid_t gid;
	const char *user; /* for initgroups(); in conf or static */
	int stopping;
	int exitcode;
	int in_child;   /* set in a forked worker: unwind to master_run */
	int child_slot; /* and the slot it is */
	unsigned child_gen;
};

static struct master m;

static void master_spawn_slot(size_t);
static void master_check_done(void);
static void master_check_ready(void);
static void master_stop(const char *why);
static void master_upgrade_done(void);
static void master_arm_kill_timer(void);
static void master_retire_child(struct child *, int sig, double grace);

/*
 * The user the workers (and local functions) run as: conf's user:, or,
 * when the master runs as root and the file names none, the build's
 * default (configure --with-user, falling back to nobody). *name is what
 * to pass to initgroups() (NULL: stay as we are).
 */
static int
master_resolve_user(const struct config *conf, uid_t *uid, gid_t *gid, const char **name, char *err,
                    size_t errlen)
{
	const char *user = conf->user;
	struct passwd *pw;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	*name = NULL;
	if (user == NULL) {
		if (geteuid() != 0)
			return 0;
		user = SSP_DEFAULT_USER;
		if (getpwnam(user) == NULL)
			user = "nobody";
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user %s: %s", user,
		         errno != 0 ? strerror(errno) : "no such user");
		return -1;
	}
	if (geteuid() != 0 && pw->pw_uid != geteuid()) {
		snprintf(err, errlen,
		         "user %s: the daemon must start as root to run workers as another user",
		         user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	*name = conf->user != NULL ? conf->user : user;
	return 0;
}

/* Say once per start or reload whom the workers run as, when it is worth it. */
static void
master_log_user(const struct config *conf, const char *name)
{
	if (geteuid() != 0)
		return;
	if (conf->user == NULL)
		log_info("workers run as %s (no user: in the configuration; the build's default)",
		         name);
	else if (strcmp(conf->user, "root") == 0)
		log_warn("user: root: workers and local functions run as root");
}

/*
 * Write our pid to path atomically (a temporary file renamed over it), so
 * that a reader (an init script polling the file) never sees it empty.
 */
static int
master_write_pid_file(const char *path, char *err, size_t errlen)
{
	char buf[32], *tmp;
	int fd, n, ok;

	xasprintf(&tmp, "%s.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "pid_file %s: %s", path, strerror(errno));
		free(tmp);
		return -1;
	}
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	ok = write(fd, buf, (size_t)n) == n && fchmod(fd, 0644) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) == -1) {
		snprintf(err, errlen, "pid_file %s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

/* Switch the pid file to conf's (nothing when it did not change). */
static int
master_update_pid_file(const struct config *conf, char *err, size_t errlen)
{
	if (conf->pid_file == NULL) {
		if (m.pid_file != NULL)
			unlink(m.pid_file);
		free(m.pid_file);
		m.pid_file = NULL;
		return 0;
	}
	if (m.pid_file != NULL && strcmp(m.pid_file, conf->pid_file) == 0)
		return 0;
	if (master_write_pid_file(conf->pid_file, err, errlen) == -1)
		return -1;
	if (m.pid_file != NULL)
		unlink(m.pid_file);
	free(m.pid_file);
	m.pid_file = xstrdup(conf->pid_file);
	return 0;
}

/* Close the sockets no generation uses, once no older worker may still hold them. */
static void
master_close_stale(void)
{
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_WORKER && c->gen < m.gen)
		return; /* an older generation is still finishing */
	listeners_close_unused(&m.listeners);
}

static const char *
master_kind_name(const struct child *c, char *buf, size_t len)
{
	if (c->kind == CHILD_AGENT)
		snprintf(buf, len, "credentials agent");
	else
		snprintf(buf, len, "worker %d", c->slot);
	return buf;
}

static void
master_describe_status(int status, char *how, size_t len)
{
	if (WIFEXITED(status))
		snprintf(how, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, len, "killed by signal %d (%s)%s", WTERMSIG(status),
		         strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(how, len, "ended with status 0x%x", (unsigned)status);
}

/* Does the pid file still name us? (A new master may have taken it over.) */
static int
master_pid_file_is_ours(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10) == (long)getpid();
}

/* The configuration a generation runs (the running one, or the one starting). */
static const struct config *
master_conf_of(unsigned gen)
{
	return m.next.conf != NULL && gen == m.next.gen ? m.next.conf : m.conf;
}

/*
 * In a freshly forked worker, once the master's loop has unwound: drop
 * everything that belongs to the master (its event loop, whose epoll
 * instance and signal pipe the child shares until event_reinit() gives it
 * its own; the other generations' sockets) and run the worker. Returns the
 * worker's exit code.
 */
static int
master_become_worker(int slot, unsigned gen)
{
	struct worker_params wp;
	struct child *c;
	size_t i, n = 0;
	int *fds, rc, next = m.next.conf != NULL && gen == m.next.gen;

	event_reinit(m.base);
	for (i = 0; i < m.nsig; i++)
		event_free(m.sig[i]);
	m.nsig = 0;
	if (m.killtimer != NULL)
		event_free(m.killtimer);
	m.killtimer = NULL;
	if (m.next.timer != NULL)
		event_free(m.next.timer);
	m.next.timer = NULL;
	if (m.status_ev != NULL)
		event_free(m.status_ev);
	m.status_ev = NULL;
	if (m.start_timer != NULL)
		event_free(m.start_timer);
	m.start_timer = NULL;
	if (m.queued_ev != NULL)
		event_free(m.queued_ev);
	m.queued_ev = NULL;
	if (m.upgrade_ev != NULL)
		event_free(m.upgrade_ev);
	m.upgrade_ev = NULL;
	if (m.upgrade_timer != NULL)
		event_free(m.upgrade_timer);
	m.upgrade_timer = NULL;
	if (m.upgrade_rd >= 0)
		close(m.upgrade_rd);
	m.upgrade_rd = -1;
	if (m.upgrade_fd >= 0)
		close(m.upgrade_fd);
	m.upgrade_fd = -1;
	close(m.status_rd);
	m.status_rd = -1;
	for (i = 0; i < m.nslots; i++)
		if (m.slots[i].ev != NULL) {
			event_free(m.slots[i].ev);
			m.slots[i].ev = NULL;
		}
	admin_forget();
	event_base_free(m.base);
	m.base = NULL;
	while ((c = TAILQ_FIRST(&m.children)) != NULL) {
		TAILQ_REMOVE(&m.children, c, entry);
		free(c);
	}
	free(m.pid_file); /* the master's to remove, not ours */
	m.pid_file = NULL;

	/* Ours: the sockets of our generation; the others are closed. */
	fds = xcalloc(m.listeners.n + 1, sizeof *fds);
	n = listeners_fds(&m.listeners, next, fds);
	for (i = 0; i < m.listeners.n; i++)
		if (!(next ? m.listeners.l[i].next : m.listeners.l[i].cur))
			close(m.listeners.l[i].fd);
	free(m.listeners.l);
	m.listeners.l = NULL;
	m.listeners.n = 0;

	memset(&wp, 0, sizeof wp);
	wp.slot = slot;
	wp.master = m.pid;
	wp.conf = next ? m.next.conf : m.conf;
	wp.fds = fds;
	wp.nfds = n;
	wp.user = next ? m.next.user : m.user;
	wp.uid = next ? m.next.uid : m.uid;
	wp.gid = next ? m.next.gid : m.gid;
	wp.ready_fd = m.status_wr;
	/* While another generation (or the old master) serves, a new worker
	 * accepts only once ready; on its own it accepts at once (and, in
	 * local mode, answers 502 saying why its function does not start). */
	wp.wait_ready = next || m.start_pending;
	rc = worker_run(&wp);
	free(fds);
	return rc;
}

static struct child *
master_add_child(pid_t pid, enum child_kind kind, int slot, unsigned gen)
{
	struct child *c;

	c = xcalloc(1, sizeof *c);
	c->pid = pid;
	c->kind = kind;
	c->slot = slot;
	c->gen = gen;
	c->started = clock_mono();
	TAILQ_INSERT_TAIL(&m.children, c, entry);
	return c;
}

/*
 * Fork worker slot of generation gen. Returns 0 in the master, -1 when
 * fork failed, and 1 in the child, which sets m.in_child: every caller then
 * returns at once so that the child unwinds out of the master's event loop
 * to master_run().
 */
static int
master_fork_worker(int slot, unsigned gen)
{
	sigset_t all, old;
	pid_t pid;

	/* No signal may reach the child before it has replaced the master's
	 * handlers: libevent's would write into the master's signal pipe. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		m.in_child = 1;
		m.child_slot = slot;
		m.child_gen = gen;
		if (m.base != NULL)
			event_base_loopbreak(m.base);
		return 1;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_error("worker %d: fork: %s", slot, strerror(errno));
		return -1;
	}
	master_add_child(pid, CHILD_WORKER, slot, gen);
	log_info("worker %d started, pid %ld%s", slot, (long)pid,
	         gen != m.gen ? " (new configuration)" : "");
	return 0;
}

/* The running agent, if any (one that was told to go does not count). */
static struct child *
master_agent(void)
{
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_AGENT && !c->retiring)
		return c;
	return NULL;
}

/* Does the running configuration, or the one starting, invoke AWS Lambda? */
static int
master_wants_agent(void)
{
	return m.conf->local_function.command == NULL ||
	       (m.next.conf != NULL && m.next.conf->local_function.command == NULL);
}

static int
master_spawn_agent(void)
{
	pid_t pid;

	/* Never two: the shared store has one writer (the agent also refuses
	 * to run while another holds the lease). */
	if (master_agent() != NULL)
		return 0;
	pid = credstore_spawn_agent(m.conf);
	if (pid <= 0) {
		log_error("credentials agent: could not start it");
		return -1;
	}
	master_add_child(pid, CHILD_AGENT, 0, m.gen);
	credstore_agent_state(CREDSTORE_AGENT_RUNNING, NULL);
	log_info("credentials agent started, pid %ld", (long)pid);
	return 0;
}

/* Tell the agent to go (the configuration runs a local function now). */
static void
master_retire_agent(void)
{
	struct child *c;

	if (m.slots != NULL && m.slots[0].ev != NULL)
		evtimer_del(m.slots[0].ev);
	m.slots[0].delay = 0;
	if ((c = master_agent()) == NULL)
		return;
	master_retire_child(c, SIGTERM, MASTER_KILL_MARGIN);
	master_arm_kill_timer();
	credstore_agent_state(CREDSTORE_AGENT_NONE, "no credentials agent runs in local "
	                                            "function mode");
}

static void
master_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	/* The slot's index, not its address: a reload reallocates m.slots. */
	size_t i = (size_t)(uintptr_t)arg;

	if (i < m.nslots)
		master_spawn_slot(i);
}

/* Back off slot r before its next start (it died quickly, or fork failed). */
static void
master_backoff(struct respawn *r)
{
	r->delay = r->delay == 0 ? m.conf->retry.respawn : r->delay * 2;
	if (r->delay > m.conf->retry.respawn_cap)
		r->delay = m.conf->retry.respawn_cap;
}

static void
master_arm_respawn(struct respawn *r)
{
	struct timeval tv = clock_tv(r->delay);

	if (r->ev == NULL)
		r->ev = evtimer_new(m.base, master_respawn_cb, (void *)(uintptr_t)(r - m.slots));
	evtimer_add(r->ev, &tv);
}

/* Start slot i (of the running configuration) now; when that fails, try again after a back-off. */
static void
master_spawn_slot(size_t i)
{
	struct respawn *r = &m.slots[i];
	int rc;

	if (m.stopping || m.in_child)
		return;
	if (r->kind == CHILD_AGENT) {
		/* A local function needs no AWS credentials: no agent then (it
		 * would only log that it found none). */
		if (!master_wants_agent())
			return;
		if (r->ev != NULL)
			evtimer_del(r->ev);
		rc = master_spawn_agent();
	} else
		rc = master_fork_worker(r->slot, m.gen);
	r->last_start = clock_mono();
	if (rc == 1 || rc == 0)
		return;
	master_backoff(r);
	master_arm_respawn(r);
}

/* Size the slot table for conf: the agent plus one per worker. */
static void
master_size_slots(const struct config *conf)
{
	size_t i, n = (size_t)conf->workers + 1;

	for (i = n; i < m.nslots; i++)
		if (m.slots[i].ev != NULL)
			event_free(m.slots[i].ev);
	m.slots = xreallocarray(m.slots, n, sizeof *m.slots);
	for (i = m.nslots; i < n; i++) {
		memset(&m.slots[i], 0, sizeof m.slots[i]);
		m.slots[i].kind = i == 0 ? CHILD_AGENT : CHILD_WORKER;
		m.slots[i].slot = (int)i;
	}
	m.nslots = n;
	for (i = 1; i < n; i++) {
		/* A new configuration deserves a fresh start. */
		m.slots[i].delay = 0;
		if (m.slots[i].ev != NULL)
			evtimer_del(m.slots[i].ev);
	}
}

/* Signal the workers of generation gen (0: every worker). */
static void
master_signal_workers(int sig, unsigned gen)
{
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	{
		if (c->kind != CHILD_WORKER || (gen != 0 && c->gen != gen))
			continue;
		kill(c->pid, sig);
	}
}

/* Kill the retiring children past their deadline; wake again for the next one. */
static void
master_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	char name[64];
	struct child *c;
	double now = clock_mono();

	TAILQ_FOREACH(c, &m.children, entry)
	{
		if (!c->retiring || c->deadline <= 0 || c->deadline > now)
			continue;
		log_warn("%s (pid %ld) still running after the shutdown timeout: killing it",
		         master_kind_name(c, name, sizeof name), (long)c->pid);
		kill(c->pid, SIGKILL);
		c->deadline = 0; /* once */
	}
	master_arm_kill_timer();
}

/* Wake at the earliest deadline of a retiring child (each has its own: a
 * worker retired by this reload is not killed on the last one's schedule). */
static void
master_arm_kill_timer(void)
{
	struct timeval tv;
	struct child *c;
	double first = 0, now = clock_mono();

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->retiring && c->deadline > 0 && (first == 0 || c->deadline < first))
		first = c->deadline;
	if (m.killtimer == NULL)
		m.killtimer = evtimer_new(m.base, master_kill_cb, NULL);
	if (first == 0) {
		evtimer_del(m.killtimer);
		return;
	}
	tv = clock_tv(first > now ? first - now : 0);
	evtimer_add(m.killtimer, &tv);
}

/* Tell c to go with sig; it is killed if still there after grace seconds. */
static void
master_retire_child(struct child *c, int sig, double grace)
{
	if (!c->retiring)
		c->deadline = clock_mono() + grace;
	c->retiring = 1;
	kill(c->pid, sig);
}

/* Tell the workers of gen to finish what they have and go (sig: SIGQUIT or SIGTERM). */
static void
master_retire_gen(unsigned gen, int sig)
{
	double grace = master_conf_of(gen)->timeouts.shutdown + MASTER_KILL_MARGIN;
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_WORKER && c->gen == gen && !c->retiring)
		master_retire_child(c, sig, grace);
	master_arm_kill_timer();
}

static void master_reload(void);

static void
master_queued_cb(evutil_socket_t fd, short what, void *arg)
{
	master_reload();
	if (m.in_child)
		event_base_loopbreak(m.base);
}

/* A reload or an upgrade is over: do the SIGHUP that came meanwhile. */
static void
master_run_queued(void)
{
	struct timeval now = {0, 0};

	if (!m.reload_queued || m.stopping)
		return;
	m.reload_queued = 0;
	if (m.queued_ev == NULL)
		m.queued_ev = evtimer_new(m.base, master_queued_cb, NULL);
	evtimer_add(m.queued_ev, &now);
}

/* A reload in flight is over (committed or abandoned): forget it. */
static void
master_pending_clear(void)
{
	if (m.next.timer != NULL)
		evtimer_del(m.next.timer);
	m.next.conf = NULL;
	m.next.gen = 0;
	m.next.user = NULL;
	master_run_queued();
}

/*
 * Give up the generation being started: its workers go, the running one
 * goes on as it was (the master's own state is put back too).
 */
static void master_abandon(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
master_abandon(const char *fmt, ...)
{
	struct config *conf = m.next.conf;
	char why[512], err[512];
	va_list ap;

	if (conf == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	log_error("reload abandoned, the running configuration (generation %u) keeps serving: %s",
	          m.gen, why);
	master_retire_gen(m.next.gen, SIGTERM);
	listeners_unbind_next(&m.listeners);
	if (accesslog_open(m.conf->access_log, m.uid, m.gid, err, sizeof err) == -1 ||
	    log_open(m.conf->log, m.conf->log_format == CONFIG_FORMAT_JSON, m.uid, m.gid, err,
	             sizeof err) == -1)
		log_error("%s", err);
	accesslog_set_format(m.conf->access_log_format == CONFIG_FORMAT_JSON);
	if (cache_setup(m.conf, err, sizeof err) == -1)
		log_error("%s", err);
	log_set_level(m.conf->log_level);
	credstore_configure(m.conf);
	master_pending_clear();
	if (!master_wants_agent())
		master_retire_agent();
	config_free(conf);
	metrics_reload(0);
	sdnotify("READY=1");
}

/* Every worker of the generation being started is ready: it is the running one now. */
static void
master_commit(void)
{
	unsigned old = m.gen;
	char err[512];
	double took = clock_mono() - m.next.started;

	if (master_update_pid_file(m.next.conf, err, sizeof err) == -1)
		log_error("reload: %s", err); /* not worth refusing the reload for */
	if (admin_configure(m.base, m.next.conf, err, sizeof err) == -1)
		log_error("reload: %s", err); /* the old listener goes on */
	config_free(m.conf);
	m.conf = m.next.conf;
	m.gen = m.next.gen;
	m.uid = m.next.uid;
	m.gid = m.next.gid;
	m.user = m.next.user;
	master_pending_clear();
	listeners_commit(&m.listeners, 1);
	/* The old workers stop accepting and finish what they have. */
	master_retire_gen(old, SIGQUIT);
	master_size_slots(m.conf);
	if (!master_wants_agent())
		master_retire_agent();
	master_close_stale();
	log_info("configuration reloaded (generation %u, %d workers ready after %.2fs)", m.gen,
	         m.conf->workers, took);
	metrics_reload(1);
	sdnotify("READY=1");
}

static void
master_start_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	master_abandon("the new workers were not ready within timeouts.start (%.1fs)%s",
	               m.next.conf->timeouts.start,
	               m.next.conf->local_function.command != NULL
	                   ? ": their local function processes did not ask for work"
	                   : "");
}

static void
master_stop(const char *why)
{
	struct child *c;
	int workers = 0;
	double grace;
	size_t i;

	if (m.stopping) {
		log_info("%s: already stopping", why);
		return;
	}
	m.stopping = 1;
	/* After an upgrade the new master is the service now: no STOPPING. */
	if (!m.handed_over)
		sdnotify("STOPPING=1");
	log_info("%s: stopping (in-flight requests get %.1fs)", why, m.conf->timeouts.shutdown);
	if (m.next.conf != NULL) {
		config_free(m.next.conf);
		master_pending_clear();
	}
	for (i = 0; i < m.nslots; i++)
		if (m.slots[i].ev != NULL)
			evtimer_del(m.slots[i].ev);
	if (m.start_timer != NULL)
		evtimer_del(m.start_timer);
	/* A new master still starting goes too: the operator stopped the service. */
	if (m.upgrade_pid > 0 && !m.handed_over) {
		kill(m.upgrade_pid, SIGTERM);
		master_upgrade_done();
	}
	/* Workers first: their in-flight requests may still need the agent. */
	grace = m.conf->timeouts.shutdown + MASTER_KILL_MARGIN;
	TAILQ_FOREACH(c, &m.children, entry)
	{
		if (c->kind != CHILD_WORKER)
			continue;
		master_retire_child(c, SIGTERM, grace);
		workers++;
	}
	if (workers == 0)
		TAILQ_FOREACH(c, &m.children, entry)
	master_retire_child(c, SIGTERM, grace);
	/* New connections are refused from now on, not queued for workers
	 * that will never accept them (the workers close their copies). After
	 * an upgrade the new master keeps its own. */
	listeners_free(&m.listeners);
	master_arm_kill_timer();
	master_check_done();
}

/* Stopping and no worker left: stop the agent; nothing left: leave the loop. */
static void
master_check_done(void)
{
	struct child *c;
	int workers = 0;

	if (!m.stopping)
		return;
	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_WORKER)
		workers++;
	if (workers == 0)
		TAILQ_FOREACH(c, &m.children, entry)
	if (!c->retiring) {
		master_retire_child(c, SIGTERM, MASTER_KILL_MARGIN);
		master_arm_kill_timer();
	}
	if (TAILQ_EMPTY(&m.children))
		event_base_loopbreak(m.base);
}

static void
master_reload(void)
{
	struct config *conf;
	char err[1024], err2[512];
	const char *user;
	uid_t uid;
	gid_t gid;
	struct timeval tv;
	unsigned gen;
	size_t i;
	int n;

	if (m.stopping)
		return;
	/* One transaction at a time: a SIGHUP meanwhile is done right after it
	 * (a configuration pushed twice in a row must not lose the second). */
	if (m.next.conf != NULL || m.upgrade_pid > 0 || m.start_pending) {
		if (!m.reload_queued)
			log_info("SIGHUP: %s in progress; reloading once it is over",
			         m.next.conf != NULL ? "a reload is" : "a binary upgrade is");
		m.reload_queued = 1;
		return;
	}
	log_info("SIGHUP: reloading the configuration");
	sdnotify("RELOADING=1");
	conf = config_load(m.cli, err, sizeof err);
	if (conf == NULL) {
		log_error("reload failed, keeping the running configuration: %s", err);
		metrics_reload(0);
		sdnotify("READY=1");
		return;
	}
	if (master_resolve_user(conf, &uid, &gid, &user, err, sizeof err) == -1)
		goto fail;
	gen = m.gen + 1;
	if (listeners_bind(&m.listeners, conf, 1, err, sizeof err) == -1)
		goto fail;
	if (accesslog_open(conf->access_log, uid, gid, err, sizeof err) == -1 ||
	    log_open(conf->log, conf->log_format == CONFIG_FORMAT_JSON, uid, gid, err,
	             sizeof err) == -1) {
		listeners_unbind_next(&m.listeners);
		if (accesslog_open(m.conf->access_log, m.uid, m.gid, err2, sizeof err2) == -1)
			log_error("%s", err2);
		goto fail;
	}
	accesslog_set_format(conf->access_log_format == CONFIG_FORMAT_JSON);
	for (i = 0; i < conf->nwarnings; i++)
		log_warn("%s", conf->warnings[i]);
	master_log_user(conf, user);
	log_set_level(conf->log_level);
	credstore_configure(conf);
	/* The same max_size keeps the cache; the new workers get a new zone
	 * otherwise. */
	if (cache_setup(conf, err, sizeof err) == -1)
		log_error("reload: %s", err);

	/*
	 * The old workers go on serving while the new ones start; they retire
	 * once every new one has reported ready (master_commit()), or the new
	 * ones go (master_abandon()).
	 */
	m.next.conf = conf;
	m.next.gen = gen;
	m.next.uid = uid;
	m.next.gid = gid;
	m.next.user = user;
	m.next.started = clock_mono();
	if (m.next.timer == NULL)
		m.next.timer = evtimer_new(m.base, master_start_timeout_cb, NULL);
	tv = clock_tv(conf->timeouts.start);
	evtimer_add(m.next.timer, &tv);
	/* Switched from a local function to Lambda: the agent is needed now. */
	if (master_wants_agent() && master_agent() == NULL &&
	    (m.slots[0].ev == NULL || !evtimer_pending(m.slots[0].ev, NULL)))
		master_spawn_slot(0);
	for (n = 1; n <= conf->workers; n++) {
		if (master_fork_worker(n, gen) == -1) {
			master_abandon("cannot start worker %d: fork failed", n);
			return;
		}
		if (m.in_child)
			return;
	}
	log_info("configuration loaded (generation %u): waiting for %d new workers to be ready",
	         gen, conf->workers);
	return;
fail:
	log_error("reload failed, keeping the running configuration: %s", err);
	metrics_reload(0);
	config_free(conf);
	sdnotify("READY=1");
}

static void
master_reopen(void)
{
	char err[512];

	log_info("SIGUSR1: reopening the access log");
	if (accesslog_open(m.conf->access_log, m.uid, m.gid, err, sizeof err) == -1)
		log_error("%s", err);
	if (log_reopen(err, sizeof err) == -1)
		log_error("%s", err);
	master_signal_workers(SIGUSR1, 0);
}

/* A child ended: log it and replace it when it should still run. */
static void
master_child_ended(struct child *c, int status)
{
	char name[64], how[128];
	struct respawn *r;
	double lived = clock_mono() - c->started;
	size_t slot;
	pid_t pid = c->pid;

	master_describe_status(status, how, sizeof how);
	master_kind_name(c, name, sizeof name);
	if (c->retiring || m.stopping) {
		/* Told to go: exiting 0, or dying of the SIGTERM we sent, is
		 * what we asked for. */
		if ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
		    (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
			log_info("%s (pid %ld) %s", name, (long)pid, how);
		else
			log_warn("%s (pid %ld) %s", name, (long)pid, how);
		return;
	}
	if (c->kind == CHILD_WORKER && m.next.conf != NULL && c->gen == m.next.gen) {
		/* A worker of the configuration being started: that one is broken. */
		master_abandon("worker %d (pid %ld) of the new configuration %s%s", c->slot,
		               (long)pid, how, c->ready ? "" : " before it was ready");
		return;
	}
	if (c->kind == CHILD_WORKER && c->gen != m.gen) {
		/* An older generation's worker not told to retire cannot
		 * happen; be safe anyway. */
		log_warn("%s (pid %ld) %s", name, (long)pid, how);
		return;
	}
	slot = c->kind == CHILD_AGENT ? 0 : (size_t)c->slot;
	if (slot >= m.nslots)
		return;
	r = &m.slots[slot];
	if (lived < MASTER_QUICK_DEATH)
		master_backoff(r);
	else
		r->delay = 0;
	log_error("%s (pid %ld) %s after %.1fs; starting another in %.1fs", name, (long)pid, how,
	          lived, r->delay);
	if (c->kind == CHILD_AGENT) {
		char msg[256];

		/* Parked requests fail at once rather than wait for an agent
		 * that is not coming soon. */
		snprintf(msg, sizeof msg,
		         "the credentials agent is not running (it %s; next start in %.1fs)", how,
		         r->delay);
		credstore_agent_state(r->delay > 0 ? CREDSTORE_AGENT_DOWN : CREDSTORE_AGENT_RUNNING,
		                      msg);
	}
	if (r->delay == 0)
		master_spawn_slot(slot);
	else
		master_arm_respawn(r);
}

static void master_upgrade_ended(int status);

static void
master_reap(void)
{
	struct child *c;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m.upgrade_pid) {
			master_upgrade_ended(status);
			continue;
		}
		TAILQ_FOREACH(c, &m.children, entry)
		if (c->pid == pid)
			break;
		if (c == NULL)
			continue; /* not ours (a helper a module forked) */
		TAILQ_REMOVE(&m.children, c, entry);
		metrics_process_gone(pid);
		master_child_ended(c, status);
		free(c);
		if (m.in_child)
			return;
	}
	master_close_stale();
	master_check_ready();
	master_check_done();
}

/*
 * Readiness. A worker writes one message on the status pipe once it serves
 * (worker_ready(): its listeners set up, and in local mode its function
 * processes asking for work).
 */
struct master_status {
	int32_t pid;
	int32_t what; /* 1: ready */
};

static void master_start_ready(void);

/* Is every worker of gen (not told to go) ready, and are there as many as its configuration has? */
static int
master_gen_ready(unsigned gen)
{
	struct child *c;
	int ready = 0;

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_WORKER && c->gen == gen && !c->retiring) {
		if (!c->ready)
			return 0;
		ready++;
	}
	return ready >= master_conf_of(gen)->workers;
}

static void
master_check_ready(void)
{
	if (m.stopping || m.in_child)
		return;
	if (m.next.conf != NULL && master_gen_ready(m.next.gen))
		master_commit();
	if (m.start_pending && master_gen_ready(m.gen))
		master_start_ready();
}

static void
master_status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_status st[64];
	struct child *c;
	ssize_t n, i;

	n = read(fd, st, sizeof st);
	if (n <= 0)
		return;
	for (i = 0; i < n / (ssize_t)sizeof st[0]; i++)
		TAILQ_FOREACH(c, &m.children, entry)
	if (c->pid == st[i].pid && st[i].what == 1) {
		c->ready = 1;
		log_debug("worker %d (pid %ld) is ready", c->slot, (long)c->pid);
	}
	master_check_ready();
}

/*
 * Binary upgrade, as nginx's (doc/process.md, "upgrade"). The old master
 * forks and executes its own binary again (the path it was started from,
 * resolved at start: a package upgrade has replaced the file by then) with
 * its listening sockets open and named in SSP_LISTEN_FDS, and a pipe in
 * SSP_UPGRADE_FD. The new master adopts the sockets (so no connection is
 * refused: both masters' workers accept from the same queues for a moment),
 * starts its workers, and once they are ready writes its pid file, tells
 * systemd its pid (MAINPID=) and writes one byte on the pipe. The old
 * master then retires its workers and exits. A new master that exits, or
 * is not ready within timeouts.start, is stopped and the old one keeps
 * serving.
 */
static void
master_upgrade_done(void)
{
	if (m.upgrade_ev != NULL)
		event_free(m.upgrade_ev);
	m.upgrade_ev = NULL;
	if (m.upgrade_timer != NULL)
		evtimer_del(m.upgrade_timer);
	if (m.upgrade_rd >= 0)
		close(m.upgrade_rd);
	m.upgrade_rd = -1;
}

static void
master_upgrade_cb(evutil_socket_t fd, short what, void *arg)
{
	char b;
	ssize_t n;

	n = read(fd, &b, 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	master_upgrade_done();
	if (n == 1 && b == 'R') {
		log_info("upgrade: the new master (pid %ld) is serving; this one retires",
		         (long)m.upgrade_pid);
		m.handed_over = 1;
		/* The pid file is the new master's now. */
		free(m.pid_file);
		m.pid_file = NULL;
		master_stop("upgrade");
	}
	/* EOF: the new master went away; master_upgrade_ended() says how. */
}

static void
master_upgrade_ended(int status)
{
	char how[128];
	pid_t pid = m.upgrade_pid;

	master_describe_status(status, how, sizeof how);
	m.upgrade_pid = 0;
	if (m.handed_over)
		return;
	master_upgrade_done();
	log_error("upgrade failed: the new master (pid %ld) %s before it was ready; this one keeps "
	          "serving",
	          (long)pid, how);
	master_run_queued();
}

static void
master_upgrade_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	log_error("upgrade failed: the new master (pid %ld) was not ready within timeouts.start "
	          "(%.1fs); stopping it, this one keeps serving",
	          (long)m.upgrade_pid, m.conf->timeouts.start);
	master_upgrade_done();
	if (m.upgrade_pid > 0)
		kill(m.upgrade_pid, SIGTERM);
}

static void
master_upgrade(void)
{
	char err[256];
	struct timeval tv;
	size_t nfds;
	int *fds, rd;
	pid_t pid;

	if (m.stopping)
		return;
	if (m.upgrade_pid > 0 || m.start_pending || m.next.conf != NULL || m.exe == NULL) {
		log_warn("upgrade: %s; ignored", m.exe == NULL ? "the daemon's own path is unknown"
		                                 : m.next.conf != NULL
		                                     ? "a reload is in progress"
		                                     : "an upgrade is in progress");
		return;
	}
	fds = xcalloc(m.listeners.n + 2, sizeof *fds);
	nfds = listeners_fds(&m.listeners, 0, fds);
	if (admin_fd() >= 0)
		fds[nfds++] = admin_fd();
	log_info("upgrade: starting %s", m.exe);
	pid = upgrade_spawn(m.exe, m.argv, fds, nfds, &rd, err, sizeof err);
	free(fds);
	if (pid == -1) {
		log_error("upgrade failed: %s; this one keeps serving", err);
		return;
	}
	m.upgrade_pid = pid;
	m.upgrade_rd = rd;
	m.upgrade_ev = event_new(m.base, rd, EV_READ | EV_PERSIST, master_upgrade_cb, NULL);
	event_add(m.upgrade_ev, NULL);
	if (m.upgrade_timer == NULL)
		m.upgrade_timer = evtimer_new(m.base, master_upgrade_timeout_cb, NULL);
	tv = clock_tv(m.conf->timeouts.start + MASTER_KILL_MARGIN);
	evtimer_add(m.upgrade_timer, &tv);
}

/* The first generation is ready. After an upgrade: take over from the old master. */
static void
master_start_ready(void)
{
	char err[512], msg[64];

	m.start_pending = 0;
	if (m.start_timer != NULL)
		evtimer_del(m.start_timer);
	master_run_queued();
	if (m.upgrade_fd < 0)
		return;
	if (master_update_pid_file(m.conf, err, sizeof err) == -1)
		log_error("%s", err);
	snprintf(msg, sizeof msg, "MAINPID=%ld\nREADY=1", (long)getpid());
	sdnotify(msg);
	if (upgrade_ready(m.upgrade_fd) == -1)
		log_warn("upgrade: cannot tell the old master: %s", strerror(errno));
	m.upgrade_fd = -1;
	log_info("upgrade: workers ready; the old master retires");
}

static void
master_start_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_error("upgrade failed: the workers were not ready within timeouts.start (%.1fs)",
	          m.conf->timeouts.start);
	m.exitcode = 1;
	master_stop("upgrade failed");
}

static void
master_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGHUP:
		master_reload();
		break;
	case SIGTERM:
	case SIGINT:
	case SIGQUIT: /* nginx's graceful stop: the same here */
		master_stop(sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGQUIT");
		break;
	case SIGUSR1:
		master_reopen();
		break;
	case SIGUSR2:
		cache_log_stats();
		break;
	case MASTER_SIGUPGRADE:
		master_upgrade();
		break;
	case SIGCHLD:
		master_reap();
		break;
	}
	if (m.in_child)
		event_base_loopbreak(m.base);
}

/* Free what the master holds (also run in a worker once it is done). */
static void
master_free(void)
{
	struct child *c;
	size_t i;

	for (i = 0; i < m.nsig; i++)
		event_free(m.sig[i]);
	m.nsig = 0;
	if (m.killtimer != NULL)
		event_free(m.killtimer);
	if (m.next.timer != NULL)
		event_free(m.next.timer);
	if (m.next.conf != NULL)
		config_free(m.next.conf);
	if (m.status_ev != NULL)
		event_free(m.status_ev);
	if (m.start_timer != NULL)
		event_free(m.start_timer);
	if (m.queued_ev != NULL)
		event_free(m.queued_ev);
	if (m.upgrade_ev != NULL)
		event_free(m.upgrade_ev);
	if (m.upgrade_timer != NULL)
		event_free(m.upgrade_timer);
	if (m.upgrade_rd >= 0)
		close(m.upgrade_rd);
	if (m.upgrade_fd >= 0)
		close(m.upgrade_fd);
	if (m.status_rd >= 0)
		close(m.status_rd);
	if (m.status_wr >= 0)
		close(m.status_wr);
	for (i = 0; i < m.nslots; i++)
		if (m.slots[i].ev != NULL)
			event_free(m.slots[i].ev);
	free(m.slots);
	listeners_free(&m.listeners);
	while ((c = TAILQ_FIRST(&m.children)) != NULL) {
		TAILQ_REMOVE(&m.children, c, entry);
		free(c);
	}
	if (m.pid_file != NULL) {
		if (master_pid_file_is_ours(m.pid_file))
			unlink(m.pid_file);
		free(m.pid_file);
	}
	free(m.exe);
	/* After an upgrade the admin socket (file) is the new master's. */
	if (m.handed_over)
		admin_forget();
	else
		admin_stop();
	if (m.base != NULL)
		event_base_free(m.base);
	config_free(m.conf);
	accesslog_close();
	cache_teardown();
	metrics_shutdown();
	/* Zero the shared credentials (only the creating process does; a
	 * worker on this path just unmaps). */
	credstore_shutdown();
	memset(&m, 0, sizeof m);
}

int
master_run(const struct config_cli *cli, struct config *conf, char **argv)
{
	static const int sigs[] = {SIGHUP,  SIGTERM, SIGINT,  SIGQUIT,
	                           SIGUSR1, SIGUSR2, SIGCHLD, MASTER_SIGUPGRADE};
	char err[1024], exe[4096];
	struct timeval tv;
	size_t i, ninherited;
	ssize_t n;
	int rc, st[2], *inherited;

	memset(&m, 0, sizeof m);
	TAILQ_INIT(&m.children);
	m.cli = cli;
	m.conf = conf;
	m.gen = 1;
	m.pid = getpid();
	m.argv = argv;
	m.status_rd = m.status_wr = m.upgrade_rd = -1;
	log_set_tag("master");
	signal(SIGPIPE, SIG_IGN);
	/* Started by an old master for a binary upgrade? Take what it handed over. */
	m.upgrade_fd = upgrade_take(&inherited, &ninherited);
	listeners_inherit(&m.listeners, inherited, ninherited);
	free(inherited);
	/* Our binary's path now: a package upgrade replaces the file, and
	 * /proc/self/exe then names a deleted one. */
	if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
		exe[n] = '\0';
		m.exe = xstrdup(exe);
	}

	if ((m.base = event_base_new()) == NULL) {
		log_error("event_base_new failed");
		m.exitcode = 1;
		goto out;
	}
	if (master_resolve_user(conf, &m.uid, &m.gid, &m.user, err, sizeof err) == -1 ||
	    listeners_bind(&m.listeners, conf, 0, err, sizeof err) == -1 ||
	    accesslog_open(conf->access_log, m.uid, m.gid, err, sizeof err) == -1 ||
	    log_open(conf->log, conf->log_format == CONFIG_FORMAT_JSON, m.uid, m.gid, err,
	             sizeof err) == -1 ||
	    metrics_init(err, sizeof err) == -1 ||
	    (m.upgrade_fd < 0 && master_update_pid_file(conf, err, sizeof err) == -1)) {
		log_error("%s", err);
		m.exitcode = 1;
		goto out;
	}
	/* Handed-over sockets: the admin listener's, and those the
	 * configuration no longer names. */
	admin_adopt(m.listeners.inherited, m.listeners.ninherited, conf);
	listeners_close_inherited(&m.listeners);
	listeners_commit(&m.listeners, 0);
	accesslog_set_format(conf->access_log_format == CONFIG_FORMAT_JSON);
	master_log_user(conf, m.user);
	if (pipe2(st, O_CLOEXEC) == -1) {
		log_error("pipe: %s", strerror(errno));
		m.exitcode = 1;
		goto out;
	}
	m.status_rd = st[0];
	m.status_wr = st[1];
	fcntl(m.status_rd, F_SETFL, O_NONBLOCK);
	m.status_ev = event_new(m.base, m.status_rd, EV_READ | EV_PERSIST, master_status_cb, NULL);
	event_add(m.status_ev, NULL);
	if (credstore_init() == -1) {
		log_error("cannot create the shared credentials store");
		m.exitcode = 1;
		goto out;
	}
	credstore_configure(conf);
	if (cache_setup(conf, err, sizeof err) == -1) {
		log_error("%s", err);
		m.exitcode = 1;
		goto out;
	}
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		m.sig[m.nsig] = evsignal_new(m.base, sigs[i], master_signal_cb, NULL);
		event_add(m.sig[m.nsig++], NULL);
	}
	if (admin_configure(m.base, conf, err, sizeof err) == -1) {
		log_error("%s", err);
		m.exitcode = 1;
		goto out;
	}
	if (conf->local_function.command != NULL)
		log_info("ssm-sign-proxy %s starting: %d workers, local function %s",
		         PACKAGE_VERSION, conf->workers, conf->local_function.command);
	else
		log_info("ssm-sign-proxy %s starting: %d workers, function %s", PACKAGE_VERSION,
		         conf->workers,
		         conf->function_name != NULL ? conf->function_name : "(not configured)");
	if (m.upgrade_fd >= 0) {
		/* Ready within timeouts.start, or we go and the old master stays. */
		m.start_pending = 1;
		m.start_timer = evtimer_new(m.base, master_start_timeout, NULL);
		tv = clock_tv(conf->timeouts.start);
		evtimer_add(m.start_timer, &tv);
	}
	master_size_slots(conf);
	if (conf->local_function.command != NULL)
		credstore_agent_state(CREDSTORE_AGENT_NONE,
		                      "no credentials agent runs in local function mode");
	for (i = 0; i < m.nslots && !m.in_child; i++)
		master_spawn_slot(i);
	if (!m.in_child) {
		/* Sockets bound, workers forked: connections are served (queued
		 * by the kernel until a worker accepts them). After an upgrade
		 * READY=1 waits for the workers (master_start_ready()). */
		if (m.upgrade_fd < 0)
			sdnotify("READY=1");
		event_base_dispatch(m.base);
	}
	if (m.in_child) {
		rc = master_become_worker(m.child_slot, m.child_gen);
		master_free();
		return rc;
	}
	log_info("stopped");
out:
	rc = m.exitcode;
	master_free();
	return rc;
}
