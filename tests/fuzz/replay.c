/*
 * replay.c: main() for a fuzz target in an ordinary build. It runs every
 * file of the seed corpus (REPLAY_CORPUS, or the directories and files
 * given as arguments) through LLVMFuzzerTestOneInput once, so that
 * `make check` keeps the target building and its seeds passing (under the
 * sanitizers in the --sanitizers build). TAP: one line.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return 0;
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 1;
}

static int
run_path(const char *path)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (stat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char sub[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		n += run_path(sub);
	}
	closedir(d);
	return n;
}

int
main(int argc, char **argv)
{
	int i, n = 0;

	printf("1..1\n");
	if (argc > 1)
		for (i = 1; i < argc; i++)
			n += run_path(argv[i]);
	else
		n = run_path(REPLAY_CORPUS);
	printf("%sok 1 - %d seed inputs replayed\n", n > 0 ? "" : "not ", n);
	return 0;
}
