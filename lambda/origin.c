/*
 * origin.c: calling the origin with libcurl.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "awsenv.h"
#include "curlbuf.h"
#include "httputil.h"
#include "origin.h"
#include "xmalloc.h"

struct origin {
	CURL *h;
	struct curl_slist *connect_to;
	long connect_timeout_ms;
	long timeout_ms;
	/* The call in progress (origin_prepare to origin_release). */
	char *call_url;
	char *call_host;
	int call_port;
	long call_timeout_ms;
	struct curl_slist *call_headers;
	struct kvlist call_rhdrs;
	char detail[CURL_ERROR_SIZE];
};

/* A port field of a connect-to entry: empty (any/same) or 1-65535. */
static int
origin_port_ok(const char *p, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0)
		return 1;
	if (n > 5)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* A host field: empty, a name or IPv4 address, or a bracketed IPv6 address. */
static int
origin_host_ok(const char *p, size_t n)
{
	size_t i;

	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
		for (i = 1; i + 1 < n; i++)
			if (!isxdigit((unsigned char)p[i]) && p[i] != ':' && p[i] != '.')
				return 0;
		return n > 2;
	}
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '.' && p[i] != '_')
			return 0;
	return 1;
}

/*
 * HOST:PORT:CONNECT_HOST:CONNECT_PORT as curl's --connect-to takes it: HOST
 * or PORT may be empty (any), CONNECT_HOST or CONNECT_PORT empty (unchanged);
 * hosts may be bracketed IPv6 addresses. Checked here because libcurl only
 * finds a bad entry when a request matches it, and then ignores it.
 */
static int
origin_connect_to_ok(const char *e)
{
	const char *f[4], *p = e;
	size_t len[4];
	int i;

	for (i = 0; i < 4; i++) {
		const char *start = p, *end;

		if (*p == '[') {
			if ((end = strchr(p, ']')) == NULL)
				return 0;
			end++;
		} else
			end = p + strcspn(p, ":");
		if (i < 3 && *end != ':')
			return 0;
		if (i == 3 && *end != '\0')
			return 0;
		f[i] = start;
		len[i] = (size_t)(end - start);
		p = end + (i < 3 ? 1 : 0);
	}
	return origin_host_ok(f[0], len[0]) && origin_port_ok(f[1], len[1]) &&
	       origin_host_ok(f[2], len[2]) && origin_port_ok(f[3], len[3]) &&
	       (len[2] > 0 || len[3] > 0);
}

struct origin *
origin_new(const char *connect_to, long connect_timeout_ms, long timeout_ms, char *err,
           size_t errlen)
{
	struct origin *o = xcalloc(1, sizeof *o);
	char *copy, *tok, *save = NULL;

	o->connect_timeout_ms = connect_timeout_ms;
	o->timeout_ms = timeout_ms;
	if (connect_to != NULL) {
		copy = xstrdup(connect_to);
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			struct curl_slist *nl;

			while (isspace((unsigned char)*tok))
				tok++;
			for (char *end = tok + strlen(tok);
			     end > tok && isspace((unsigned char)end[-1]);)
				*--end = '\0';
			if (*tok == '\0')
				continue;
			if (!origin_connect_to_ok(tok)) {
				snprintf(err, errlen,
				         "SSM_SIGN_PROXY_CONNECT_TO: \"%.200s\" is not "
				         "HOST:PORT:CONNECT_HOST:CONNECT_PORT",
				         tok);
				free(copy);
				origin_free(o);
				return NULL;
			}
			if ((nl = curl_slist_append(o->connect_to, tok)) == NULL) {
				snprintf(err, errlen, "out of memory");
				free(copy);
				origin_free(o);
				return NULL;
			}
			o->connect_to = nl;
		}
		free(copy);
	}
	if ((o->h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "libcurl: cannot create a handle");
		origin_free(o);
		return NULL;
	}
	return o;
}

void
origin_free(struct origin *o)
{
	if (o == NULL)
		return;
	if (o->h != NULL) {
		origin_release(o);
		curl_easy_cleanup(o->h);
	}
	curl_slist_free_all(o->connect_to);
	free(o);
}

