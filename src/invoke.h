/* invoke.h: placeholder until its module lands. */
