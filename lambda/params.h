/*
 * params.h: where the signing parameters of a host come from: Parameter
 * Store (with a per-host cache, negative answers included) or the
 * parameters file. Values are secrets: never log them.
 */
#ifndef SSP_LAMBDA_PARAMS_H
#define SSP_LAMBDA_PARAMS_H

#include <stddef.h>

#include "kvlist.h"

struct ssm_client;
struct paramfile;
struct params;

enum params_status {
	PARAMS_OK = 0,
	PARAMS_FAILED = -1,  /* the store failed: 502 */
	PARAMS_TIMEOUT = -2, /* the deadline came first: 504 */
};

/* How the answer was obtained, for the invocation log line. */
enum params_how {
	PARAMS_HOW_NONE = 0,
	PARAMS_HOW_HIT,  /* from the cache */
	PARAMS_HOW_MISS, /* asked Parameter Store */
	PARAMS_HOW_FILE, /* from the parameters file */
};
const char *params_how_name(enum params_how);

/* The params object takes ownership of ssm (Parameter Store mode). */
struct params *params_new_ssm(struct ssm_client *ssm, const char *prefix, long ttl_seconds,
                              long max_hosts);
/* The params object takes ownership of file. */
struct params *params_new_file(struct paramfile *file, const char *prefix);
void params_free(struct params *);

/* "/{prefix}/{key}" (or "/{key}" when prefix is empty). Caller frees. */
char *params_base(const char *prefix, const char *key);

/*
 * The parameters of host key (the host, or "host_port"), appended to out as
 * name relative to the host's path ("headers/Authorization") -> value. An
 * empty out with PARAMS_OK means there are none. err is set on failure and
 * never holds a value.
 */
enum params_status params_lookup(struct params *, const char *key, long long deadline_ms,
                                 struct kvlist *out, enum params_how *how, char *err,
                                 size_t errlen);

#endif
