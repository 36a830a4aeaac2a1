/* invoke.c: placeholder until its module lands. */
