/*
 * xmalloc.h: allocation wrappers that abort on out-of-memory, so that callers
 * stay simple (as in tmux). Memory returned is owned by the caller.
 */
#ifndef SSP_XMALLOC_H
#define SSP_XMALLOC_H

#include <stddef.h>
#include <stdarg.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
int xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));
int xvasprintf(char **, const char *, va_list);
/* Overwrite with zeroes (not optimised away), then free: for secrets. */
void xfree_secret(char *);

#endif
