/*
 * master.c: the master process, after nginx's cycle. This one file owns the
 * listening sockets, the pid file, the signals, and the life of every child:
 * the workers (worker.c) and the credentials agent (credstore.h). It spawns
 * them, replaces the ones that die (backing off when they keep dying),
 * reloads the configuration on SIGHUP without failing a client request, and
 * stops everything on SIGTERM/SIGINT.
 *
 * Reload: the listening sockets stay open in the master the whole time, so
 * while the old workers stop accepting and the new ones start, new
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
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "sdnotify.h"
#include "worker.h"
#include "xmalloc.h"

/* A worker that dies sooner than this after it started "dies quickly". */
#define MASTER_QUICK_DEATH 2.0
/* Grace beyond timeouts.shutdown before a child that will not go is killed. */
#define MASTER_KILL_MARGIN 1.0
/* listen(2) backlog, as nginx on Linux. */
#define MASTER_BACKLOG 511

enum child_kind {
	CHILD_WORKER,
	CHILD_AGENT,
};

struct child {
	pid_t pid;
	enum child_kind kind;
	int slot;       /* worker number, 1..workers */
	unsigned gen;   /* configuration generation it runs */
	int retiring;   /* told to go (reload or stop): do not replace */
	double started; /* monotonic seconds */
	TAILQ_ENTRY(child) entry;
};
TAILQ_HEAD(child_list, child);

struct listener {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[80];
	int fd;
	unsigned gen; /* the newest generation that uses it */
	int fresh;    /* bound for a reload that is not committed yet */
};

/* A slot waiting to be (re)spawned after a back-off. */
struct respawn {
	enum child_kind kind;
	int slot;
	double delay; /* the back-off used last, for doubling */
	double last_start;
	struct event *ev;
};

struct master {
	const struct config_cli *cli;
	struct config *conf;
	unsigned gen;
	pid_t pid;

	struct event_base *base;
	struct event *sig[8];
	size_t nsig;
	struct event *killtimer; /* shutdown: kill what is left */

	struct listener *listeners;
	size_t nlisteners;

	struct child_list children;
	struct respawn *slots; /* index 0: the agent; 1..n: workers */
	size_t nslots;

	char *pid_file; /* the one we wrote */
	uid_t uid;
	gid_t gid;
	int stopping;
	int exitcode;
	int in_child;   /* set in a forked worker: unwind to master_run */
	int child_slot; /* and the slot it is */
};

static struct master m;

static void master_spawn_slot(size_t);
static void master_check_done(void);

