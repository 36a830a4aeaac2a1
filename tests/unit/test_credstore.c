/*
 * test_credstore.c: the shared credentials store with a real agent process:
 * environment and shared-file credentials published to readers, the region
 * order, the "no credentials" error, a reload re-resolving, the agent's
 * clean exit on SIGTERM, and a respawned agent taking over.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../src/config.h" /* the daemon's, not autoconf's */
#include "credstore.h"
#include "log.h"
#include "tap.h"

static char dir[] = "/tmp/ssp-credstore-XXXXXX";
static char credfile[600];

static void
write_creds(const char *id)
{
	FILE *f = fopen(credfile, "w");

	if (f == NULL)
		abort();
	fprintf(f, "[default]\naws_access_key_id = %s\naws_secret_access_key = s3cr3t\n", id);
	fclose(f);
}

static void
clear_env(void)
{
	static const char *const vars[] = {
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_SESSION_TOKEN",
	    "AWS_PROFILE",
	    "AWS_SHARED_CREDENTIALS_FILE",
	    "AWS_CONFIG_FILE",
	    "AWS_WEB_IDENTITY_TOKEN_FILE",
	    "AWS_ROLE_ARN",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_REGION",
	    "AWS_DEFAULT_REGION",
	};
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/ssp/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/ssp/config", 1);
}

