/* worker.h: placeholder until its module lands. */
