/*
 * main.c: the ssm-sign-proxy daemon's entry point. Reads the command line
 * and the configuration, answers -t, and otherwise runs the master (which
 * stays in the foreground and logs to stderr: systemd and
 * start-stop-daemon --background do the daemonizing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "master.h"

/* libevent's own warnings go through our log (and its format). */
static void
main_event_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_error("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warn("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

int
main(int argc, char **argv)
{
	struct config_cli cli;
	struct config *conf;
	char err[8192], *line, *next;
	size_t i;
	int rc;

	log_init("ssm-sign-proxy", LOG_LVL_INFO, 0);
	memset(&cli, 0, sizeof cli);
	switch (config_parse_args(argc, argv, &cli, err, sizeof err)) {
	case 1:
		return 0; /* -h or -V */
	case -1:
		/* A usage error: exit 2, as getopt-style tools do. */
		fprintf(stderr, "ssm-sign-proxy: %s\n", err);
		config_usage(stderr);
		return 2;
	}

	conf = config_load(&cli, err, sizeof err);
	if (conf == NULL) {
		/* One problem per line, each with the program's name. */
		for (line = err; line != NULL; line = next) {
			if ((next = strchr(line, '\n')) != NULL)
				*next++ = '\0';
			fprintf(stderr, "ssm-sign-proxy: %s\n", line);
		}
		return 1;
	}
	if (cli.test_only) {
		for (i = 0; i < conf->nwarnings; i++)
			fprintf(stderr, "ssm-sign-proxy: warning: %s\n", conf->warnings[i]);
		if (cli.dump)
			config_dump(conf, stdout);
		else
			printf("configuration %s ok\n",
			       conf->path != NULL ? conf->path : "(command line)");
		config_free(conf);
		return 0;
	}

	log_set_level(conf->log_level);
	log_set_json(conf->log_format == CONFIG_FORMAT_JSON);
	event_set_log_callback(main_event_log);
	for (i = 0; i < conf->nwarnings; i++)
		log_warn("%s", conf->warnings[i]);
	/* Once, before any fork: the workers inherit it. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		config_free(conf);
		return 1;
	}
	rc = master_run(&cli, conf, argv);
	curl_global_cleanup();
	return rc;
}
