/*
 * ssm.c: GetParametersByPath against Parameter Store (AWS JSON 1.1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "awsenv.h"
#include "curlbuf.h"
#include "httputil.h"
#include "sigv4.h"
#include "ssm.h"
#include "xmalloc.h"

/* A page holds at most 10 parameters of at most 8 KB each. */
#define SSM_MAX_ANSWER (4 * 1024 * 1024)
/* A NextToken that never ends is a service bug; do not loop forever. */
#define SSM_MAX_PAGES 1000

struct ssm_client {
	CURL *h;
	struct ssm_options opt;
	char *url;       /* endpoint + "/" */
	char *host;      /* Host header value: host[:port] */
	char *sign_path; /* the URL's path, as signed */
	char *region;
	struct aws_creds creds;
};

struct ssm_client *
ssm_new(const struct ssm_options *opt, const char *endpoint, const char *region,
        const struct aws_creds *creds, char *err, size_t errlen)
{
	struct ssm_client *c;
	CURLU *u;
	char *host = NULL, *port = NULL, *path = NULL, *scheme = NULL;

	c = xcalloc(1, sizeof *c);
	c->opt = *opt;
	xasprintf(&c->url, "%s/", endpoint);
	c->region = xstrdup(region);
	creds_copy(&c->creds, creds);

	if ((u = curl_url()) == NULL ||
	    curl_url_set(u, CURLUPART_URL, c->url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(err, errlen, "Parameter Store endpoint %s is not a URL", endpoint);
		goto fail;
	}
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
		snprintf(err, errlen, "Parameter Store endpoint %s: scheme must be https or http",
		         endpoint);
		goto fail;
	}
	/* Without CURLU_DEFAULT_PORT, a port is returned only when the URL names one. */
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port != NULL &&
	    !(strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0) &&
	    !(strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0))
		xasprintf(&c->host, "%s:%s", host, port);
	else
		c->host = xstrdup(host);
	c->sign_path = xstrdup(path);
	if ((c->h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "libcurl: cannot create a handle");
		goto fail;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return c;
fail:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	ssm_free(c);
	return NULL;
}

void
ssm_free(struct ssm_client *c)
{
	if (c == NULL)
		return;
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	free(c->url);
	free(c->host);
	free(c->sign_path);
	free(c->region);
	creds_clear(&c->creds);
	free(c);
}

void
ssm_error_type(const char *type, char *buf, size_t len)
{
	const char *hash, *colon;
	size_t n;

	if (type == NULL || *type == '\0') {
		snprintf(buf, len, "UnknownError");
		return;
	}
	/* "com.amazonaws.ssm#ThrottlingException" or "Name:http://..." */
	if ((hash = strrchr(type, '#')) != NULL)
		type = hash + 1;
	n = (colon = strchr(type, ':')) != NULL ? (size_t)(colon - type) : strlen(type);
	snprintf(buf, len, "%.*s", (int)n, type);
}

static void
ssm_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

enum attempt {
	ATTEMPT_OK,
	ATTEMPT_RETRY, /* throttled, 5xx, transport error */
	ATTEMPT_FATAL,
	ATTEMPT_TIMEOUT,
};

