/* config.c: placeholder until its module lands (see config.h). */
