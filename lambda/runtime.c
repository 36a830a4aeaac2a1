/*
 * runtime.c: the Lambda Runtime API client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "curlbuf.h"
#include "kvlist.h"
#include "runtime.h"
#include "xmalloc.h"

struct runtime {
	CURL *h;
	char *base; /* http://host:port/2018-06-01 */
	volatile sig_atomic_t *stop;
	long timeout_ms;
	/* The streaming post in progress (runtime_stream_prepare to _finish). */
	struct curlbuf stream_answer;
	struct kvlist stream_hdrs;
	struct curl_slist *stream_sl;
	char *stream_path;
	/* A handle of its own for each streaming post: libcurl 7.88 keeps a
	 * chunked upload's trailer state across transfers on one handle, and
	 * the next chunked upload on it writes before its buffer. */
	CURL *sh;
};

/* A runtime answer (error bodies, acks) is small; a bigger one is a bug. */
#define RUNTIME_SMALL_ANSWER (64 * 1024)
/* An event is at most 6 MB; leave room. */
#define RUNTIME_MAX_EVENT (8 * 1024 * 1024)

struct runtime *
runtime_new(const char *api, volatile sig_atomic_t *stop)
{
	struct runtime *rt = xcalloc(1, sizeof *rt);

	xasprintf(&rt->base, "http://%s/2018-06-01", api);
	rt->stop = stop;
	rt->timeout_ms = 30000;
	if ((rt->h = curl_easy_init()) == NULL) {
		free(rt->base);
		free(rt);
		return NULL;
	}
	return rt;
}

void
runtime_free(struct runtime *rt)
{
	if (rt == NULL)
		return;
	curl_easy_cleanup(rt->h);
	if (rt->sh != NULL)
		curl_easy_cleanup(rt->sh);
	curlbuf_free(&rt->stream_answer);
	kvlist_free(&rt->stream_hdrs);
	curl_slist_free_all(rt->stream_sl);
	free(rt->stream_path);
	free(rt->base);
	free(rt);
}

void
runtime_set_timeout(struct runtime *rt, long timeout_ms)
{
	rt->timeout_ms = timeout_ms;
}

void
runtime_invocation_free(struct runtime_invocation *inv)
{
	free(inv->request_id);
	free(inv->trace_id);
	free(inv->function_arn);
	free(inv->event);
	memset(inv, 0, sizeof *inv);
}

static int
runtime_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                 curl_off_t ulnow)
{
	struct runtime *rt = arg;

	/* libcurl calls this about once a second even while idle: the way out
	 * of the blocking /next on SIGTERM. */
	return rt->stop != NULL && *rt->stop ? 1 : 0;
}

static void
runtime_setup_handle(struct runtime *rt, CURL *h, const char *url, struct curlbuf *body,
                     struct kvlist *hdrs)
{
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* The Runtime API is on loopback or a link-local address: never a proxy. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curlbuf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, curlbuf_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, runtime_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, rt);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, rt->timeout_ms);
}

static void
runtime_setup(struct runtime *rt, const char *url, struct curlbuf *body, struct kvlist *hdrs)
{
	runtime_setup_handle(rt, rt->h, url, body, hdrs);
}