/* One signed POST. On success *answer holds the JSON reply. */
static enum attempt
ssm_attempt(struct ssm_client *c, const char *body, long timeout_ms, struct curlbuf *answer,
            char *err, size_t errlen)
{
	struct kvlist hdrs = KVLIST_INIT, rhdrs = KVLIST_INIT;
	struct sigv4_input in;
	struct sigv4_output out;
	struct curl_slist *sl = NULL;
	char serr[256], etype[128];
	long status = 0;
	CURLcode rc;
	enum attempt ret = ATTEMPT_FATAL;
	json_t *j = NULL;
	const char *msg;

	memset(&out, 0, sizeof out);
	kvlist_add(&hdrs, "Host", c->host);
	kvlist_add(&hdrs, "Content-Type", "application/x-amz-json-1.1");
	kvlist_add(&hdrs, "X-Amz-Target", "AmazonSSM.GetParametersByPath");
	memset(&in, 0, sizeof in);
	in.method = "POST";
	in.path = c->sign_path;
	in.query = NULL;
	in.headers = &hdrs;
	in.body = body;
	in.body_len = strlen(body);
	in.region = c->region;
	in.service = "ssm";
	in.when = time(NULL);
	in.normalize = 1;
	if (sigv4_sign(&c->creds, &in, &out, serr, sizeof serr) != 0) {
		snprintf(err, errlen, "parameter store: signing failed: %s", serr);
		goto out;
	}
	sigv4_apply(&c->creds, &out, &hdrs);
	sl = curlbuf_slist(&hdrs);
	/* "Name:" drops what libcurl would add; these are not signed. */
	sl = curl_slist_append(sl, "Expect:");
	sl = curl_slist_append(sl, "Accept:");

	curl_easy_reset(c->h);
	awsenv_curl_setup(c->h, NULL);
	curl_easy_setopt(c->h, CURLOPT_URL, c->url);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(c->h, CURLOPT_POST, 1L);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)in.body_len);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, curlbuf_write);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, curlbuf_header);
	curl_easy_setopt(c->h, CURLOPT_HEADERDATA, &rhdrs);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS,
	                 c->opt.connect_timeout_ms < timeout_ms ? c->opt.connect_timeout_ms
	                                                        : timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
	rc = curl_easy_perform(c->h);
	if (rc != CURLE_OK) {
		if (answer->overflowed)
			snprintf(err, errlen, "parameter store: answer larger than %d bytes",
			         SSM_MAX_ANSWER);
		else
			snprintf(err, errlen, "parameter store: %s", curl_easy_strerror(rc));
		ret = rc == CURLE_OPERATION_TIMEDOUT ? ATTEMPT_TIMEOUT
		      : answer->overflowed           ? ATTEMPT_FATAL
		                                     : ATTEMPT_RETRY;
		goto out;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		ret = ATTEMPT_OK;
		goto out;
	}
	j = json_loadb(answer->data ? answer->data : "", answer->len, 0, NULL);
	if (json_is_object(j)) {
		const char *t = json_string_value(json_object_get(j, "__type"));

		if (t == NULL)
			t = kvlist_get(&rhdrs, "X-Amzn-ErrorType");
		ssm_error_type(t, etype, sizeof etype);
		if ((msg = json_string_value(json_object_get(j, "message"))) == NULL &&
		    (msg = json_string_value(json_object_get(j, "Message"))) == NULL)
			msg = http_reason((int)status);
		snprintf(err, errlen, "parameter store: %s: %.300s", etype, msg);
	} else {
		const char *t = kvlist_get(&rhdrs, "X-Amzn-ErrorType");

		ssm_error_type(t, etype, sizeof etype);
		snprintf(err, errlen, "parameter store: %s: HTTP %ld", etype, status);
	}
	if (status >= 500 || status == 429 || strstr(etype, "Throttl") != NULL ||
	    strcmp(etype, "TooManyRequestsException") == 0)
		ret = ATTEMPT_RETRY;
	else
		ret = ATTEMPT_FATAL;
out:
	json_decref(j);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(sl);
	sigv4_output_free(&out);
	kvlist_free(&hdrs);
	kvlist_free(&rhdrs);
	return ret;
}

/* Milliseconds left before the deadline minus the margin; LONG_MAX-ish
 * when there is no deadline. */
static long long
ssm_left_ms(const struct ssm_client *c, long long deadline_ms)
{
	if (deadline_ms <= 0)
		return 1LL << 40;
	return deadline_ms - c->opt.margin_ms - curlbuf_now_ms();
}

