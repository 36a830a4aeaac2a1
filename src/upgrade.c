/*
 * upgrade.c: the handover of a binary upgrade (upgrade.h): the environment
 * and the pipe between an old master and the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upgrade.h"
#include "xmalloc.h"

#define UPGRADE_ENV_FDS "SSP_LISTEN_FDS"
#define UPGRADE_ENV_PIPE "SSP_UPGRADE_FD"

static int
upgrade_is_ours(const char *entry)
{
	return strncmp(entry, UPGRADE_ENV_FDS "=", strlen(UPGRADE_ENV_FDS) + 1) == 0 ||
	       strncmp(entry, UPGRADE_ENV_PIPE "=", strlen(UPGRADE_ENV_PIPE) + 1) == 0;
}

pid_t
upgrade_spawn(const char *exe, char *const argv[], const int *fds, size_t nfds, int *rd, char *err,
              size_t errlen)
{
	extern char **environ;
	char **envp, *list = NULL, *tmp, *fdsvar, *pipevar;
	sigset_t all, old;
	size_t i, n = 0;
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (i = 0; i < nfds; i++) {
		xasprintf(&tmp, "%s%s%d", list != NULL ? list : "", list != NULL ? "," : "",
		          fds[i]);
		free(list);
		list = tmp;
	}
	/* Our environment, with ours replacing any stale copies. */
	for (i = 0; environ[i] != NULL; i++)
		;
	envp = xcalloc(i + 3, sizeof *envp);
	for (i = 0; environ[i] != NULL; i++)
		if (!upgrade_is_ours(environ[i]))
			envp[n++] = environ[i];
	xasprintf(&fdsvar, UPGRADE_ENV_FDS "=%s", list != NULL ? list : "");
	envp[n++] = fdsvar;
	xasprintf(&pipevar, UPGRADE_ENV_PIPE "=%d", p[1]);
	envp[n++] = pipevar;
	envp[n] = NULL;

	fflush(stderr);
	/* No signal may run the master's handlers in the child before exec. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* The sockets and the pipe survive exec, nothing else. */
		for (i = 0; i < nfds; i++)
			fcntl(fds[i], F_SETFD, 0);
		fcntl(p[1], F_SETFD, 0);
		/* exec resets our handlers; the mask it would keep. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execve(exe, argv, envp);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1)
		snprintf(err, errlen, "fork: %s", strerror(errno));
	close(p[1]);
	free(list);
	free(fdsvar);
	free(pipevar);
	free(envp);
	if (pid == -1) {
		close(p[0]);
		return -1;
	}
	*rd = p[0];
	return pid;
}

int
upgrade_take(int **fds, size_t *nfds)
{
	const char *v;
	char *end;
	long fd;
	int pipefd = -1;

	*fds = NULL;
	*nfds = 0;
	if ((v = getenv(UPGRADE_ENV_PIPE)) != NULL) {
		fd = strtol(v, &end, 10);
		if (end != v && *end == '\0' && fd > 2 && fcntl((int)fd, F_SETFD, FD_CLOEXEC) == 0)
			pipefd = (int)fd;
	}
	if ((v = getenv(UPGRADE_ENV_FDS)) != NULL) {
		while (*v != '\0') {
			fd = strtol(v, &end, 10);
			if (end == v)
				break;
			/* Only what is open, and never our stdio. */
			if (fd > 2 && fd < 65536 && fcntl((int)fd, F_SETFD, FD_CLOEXEC) == 0) {
				*fds = xreallocarray(*fds, *nfds + 1, sizeof **fds);
				(*fds)[(*nfds)++] = (int)fd;
			}
			v = *end == ',' ? end + 1 : end;
		}
	}
	unsetenv(UPGRADE_ENV_PIPE);
	unsetenv(UPGRADE_ENV_FDS);
	return pipefd;
}

int
upgrade_ready(int fd)
{
	ssize_t n;
	int saved;

	do
		n = write(fd, "R", 1);
	while (n == -1 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	return n == 1 ? 0 : -1;
}
