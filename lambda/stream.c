/*
 * stream.c: the streaming answer (see stream.h). Two easy handles, the
 * origin's and the Runtime API's, on one curl multi handle driven by a
 * blocking loop (the function serves one invocation at a time). The
 * callbacks never call into libcurl: they only set "paused" flags, and the
 * loop resumes a paused handle once the buffer has room (origin) or data
 * (post), so no callback re-enters libcurl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "httputil.h"
#include "log.h"
#include "runtime.h"
#include "stream.h"
#include "xmalloc.h"

struct stream {
	CURL *oh; /* the origin's handle, NULL when there is no origin call */
	CURL *rh; /* the Runtime API post */
	struct origin *o;
	/* Body bytes between the origin and the post: [off, len) of buf. */
	unsigned char *buf;
	size_t cap, len, off;
	/* The prelude, once the origin's head is known; poff bytes sent. */
	char *prelude;
	size_t plen, poff;
	int status;
	int origin_done;
	int origin_paused;
	int post_paused;
	/* Set when the origin failed after the prelude went out. */
	char *trailer_type;
	char *trailer_message;
	char *error;
	size_t body_bytes;
};

void
stream_outcome_free(struct stream_outcome *out)
{
	free(out->error);
	memset(out, 0, sizeof *out);
}

char *
stream_prelude(int status, const struct kvlist *headers, size_t *len)
{
	json_t *o = json_object(), *single = json_object(), *multi = json_object(),
	       *cookies = json_array();
	char *s, *out;
	size_t n;

	json_object_set_new(o, "statusCode", json_integer(status));
	for (size_t i = 0; i < headers->n; i++) {
		const char *name = headers->v[i].name, *value = headers->v[i].value;
		json_t *arr;

		if (strcasecmp(name, "Set-Cookie") == 0) {
			json_array_append_new(cookies, json_string(value));
			continue;
		}
		if (kvlist_count(headers, name) == 1) {
			json_object_set_new(single, name, json_string(value));
			continue;
		}
		if ((arr = json_object_get(multi, name)) == NULL) {
			arr = json_array();
			json_object_set_new(multi, name, arr);
		}
		json_array_append_new(arr, json_string(value));
	}
	json_object_set_new(o, "headers", single);
	if (json_object_size(multi) > 0)
		json_object_set_new(o, "multiValueHeaders", multi);
	else
		json_decref(multi);
	if (json_array_size(cookies) > 0)
		json_object_set_new(o, "cookies", cookies);
	else
		json_decref(cookies);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		s = xstrdup("{\"statusCode\":502}");
	n = strlen(s);
	out = xmalloc(n + STREAM_PRELUDE_SEPARATOR_LEN);
	memcpy(out, s, n);
	memset(out + n, 0, STREAM_PRELUDE_SEPARATOR_LEN);
	free(s);
	*len = n + STREAM_PRELUDE_SEPARATOR_LEN;
	return out;
}

