/* httputil.c: placeholder until its module lands (see the header). */
