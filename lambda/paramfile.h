/*
 * paramfile.h: the parameters file (SSM_SIGN_PROXY_PARAMETERS_FILE), a
 * stand-in for Parameter Store in local function mode: a YAML mapping of
 * full parameter names to string values, with the names Parameter Store
 * would hold ("/{prefix}/{host}/headers/Authorization": "token ...").
 *
 * The file holds secrets: it is refused when group or others may read or
 * write it. It is read again whenever it changes (mtime, size or inode).
 */
#ifndef SSP_LAMBDA_PARAMFILE_H
#define SSP_LAMBDA_PARAMFILE_H

#include <stddef.h>

#include "kvlist.h"

struct paramfile;

struct paramfile *paramfile_new(const char *path);
void paramfile_free(struct paramfile *);

/* Load the file if it changed since the last successful load. 0 on
 * success; -1 with err set (the path, and the line for a syntax error);
 * the previous content is then dropped so that nothing stale is served. */
int paramfile_refresh(struct paramfile *, char *err, size_t errlen);

/* Append every parameter whose name starts with base + "/" to out, as name
 * relative to base -> value. Returns how many were added. */
size_t paramfile_lookup(const struct paramfile *, const char *base, struct kvlist *out);

/* Parse YAML text (exposed for unit tests). 0, or -1 with err naming the line. */
int paramfile_parse(const char *text, size_t len, struct kvlist *out, char *err, size_t errlen);

#endif
