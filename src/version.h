/*
 * version.h: the daemon's version and its libraries' (-V).
 */
#ifndef SSP_VERSION_H
#define SSP_VERSION_H

#include <stdio.h>

/* "ssm-sign-proxy X.Y.Z" and one line per library: running (built with). */
void version_print(FILE *);

#endif
