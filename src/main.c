/*
 * main.c: the ssm-sign-proxy daemon's entry point.
 *
 * MINIMAL VERSION from the config work (worktree "config"): it parses the
 * command line and the configuration (-t, -V, -h, usage errors) so that
 * they can be tested; the daemon engineer's main (process model) replaces
 * the part after config_load().
 */
#include <stdio.h>

#include "config.h"

int
main(int argc, char **argv)
{
	struct config_cli cli;
	struct config *cfg;
	char err[1024];
	size_t i;
	int rc;

	if ((rc = config_parse_args(argc, argv, &cli, err, sizeof err)) == 1)
		return 0;
	if (rc == -1) {
		fprintf(stderr, "ssm-sign-proxy: %s\n", err);
		config_usage(stderr);
		return 2;
	}
	if ((cfg = config_load(&cli, err, sizeof err)) == NULL) {
		fprintf(stderr, "ssm-sign-proxy: %s\n", err);
		return 1;
	}
	for (i = 0; i < cfg->nwarnings; i++)
		fprintf(stderr, "ssm-sign-proxy: warning: %s\n", cfg->warnings[i]);
	if (cli.test_only) {
		fprintf(stderr, "ssm-sign-proxy: configuration %s is valid\n",
		        cfg->path != NULL ? cfg->path : "(command line only)");
		config_free(cfg);
		return 0;
	}
	config_free(cfg);
	fprintf(stderr, "ssm-sign-proxy: not built yet\n");
	return 1;
}