/* Headers the client sent that must not reach the origin as they are. */
static void
origin_request_headers(const struct kvlist *in, struct kvlist *out)
{
	size_t i;

	for (i = 0; i < in->n; i++)
		kvlist_add(out, in->v[i].name, in->v[i].value);
	http_strip_hop_by_hop(out, 0);
	/* libcurl writes Host from the URL and Content-Length from the body;
	 * the client's Expect was answered by the daemon already. */
	kvlist_del(out, "Host");
	kvlist_del(out, "Content-Length");
	kvlist_del(out, "Expect");
}

/* "Name:" (no value) makes libcurl drop a header it would add by itself:
 * the origin sees only what the client sent. */
static struct curl_slist *
origin_suppress(struct curl_slist *sl, const char *name)
{
	struct curl_slist *nl;
	char *line;

	xasprintf(&line, "%s:", name);
	nl = curl_slist_append(sl, line);
	free(line);
	if (nl == NULL) {
		curl_slist_free_all(sl);
		return NULL;
	}
	return nl;
}

/*
 * Set up o's handle for rq, its body going to write/warg. NULL with *st and
 * err set when the call cannot start (no time left before the deadline).
 */
CURL *
origin_prepare(struct origin *o, const struct origin_request *rq, curl_write_callback write,
               void *warg, enum origin_status *st, char *err, size_t errlen)
{
	struct kvlist hdrs = KVLIST_INIT;
	struct curl_slist *sl;
	long long left = 0;
	long timeout = o->timeout_ms;
	int is_head = strcmp(rq->method, "HEAD") == 0;
	int with_body = rq->body_len > 0 || strcmp(rq->method, "POST") == 0 ||
	                strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0;

	origin_release(o);
	if (rq->deadline_ms > 0) {
		left = rq->deadline_ms - curlbuf_now_ms();
		if (left <= 0) {
			snprintf(err, errlen, "no time left before the function's deadline");
			*st = ORIGIN_TIMEOUT;
			return NULL;
		}
		if (timeout == 0 || left < timeout)
			timeout = (long)left;
	}
	o->call_timeout_ms = timeout;
	o->call_host = xstrdup(rq->host);
	o->call_port = rq->port;
	if (rq->port == 443)
		xasprintf(&o->call_url, "https://%s%s", rq->host, rq->target);
	else
		xasprintf(&o->call_url, "https://%s:%d%s", rq->host, rq->port, rq->target);
	origin_request_headers(rq->headers, &hdrs);
	sl = curlbuf_slist(&hdrs);
	sl = origin_suppress(sl, "Expect");
	if (sl != NULL && kvlist_get(&hdrs, "Accept") == NULL)
		sl = origin_suppress(sl, "Accept");
	if (sl != NULL && with_body && kvlist_get(&hdrs, "Content-Type") == NULL)
		sl = origin_suppress(sl, "Content-Type");
	/* The request's headers hold the injected secrets. */
	for (size_t i = 0; i < hdrs.n; i++)
		explicit_bzero(hdrs.v[i].value, strlen(hdrs.v[i].value));
	kvlist_free(&hdrs);
	o->call_headers = sl;

	curl_easy_reset(o->h);
	awsenv_curl_setup(o->h, NULL);
	curl_easy_setopt(o->h, CURLOPT_URL, o->call_url);
	/* The path goes out exactly as built: no dot-segment squashing. */
	curl_easy_setopt(o->h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(o->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(o->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(o->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(o->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(o->h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->connect_to != NULL)
		curl_easy_setopt(o->h, CURLOPT_CONNECT_TO, o->connect_to);
	curl_easy_setopt(o->h, CURLOPT_HTTPHEADER, sl);
	if (is_head)
		curl_easy_setopt(o->h, CURLOPT_NOBODY, 1L);
	else if (with_body) {
		curl_easy_setopt(o->h, CURLOPT_POST, 1L);
		curl_easy_setopt(o->h, CURLOPT_POSTFIELDS,
		                 rq->body != NULL ? (const char *)rq->body : "");
		curl_easy_setopt(o->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else
		curl_easy_setopt(o->h, CURLOPT_HTTPGET, 1L);
	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0 && !is_head)
		curl_easy_setopt(o->h, CURLOPT_CUSTOMREQUEST, rq->method);
	curl_easy_setopt(o->h, CURLOPT_WRITEFUNCTION, write);
	curl_easy_setopt(o->h, CURLOPT_WRITEDATA, warg);
	o->detail[0] = '\0';
	curl_easy_setopt(o->h, CURLOPT_ERRORBUFFER, o->detail);
	curl_easy_setopt(o->h, CURLOPT_HEADERFUNCTION, curlbuf_header);
	curl_easy_setopt(o->h, CURLOPT_HEADERDATA, &o->call_rhdrs);
	curl_easy_setopt(o->h, CURLOPT_CONNECTTIMEOUT_MS,
	                 timeout > 0 && timeout < o->connect_timeout_ms ? timeout
	                                                                : o->connect_timeout_ms);
	if (timeout > 0)
		curl_easy_setopt(o->h, CURLOPT_TIMEOUT_MS, timeout);
	return o->h;
}

int
origin_head(struct origin *o, struct kvlist *headers)
{
	long status = 0;

	curl_easy_getinfo(o->h, CURLINFO_RESPONSE_CODE, &status);
	kvlist_init(headers);
	for (size_t i = 0; i < o->call_rhdrs.n; i++)
		kvlist_add(headers, o->call_rhdrs.v[i].name, o->call_rhdrs.v[i].value);
	http_strip_hop_by_hop(headers, 0);
	return (int)status;
}

enum origin_status
origin_result(struct origin *o, CURLcode rc, char *err, size_t errlen)
{
	curl_off_t pretransfer_us = 0;
	long timeout = o->call_timeout_ms;

	/* Zero until a request went out on a connection (new or reused). */
	curl_easy_getinfo(o->h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
	if (rc == CURLE_OK)
		return ORIGIN_OK;
	if (rc == CURLE_OPERATION_TIMEDOUT && pretransfer_us == 0 &&
	    (timeout == 0 || o->connect_timeout_ms < timeout)) {
		snprintf(err, errlen, "cannot connect to %s:%d within %ld ms", o->call_host,
		         o->call_port, o->connect_timeout_ms);
		return ORIGIN_UNREACHABLE;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(err, errlen, "%s:%d did not answer in time (%ld ms)", o->call_host,
		         o->call_port, timeout);
		return ORIGIN_TIMEOUT;
	}
	/* The error buffer says which certificate check failed or which
	 * address refused: what an operator needs. */
	snprintf(err, errlen, "cannot reach %s:%d: %s", o->call_host, o->call_port,
	         o->detail[0] != '\0' ? o->detail : curl_easy_strerror(rc));
	return ORIGIN_UNREACHABLE;
}

void
origin_release(struct origin *o)
{
	curl_easy_setopt(o->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(o->h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(o->h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(o->h, CURLOPT_HEADERDATA, NULL);
	curl_slist_free_all(o->call_headers);
	o->call_headers = NULL;
	kvlist_free(&o->call_rhdrs);
	free(o->call_url);
	o->call_url = NULL;
	free(o->call_host);
	o->call_host = NULL;
}

enum origin_status
origin_call(struct origin *o, const struct origin_request *rq, struct alb_response *resp, char *err,
            size_t errlen)
{
	struct curlbuf body;
	enum origin_status ret;
	CURLcode rc;
	CURL *h;

	curlbuf_init(&body, rq->max_body);
	if ((h = origin_prepare(o, rq, curlbuf_write, &body, &ret, err, errlen)) == NULL)
		return ret;
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK && body.overflowed) {
		snprintf(err, errlen,
		         "the origin's response is larger than the %zu bytes a Lambda "
		         "response can carry",
		         rq->max_body);
		ret = ORIGIN_TOO_LARGE;
	} else if ((ret = origin_result(o, rc, err, errlen)) == ORIGIN_OK) {
		resp->status = origin_head(o, &resp->headers);
		resp->status_description = NULL;
		resp->body = (unsigned char *)curlbuf_steal(&body, &resp->body_len);
	}
	origin_release(o);
	curlbuf_free(&body);
	return ret;
}
