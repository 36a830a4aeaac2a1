/*
 * credsenv.c: the credentials value (clear, copy, fill) and the environment
 * provider. Kept apart from the rest of the chain (creds.c) so that a
 * program needing only these (the Lambda function, whose credentials are
 * always in its environment) links neither libexpat nor the network
 * providers: Debian's libexpat needs glibc 2.36, newer than the Lambda
 * runtime's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "xmalloc.h"

static const char *
credsenv_get(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

void
creds_clear(struct aws_creds *c)
{
	xfree_secret(c->access_key_id);
	xfree_secret(c->secret_access_key);
	xfree_secret(c->session_token);
	memset(c, 0, sizeof *c);
}

void
creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	dst->access_key_id = src->access_key_id ? xstrdup(src->access_key_id) : NULL;
	dst->secret_access_key = src->secret_access_key ? xstrdup(src->secret_access_key) : NULL;
	dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof dst->source);
}

void
creds_fill(struct aws_creds *out, const char *id, const char *secret, const char *token,
           time_t expiration, const char *source)
{
	memset(out, 0, sizeof *out);
	out->access_key_id = xstrdup(id);
	out->secret_access_key = xstrdup(secret);
	out->session_token = token != NULL && *token != '\0' ? xstrdup(token) : NULL;
	out->expiration = expiration;
	snprintf(out->source, sizeof out->source, "%s", source);
}

int
creds_from_env(struct aws_creds *out, char *err, size_t errlen)
{
	const char *id = credsenv_get("AWS_ACCESS_KEY_ID");
	const char *secret = credsenv_get("AWS_SECRET_ACCESS_KEY");
	const char *token = credsenv_get("AWS_SESSION_TOKEN");

	if (token == NULL)
		token = credsenv_get("AWS_SECURITY_TOKEN"); /* the legacy name */
	if (id == NULL && secret == NULL) {
		snprintf(err, errlen, "AWS_ACCESS_KEY_ID not set");
		return 1;
	}
	if (id == NULL || secret == NULL) {
		snprintf(err, errlen, "%s is set but %s is not",
		         id != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		         id != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	creds_fill(out, id, secret, token, 0, "environment");
	return 0;
}
