/*
 * credstore.c: the readers' and the master's side of the shared credentials
 * store (credstore.h): creating the segment and the poke pipe before any
 * fork, publishing the settings and the statically known region on start and
 * reload, and the lock-free, syscall-free reads the workers make on every
 * request. The agent that fills the store lives in credagent.c.
 */
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "awsenv.h"
#include "config.h"
#include "credshm.h"
#include "credstore.h"
#include "log.h"
#include "xmalloc.h"

struct cs_shm *credstore_shm;
int credstore_poke_rd = -1, credstore_poke_wr = -1;
/* The process that created the segment: only it may wipe it. */
static pid_t credstore_creator;
/* The generation of the credentials this process last read (credstore_get). */
static uint64_t credstore_seen;

/* The lease: a process-shared, robust mutex (credshm.h). */
static int
credstore_lease_init(void)
{
	pthread_mutexattr_t a;
	int rc;

	if (pthread_mutexattr_init(&a) != 0)
		return -1;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	     pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	     pthread_mutex_init(&credstore_shm->lease, &a) != 0;
	pthread_mutexattr_destroy(&a);
	return rc ? -1 : 0;
}

int
credstore_lease_take(int *took_over, pid_t *holder)
{
	int rc;

	*took_over = 0;
	*holder = 0;
	if (credstore_shm == NULL)
		return -1;
	rc = pthread_mutex_trylock(&credstore_shm->lease);
	if (rc == EOWNERDEAD) {
		/* Its holder died: ours now, once marked consistent again. */
		pthread_mutex_consistent(&credstore_shm->lease);
		*took_over = 1;
		rc = 0;
	}
	if (rc != 0) {
		*holder = atomic_load(&credstore_shm->agent_pid);
		return -1;
	}
	atomic_store(&credstore_shm->agent_pid, getpid());
	return 0;
}

void
credstore_lease_release(void)
{
	if (credstore_shm == NULL)
		return;
	atomic_store(&credstore_shm->agent_pid, 0);
	pthread_mutex_unlock(&credstore_shm->lease);
}

void
credstore_agent_state(enum credstore_agent_state state, const char *why)
{
	if (credstore_shm == NULL)
		return;
	cs_write_begin(&credstore_shm->agent_seq);
	snprintf(credstore_shm->agent_msg, sizeof credstore_shm->agent_msg, "%s",
	         why != NULL ? why : "");
	atomic_store(&credstore_shm->agent_state, (int)state);
	cs_write_end(&credstore_shm->agent_seq);
}

int
credstore_agent_problem(char *err, size_t errlen)
{
	char msg[sizeof credstore_shm->agent_msg];
	int state;

	if (credstore_shm == NULL)
		return 0;
	state = atomic_load(&credstore_shm->agent_state);
	if (state == CREDSTORE_AGENT_RUNNING)
		return 0;
	if (cs_read(&credstore_shm->agent_seq, msg, credstore_shm->agent_msg, sizeof msg) != 0)
		snprintf(msg, sizeof msg, "the credentials agent is not running");
	msg[sizeof msg - 1] = '\0';
	snprintf(err, errlen, "%s", msg);
	return 1;
}

