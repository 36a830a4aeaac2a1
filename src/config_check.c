/*
 * config_check.c: what a configuration needs from the machine, checked when
 * it is loaded from its file (-t, start and every reload) so that -t is a
 * safe gate: the pid file's directory, the access log, the CA bundle, the
 * local function's command and the parameters file its environment names.
 * Nothing is created or bound here (listen addresses are parsed by the
 * loader; binding is the master's). Each problem is reported as
 * "FILE:LINE: KEY: message" and the checks go on, so that one run shows
 * them all.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

/* The variable of the function (lambda/fnconf.c) that names its parameters file. */
#define PARAMETERS_FILE_VAR "SSM_SIGN_PROXY_PARAMETERS_FILE"

/* Point ld at key (the file and line that set it, if any) for the next error. */
static void
at_key(struct load *ld, const char *key)
{
	snprintf(ld->path, sizeof ld->path, "%s", key);
	if (!seen_at(ld, key))
		ld->line = 0;
}

/* The directory part of path ("." for a bare name). Caller frees. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* A directory we can create files in; 0, or -1 after an error about key. */
static int
check_dir_writable(struct load *ld, const char *key, const char *path)
{
	char *dir = dir_of(path);
	struct stat st;
	int rc = 0;

	at_key(ld, key);
	if (stat(dir, &st) == -1)
		rc = load_error(ld, "directory %s: %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = load_error(ld, "%s is not a directory", dir);
	else if (access(dir, W_OK | X_OK) == -1)
		rc = load_error(ld, "directory %s is not writable: %s", dir, strerror(errno));
	free(dir);
	return rc;
}

static int
check_pid_file(struct load *ld)
{
	if (ld->cfg->pid_file == NULL)
		return 0;
	return check_dir_writable(ld, "pid_file", ld->cfg->pid_file);
}

static int
check_access_log(struct load *ld)
{
	const char *p = ld->cfg->access_log;
	struct stat st;

	if (p == NULL || *p != '/')
		return 0; /* off, syslog, stderr */
	if (stat(p, &st) == -1) {
		if (errno == ENOENT)
			return check_dir_writable(ld, "access_log", p);
		at_key(ld, "access_log");
		return load_error(ld, "%s: %s", p, strerror(errno));
	}
	at_key(ld, "access_log");
	if (S_ISDIR(st.st_mode))
		return load_error(ld, "%s is a directory", p);
	if (access(p, W_OK) == -1)
		return load_error(ld, "%s is not writable: %s", p, strerror(errno));
	return 0;
}

/* The CA bundle the daemon's AWS calls use (the environment names it). */
static int
check_ca_bundle(struct load *ld)
{
	const char *p = getenv("AWS_CA_BUNDLE");
	const char *file = ld->file;
	int fd, rc = 0;

	if (p == NULL || *p == '\0' || ld->cfg->local_function.command != NULL)
		return 0;
	ld->file = "environment";
	ld->line = 0;
	snprintf(ld->path, sizeof ld->path, "AWS_CA_BUNDLE");
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) == -1)
		rc = load_error(ld, "%s: cannot read: %s", p, strerror(errno));
	else
		close(fd);
	ld->file = file;
	return rc;
}

static int
check_command(struct load *ld)
{
	const char *cmd = ld->cfg->local_function.command;
	struct stat st;

	if (cmd == NULL)
		return 0;
	at_key(ld, "local_function.command");
	if (stat(cmd, &st) == -1)
		return load_error(ld, "%s: %s", cmd, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return load_error(ld, "%s is not a regular file", cmd);
	if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0 || access(cmd, X_OK) == -1)
		return load_error(ld, "%s is not executable", cmd);
	return 0;
}

/* The parameters file the local function is told to read holds secrets: private. */
static int
check_parameters_file(struct load *ld)
{
	const struct kvlist *env = &ld->cfg->local_function.environment;
	const char *p = NULL;
	char key[128];
	struct stat st;
	size_t i;

	if (ld->cfg->local_function.command == NULL)
		return 0;
	for (i = 0; i < env->n; i++)
		if (strcmp(env->v[i].name, PARAMETERS_FILE_VAR) == 0)
			p = env->v[i].value;
	if (p == NULL || *p == '\0')
		return 0;
	snprintf(key, sizeof key, "local_function.environment.%s", PARAMETERS_FILE_VAR);
	at_key(ld, "local_function.environment");
	snprintf(ld->path, sizeof ld->path, "%s", key);
	if (stat(p, &st) == -1)
		return load_error(ld, "%s: %s", p, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return load_error(ld, "%s is not a regular file", p);
	if ((st.st_mode & 077) != 0)
		return load_error(ld,
		                  "%s has mode %04o: group or others may read or write it, and it "
		                  "holds secrets; make it private (chmod 600 %s)",
		                  p, (unsigned)(st.st_mode & 07777), p);
	return 0;
}

int
check_system(struct load *ld, const struct config_cli *cli)
{
	const char *file = ld->file;
	int rc = 0;

	rc |= check_pid_file(ld);
	rc |= check_access_log(ld);
	rc |= check_ca_bundle(ld);
	rc |= check_command(ld);
	rc |= check_parameters_file(ld);
	ld->path[0] = '\0';
	ld->line = 0;
	ld->file = file;
	return rc != 0 ? -1 : 0;
}
