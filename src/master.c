/* master.c: placeholder until its module lands. */