/* Wait (up to 5 s) until credstore_get's verdict is the wanted one. */
static int
wait_get(int want_ok, const char *want_key, char *err, size_t errlen)
{
	struct aws_creds c;
	int i, rc;

	for (i = 0; i < 500; i++) {
		rc = credstore_get(&c, err, errlen);
		if (rc == 0 && want_ok &&
		    (want_key == NULL || strcmp(c.access_key_id, want_key) == 0)) {
			creds_clear(&c);
			return 1;
		}
		if (rc == 0)
			creds_clear(&c);
		if (rc != 0 && !want_ok && strstr(err, "not resolved yet") == NULL)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int
stop_agent(int pid)
{
	int status = -1;

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return status;
}

/*
 * The writer lease: one agent at a time. A second agent (or a second taker)
 * is refused while the holder lives; once the holder is killed outright
 * (SIGKILL: no chance to let go) the next one takes it over.
 */
static void
test_lease(struct config *cfg)
{
	int p[2], took_over, status, pid, second;
	pid_t holder, child;
	char c;

	tap_ok(credstore_lease_take(&took_over, &holder) == 0 && !took_over,
	       "lease: free after the agent exited cleanly");
	credstore_lease_release();

	tap_ok(pipe(p) == 0, "lease: pipe");
	child = fork();
	if (child == 0) {
		int t;
		pid_t h;

		close(p[0]);
		if (credstore_lease_take(&t, &h) != 0)
			_exit(1);
		(void)!write(p[1], "x", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	tap_ok(read(p[0], &c, 1) == 1, "lease: a process holds it");
	close(p[0]);
	tap_ok(credstore_lease_take(&took_over, &holder) == -1 && holder == child,
	       "lease: refused while its holder lives, naming it");
	/* A real agent refuses too, and exits 3. */
	second = credstore_spawn_agent(cfg);
	tap_ok(second > 0, "lease: a second agent spawned");
	waitpid(second, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 3,
	       "lease: the second agent refuses to run (exit 3)");
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	tap_ok(credstore_lease_take(&took_over, &holder) == 0 && took_over,
	       "lease: taken over from a holder killed by SIGKILL");
	credstore_lease_release();
	/* And an agent starts fine afterwards. */
	pid = credstore_spawn_agent(cfg);
	usleep(200000);
	tap_ok(waitpid(pid, &status, WNOHANG) == 0, "lease: a new agent runs");
	status = stop_agent(pid);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lease: and exits 0");
}

/* What the master says about the agent reaches the workers. */
static void
test_agent_state(void)
{
	char err[256];

	tap_ok(credstore_agent_problem(err, sizeof err) == 0, "agent state: running by default");
	credstore_agent_state(CREDSTORE_AGENT_DOWN, "the credentials agent is not running (test)");
	tap_ok(credstore_agent_problem(err, sizeof err) == 1 &&
	           strcmp(err, "the credentials agent is not running (test)") == 0,
	       "agent state: down, with why");
	credstore_agent_state(CREDSTORE_AGENT_RUNNING, NULL);
	tap_ok(credstore_agent_problem(err, sizeof err) == 0, "agent state: running again");
}

int
main(void)
{
	struct config cfg;
	char buf[128], err[1024];
	uint64_t g0;
	int pid, status;

	if (mkdtemp(dir) == NULL)
		tap_skip_all("cannot create a temporary directory");
	snprintf(credfile, sizeof credfile, "%s/credentials", dir);
	clear_env();

	memset(&cfg, 0, sizeof cfg);
	cfg.log_level = LOG_LVL_INFO;
	cfg.credentials.refresh_ahead = 1;
	cfg.credentials.retry = 0.1;
	cfg.credentials.retry_cap = 0.5;
	cfg.credentials.timeout = 0.5;
	cfg.credentials.imds_attempts = 1;

	tap_ok(credstore_get(&(struct aws_creds){0}, err, sizeof err) == -1 &&
	           strstr(err, "not initialised") != NULL,
	       "get before init says so");
	tap_ok(credstore_init() == 0, "init");
	tap_ok(credstore_generation() == 0, "generation starts at 0");

	/* Region order. */
	setenv("AWS_DEFAULT_REGION", "ca-central-1", 1);
	credstore_configure(&cfg);
	tap_is_str(credstore_region(buf, sizeof buf, err, sizeof err), "ca-central-1",
	           "region: AWS_DEFAULT_REGION");
	setenv("AWS_REGION", "eu-west-3", 1);
	credstore_configure(&cfg);
	tap_is_str(credstore_region(buf, sizeof buf, err, sizeof err), "eu-west-3",
	           "region: AWS_REGION before AWS_DEFAULT_REGION");
	cfg.region = "eu-central-1";
	credstore_configure(&cfg);
	tap_is_str(credstore_region(buf, sizeof buf, err, sizeof err), "eu-central-1",
	           "region: config before environment");
	cfg.function_name = "arn:aws:lambda:us-west-2:123456789012:function:f";
	credstore_configure(&cfg);
	tap_is_str(credstore_region(buf, sizeof buf, err, sizeof err), "us-west-2",
	           "region: a full function ARN first");
	cfg.function_name = "123456789012:function:f";
	credstore_configure(&cfg);
	tap_is_str(credstore_region(buf, sizeof buf, err, sizeof err), "eu-central-1",
	           "region: a partial ARN has none");
	cfg.function_name = NULL;
	cfg.region = NULL;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	{
		FILE *f;
		char cf[600];

		snprintf(cf, sizeof cf, "%s/config", dir);
		f = fopen(cf, "w");
		fputs("[default]\nregion = me-south-1\n", f);
		fclose(f);
		setenv("AWS_CONFIG_FILE", cf, 1);
		credstore_configure(&cfg);
		tap_is_str(credstore_region(buf, sizeof buf, err, sizeof err), "me-south-1",
		           "region: the profile's last");
		unlink(cf);
		setenv("AWS_CONFIG_FILE", "/nonexistent/ssp/config", 1);
	}
	credstore_configure(&cfg);
	tap_ok(credstore_region(buf, sizeof buf, err, sizeof err) == NULL &&
	           strstr(err, "no AWS region") != NULL,
	       "region: none known (%s)", err);

	/* Environment credentials through the agent. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDSTOREENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	g0 = credstore_generation();
	pid = credstore_spawn_agent(&cfg);
	tap_ok(pid > 0, "agent spawned");
	tap_ok(wait_get(1, "AKIDSTOREENV", err, sizeof err), "environment credentials published");
	tap_ok(credstore_generation() != g0, "generation moved");
	{
		struct aws_creds c;

		credstore_get(&c, err, sizeof err);
		tap_ok(c.session_token != NULL && strcmp(c.session_token, "tok") == 0 &&
		           strcmp(c.secret_access_key, "s3cr3t") == 0 &&
		           strcmp(c.source, "environment") == 0 && c.expiration == 0,
		       "every field arrives");
		creds_clear(&c);
	}
	tap_is_str(credstore_instance_id(buf, sizeof buf), "", "no instance id without IMDS");
	tap_ok(credstore_region(buf, sizeof buf, err, sizeof err) == NULL &&
	           strstr(err, "AWS_EC2_METADATA_DISABLED") != NULL,
	       "region error says IMDS is disabled (%s)", err);
	{
		/* A worker leaving through a shared cleanup path. */
		pid_t child = fork();

		if (child == 0) {
			credstore_shutdown();
			_exit(0);
		}
		waitpid(child, NULL, 0);
		tap_ok(wait_get(1, "AKIDSTOREENV", err, sizeof err),
		       "a child's credstore_shutdown leaves the store intact");
	}
	status = stop_agent(pid);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "agent exits 0 on SIGTERM");
	tap_ok(wait_get(1, "AKIDSTOREENV", err, sizeof err),
	       "credentials stay published while no agent runs");

	/* Shared file; a reload re-reads it. */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	write_creds("AKIDFILEONE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", credfile, 1);
	pid = credstore_spawn_agent(&cfg);
	tap_ok(wait_get(1, "AKIDFILEONE", err, sizeof err), "respawned agent: profile credentials");
	write_creds("AKIDFILETWO");
	credstore_configure(&cfg);
	tap_ok(wait_get(1, "AKIDFILETWO", err, sizeof err), "reload re-resolves");
	status = stop_agent(pid);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "agent exits 0 again");

	/* Nothing anywhere: the error, and the agent keeps running. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/ssp/credentials", 1);
	cfg.credentials.retry_cap = 30;
	credstore_configure(&cfg);
	pid = credstore_spawn_agent(&cfg);
	tap_ok(wait_get(0, NULL, err, sizeof err) &&
	           strncmp(err,
	                   "no AWS credentials found: tried environment, shared files, "
	                   "web identity, container, instance metadata",
	                   95) == 0,
	       "no credentials: the clear error (%s)", err);
	/* Attempts at 0, .1, .3, .7, 1.5 s; the next one is due at 3.1 s. */
	usleep(1600000);
	g0 = credstore_generation();
	usleep(300000);
	tap_ok(credstore_generation() == g0, "backing off: no attempt for a while");
	/* A poke about what this process read long ago is stale: ignored. */
	credstore_request_refresh();
	usleep(300000);
	tap_ok(credstore_generation() == g0, "a stale poke is dropped");
	/* As a worker does: read, find nothing usable, poke. */
	tap_ok(credstore_get(&(struct aws_creds){0}, err, sizeof err) == -1, "still nothing");
	credstore_request_refresh();
	usleep(300000);
	tap_ok(credstore_generation() != g0, "a poke makes the agent try again at once");
	tap_ok(waitpid(pid, &status, WNOHANG) == 0, "the agent keeps running");
	status = stop_agent(pid);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "and exits 0");

	test_lease(&cfg);
	test_agent_state();

	credstore_shutdown();
	unlink(credfile);
	rmdir(dir);
	return tap_done();
}
