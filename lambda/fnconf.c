/*
 * fnconf.c: the function's environment variables, in one table.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnconf.h"
#include "log.h"
#include "xmalloc.h"

enum fnconf_type {
	FNCONF_SECONDS, /* decimal seconds, stored as milliseconds */
	FNCONF_INT,
};

struct fnconf_entry {
	const char *name;
	enum fnconf_type type;
	size_t offset;
	long def; /* in the stored unit */
	long min;
	long max;
};

#define OFF(f) offsetof(struct fnconf, f)
static const struct fnconf_entry fnconf_table[] = {
    {"SSM_SIGN_PROXY_CACHE_TTL", FNCONF_INT, OFF(cache_ttl), 300, 0, 86400 * 365},
    {"SSM_SIGN_PROXY_CACHE_MAX_HOSTS", FNCONF_INT, OFF(cache_max_hosts), 1000, 1, 1000000},
    {"SSM_SIGN_PROXY_SSM_RETRIES", FNCONF_INT, OFF(ssm_retries), 3, 0, 100},
    {"SSM_SIGN_PROXY_SSM_BACKOFF_MS", FNCONF_INT, OFF(ssm_backoff_ms), 100, 0, 600000},
    {"SSM_SIGN_PROXY_SSM_BACKOFF_MAX_MS", FNCONF_INT, OFF(ssm_backoff_max_ms), 2000, 0, 600000},
    {"SSM_SIGN_PROXY_SSM_CONNECT_TIMEOUT", FNCONF_SECONDS, OFF(ssm_connect_timeout_ms), 3000, 1,
     3600000},
    {"SSM_SIGN_PROXY_SSM_TIMEOUT", FNCONF_SECONDS, OFF(ssm_timeout_ms), 10000, 1, 3600000},
    {"SSM_SIGN_PROXY_ORIGIN_CONNECT_TIMEOUT", FNCONF_SECONDS, OFF(origin_connect_timeout_ms), 5000,
     1, 3600000},
    {"SSM_SIGN_PROXY_ORIGIN_TIMEOUT", FNCONF_SECONDS, OFF(origin_timeout_ms), 0, 0, 3600000},
    {"SSM_SIGN_PROXY_DEADLINE_MARGIN_MS", FNCONF_INT, OFF(deadline_margin_ms), 500, 0, 600000},
    {"SSM_SIGN_PROXY_RUNTIME_TIMEOUT", FNCONF_SECONDS, OFF(runtime_timeout_ms), 30000, 1, 3600000},
    {"SSM_SIGN_PROXY_MAX_RESPONSE_BYTES", FNCONF_INT, OFF(max_response_bytes), 6291456, 1024,
     1L << 30},
    {"SSM_SIGN_PROXY_STREAM_BUFFER_BYTES", FNCONF_INT, OFF(stream_buffer_bytes), 65536, 4096,
     64L << 20},
};
#undef OFF

static int
fnconf_number(const struct fnconf_entry *e, const char *s, long *out, char *err, size_t errlen)
{
	char *end;

	errno = 0;
	if (e->type == FNCONF_SECONDS) {
		double d = strtod(s, &end);

		if (errno != 0 || end == s || *end != '\0' || d != d || d < 0 ||
		    d * 1000.0 > (double)e->max) {
			snprintf(err, errlen, "%s=%s: expected a number of seconds (0 to %ld)",
			         e->name, s, e->max / 1000);
			return -1;
		}
		*out = (long)(d * 1000.0 + 0.5);
		if (*out < e->min)
			*out = e->min;
		return 0;
	}
	*out = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out < e->min || *out > e->max) {
		snprintf(err, errlen, "%s=%s: expected an integer from %ld to %ld", e->name, s,
		         e->min, e->max);
		return -1;
	}
	return 0;
}

char *
fnconf_prefix(const char *raw, char *err, size_t errlen)
{
	const char *s = raw, *e, *p;

	while (*s == '/')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == '/')
		e--;
	for (p = s; p < e; p++) {
		if (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-')
			continue;
		if (*p == '/' && p[1] != '/')
			continue;
		if (*p == '/')
			snprintf(err, errlen,
			         "SSM_SIGN_PROXY_PREFIX=%s: empty path segment (\"//\")", raw);
		else
			snprintf(err, errlen,
			         "SSM_SIGN_PROXY_PREFIX=%s: only letters, digits and \"_.-/\" are "
			         "allowed in Parameter Store names",
			         raw);
		return NULL;
	}
	return xstrndup(s, (size_t)(e - s));
}

int
fnconf_load(struct fnconf *c, char *err, size_t errlen)
{
	const char *v;
	size_t i;
	int lvl;

	memset(c, 0, sizeof *c);
	c->log_level = LOG_LVL_INFO;

	for (i = 0; i < sizeof fnconf_table / sizeof fnconf_table[0]; i++) {
		const struct fnconf_entry *e = &fnconf_table[i];
		long *dst = (long *)((char *)c + e->offset);

		*dst = e->def;
		if ((v = getenv(e->name)) != NULL && *v != '\0' &&
		    fnconf_number(e, v, dst, err, errlen) != 0)
			goto fail;
	}
	if (c->ssm_backoff_max_ms < c->ssm_backoff_ms)
		c->ssm_backoff_max_ms = c->ssm_backoff_ms;

	if ((v = getenv("SSM_SIGN_PROXY_LOG_LEVEL")) != NULL && *v != '\0') {
		if ((lvl = log_level_parse(v)) < 0) {
			snprintf(err, errlen,
			         "SSM_SIGN_PROXY_LOG_LEVEL=%s: expected error, warn, info or debug",
			         v);
			goto fail;
		}
		c->log_level = lvl;
	}

	if ((v = getenv("SSM_SIGN_PROXY_RESPONSE_MODE")) != NULL && *v != '\0') {
		if (strcmp(v, "streaming") == 0)
			c->streaming = 1;
		else if (strcmp(v, "buffered") != 0) {
			snprintf(err, errlen,
			         "SSM_SIGN_PROXY_RESPONSE_MODE=%s: expected buffered or streaming",
			         v);
			goto fail;
		}
	}

	if ((v = getenv("AWS_LAMBDA_RUNTIME_API")) == NULL || *v == '\0') {
		snprintf(err, errlen,
		         "AWS_LAMBDA_RUNTIME_API is not set: not running as a Lambda "
		         "custom runtime");
		goto fail;
	}
	c->runtime_api = xstrdup(v);

	if ((c->prefix = fnconf_prefix((v = getenv("SSM_SIGN_PROXY_PREFIX")) ? v : "", err,
	                               errlen)) == NULL)
		goto fail;

	if ((v = getenv("SSM_SIGN_PROXY_PARAMETERS_FILE")) != NULL && *v != '\0')
		c->parameters_file = xstrdup(v);
	if ((v = getenv("SSM_SIGN_PROXY_CONNECT_TO")) != NULL && *v != '\0')
		c->connect_to = xstrdup(v);
	return 0;

fail:
	fnconf_free(c);
	return -1;
}

void
fnconf_free(struct fnconf *c)
{
	free(c->runtime_api);
	free(c->prefix);
	free(c->parameters_file);
	free(c->connect_to);
	memset(c, 0, sizeof *c);
}
