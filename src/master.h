/* master.h: placeholder until its module lands. */
