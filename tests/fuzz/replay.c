/*
 * replay.c: main() for a fuzz target built without libFuzzer. It runs
 * every file of $FUZZ_CORPUS/NAME/ (NAME: the program's name without
 * "fuzz_"), or of the directories and files given as arguments, through
 * LLVMFuzzerTestOneInput once, so that `make check` keeps the targets and
 * their seeds honest. A crash is the failure; exit 77 (skip) when there is
 * no seed at all.
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
			buf = realloc(buf, cap);
			if (buf == NULL)
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
	DIR *d;
	struct dirent *e;
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
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		n += run_path(sub);
	}
	closedir(d);
	return n;
}

int
main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *corpus = getenv("FUZZ_CORPUS");
	char dir[4096];
	int n = 0;

	if (strncmp(name, "fuzz_", 5) == 0)
		name += 5;
	for (int i = 1; i < argc; i++)
		n += run_path(argv[i]);
	if (argc == 1 && corpus != NULL) {
		snprintf(dir, sizeof(dir), "%s/%s", corpus, name);
		n = run_path(dir);
	}
	printf("%s: %d inputs\n", name, n);
	return n > 0 ? 0 : 77;
}
