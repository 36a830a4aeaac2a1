/*
 * imds.c: the IMDSv2 client (see imds.h). Only version 2 is spoken: a
 * session token first, then GETs carrying it. Each call gets a bounded
 * number of attempts with a short pause between them; a 401 means the token
 * went stale and is fetched again once within those attempts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "awsenv.h"
#include "clock.h"
#include "creds.h"
#include "imds.h"
#include "xmalloc.h"

void
imds_init(struct imds *s)
{
	memset(s, 0, sizeof *s);
	s->base = awsenv_imds_endpoint();
	if (s->base == NULL)
		s->base = xstrdup("http://169.254.169.254");
	/* The override may end with a slash; paths here start with one. */
	while (s->base[0] != '\0' && s->base[strlen(s->base) - 1] == '/')
		s->base[strlen(s->base) - 1] = '\0';
}

void
imds_free(struct imds *s)
{
	free(s->base);
	xfree_secret(s->token);
	memset(s, 0, sizeof *s);
}

static void
imds_drop_token(struct imds *s)
{
	xfree_secret(s->token);
	s->token = NULL;
	s->token_expiry = 0;
}

/* One attempt at a token. 0, or -1 with err; *retry says whether trying again may help. */
static int
imds_token(struct imds *s, const struct creds_options *o, int *retry, char *err, size_t errlen)
{
	struct curl_slist *h = NULL;
	char *url, *resp, hdr[64], e2[256];
	long status;
	int rc;

	*retry = 0;
	if (s->token != NULL && clock_mono() < s->token_expiry)
		return 0;
	imds_drop_token(s);
	xasprintf(&url, "%s/latest/api/token", s->base);
	snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL);
	h = curl_slist_append(h, hdr);
	s->calls++;
	rc = creds_http_call(o, "PUT", url, h, NULL, 0, &status, &resp, e2, sizeof e2);
	curl_slist_free_all(h);
	if (rc != 0) {
		snprintf(err, errlen, "IMDS token (PUT %s): %s", url, e2);
		*retry = 1;
		free(url);
		return -1;
	}
	if (status != 200 || resp[strspn(resp, " \t\r\n")] == '\0') {
		snprintf(err, errlen, "IMDS token (PUT %s): HTTP %ld%s", url, status,
		         status == 200 ? " with an empty token" : "");
		*retry = status == 429 || status >= 500;
		xfree_secret(resp);
		free(url);
		return -1;
	}
	resp[strcspn(resp, " \t\r\n")] = '\0';
	s->token = resp;
	/* Renew a minute early so a call never carries a token that just lapsed. */
	s->token_expiry = clock_mono() + IMDS_TOKEN_TTL - 60;
	free(url);
	return 0;
}

int
imds_get(struct imds *s, const struct creds_options *o, const char *path, char **body, char *err,
         size_t errlen)
{
	struct curl_slist *h;
	char *url, *resp, *hdr, e2[256];
	long status;
	int attempt, attempts = o->imds_attempts > 0 ? o->imds_attempts : 1, retry, rc = -1;

	*body = NULL;
	xasprintf(&url, "%s%s", s->base, path);
	snprintf(err, errlen, "IMDS %s: no attempt made", url);
	for (attempt = 0; attempt < attempts; attempt++) {
		if (attempt > 0)
			usleep(50000 * (unsigned)attempt);
		if (imds_token(s, o, &retry, err, errlen) != 0) {
			if (!retry)
				break;
			continue;
		}
		xasprintf(&hdr, "X-aws-ec2-metadata-token: %s", s->token);
		h = curl_slist_append(NULL, hdr);
		xfree_secret(hdr);
		s->calls++;
		rc = creds_http_call(o, "GET", url, h, NULL, 0, &status, &resp, e2, sizeof e2);
		curl_slist_free_all(h);
		if (rc != 0) {
			snprintf(err, errlen, "IMDS %s: %s", url, e2);
			rc = -1;
			continue;
		}
		if (status == 200) {
			*body = resp;
			rc = 0;
			break;
		}
		xfree_secret(resp);
		if (status == 404) {
			rc = 1;
			break;
		}
		snprintf(err, errlen, "IMDS %s: HTTP %ld", url, status);
		rc = -1;
		if (status == 401) {
			/* The token expired or the service restarted: get a new one. */
			imds_drop_token(s);
			continue;
		}
		if (status != 429 && status < 500)
			break;
	}
	free(url);
	return rc;
}
