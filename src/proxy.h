/* proxy.h: placeholder until its module lands. */
