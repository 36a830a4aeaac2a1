/*
 * http1_fuzzed.c: src/http1.c compiled into the fuzz target with the
 * fuzzer's coverage instrumentation (the daemon's copy in libdaemon.a is
 * built without it, possibly by another compiler).
 */
#include "../../src/http1.c"
