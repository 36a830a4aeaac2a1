/*
 * errf.h: library code returns errors as values: a message in a caller's
 * buffer and -1. errf() writes the message (when there is a buffer) and
 * returns -1, so that a failure path is one line: return errf(err, len, ...).
 */
#ifndef SSP_ERRF_H
#define SSP_ERRF_H

#include <stddef.h>

int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
