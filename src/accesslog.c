/* accesslog.c: placeholder until its module lands. */
