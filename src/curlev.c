/* curlev.c: placeholder until its module lands. */
