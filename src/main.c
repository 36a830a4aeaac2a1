/*
 * main.c: the ssm-sign-proxy daemon's entry point (placeholder until the
 * process model lands).
 */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "ssm-sign-proxy: not built yet\n");
	return 1;
}
