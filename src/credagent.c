/*
 * credagent.c: the credentials agent, one process per daemon (forked and
 * supervised by the master like a worker). It resolves the provider chain
 * with blocking calls (creds.c), publishes the result into the shared store
 * (credshm.h), refreshes temporary credentials ahead of their expiry, backs
 * off when that fails, answers the workers' refresh pokes (coalesced: pokes
 * about credentials it has already replaced are dropped), and learns the
 * region and instance id from instance metadata in the background.
 *
 * Schedule (all times CLOCK_MONOTONIC):
 *  - credentials that expire are refreshed refresh_ahead seconds before
 *    expiry, but never earlier than at 80% of their lifetime, so short-lived
 *    credentials (minutes, or seconds in tests) are not refetched at once;
 *  - a failed attempt is retried after retry seconds, doubling up to
 *    retry_cap; still-valid credentials stay published meanwhile;
 *  - a worker's poke (credentials found expired or refused) brings the next
 *    attempt forward, but to no sooner than retry seconds after the last one;
 *  - a reload (credstore_configure) re-resolves at once.
 */
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define CS_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define CS_HAVE_LSAN 1
#endif
#endif

#include "awsenv.h"
#include "clock.h"
#include "config.h"
#include "credshm.h"
#include "credstore.h"
#include "creds.h"
#include "imds.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define NEVER 1e18
/* Attempts at the instance id when the region is known from elsewhere. */
#define AGENT_META_TRIES 3
/* The exit status of an agent that found another one holding the lease. */
#define AGENT_EXIT_LEASE 3

struct agent {
	struct cs_config cfg;
	uint64_t cfg_generation;
	struct creds_options opts;
	struct imds imds;

	struct aws_creds cur; /* what is published, when have */
	int have;

	double next_fetch;
	double last_attempt;
	double backoff;

	double next_meta;
	double meta_backoff;
	int meta_done;
	int meta_failures;
	int meta_gave_up; /* done without an answer (see agent_meta) */
	char meta_region[CS_REGION_MAX];

	char logged[CS_ERR_MAX]; /* the last error logged, to log each one once */
	char logged_source[CS_SOURCE_MAX + CS_KEYID_MAX];
};

static volatile sig_atomic_t agent_stop;

static double
dmin(double a, double b)
{
	return a < b ? a : b;
}

static double
dmax(double a, double b)
{
	return a > b ? a : b;
}

static void
agent_sigterm(int sig)
{
	(void)sig;
	agent_stop = 1;
}

/* Publish credentials (have) or an error (!have); err may be "" when have. */
static void
agent_publish(const struct aws_creds *c, int have, const char *err)
{
	struct cs_creds *p = &credstore_shm->creds;
	uint64_t gen = atomic_load(&credstore_shm->generation) + 1;

	cs_write_begin(&credstore_shm->creds_seq);
	memset(p, 0, sizeof *p);
	p->generation = gen;
	if (have) {
		p->state = CS_STATE_OK;
		p->expiration = (int64_t)c->expiration;
		snprintf(p->key_id, sizeof p->key_id, "%s", c->access_key_id);
		snprintf(p->secret, sizeof p->secret, "%s", c->secret_access_key);
		snprintf(p->token, sizeof p->token, "%s",
		         c->session_token != NULL ? c->session_token : "");
		snprintf(p->source, sizeof p->source, "%s", c->source);
	} else {
		p->state = CS_STATE_ERROR;
	}
	snprintf(p->error, sizeof p->error, "%s", err != NULL ? err : "");
	cs_write_end(&credstore_shm->creds_seq);
	atomic_store(&credstore_shm->generation, gen);
	metrics_credentials_refresh(have && (err == NULL || *err == '\0'));
}

static void
agent_publish_meta(int state, const char *region, const char *instance, const char *err)
{
	struct cs_meta *m = &credstore_shm->meta;

	cs_write_begin(&credstore_shm->meta_seq);
	memset(m, 0, sizeof *m);
	m->imds_state = state;
	snprintf(m->region, sizeof m->region, "%s", region != NULL ? region : "");
	snprintf(m->instance_id, sizeof m->instance_id, "%s", instance != NULL ? instance : "");
	snprintf(m->error, sizeof m->error, "%s", err != NULL ? err : "");
	cs_write_end(&credstore_shm->meta_seq);
	/*
	 * No generation bump: requests park on credentials only, and a bump here
	 * (repeated while IMDS is unreachable) would wake them for nothing and
	 * make the agent drop their pokes as stale.
	 */
}

