/* curlev.h: placeholder until its module lands. */