/* Append to the buffer, growing it (for answers the function writes). */
static void
stream_put(struct stream *s, const void *p, size_t n)
{
	if (s->cap - s->len < n) {
		s->cap = s->len + n;
		s->buf = xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void
stream_set_head(struct stream *s, int status, const struct kvlist *headers)
{
	free(s->prelude);
	s->status = status;
	s->prelude = stream_prelude(status, headers, &s->plen);
	s->poff = 0;
}

/* An answer the function writes itself: status, a text/plain line. */
static void
stream_set_error(struct stream *s, int status, const char *msg)
{
	struct kvlist h = KVLIST_INIT;

	kvlist_add(&h, "Content-Type", "text/plain; charset=utf-8");
	stream_set_head(s, status, &h);
	kvlist_free(&h);
	s->len = s->off = 0;
	stream_put(s, msg, strlen(msg));
	stream_put(s, "\n", 1);
	free(s->error);
	s->error = xstrdup(msg);
}

static size_t
stream_origin_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t n = size * nmemb;

	if (s->prelude == NULL) {
		struct kvlist h;
		int status = origin_head(s->o, &h);
		stream_set_head(s, status, &h);
		kvlist_free(&h);
	}
	if (s->cap - s->len < n && s->off > 0) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	if (s->cap - s->len < n) {
		if (s->len > 0) {
			s->origin_paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		/* A piece larger than the whole buffer: take it anyway. */
		s->cap = n;
		s->buf = xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->body_bytes += n;
	return n;
}

static size_t
stream_post_read(char *dst, size_t size, size_t nitems, void *arg)
{
	struct stream *s = arg;
	size_t max = size * nitems, n;

	if (s->prelude != NULL && s->poff < s->plen) {
		n = s->plen - s->poff < max ? s->plen - s->poff : max;
		memcpy(dst, s->prelude + s->poff, n);
		s->poff += n;
		return n;
	}
	if (s->prelude != NULL && s->off < s->len) {
		n = s->len - s->off < max ? s->len - s->off : max;
		memcpy(dst, s->buf + s->off, n);
		s->off += n;
		if (s->off == s->len)
			s->off = s->len = 0;
		return n;
	}
	if (s->prelude != NULL && s->origin_done)
		return 0;
	s->post_paused = 1;
	return CURL_READFUNC_PAUSE;
}

static int
stream_trailers(struct curl_slist **list, void *arg)
{
	struct stream *s = arg;
	char *json, *b64, *line;
	size_t len;

	if (s->trailer_type == NULL)
		return CURL_TRAILERFUNC_OK;
	/* The body is base64 of the error JSON, as AWS's runtimes send it. */
	json = runtime_error_json(s->trailer_type, s->trailer_message, &len);
	b64 = http_base64_encode((const unsigned char *)json, len, NULL);
	xasprintf(&line, "Lambda-Runtime-Function-Error-Type: %s", s->trailer_type);
	*list = curl_slist_append(*list, line);
	free(line);
	xasprintf(&line, "Lambda-Runtime-Function-Error-Body: %s", b64 ? b64 : "");
	*list = curl_slist_append(*list, line);
	free(line);
	free(b64);
	free(json);
	return *list != NULL ? CURL_TRAILERFUNC_OK : CURL_TRAILERFUNC_ABORT;
}

/* The origin's transfer ended with rc. */
static void
stream_origin_done(struct stream *s, CURLcode rc)
{
	enum origin_status st;
	char err[512];

	s->origin_done = 1;
	st = origin_result(s->o, rc, err, sizeof err);
	if (st == ORIGIN_OK) {
		if (s->prelude == NULL) {
			/* No body (HEAD, 204, an empty answer): the head now. */
			struct kvlist h;
			int status = origin_head(s->o, &h);
			stream_set_head(s, status, &h);
			kvlist_free(&h);
		}
		return;
	}
	if (s->prelude == NULL || s->poff == 0) {
		/* Nothing went out yet: the client gets a clean error answer. */
		stream_set_error(s, st == ORIGIN_TIMEOUT ? 504 : 502, err);
		return;
	}
	/* Too late for a status: tell Lambda in the trailers, so that the
	 * caller sees an InvokeComplete with an error instead of a complete
	 * looking body. */
	s->trailer_type =
	    xstrdup(st == ORIGIN_TIMEOUT ? "Runtime.OriginTimeout" : "Runtime.OriginError");
	xasprintf(&s->trailer_message, "the origin's answer was cut short: %s", err);
	free(s->error);
	s->error = xstrdup(s->trailer_message);
}

int
stream_respond(struct runtime *rt, const char *request_id, struct origin *o,
               const struct origin_request *orq, const struct alb_response *fixed,
               size_t buffer_bytes, struct stream_outcome *out, char *err, size_t errlen)
{
	struct stream s;
	CURLM *m;
	CURLMsg *msg;
	CURLcode post_rc = CURLE_OK;
	enum origin_status st;
	int running = 0, post_done = 0, post_added = 0, ret;
	char oerr[512];

	memset(out, 0, sizeof *out);
	memset(&s, 0, sizeof s);
	s.o = o;
	/* Room for two of libcurl's largest write pieces at least. */
	s.cap = buffer_bytes > 2 * CURL_MAX_WRITE_SIZE ? buffer_bytes : 2 * CURL_MAX_WRITE_SIZE;
	s.buf = xmalloc(s.cap);

	if ((s.rh = runtime_stream_prepare(rt, request_id, stream_post_read, stream_trailers,
	                                   &s)) == NULL) {
		free(s.buf);
		runtime_stream_finish(rt, CURLE_OUT_OF_MEMORY, err, errlen);
		return -1;
	}
	if (orq == NULL) {
		stream_set_head(&s, fixed->status, &fixed->headers);
		if (fixed->body_len > 0)
			stream_put(&s, fixed->body, fixed->body_len);
		s.origin_done = 1;
	} else if ((s.oh = origin_prepare(o, orq, stream_origin_write, &s, &st, oerr,
	                                  sizeof oerr)) == NULL) {
		stream_set_error(&s, st == ORIGIN_TIMEOUT ? 504 : 502, oerr);
		s.origin_done = 1;
	}

	m = curl_multi_init();
	if (s.oh != NULL)
		curl_multi_add_handle(m, s.oh);
	for (;;) {
		/* The post starts once the prelude is known, so that the
		 * Runtime API sees a response only when there is one to give. */
		if (!post_added && s.prelude != NULL) {
			curl_multi_add_handle(m, s.rh);
			post_added = 1;
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &(int){0})) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			if (msg->easy_handle == s.oh) {
				CURLcode rc = msg->data.result;
				curl_multi_remove_handle(m, s.oh);
				stream_origin_done(&s, rc);
				s.oh = NULL;
			} else if (msg->easy_handle == s.rh) {
				post_rc = msg->data.result;
				curl_multi_remove_handle(m, s.rh);
				post_done = 1;
			}
		}
		if (post_done)
			break;
		/* Resume what the callbacks paused, then go round again at once:
		 * resuming may deliver data and pause anew. */
		if (s.origin_paused && s.oh != NULL && s.len - s.off <= s.cap / 2) {
			s.origin_paused = 0;
			curl_easy_pause(s.oh, CURLPAUSE_CONT);
			continue;
		}
		if (s.post_paused && s.prelude != NULL &&
		    (s.poff < s.plen || s.off < s.len || s.origin_done)) {
			s.post_paused = 0;
			curl_easy_pause(s.rh, CURLPAUSE_CONT);
			continue;
		}
		/* The prelude just came: start the post now, not after a poll. */
		if (!post_added && s.prelude != NULL)
			continue;
		curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	if (s.oh != NULL) {
		/* The post ended first (the Runtime API refused it): stop. */
		curl_multi_remove_handle(m, s.oh);
		s.oh = NULL;
	}
	curl_multi_cleanup(m);
	if (orq != NULL)
		origin_release(o);

	ret = runtime_stream_finish(rt, post_rc, err, errlen);
	out->status = s.status;
	out->truncated = s.trailer_type != NULL;
	out->body_bytes = s.body_bytes;
	out->error = s.error;
	s.error = NULL;
	free(s.buf);
	free(s.prelude);
	free(s.trailer_type);
	free(s.trailer_message);
	return ret;
}