/* Resolve the user the workers run as (NULL: stay as we are). */
static int
master_resolve_user(const struct config *conf, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (conf->user == NULL)
		return 0;
	errno = 0;
	if ((pw = getpwnam(conf->user)) == NULL) {
		snprintf(err, errlen, "user %s: %s", conf->user,
		         errno != 0 ? strerror(errno) : "no such user");
		return -1;
	}
	if (geteuid() != 0 && pw->pw_uid != geteuid()) {
		snprintf(err, errlen,
		         "user %s: the daemon must start as root to run workers as another user",
		         conf->user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
master_same_addr(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *b,
                 socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int
master_bind(const struct config_listen *l, char *err, size_t errlen)
{
	int fd, on = 1, family = l->addr.ss_family;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
		goto fail;
	/* [::]:8000 means IPv6 only; 0.0.0.0:8000 can then be listed too. */
	if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1)
		goto fail;
	if (listen(fd, MASTER_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listen %s: %s", l->text, strerror(errno));
	close(fd);
	return -1;
}

/* Undo master_bind_all(conf, gen) for a reload that failed. */
static void
master_unbind(unsigned gen)
{
	size_t i, j;

	for (i = 0, j = 0; i < m.nlisteners; i++) {
		if (m.listeners[i].fresh) {
			close(m.listeners[i].fd);
			continue;
		}
		if (m.listeners[i].gen == gen)
			m.listeners[i].gen = m.gen;
		m.listeners[j++] = m.listeners[i];
	}
	m.nlisteners = j;
}

/*
 * Make sure every address of conf has a listening socket, binding the new
 * ones; mark them with gen. On error nothing changes (the sockets bound
 * here are closed again).
 */
static int
master_bind_all(const struct config *conf, unsigned gen, char *err, size_t errlen)
{
	struct listener *l;
	size_t i, j;
	int fd;

	for (i = 0; i < conf->nlisten; i++) {
		const struct config_listen *cl = &conf->listen[i];

		for (j = 0; j < m.nlisteners; j++)
			if (master_same_addr(&m.listeners[j].addr, m.listeners[j].addrlen,
			                     &cl->addr, cl->addrlen))
				break;
		if (j < m.nlisteners) {
			m.listeners[j].gen = gen;
			continue;
		}
		if ((fd = master_bind(cl, err, errlen)) == -1) {
			master_unbind(gen);
			return -1;
		}
		m.listeners = xreallocarray(m.listeners, m.nlisteners + 1, sizeof *m.listeners);
		l = &m.listeners[m.nlisteners++];
		memset(l, 0, sizeof *l);
		l->addr = cl->addr;
		l->addrlen = cl->addrlen;
		snprintf(l->text, sizeof l->text, "%s", cl->text);
		l->fd = fd;
		l->gen = gen;
		l->fresh = 1;
	}
	return 0;
}

/* The reload (or the start) went through: the new sockets are ours. */
static void
master_commit_listeners(void)
{
	size_t i;

	for (i = 0; i < m.nlisteners; i++)
		if (m.listeners[i].fresh) {
			m.listeners[i].fresh = 0;
			log_info("listening on %s", m.listeners[i].text);
		}
}

/* Close the sockets no running worker can be using any more. */
static void
master_close_stale_listeners(void)
{
	unsigned oldest = m.gen;
	struct child *c;
	size_t i, j;

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_WORKER && c->gen < oldest)
		oldest = c->gen;
	for (i = 0, j = 0; i < m.nlisteners; i++) {
		if (m.listeners[i].gen < oldest) {
			log_info("no longer listening on %s", m.listeners[i].text);
			close(m.listeners[i].fd);
			continue;
		}
		m.listeners[j++] = m.listeners[i];
	}
	m.nlisteners = j;
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

static const char *
master_kind_name(const struct child *c, char *buf, size_t len)
{
	if (c->kind == CHILD_AGENT)
		snprintf(buf, len, "credentials agent");
	else
		snprintf(buf, len, "worker %d", c->slot);
	return buf;
}

/*
 * In a freshly forked worker, once the master's loop has unwound: drop
 * everything that belongs to the master (its event loop, whose epoll
 * instance and signal pipe the child shares until event_reinit() gives it
 * its own; the other generations' sockets) and run the worker. Returns the
 * worker's exit code.
 */
static int
master_become_worker(int slot)
{
	struct worker_params wp;
	struct child *c;
	size_t i, n = 0;
	int *fds, rc;

	event_reinit(m.base);
	for (i = 0; i < m.nsig; i++)
		event_free(m.sig[i]);
	m.nsig = 0;
	if (m.killtimer != NULL)
		event_free(m.killtimer);
	m.killtimer = NULL;
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

	fds = xcalloc(m.nlisteners + 1, sizeof *fds);
	for (i = 0; i < m.nlisteners; i++) {
		if (m.listeners[i].gen == m.gen)
			fds[n++] = m.listeners[i].fd;
		else
			close(m.listeners[i].fd);
	}
	free(m.listeners);
	m.listeners = NULL;
	m.nlisteners = 0;

	memset(&wp, 0, sizeof wp);
	wp.slot = slot;
	wp.master = m.pid;
	wp.conf = m.conf;
	wp.fds = fds;
	wp.nfds = n;
	wp.user = m.conf->user;
	wp.uid = m.uid;
	wp.gid = m.gid;
	rc = worker_run(&wp);
	free(fds);
	return rc;
}

static struct child *
master_add_child(pid_t pid, enum child_kind kind, int slot)
{
	struct child *c;

	c = xcalloc(1, sizeof *c);
	c->pid = pid;
	c->kind = kind;
	c->slot = slot;
	c->gen = m.gen;
	c->started = clock_mono();
	TAILQ_INSERT_TAIL(&m.children, c, entry);
	return c;
}

/*
 * Fork worker slot. Returns 0 in the master, -1 when fork failed, and 1 in
 * the child, which sets m.in_child: every caller then returns at once so
 * that the child unwinds out of the master's event loop to master_run().
 */
static int
master_fork_worker(int slot)
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
		if (m.base != NULL)
			event_base_loopbreak(m.base);
		return 1;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_error("worker %d: fork: %s", slot, strerror(errno));
		return -1;
	}
	master_add_child(pid, CHILD_WORKER, slot);
	log_info("worker %d started, pid %ld", slot, (long)pid);
	return 0;
}

static int
master_spawn_agent(void)
{
	pid_t pid;

	pid = credstore_spawn_agent(m.conf);
	if (pid <= 0) {
		log_error("credentials agent: could not start it");
		return -1;
	}
	master_add_child(pid, CHILD_AGENT, 0);
	log_info("credentials agent started, pid %ld", (long)pid);
	return 0;
}

static void
master_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct respawn *r = arg;

	master_spawn_slot((size_t)(r - m.slots));
}

/* Start slot i now; when that fails, try again after a back-off. */
static void
master_spawn_slot(size_t i)
{
	struct respawn *r = &m.slots[i];
	struct timeval tv;
	int rc;

	if (m.stopping || m.in_child)
		return;
	/* A local function needs no AWS credentials: no agent then (it would
	 * only log that it found none). */
	if (r->kind == CHILD_AGENT && m.conf->local_function.command != NULL)
		return;
	r->last_start = clock_mono();
	if (r->kind == CHILD_AGENT)
		rc = master_spawn_agent();
	else
		rc = master_fork_worker(r->slot);
	if (rc == 1 || rc == 0)
		return;
	/* fork failed: back off as if it had died at once. */
	r->delay = r->delay == 0 ? m.conf->retry.respawn : r->delay * 2;
	if (r->delay > m.conf->retry.respawn_cap)
		r->delay = m.conf->retry.respawn_cap;
	if (r->ev == NULL)
		r->ev = evtimer_new(m.base, master_respawn_cb, r);
	tv = clock_tv(r->delay);
	evtimer_add(r->ev, &tv);
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

static void
master_signal_children(int sig, int workers_only, unsigned below_gen)
{
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	{
		if (workers_only && c->kind != CHILD_WORKER)
			continue;
		if (below_gen != 0 && c->gen >= below_gen)
			continue;
		kill(c->pid, sig);
	}
}

static void
master_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	char name[64];
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	{
		if (!c->retiring)
			continue;
		log_warn("%s (pid %ld) still running after the shutdown timeout: killing it",
		         master_kind_name(c, name, sizeof name), (long)c->pid);
		kill(c->pid, SIGKILL);
	}
}

/* Retiring children still there after seconds are killed. */
static void
master_arm_kill_timer(double seconds)
{
	struct timeval tv = clock_tv(seconds);

	if (m.killtimer == NULL)
		m.killtimer = evtimer_new(m.base, master_kill_cb, NULL);
	evtimer_add(m.killtimer, &tv);
}

static void
master_stop(const char *why)
{
	struct child *c;
	int workers = 0;
	size_t i;

	if (m.stopping) {
		log_info("%s: already stopping", why);
		return;
	}
	m.stopping = 1;
	sdnotify("STOPPING=1");
	log_info("%s: stopping (in-flight requests get %.1fs)", why, m.conf->timeouts.shutdown);
	for (i = 0; i < m.nslots; i++)
		if (m.slots[i].ev != NULL)
			evtimer_del(m.slots[i].ev);
	/* Workers first: their in-flight requests may still need the agent. */
	TAILQ_FOREACH(c, &m.children, entry)
	{
		if (c->kind != CHILD_WORKER)
			continue;
		c->retiring = 1;
		kill(c->pid, SIGTERM);
		workers++;
	}
	if (workers == 0)
		TAILQ_FOREACH(c, &m.children, entry)
		{
			c->retiring = 1;
			kill(c->pid, SIGTERM);
		}
	master_arm_kill_timer(m.conf->timeouts.shutdown + MASTER_KILL_MARGIN);
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
		c->retiring = 1;
		kill(c->pid, SIGTERM);
		master_arm_kill_timer(MASTER_KILL_MARGIN);
	}
	if (TAILQ_EMPTY(&m.children))
		event_base_loopbreak(m.base);
}

static int
master_has_agent(void)
{
	struct child *c;

	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_AGENT)
		return 1;
	return 0;
}

