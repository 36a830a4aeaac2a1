/*
 * eventstream_fuzzed.c: common/eventstream.c and what it needs compiled
 * into the fuzz target with the fuzzer's coverage instrumentation (the
 * copy in libcommon.a is built without it). Out of memory aborts, as
 * xmalloc's fatal() would.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "../../common/errf.c"
#include "../../common/eventstream.c"
#include "../../common/xmalloc.c"

void
fatal(const char *fmt, ...)
{
	abort();
}