/* One page, with retries. */
static enum ssm_status
ssm_page(struct ssm_client *c, const char *body, long long deadline_ms, struct curlbuf *answer,
         char *err, size_t errlen)
{
	long long left;
	long delay, timeout;
	long retry;
	enum attempt a;

	for (retry = 0;; retry++) {
		if ((left = ssm_left_ms(c, deadline_ms)) <= 0) {
			snprintf(err, errlen, "parameter store: no time left before the deadline");
			return SSM_TIMEOUT;
		}
		timeout = left < c->opt.timeout_ms ? (long)left : c->opt.timeout_ms;
		curlbuf_free_secret(answer);
		curlbuf_init(answer, SSM_MAX_ANSWER);
		a = ssm_attempt(c, body, timeout, answer, err, errlen);
		if (a == ATTEMPT_OK)
			return SSM_OK;
		if (a == ATTEMPT_FATAL)
			return SSM_FAILED;
		if (a == ATTEMPT_TIMEOUT && ssm_left_ms(c, deadline_ms) <= 0)
			return SSM_TIMEOUT;
		if (retry >= c->opt.retries)
			return a == ATTEMPT_TIMEOUT ? SSM_TIMEOUT : SSM_FAILED;
		/* Capped exponential back-off with jitter in [delay/2, delay]. */
		delay = c->opt.backoff_ms;
		for (long i = 0; i < retry && delay < c->opt.backoff_max_ms; i++)
			delay *= 2;
		if (delay > c->opt.backoff_max_ms)
			delay = c->opt.backoff_max_ms;
		if (delay > 1)
			delay = delay / 2 + random() % (delay / 2 + 1);
		if (ssm_left_ms(c, deadline_ms) <= delay) {
			/* Waiting would pass the deadline: report what SSM said. */
			return SSM_FAILED;
		}
		ssm_sleep_ms(delay);
	}
}

enum ssm_status
ssm_get_path(struct ssm_client *c, const char *path, long long deadline_ms, struct kvlist *out,
             char *err, size_t errlen)
{
	struct curlbuf answer;
	char *token = NULL, *body;
	json_t *req, *j, *params, *p;
	json_error_t jerr;
	enum ssm_status st = SSM_OK;
	size_t i;
	int pages;

	curlbuf_init(&answer, SSM_MAX_ANSWER);
	for (pages = 0;; pages++) {
		if (pages >= SSM_MAX_PAGES) {
			snprintf(err, errlen, "parameter store: more than %d pages for %s",
			         SSM_MAX_PAGES, path);
			st = SSM_FAILED;
			break;
		}
		req = json_object();
		json_object_set_new(req, "Path", json_string(path));
		json_object_set_new(req, "Recursive", json_true());
		json_object_set_new(req, "WithDecryption", json_true());
		json_object_set_new(req, "MaxResults", json_integer(10));
		if (token != NULL)
			json_object_set_new(req, "NextToken", json_string(token));
		body = json_dumps(req, JSON_COMPACT);
		json_decref(req);
		if (body == NULL) {
			snprintf(err, errlen, "parameter store: cannot encode the request");
			st = SSM_FAILED;
			break;
		}
		st = ssm_page(c, body, deadline_ms, &answer, err, errlen);
		free(body);
		if (st != SSM_OK)
			break;

		j = json_loadb(answer.data ? answer.data : "", answer.len, 0, &jerr);
		curlbuf_free_secret(&answer);
		curlbuf_init(&answer, SSM_MAX_ANSWER);
		if (!json_is_object(j)) {
			json_decref(j);
			snprintf(err, errlen, "parameter store: answer is not a JSON object");
			st = SSM_FAILED;
			break;
		}
		params = json_object_get(j, "Parameters");
		json_array_foreach(params, i, p)
		{
			const char *name = json_string_value(json_object_get(p, "Name"));
			const char *value = json_string_value(json_object_get(p, "Value"));

			if (name != NULL && value != NULL)
				kvlist_add(out, name, value);
		}
		free(token);
		token = NULL;
		p = json_object_get(j, "NextToken");
		if (json_is_string(p) && json_string_length(p) > 0)
			token = xstrdup(json_string_value(p));
		json_decref(j);
		if (token == NULL)
			break;
	}
	free(token);
	curlbuf_free_secret(&answer);
	return st;
}