static void
master_reload(void)
{
	struct config *conf;
	char err[1024];
	uid_t uid;
	gid_t gid;
	struct child *c;
	unsigned gen;
	size_t i;

	if (m.stopping)
		return;
	log_info("SIGHUP: reloading the configuration");
	sdnotify("RELOADING=1");
	conf = config_load(m.cli, err, sizeof err);
	if (conf == NULL) {
		log_error("reload failed, keeping the running configuration: %s", err);
		metrics_reload(0);
		sdnotify("READY=1");
		return;
	}
	if (master_resolve_user(conf, &uid, &gid, err, sizeof err) == -1)
		goto fail;
	gen = m.gen + 1;
	if (master_bind_all(conf, gen, err, sizeof err) == -1)
		goto fail;
	if (accesslog_open(conf->access_log, uid, gid, err, sizeof err) == -1 ||
	    log_open(conf->log, conf->log_format == CONFIG_FORMAT_JSON, uid, gid, err,
	             sizeof err) == -1) {
		master_unbind(gen);
		goto fail;
	}
	accesslog_set_format(conf->access_log_format == CONFIG_FORMAT_JSON);
	master_commit_listeners();
	if (master_update_pid_file(conf, err, sizeof err) == -1)
		log_error("reload: %s", err); /* not worth refusing the reload for */

	for (i = 0; i < conf->nwarnings; i++)
		log_warn("%s", conf->warnings[i]);
	log_set_level(conf->log_level);
	credstore_configure(conf);
	/* The same max_size keeps the cache; the new workers get a new zone
	 * otherwise. */
	if (cache_setup(conf, err, sizeof err) == -1)
		log_error("reload: %s", err);
	if (admin_configure(m.base, conf, err, sizeof err) == -1)
		log_error("reload: %s", err); /* the old listener goes on */
	config_free(m.conf);
	m.conf = conf;
	m.uid = uid;
	m.gid = gid;
	m.gen = gen;

	/* Old workers go on serving until the new ones are forked; then they
	 * stop accepting and finish what they have. */
	TAILQ_FOREACH(c, &m.children, entry)
	if (c->kind == CHILD_WORKER && c->gen < gen)
		c->retiring = 1;
	master_size_slots(conf);
	/* Switched from a local function to Lambda: the agent is needed now. */
	if (!master_has_agent()) {
		master_spawn_slot(0);
		if (m.in_child)
			return;
	}
	for (i = 1; i < m.nslots; i++) {
		master_spawn_slot(i);
		if (m.in_child)
			return;
	}
	master_signal_children(SIGQUIT, 1, gen);
	master_arm_kill_timer(conf->timeouts.shutdown + MASTER_KILL_MARGIN);
	log_info("configuration reloaded (generation %u, %d workers)", gen, conf->workers);
	metrics_reload(1);
	sdnotify("READY=1");
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
	master_signal_children(SIGUSR1, 1, 0);
}

