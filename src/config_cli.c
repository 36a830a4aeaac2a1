/*
 * config_cli.c: the command line (-c -t -V -h and the original Go tool's
 * -function-name and -address flags), parsed into a struct config_cli that
 * config_load() applies over the file.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"

/* The command line. */

void
config_usage(FILE *f)
{
	fprintf(f,
	        "usage: ssm-sign-proxy [-c FILE] [-t] [-T] [-V] [-h] [-function-name NAME] "
	        "[-address ADDR]\n"
	        "  -c FILE              configuration file (default %s)\n"
	        "  -t                   check the configuration and exit: 0 valid, 1 not\n"
	        "  -T                   check it and print the effective configuration (YAML)\n"
	        "  -V                   print the version and the libraries' versions, and exit\n"
	        "  -h                   print this help and exit\n"
	        "  -function-name NAME  Lambda function to invoke (overrides function_name)\n"
	        "  -address ADDR        listen on ADDR, like 127.0.0.1:8000 or :8000 for all\n"
	        "                       interfaces (overrides listen); -addr is the same\n"
	        "Options may also be written -name=VALUE, --name VALUE or --name=VALUE.\n"
	        "Exit status: 0 success, 1 configuration or run-time error, 2 usage error.\n",
	        config_default_path());
}

int
config_parse_args(int argc, char **argv, struct config_cli *cli, char *err, size_t errlen)
{
	const char *arg, *name, *eq, *value;
	char flag[64];
	size_t nlen;
	int i;

	memset(cli, 0, sizeof *cli);
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			if (i + 1 < argc) {
				snprintf(err, errlen, "unexpected argument: %s", argv[i + 1]);
				return -1;
			}
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			snprintf(err, errlen, "unexpected argument: %s", arg);
			return -1;
		}
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (nlen == 0 || nlen >= sizeof flag) {
			snprintf(err, errlen, "unknown option: %s", arg);
			return -1;
		}
		memcpy(flag, name, nlen);
		flag[nlen] = '\0';
		value = eq != NULL ? eq + 1 : NULL;

		/* -cFILE, as getopt would take it. */
		if (arg[1] == 'c' && arg[2] != '\0' && arg[2] != '=' &&
		    strcmp(flag, "config") != 0) {
			cli->config_path = arg + 2;
			cli->config_path_given = 1;
			continue;
		}
		if (strcmp(flag, "t") == 0 || strcmp(flag, "T") == 0 || strcmp(flag, "V") == 0 ||
		    strcmp(flag, "h") == 0 || strcmp(flag, "help") == 0 ||
		    strcmp(flag, "version") == 0) {
			if (value != NULL) {
				snprintf(err, errlen, "option -%s takes no value", flag);
				return -1;
			}
			if (flag[0] == 't') {
				cli->test_only = 1;
				continue;
			}
			if (flag[0] == 'T') {
				cli->test_only = 1;
				cli->dump = 1;
				continue;
			}
			if (flag[0] == 'V' || flag[0] == 'v') {
				version_print(stdout);
				return 1;
			}
			config_usage(stdout);
			return 1;
		}
		if (strcmp(flag, "c") != 0 && strcmp(flag, "config") != 0 &&
		    strcmp(flag, "function-name") != 0 && strcmp(flag, "address") != 0 &&
		    strcmp(flag, "addr") != 0) {
			snprintf(err, errlen, "unknown option: %s", arg);
			return -1;
		}
		if (value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option -%s needs a value", flag);
				return -1;
			}
			value = argv[++i];
		}
		if (flag[0] == 'c') {
			cli->config_path = value;
			cli->config_path_given = 1;
		} else if (flag[0] == 'f')
			cli->function_name = value;
		else
			cli->address = value;
	}
	return 0;
}
