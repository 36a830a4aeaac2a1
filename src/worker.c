/* worker.c: placeholder until its module lands. */
