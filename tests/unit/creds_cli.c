/*
 * creds_cli.c: a test driver for the credentials chain and store, used by the
 * integration tests against loopback stand-ins (IMDS, ECS, STS). It prints
 * sources, key ids and expirations, never a secret or a token.
 *
 *   creds_cli resolve [options]       resolve the chain once
 *   creds_cli agent [options]         run the store and its agent for --watch
 *                                     seconds, printing every publication
 *
 * Options: --timeout S --attempts N --refresh-ahead S --retry S --retry-cap S
 *          --region R --function NAME --watch S --readers N
 * --readers N forks N processes that behave like workers: they read the
 * store in a loop and poke the agent whenever they find no valid credentials.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../../src/config.h" /* the daemon's, not autoconf's */
#include "credstore.h"
#include "creds.h"
#include "log.h"

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
print_creds(const char *prefix, const struct aws_creds *c)
{
	printf("%ssource=%s key=%s token=%s expiration=%lld\n", prefix, c->source, c->access_key_id,
	       c->session_token != NULL ? "yes" : "no", (long long)c->expiration);
}

static int
cmd_resolve(const struct config *cfg)
{
	struct creds_options o;
	struct aws_creds c;
	char err[2048];
	int rc;

	creds_options_default(&o);
	o.timeout = o.connect_timeout = cfg->credentials.timeout;
	o.imds_attempts = cfg->credentials.imds_attempts;
	o.region = cfg->region;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = creds_resolve(&o, &c, err, sizeof err);
	if (rc == 0) {
		print_creds("", &c);
		creds_clear(&c);
	} else {
		printf("error=%s\n", err);
	}
	curl_global_cleanup();
	return rc == 0 ? 0 : 1;
}

/* A stand-in worker: read on every "request", poke when nothing valid is there. */
static void __attribute__((noreturn)) reader(double until)
{
	struct aws_creds c;
	char err[1024];
	uint64_t g;

	while (now_mono() < until) {
		if (credstore_get(&c, err, sizeof err) == 0) {
			creds_clear(&c);
			usleep(2000);
			continue;
		}
		g = credstore_generation();
		credstore_request_refresh();
		while (credstore_generation() == g && now_mono() < until)
			usleep(1000);
	}
	_exit(0);
}

static int
cmd_agent(const struct config *cfg, double watch, int nreaders)
{
	struct aws_creds c;
	char err[2048], region[128], instance[128], last_err[2048] = "", last_key[256] = "";
	char last_region[128] = "", last_instance[128] = "";
	pid_t readers[256];
	double until;
	int pid, status, i, n = 0;
	const char *r;

	if (credstore_init() != 0) {
		printf("error=credstore_init failed\n");
		return 1;
	}
	credstore_configure(cfg);
	if ((pid = credstore_spawn_agent(cfg)) < 0) {
		printf("error=spawn failed\n");
		return 1;
	}
	until = now_mono() + watch;
	for (i = 0; i < nreaders && i < 256; i++) {
		readers[n] = fork();
		if (readers[n] == 0)
			reader(until);
		if (readers[n] > 0)
			n++;
	}
	while (now_mono() < until) {
		if (credstore_get(&c, err, sizeof err) == 0) {
			char key[256];

			snprintf(key, sizeof key, "%s/%lld", c.access_key_id,
			         (long long)c.expiration);
			if (strcmp(key, last_key) != 0) {
				print_creds("creds ", &c);
				snprintf(last_key, sizeof last_key, "%s", key);
				last_err[0] = '\0';
			}
			creds_clear(&c);
		} else if (strcmp(err, last_err) != 0 && strstr(err, "not resolved yet") == NULL) {
			printf("error=%s\n", err);
			snprintf(last_err, sizeof last_err, "%s", err);
			last_key[0] = '\0';
		}
		r = credstore_region(region, sizeof region, err, sizeof err);
		if (r != NULL && strcmp(r, last_region) != 0) {
			printf("region=%s\n", r);
			snprintf(last_region, sizeof last_region, "%s", r);
		}
		credstore_instance_id(instance, sizeof instance);
		if (strcmp(instance, last_instance) != 0) {
			printf("instance=%s\n", instance);
			snprintf(last_instance, sizeof last_instance, "%s", instance);
		}
		usleep(5000);
	}
	for (i = 0; i < n; i++)
		waitpid(readers[i], NULL, 0);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	printf("agent-exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	credstore_shutdown();
	return 0;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	double watch = 3;
	int i, nreaders = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("creds_cli", getenv("CREDS_CLI_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_INFO, 0);
	memset(&cfg, 0, sizeof cfg);
	cfg.log_level = log_get_level();
	cfg.credentials.refresh_ahead = 300;
	cfg.credentials.retry = 1;
	cfg.credentials.retry_cap = 60;
	cfg.credentials.timeout = 1;
	cfg.credentials.imds_attempts = 2;
	if (argc < 2) {
		fprintf(stderr, "usage: creds_cli resolve|agent [options]\n");
		return 2;
	}
	for (i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--timeout") == 0)
			cfg.credentials.timeout = atof(v);
		else if (strcmp(k, "--attempts") == 0)
			cfg.credentials.imds_attempts = atoi(v);
		else if (strcmp(k, "--refresh-ahead") == 0)
			cfg.credentials.refresh_ahead = atof(v);
		else if (strcmp(k, "--retry") == 0)
			cfg.credentials.retry = atof(v);
		else if (strcmp(k, "--retry-cap") == 0)
			cfg.credentials.retry_cap = atof(v);
		else if (strcmp(k, "--region") == 0)
			cfg.region = argv[i + 1];
		else if (strcmp(k, "--function") == 0)
			cfg.function_name = argv[i + 1];
		else if (strcmp(k, "--watch") == 0)
			watch = atof(v);
		else if (strcmp(k, "--readers") == 0)
			nreaders = atoi(v);
		else {
			fprintf(stderr, "creds_cli: unknown option %s\n", k);
			return 2;
		}
	}
	if (strcmp(argv[1], "resolve") == 0)
		return cmd_resolve(&cfg);
	if (strcmp(argv[1], "agent") == 0)
		return cmd_agent(&cfg, watch, nreaders);
	fprintf(stderr, "creds_cli: unknown command %s\n", argv[1]);
	return 2;
}
