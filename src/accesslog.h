/* accesslog.h: placeholder until its module lands. */