/* Do the fields fit the store? A token that does not fit would sign wrongly. */
static int
agent_fits(const struct aws_creds *c, char *err, size_t errlen)
{
	if (strlen(c->access_key_id) >= CS_KEYID_MAX ||
	    strlen(c->secret_access_key) >= CS_SECRET_MAX ||
	    (c->session_token != NULL && strlen(c->session_token) >= CS_TOKEN_MAX)) {
		snprintf(err, errlen,
		         "AWS credentials from %s are larger than the store holds "
		         "(session token over %d bytes)",
		         c->source, CS_TOKEN_MAX - 1);
		return 0;
	}
	return 1;
}

/* Read the master's settings; a new generation (start, reload) means re-resolve now. */
static void
agent_read_config(struct agent *a, double now)
{
	struct cs_config c;

	if (cs_read(&credstore_shm->config_seq, &c, &credstore_shm->config, sizeof c) != 0)
		return;
	if (c.generation == a->cfg_generation)
		return;
	a->cfg = c;
	a->cfg_generation = c.generation;
	if (c.log_level >= LOG_LVL_ERROR && c.log_level <= LOG_LVL_DEBUG)
		log_set_level((enum log_level)c.log_level);
	a->opts.timeout = c.timeout;
	a->opts.connect_timeout = c.timeout;
	a->opts.imds_attempts = c.imds_attempts;
	a->opts.egress_proxy = a->cfg.egress_proxy[0] != '\0' ? a->cfg.egress_proxy : NULL;
	a->backoff = c.retry;
	a->next_fetch = now;
	/* A reload that removed the region needs IMDS again. */
	if (a->meta_gave_up && c.region[0] == '\0') {
		a->meta_done = a->meta_gave_up = a->meta_failures = 0;
		a->next_meta = now;
	}
	if (!a->meta_done)
		a->meta_backoff = c.retry;
}

static void
agent_fetch(struct agent *a, double now)
{
	struct aws_creds c;
	char err[CS_ERR_MAX], id[16], when[32], ident[sizeof a->logged_source];
	time_t wall = time(NULL);
	double life, ahead, next;
	struct tm tm;
	int rc;

	/* STS goes to the region we know, else to its global endpoint. */
	a->opts.region = a->cfg.region[0] != '\0'    ? a->cfg.region
	                 : a->meta_region[0] != '\0' ? a->meta_region
	                                             : NULL;
	err[0] = '\0';
	rc = creds_resolve(&a->opts, &c, err, sizeof err);
	if (rc == 0 && !agent_fits(&c, err, sizeof err)) {
		creds_clear(&c);
		rc = -1;
	}
	now = clock_mono();
	wall = time(NULL);
	a->last_attempt = now;

	if (rc == 0) {
		snprintf(ident, sizeof ident, "%s %s", c.source,
		         log_redact(c.access_key_id, id, sizeof id));
		when[0] = '\0';
		if (c.expiration != 0) {
			gmtime_r(&c.expiration, &tm);
			strftime(when, sizeof when, ", expiring %Y-%m-%dT%H:%M:%SZ", &tm);
		}
		/* Log a new identity once; routine refreshes only in debug. */
		if (strcmp(ident, a->logged_source) != 0 || a->logged[0] != '\0')
			log_info("AWS credentials from %s (%s)%s", c.source, id, when);
		else
			log_debug("AWS credentials from %s refreshed%s", c.source, when);
		snprintf(a->logged_source, sizeof a->logged_source, "%s", ident);
		a->logged[0] = '\0';
		agent_publish(&c, 1, "");
		creds_clear(&a->cur);
		a->cur = c;
		a->have = 1;
		a->backoff = a->cfg.retry;
		if (c.expiration == 0) {
			a->next_fetch = NEVER;
			return;
		}
		/* Wall-clock time with fractions: expirations are whole seconds,
		 * but when we fetched within that second matters to a refresh
		 * due seconds later. */
		life = (double)c.expiration - clock_wall();
		ahead = a->cfg.refresh_ahead;
		if (ahead > 0.2 * life)
			ahead = 0.2 * life;
		next = now + life - ahead;
		/* Already (nearly) expired from the source: do not spin on it. */
		if (next < now + a->cfg.retry)
			next = now + a->cfg.retry;
		a->next_fetch = next;
		return;
	}

	/* Failed. Keep what still works; retry with back-off. */
	next = now + a->backoff;
	a->backoff = dmin(a->backoff * 2, a->cfg.retry_cap);
	/*
	 * Temporary credentials outlive a failed refresh (a network blip must not
	 * cost requests). Static ones do not: failing to find them again means
	 * the environment or the files changed, and they are withdrawn.
	 */
	if (a->have && a->cur.expiration != 0 && a->cur.expiration > wall) {
		if (strcmp(err, a->logged) != 0) {
			gmtime_r(&a->cur.expiration, &tm);
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
			log_warn("refreshing AWS credentials failed; keeping those from %s (valid "
			         "until %s): %s",
			         a->cur.source, when, err);
			snprintf(a->logged, sizeof a->logged, "%s", err);
		}
		agent_publish(&a->cur, 1, err);
		/* Try again no later than when they run out. */
		life = (double)a->cur.expiration - clock_wall();
		if (next > now + life)
			next = now + dmax(life, a->cfg.retry);
	} else {
		if (strcmp(err, a->logged) != 0) {
			log_error("%s", err);
			snprintf(a->logged, sizeof a->logged, "%s", err);
		}
		a->logged_source[0] = '\0';
		creds_clear(&a->cur);
		a->have = 0;
		agent_publish(NULL, 0, err);
	}
	a->next_fetch = next;
}

