/* proxy.c: placeholder until its module lands. */