int
credstore_init(void)
{
	int fds[2];
	void *p;

	if (credstore_shm != NULL)
		return 0;
	p = mmap(NULL, sizeof(struct cs_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	         -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* Non-blocking both ways: a worker never waits to poke, the agent polls. */
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		munmap(p, sizeof(struct cs_shm));
		return -1;
	}
	credstore_shm = p; /* zero-filled: state NONE, generation 0 */
	if (credstore_lease_init() != 0) {
		munmap(p, sizeof(struct cs_shm));
		credstore_shm = NULL;
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	credstore_creator = getpid();
	credstore_poke_rd = fds[0];
	credstore_poke_wr = fds[1];
	return 0;
}

void
credstore_shutdown(void)
{
	if (credstore_shm == NULL)
		return;
	/*
	 * The secrets must not outlive the daemon in freed pages either; but a
	 * child (a worker leaving through the same cleanup path) must not wipe
	 * what the others still read.
	 */
	if (getpid() == credstore_creator)
		explicit_bzero(credstore_shm, sizeof *credstore_shm);
	munmap(credstore_shm, sizeof *credstore_shm);
	credstore_shm = NULL;
	close(credstore_poke_rd);
	close(credstore_poke_wr);
	credstore_poke_rd = credstore_poke_wr = -1;
}

static void
poke(uint64_t v)
{
	ssize_t n;

	if (credstore_poke_wr < 0)
		return;
	/* 8 bytes are written atomically; a full pipe already holds plenty of pokes. */
	do
		n = write(credstore_poke_wr, &v, sizeof v);
	while (n < 0 && errno == EINTR);
}

void
credstore_configure(const struct config *cfg)
{
	struct cs_config c;
	char arnreg[CS_REGION_MAX], *profreg = NULL;
	const char *region = NULL, *origin = "";

	if (credstore_shm == NULL)
		return;
	memset(&c, 0, sizeof c);
	c.refresh_ahead = cfg->credentials.refresh_ahead;
	c.retry = cfg->credentials.retry > 0 ? cfg->credentials.retry : 1.0;
	c.retry_cap = cfg->credentials.retry_cap >= c.retry ? cfg->credentials.retry_cap : c.retry;
	c.timeout = cfg->credentials.timeout > 0 ? cfg->credentials.timeout : 2.0;
	c.imds_attempts = cfg->credentials.imds_attempts > 0 ? cfg->credentials.imds_attempts : 1;
	c.log_level = cfg->log_level;
	if (cfg->egress_proxy != NULL)
		snprintf(c.egress_proxy, sizeof c.egress_proxy, "%s", cfg->egress_proxy);

	/* Region order: the function ARN's, the config key, the environment, the profile. */
	if (cfg->function_name != NULL && strncmp(cfg->function_name, "arn:", 4) == 0 &&
	    awsenv_region_from_arn(cfg->function_name, arnreg, sizeof arnreg) == 0 &&
	    arnreg[0] != '\0') {
		region = arnreg;
		origin = "function ARN";
	} else if (cfg->region != NULL && cfg->region[0] != '\0') {
		region = cfg->region;
		origin = "configuration";
	} else if (getenv("AWS_REGION") != NULL && getenv("AWS_REGION")[0] != '\0') {
		region = getenv("AWS_REGION");
		origin = "AWS_REGION";
	} else if (getenv("AWS_DEFAULT_REGION") != NULL &&
	           getenv("AWS_DEFAULT_REGION")[0] != '\0') {
		region = getenv("AWS_DEFAULT_REGION");
		origin = "AWS_DEFAULT_REGION";
	} else if ((profreg = creds_profile_region()) != NULL) {
		region = profreg;
		origin = "profile";
	}
	if (region != NULL) {
		snprintf(c.region, sizeof c.region, "%s", region);
		snprintf(c.region_origin, sizeof c.region_origin, "%s", origin);
		log_debug("AWS region %s (from %s)", c.region, origin);
	}
	free(profreg);

	c.generation = credstore_shm->config.generation + 1;
	cs_write_begin(&credstore_shm->config_seq);
	memcpy(&credstore_shm->config, &c, sizeof c);
	cs_write_end(&credstore_shm->config_seq);
	/* The agent re-resolves and its publication moves the generation. */
	poke(CS_POKE_CONFIG);
}

/* Copy a consistent creds block; -1 with err when the store is missing or busy. */
static int
read_creds(struct cs_creds *c, char *err, size_t errlen)
{
	if (credstore_shm == NULL) {
		snprintf(err, errlen, "AWS credentials store not initialised");
		return -1;
	}
	if (cs_read(&credstore_shm->creds_seq, c, &credstore_shm->creds, sizeof *c) != 0) {
		snprintf(err, errlen, "AWS credentials store busy (credentials agent restarting)");
		return -1;
	}
	return 0;
}

int
credstore_get(struct aws_creds *out, char *err, size_t errlen)
{
	struct cs_creds *c;
	char when[32];
	struct tm tm;
	time_t exp;
	int rc = -1;

	memset(out, 0, sizeof *out);
	/* 10 KiB: from the heap rather than a worker's stack, zeroed after use. */
	c = xmalloc(sizeof *c);
	if (read_creds(c, err, errlen) != 0)
		goto out;
	credstore_seen = c->generation;
	switch (c->state) {
	case CS_STATE_NONE:
		snprintf(err, errlen,
		         "AWS credentials not resolved yet (the credentials agent is "
		         "starting)");
		break;
	case CS_STATE_ERROR:
		snprintf(err, errlen, "%s", c->error);
		break;
	case CS_STATE_OK:
		exp = (time_t)c->expiration;
		if (exp != 0 && exp <= time(NULL)) {
			gmtime_r(&exp, &tm);
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
			snprintf(err, errlen, "AWS credentials from %s expired at %s%s%s",
			         c->source, when,
			         c->error[0] != '\0' ? "; refreshing them failed: " : "", c->error);
			/* Wake the agent: it coalesces pokes, so every request may. */
			credstore_request_refresh();
			break;
		}
		out->access_key_id = xstrdup(c->key_id);
		out->secret_access_key = xstrdup(c->secret);
		out->session_token = c->token[0] != '\0' ? xstrdup(c->token) : NULL;
		out->expiration = exp;
		snprintf(out->source, sizeof out->source, "%s", c->source);
		rc = 0;
		break;
	default:
		snprintf(err, errlen, "AWS credentials store corrupt");
		break;
	}
out:
	explicit_bzero(c, sizeof *c);
	free(c);
	return rc;
}

int
credstore_status(struct credstore_status *st)
{
	struct cs_creds *c;
	char err[64];
	int rc = -1;

	memset(st, 0, sizeof *st);
	c = xmalloc(sizeof *c);
	if (read_creds(c, err, sizeof err) == 0) {
		st->state = c->state == CS_STATE_OK ? 1 : c->state == CS_STATE_ERROR ? 2 : 0;
		snprintf(st->source, sizeof st->source, "%s", c->source);
		st->expiration = c->expiration;
		snprintf(st->error, sizeof st->error, "%.*s", (int)sizeof st->error - 1, c->error);
		rc = 0;
	}
	explicit_bzero(c, sizeof *c);
	free(c);
	return rc;
}

const char *
credstore_region(char *buf, size_t len, char *err, size_t errlen)
{
	struct cs_config c;
	struct cs_meta m;
	const char *why;

	if (credstore_shm == NULL) {
		snprintf(err, errlen, "AWS credentials store not initialised");
		return NULL;
	}
	if (cs_read(&credstore_shm->config_seq, &c, &credstore_shm->config, sizeof c) == 0 &&
	    c.region[0] != '\0') {
		snprintf(buf, len, "%s", c.region);
		return buf;
	}
	if (cs_read(&credstore_shm->meta_seq, &m, &credstore_shm->meta, sizeof m) != 0) {
		snprintf(err, errlen, "AWS credentials store busy");
		return NULL;
	}
	if (m.region[0] != '\0') {
		snprintf(buf, len, "%s", m.region);
		return buf;
	}
	switch (m.imds_state) {
	case CS_IMDS_PENDING:
		why = "instance metadata has not answered yet";
		break;
	case CS_IMDS_DISABLED:
		why = "instance metadata is disabled by AWS_EC2_METADATA_DISABLED";
		break;
	case CS_IMDS_FAILED:
		why = m.error;
		break;
	default:
		why = "instance metadata has no placement/region";
		break;
	}
	snprintf(err, errlen,
	         "no AWS region: set region in the configuration file, AWS_REGION or "
	         "AWS_DEFAULT_REGION, or use a full function ARN (%s)",
	         why);
	return NULL;
}

const char *
credstore_instance_id(char *buf, size_t len)
{
	struct cs_meta m;

	if (len > 0)
		buf[0] = '\0';
	if (credstore_shm == NULL ||
	    cs_read(&credstore_shm->meta_seq, &m, &credstore_shm->meta, sizeof m) != 0)
		return buf;
	snprintf(buf, len, "%s", m.instance_id);
	return buf;
}

void
credstore_request_refresh(void)
{
	if (credstore_shm == NULL)
		return;
	/*
	 * The generation tells the agent which credentials the worker found
	 * wanting: pokes about an older generation were answered already. It
	 * must be the generation that was read, not the current one: the agent
	 * may have published between the read and this poke.
	 */
	poke(credstore_seen);
}

uint64_t
credstore_generation(void)
{
	if (credstore_shm == NULL)
		return 0;
	return atomic_load(&credstore_shm->generation);
}