/* Region and instance id from instance metadata, once; retried while unreachable. */
static void
agent_meta(struct agent *a, double now)
{
	char *region = NULL, *instance = NULL, err[256];
	int r1, r2 = -1;

	if (awsenv_imds_disabled()) {
		agent_publish_meta(CS_IMDS_DISABLED, NULL, NULL, NULL);
		a->meta_done = 1;
		a->next_meta = NEVER;
		return;
	}
	err[0] = '\0';
	r1 = imds_get(&a->imds, &a->opts, "/latest/meta-data/instance-id", &instance, err,
	              sizeof err);
	/* Unreachable for one path is unreachable for the other: do not wait twice. */
	if (r1 >= 0)
		r2 = imds_get(&a->imds, &a->opts, "/latest/meta-data/placement/region", &region,
		              err, sizeof err);
	if (r1 >= 0 && r2 >= 0) {
		if (region != NULL) {
			region[strcspn(region, " \t\r\n")] = '\0';
			snprintf(a->meta_region, sizeof a->meta_region, "%s", region);
		}
		if (instance != NULL)
			instance[strcspn(instance, " \t\r\n")] = '\0';
		agent_publish_meta(CS_IMDS_DONE, region, instance, NULL);
		log_info("instance metadata: instance %s, region %s",
		         instance != NULL && *instance ? instance : "(none)",
		         region != NULL && *region ? region : "(none)");
		a->meta_done = 1;
		a->next_meta = NEVER;
	} else {
		agent_publish_meta(CS_IMDS_FAILED, NULL, NULL, err);
		log_debug("instance metadata: %s", err);
		a->next_meta = clock_mono() + a->meta_backoff;
		a->meta_backoff = dmin(a->meta_backoff * 2, a->cfg.retry_cap);
		/*
		 * Off EC2 (or in a pod behind IMDSv2's hop limit) every try costs
		 * the full timeouts, during which a refresh would wait. With the
		 * region known otherwise only the instance id is at stake: give up
		 * after a few tries. Without one, keep trying: it is needed.
		 */
		if (++a->meta_failures >= AGENT_META_TRIES && a->cfg.region[0] != '\0') {
			log_info("instance metadata unreachable, not asking again: %s", err);
			a->meta_done = 1;
			a->meta_gave_up = 1;
			a->next_meta = NEVER;
		}
	}
	free(region);
	free(instance);
	(void)now;
}

/* Drain the poke pipe; bring the next attempt forward when a poke is current. */
static void
agent_pokes(struct agent *a, double now)
{
	uint64_t buf[512], gen;
	ssize_t n, i;
	int wanted = 0;

	gen = atomic_load(&credstore_shm->generation);
	for (;;) {
		n = read(credstore_poke_rd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n / (ssize_t)sizeof buf[0]; i++) {
			if (buf[i] == gen)
				wanted = 1;
			/* CS_POKE_CONFIG only wakes us: the config generation says the rest. */
		}
	}
	if (wanted) {
		double t = dmax(now, a->last_attempt + a->cfg.retry);

		if (t < a->next_fetch)
			a->next_fetch = t;
	}
}

/* Listening sockets inherited from the master must not stay bound in here. */
static void
agent_close_listeners(void)
{
	int fd, on;
	socklen_t len;
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = 3; fd < max; fd++) {
		if (fd == credstore_poke_rd || fd == credstore_poke_wr)
			continue;
		on = 0;
		len = sizeof on;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on)
			close(fd);
	}
}

