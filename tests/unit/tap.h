/*
 * tap.h: a tiny TAP producer for the C unit tests (automake's tap-driver
 * reads it). Header-only; each test program includes it once.
 */
#ifndef SSP_TAP_H
#define SSP_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n;
static int tap_failed;

static void tap_plan(int n) __attribute__((unused));
static void
tap_plan(int n)
{
	printf("1..%d\n", n);
}

static int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static int
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	return cond;
}

static void tap_skip_all(const char *) __attribute__((unused));
static void
tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	exit(0);
}

static void tap_diag(const char *, ...) __attribute__((format(printf, 1, 2), unused));
static void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

#define tap_is_str(got, want, ...)                                                                 \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (!tap_ok(g_ != NULL && w_ != NULL ? strcmp(g_, w_) == 0 : g_ == w_,             \
		            __VA_ARGS__))                                                          \
			tap_diag("got \"%s\", want \"%s\"", g_ ? g_ : "(null)",                    \
			         w_ ? w_ : "(null)");                                              \
	} while (0)

/* Finish: the plan is the count of tests run. */
static int tap_done(void) __attribute__((unused));
static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