static void
master_reap(void)
{
	char name[64], how[128];
	struct child *c;
	struct respawn *r;
	struct timeval tv;
	double lived, now;
	size_t slot;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(c, &m.children, entry)
		if (c->pid == pid)
			break;
		if (c == NULL)
			continue; /* not ours (a helper a module forked) */
		TAILQ_REMOVE(&m.children, c, entry);
		metrics_process_gone(pid);
		now = clock_mono();
		lived = now - c->started;
		if (WIFEXITED(status))
			snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			snprintf(how, sizeof how, "killed by signal %d (%s)%s", WTERMSIG(status),
			         strsignal(WTERMSIG(status)),
			         WCOREDUMP(status) ? ", core dumped" : "");
		else
			snprintf(how, sizeof how, "ended with status 0x%x", (unsigned)status);
		master_kind_name(c, name, sizeof name);
		if (c->retiring || m.stopping) {
			/* Told to go: exiting 0, or dying of the SIGTERM we
			 * sent, is what we asked for. */
			if ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
			    (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
				log_info("%s (pid %ld) %s", name, (long)pid, how);
			else
				log_warn("%s (pid %ld) %s", name, (long)pid, how);
			free(c);
			continue;
		}
		slot = c->kind == CHILD_AGENT ? 0 : (size_t)c->slot;
		if (c->gen != m.gen || slot >= m.nslots) {
			/* A worker of an older configuration that was not told to
			 * retire yet cannot happen; be safe anyway. */
			log_warn("%s (pid %ld) %s", name, (long)pid, how);
			free(c);
			continue;
		}
		free(c);
		r = &m.slots[slot];
		if (lived < MASTER_QUICK_DEATH) {
			r->delay = r->delay == 0 ? m.conf->retry.respawn : r->delay * 2;
			if (r->delay > m.conf->retry.respawn_cap)
				r->delay = m.conf->retry.respawn_cap;
		} else
			r->delay = 0;
		log_error("%s (pid %ld) %s after %.1fs; starting another in %.1fs", name, (long)pid,
		          how, lived, r->delay);
		if (r->delay == 0) {
			master_spawn_slot(slot);
			if (m.in_child)
				return;
			continue;
		}
		if (r->ev == NULL)
			r->ev = evtimer_new(m.base, master_respawn_cb, r);
		tv = clock_tv(r->delay);
		evtimer_add(r->ev, &tv);
	}
	master_close_stale_listeners();
	master_check_done();
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
	for (i = 0; i < m.nslots; i++)
		if (m.slots[i].ev != NULL)
			event_free(m.slots[i].ev);
	free(m.slots);
	for (i = 0; i < m.nlisteners; i++)
		close(m.listeners[i].fd);
	free(m.listeners);
	while ((c = TAILQ_FIRST(&m.children)) != NULL) {
		TAILQ_REMOVE(&m.children, c, entry);
		free(c);
	}
	if (m.pid_file != NULL) {
		unlink(m.pid_file);
		free(m.pid_file);
	}
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
master_run(const struct config_cli *cli, struct config *conf)
{
	static const int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};
	char err[1024];
	size_t i;
	int rc;

	memset(&m, 0, sizeof m);
	TAILQ_INIT(&m.children);
	m.cli = cli;
	m.conf = conf;
	m.gen = 1;
	m.pid = getpid();
	log_set_tag("master");
	signal(SIGPIPE, SIG_IGN);

	if ((m.base = event_base_new()) == NULL) {
		log_error("event_base_new failed");
		m.exitcode = 1;
		goto out;
	}
	if (master_resolve_user(conf, &m.uid, &m.gid, err, sizeof err) == -1 ||
	    master_bind_all(conf, m.gen, err, sizeof err) == -1 ||
	    accesslog_open(conf->access_log, m.uid, m.gid, err, sizeof err) == -1 ||
	    log_open(conf->log, conf->log_format == CONFIG_FORMAT_JSON, m.uid, m.gid, err,
	             sizeof err) == -1 ||
	    metrics_init(err, sizeof err) == -1 ||
	    master_update_pid_file(conf, err, sizeof err) == -1) {
		log_error("%s", err);
		m.exitcode = 1;
		goto out;
	}
	master_commit_listeners();
	accesslog_set_format(conf->access_log_format == CONFIG_FORMAT_JSON);
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
		log_info("ssm-sign-proxy %s starting: %d workers, local function %s", PACKAGE_VERSION,
		         conf->workers, conf->local_function.command);
	else
		log_info("ssm-sign-proxy %s starting: %d workers, function %s", PACKAGE_VERSION,
		         conf->workers,
		         conf->function_name != NULL ? conf->function_name : "(not configured)");
	master_size_slots(conf);
	for (i = 0; i < m.nslots && !m.in_child; i++)
		master_spawn_slot(i);
	if (!m.in_child) {
		/* Sockets bound, workers forked: connections are served (queued
		 * by the kernel until a worker accepts them). */
		sdnotify("READY=1");
		event_base_dispatch(m.base);
	}
	if (m.in_child) {
		rc = master_become_worker(m.child_slot);
		master_free();
		return rc;
	}
	log_info("stopped");
out:
	rc = m.exitcode;
	master_free();
	return rc;
}
