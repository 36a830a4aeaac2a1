/* credstore.c: placeholder until its module lands (see credstore.h). */