static void
agent_signals(void)
{
	struct sigaction sa;
	sigset_t all;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = agent_sigterm; /* no SA_RESTART: poll() returns at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL); /* the workers' "finish and go": same for us */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static void __attribute__((noreturn)) agent_main(pid_t master)
{
	struct agent a;
	struct pollfd pfd;
	struct cs_creds *snap;
	double now, wake;
	pid_t holder;
	int ms, took_over;

	log_set_tag("credentials");
	/* A name for ps/top beside the workers' "ssp-worker". */
	prctl(PR_SET_NAME, "ssp-creds", 0, 0, 0);
	agent_signals();
	/* Die with the master: an orphaned agent would keep refreshing for nobody. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(0);
	/* One writer: refuse to run beside a live agent; take over a dead one's lease. */
	if (credstore_lease_take(&took_over, &holder) != 0) {
		log_error("another credentials agent (pid %ld) holds the store: this one exits",
		          (long)holder);
		_exit(AGENT_EXIT_LEASE);
	}
	if (took_over)
		log_info("took over the credentials store from an agent that died");
	agent_close_listeners();
	curl_global_init(CURL_GLOBAL_DEFAULT);

	memset(&a, 0, sizeof a);
	creds_options_default(&a.opts);
	imds_init(&a.imds);
	a.opts.imds = &a.imds;
	now = clock_mono();
	a.next_meta = now;

	/* A respawned agent takes over what its predecessor published. */
	snap = xmalloc(sizeof *snap);
	if (cs_read(&credstore_shm->creds_seq, snap, &credstore_shm->creds, sizeof *snap) == 0 &&
	    snap->state == CS_STATE_OK) {
		a.cur.access_key_id = xstrdup(snap->key_id);
		a.cur.secret_access_key = xstrdup(snap->secret);
		a.cur.session_token = snap->token[0] ? xstrdup(snap->token) : NULL;
		a.cur.expiration = (time_t)snap->expiration;
		snprintf(a.cur.source, sizeof a.cur.source, "%s", snap->source);
		a.have = 1;
	}
	explicit_bzero(snap, sizeof *snap);
	free(snap);
	/*
	 * A predecessor killed while writing left a sequence odd, and the block
	 * half written: a key of one set with the secret of another would sign
	 * wrongly. Clear it (readers then wait for our first fetch, which is
	 * now) rather than merely even the sequence out.
	 */
	if (atomic_load(&credstore_shm->creds_seq) & 1) {
		cs_write_begin(&credstore_shm->creds_seq);
		explicit_bzero(&credstore_shm->creds, sizeof credstore_shm->creds);
		credstore_shm->creds.generation = atomic_load(&credstore_shm->generation);
		cs_write_end(&credstore_shm->creds_seq);
	}
	if (atomic_load(&credstore_shm->meta_seq) & 1) {
		cs_write_begin(&credstore_shm->meta_seq);
		memset(&credstore_shm->meta, 0, sizeof credstore_shm->meta);
		cs_write_end(&credstore_shm->meta_seq);
	}
	agent_read_config(&a, now);
	log_debug("credentials agent started");

	while (!agent_stop) {
		now = clock_mono();
		agent_read_config(&a, now);
		if (now >= a.next_fetch) {
			agent_fetch(&a, now);
			continue;
		}
		if (!a.meta_done && now >= a.next_meta) {
			agent_meta(&a, now);
			continue;
		}
		wake = a.next_fetch;
		if (!a.meta_done && a.next_meta < wake)
			wake = a.next_meta;
		/* Wake at least every minute: cheap, and robust against clock oddities. */
		ms = (int)dmin(60000.0, (wake - now) * 1000 + 1);
		if (ms < 0)
			ms = 0;
		pfd.fd = credstore_poke_rd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, ms) > 0 && (pfd.revents & POLLIN))
			agent_pokes(&a, clock_mono());
	}
	log_debug("credentials agent stopping");
	credstore_lease_release();
	creds_clear(&a.cur);
	imds_free(&a.imds);
	curl_global_cleanup();
#ifdef CS_HAVE_LSAN
	/* _exit skips the leak check exit() would run; run it here. */
	__lsan_do_leak_check();
#endif
	/* _exit, not exit: the master's atexit handlers (pid file) are not ours. */
	_exit(0);
}

int
credstore_spawn_agent(const struct config *cfg)
{
	pid_t master = getpid(), pid;
	sigset_t all, old;

	if (credstore_shm == NULL)
		return -1;
	/* The settings travel through the store; make sure they are there. */
	if (credstore_shm->config.generation == 0)
		credstore_configure(cfg);
	fflush(stderr);
	/*
	 * Until the child has its own handlers, a signal would run the master's
	 * (libevent's, which writes to the master's signal socket): block them
	 * across fork; agent_signals() unblocks in the child.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		agent_main(master);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -1;
	return (int)pid;
}