int
runtime_next(struct runtime *rt, struct runtime_invocation *inv, char *err, size_t errlen)
{
	struct curlbuf body;
	struct kvlist hdrs = KVLIST_INIT;
	char *url;
	const char *v;
	long status = 0;
	CURLcode rc;
	int ret = -1;

	memset(inv, 0, sizeof *inv);
	curlbuf_init(&body, RUNTIME_MAX_EVENT);
	xasprintf(&url, "%s/runtime/invocation/next", rt->base);
	runtime_setup(rt, url, &body, &hdrs);
	/* No timeout: /next blocks until Lambda has an event for us. */
	curl_easy_setopt(rt->h, CURLOPT_HTTPGET, 1L);
	rc = curl_easy_perform(rt->h);
	if (rc == CURLE_ABORTED_BY_CALLBACK && rt->stop != NULL && *rt->stop) {
		ret = 1;
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "GET /runtime/invocation/next: %s",
		         body.overflowed ? "event too large" : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(rt->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(err, errlen, "GET /runtime/invocation/next: HTTP %ld", status);
		goto out;
	}
	if ((v = kvlist_get(&hdrs, "Lambda-Runtime-Aws-Request-Id")) == NULL || *v == '\0') {
		snprintf(err, errlen,
		         "GET /runtime/invocation/next: no Lambda-Runtime-Aws-Request-Id");
		goto out;
	}
	inv->request_id = xstrdup(v);
	if ((v = kvlist_get(&hdrs, "Lambda-Runtime-Deadline-Ms")) != NULL)
		inv->deadline_ms = strtoll(v, NULL, 10);
	if ((v = kvlist_get(&hdrs, "Lambda-Runtime-Trace-Id")) != NULL && *v != '\0')
		inv->trace_id = xstrdup(v);
	if ((v = kvlist_get(&hdrs, "Lambda-Runtime-Invoked-Function-Arn")) != NULL && *v != '\0')
		inv->function_arn = xstrdup(v);
	if (body.data == NULL)
		curlbuf_append(&body, "", 0);
	inv->event = curlbuf_steal(&body, &inv->event_len);
	ret = 0;
out:
	if (ret != 0)
		runtime_invocation_free(inv);
	curlbuf_free(&body);
	kvlist_free(&hdrs);
	free(url);
	return ret;
}

static int
runtime_post(struct runtime *rt, const char *path, const char *body, size_t len,
             const char *error_type, char *err, size_t errlen)
{
	struct curlbuf answer;
	struct kvlist hdrs = KVLIST_INIT;
	struct curl_slist *sl = NULL;
	char *url, *line = NULL;
	long status = 0;
	CURLcode rc;
	int ret = -1;

	curlbuf_init(&answer, RUNTIME_SMALL_ANSWER);
	xasprintf(&url, "%s%s", rt->base, path);
	runtime_setup(rt, url, &answer, &hdrs);
	sl = curl_slist_append(sl, "Content-Type: application/json");
	sl = curl_slist_append(sl, "Expect:");
	if (error_type != NULL) {
		xasprintf(&line, "Lambda-Runtime-Function-Error-Type: %s", error_type);
		sl = curl_slist_append(sl, line);
	}
	curl_easy_setopt(rt->h, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(rt->h, CURLOPT_POST, 1L);
	curl_easy_setopt(rt->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(rt->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(rt->h, CURLOPT_TIMEOUT_MS, rt->timeout_ms);
	rc = curl_easy_perform(rt->h);
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && answer.overflowed)) {
		snprintf(err, errlen, "POST %s: %s", path, curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(rt->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "POST %s: HTTP %ld %.200s", path, status,
		         answer.data ? answer.data : "");
		goto out;
	}
	ret = 0;
out:
	/* The body pointer must not outlive this call inside the handle. */
	curl_easy_setopt(rt->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(rt->h, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(sl);
	curlbuf_free(&answer);
	kvlist_free(&hdrs);
	free(line);
	free(url);
	return ret;
}

int
runtime_respond(struct runtime *rt, const char *request_id, const char *body, size_t len, char *err,
                size_t errlen)
{
	char *path, *id = curl_easy_escape(rt->h, request_id, 0);
	int ret;

	xasprintf(&path, "/runtime/invocation/%s/response", id ? id : "");
	ret = runtime_post(rt, path, body, len, NULL, err, errlen);
	curl_free(id);
	free(path);
	return ret;
}

static char *
runtime_error_body(const char *type, const char *message, size_t *len)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "errorMessage", json_string(message ? message : ""));
	json_object_set_new(o, "errorType", json_string(type));
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		s = xstrdup("{}");
	json_decref(o);
	*len = strlen(s);
	return s;
}

int
runtime_error(struct runtime *rt, const char *request_id, const char *type, const char *message,
              char *err, size_t errlen)
{
	char *path, *body, *id = curl_easy_escape(rt->h, request_id, 0);
	size_t len;
	int ret;

	xasprintf(&path, "/runtime/invocation/%s/error", id ? id : "");
	body = runtime_error_body(type, message, &len);
	ret = runtime_post(rt, path, body, len, type, err, errlen);
	free(body);
	curl_free(id);
	free(path);
	return ret;
}

int
runtime_init_error(struct runtime *rt, const char *type, const char *message, char *err,
                   size_t errlen)
{
	char *body;
	size_t len;
	int ret;

	body = runtime_error_body(type, message, &len);
	ret = runtime_post(rt, "/runtime/init/error", body, len, type, err, errlen);
	free(body);
	return ret;
}

CURL *
runtime_stream_prepare(struct runtime *rt, const char *request_id, curl_read_callback read,
                       curl_trailer_callback trailers, void *arg)
{
	struct curl_slist *sl = NULL;
	char *url, *id = curl_easy_escape(rt->h, request_id, 0);

	xasprintf(&rt->stream_path, "/runtime/invocation/%s/response", id ? id : "");
	curl_free(id);
	xasprintf(&url, "%s%s", rt->base, rt->stream_path);
	curlbuf_init(&rt->stream_answer, RUNTIME_SMALL_ANSWER);
	kvlist_init(&rt->stream_hdrs);
	if ((rt->sh = curl_easy_init()) == NULL) {
		free(url);
		return NULL;
	}
	runtime_setup_handle(rt, rt->sh, url, &rt->stream_answer, &rt->stream_hdrs);
	free(url);
	sl = curl_slist_append(sl, "Lambda-Runtime-Function-Response-Mode: streaming");
	sl = curl_slist_append(sl, "Transfer-Encoding: chunked");
	sl = curl_slist_append(sl,
	                       "Content-Type: application/vnd.awslambda.http-integration-response");
	sl = curl_slist_append(sl, "Trailer: Lambda-Runtime-Function-Error-Type, "
	                           "Lambda-Runtime-Function-Error-Body");
	sl = curl_slist_append(sl, "Expect:");
	rt->stream_sl = sl;
	curl_easy_setopt(rt->sh, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(rt->sh, CURLOPT_POST, 1L);
	curl_easy_setopt(rt->sh, CURLOPT_READFUNCTION, read);
	curl_easy_setopt(rt->sh, CURLOPT_READDATA, arg);
	curl_easy_setopt(rt->sh, CURLOPT_TRAILERFUNCTION, trailers);
	curl_easy_setopt(rt->sh, CURLOPT_TRAILERDATA, arg);
	/* No total timeout: the answer takes as long as the origin's body
	 * (bounded by the origin's own timeout and the invocation deadline). */
	return rt->sh;
}

int
runtime_stream_finish(struct runtime *rt, CURLcode rc, char *err, size_t errlen)
{
	long status = 0;
	int ret = -1;

	if (rc != CURLE_OK) {
		snprintf(err, errlen, "POST %s (streaming): %s", rt->stream_path,
		         curl_easy_strerror(rc));
		goto out;
	}
	if (rt->sh == NULL) {
		snprintf(err, errlen, "POST %s (streaming): libcurl cannot create a handle",
		         rt->stream_path ? rt->stream_path : "");
		goto out;
	}
	curl_easy_getinfo(rt->sh, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "POST %s (streaming): HTTP %ld %.200s", rt->stream_path,
		         status, rt->stream_answer.data ? rt->stream_answer.data : "");
		goto out;
	}
	ret = 0;
out:
	if (rt->sh != NULL)
		curl_easy_cleanup(rt->sh);
	rt->sh = NULL;
	curl_slist_free_all(rt->stream_sl);
	rt->stream_sl = NULL;
	curlbuf_free(&rt->stream_answer);
	kvlist_free(&rt->stream_hdrs);
	free(rt->stream_path);
	rt->stream_path = NULL;
	return ret;
}

char *
runtime_error_json(const char *type, const char *message, size_t *len)
{
	return runtime_error_body(type, message, len);
}
