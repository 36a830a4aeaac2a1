/*
 * github-repos: a small GitHub API client ("list my repositories") written
 * the usual way against libcurl, whose transport is swapped for
 * libssm-sign-proxy, as the Go project's README does with an
 * http.RoundTripper under mackerel-client-go. The client code (gh_*) only
 * sees struct transport: with the libcurl one it needs a token on this
 * host; with the ssm-sign-proxy one the Lambda function adds the token and
 * this host never holds it.
 *
 *   SSM_SIGN_PROXY_FUNCTION=my-signer ./github-repos
 *   GITHUB_TOKEN=... ./github-repos --direct
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ssm-sign-proxy.h"

/* What the API client needs from HTTP: one call, a status and a body. */
struct transport {
	int (*call)(struct transport *, const char *method, const char *url, const char *accept,
	            long *status, char **body, size_t *len);
	void *impl;
};

/* --- the transport through the Lambda function --------------------------- */

static int
via_lambda(struct transport *t, const char *method, const char *url, const char *accept,
           long *status, char **body, size_t *len)
{
	ssp_request *req = ssp_request_new(method, url);
	ssp_response *resp;
	ssp_error *err;
	const void *b;

	ssp_request_add_header(req, "Accept", accept);
	ssp_request_add_header(req, "User-Agent", "github-repos-example");
	if (ssp_roundtrip(t->impl, req, &resp, &err) != 0) {
		/* The status the daemon would answer, and a message without secrets. */
		fprintf(stderr, "github-repos: %d: %s\n", ssp_error_status(err),
		        ssp_error_message(err));
		ssp_error_free(err);
		ssp_request_free(req);
		return -1;
	}
	*status = ssp_response_status(resp);
	b = ssp_response_body(resp, len);
	*body = malloc(*len + 1);
	memcpy(*body, b, *len);
	(*body)[*len] = '\0';
	ssp_response_free(resp);
	ssp_request_free(req);
	return 0;
}

/* --- the transport it replaces: libcurl with the token on this host ------ */

struct membuf {
	char *p;
	size_t n;
};

static size_t
curl_write(char *data, size_t size, size_t n, void *arg)
{
	struct membuf *m = arg;
	char *p = realloc(m->p, m->n + size * n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + m->n, data, size * n);
	m->p = p;
	m->n += size * n;
	m->p[m->n] = '\0';
	return size * n;
}

static int
via_curl(struct transport *t, const char *method, const char *url, const char *accept, long *status,
         char **body, size_t *len)
{
	CURL *easy = t->impl;
	struct curl_slist *h = NULL;
	struct membuf m = {NULL, 0};
	char auth[512], acc[256], *https = NULL;
	const char *token = getenv("GITHUB_TOKEN");
	CURLcode rc;

	snprintf(acc, sizeof acc, "Accept: %s", accept);
	h = curl_slist_append(h, acc);
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	/* The function talks TLS to the API; directly, so do we. */
	if (strncmp(url, "http://", 7) == 0) {
		https = malloc(strlen(url) + 2);
		sprintf(https, "https://%s", url + 7);
	}
	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, https ? https : url);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "github-repos-example");
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, curl_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &m);
	rc = curl_easy_perform(easy);
	curl_slist_free_all(h);
	free(https);
	if (rc != CURLE_OK) {
		fprintf(stderr, "github-repos: %s\n", curl_easy_strerror(rc));
		free(m.p);
		return -1;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
	*body = m.p != NULL ? m.p : strdup("");
	*len = m.n;
	return 0;
}

/* --- the API client: knows GitHub, not the transport --------------------- */

static int
gh_list_repos(struct transport *t, const char *base)
{
	char url[512], *body;
	size_t len, i;
	long status;
	json_t *root, *repo;

	snprintf(url, sizeof url, "%s/user/repos?per_page=100&sort=updated", base);
	if (t->call(t, "GET", url, "application/vnd.github+json", &status, &body, &len) != 0)
		return -1;
	if (status != 200) {
		fprintf(stderr, "github-repos: GitHub answered %ld: %.200s\n", status, body);
		free(body);
		return -1;
	}
	root = json_loadb(body, len, 0, NULL);
	free(body);
	if (!json_is_array(root)) {
		fprintf(stderr, "github-repos: not a list of repositories\n");
		json_decref(root);
		return -1;
	}
	json_array_foreach(root, i, repo)
	{
		printf("%s\n", json_string_value(json_object_get(repo, "full_name")));
	}
	json_decref(root);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *base = getenv("GITHUB_API_URL");
	const char *function = getenv("SSM_SIGN_PROXY_FUNCTION");
	struct transport t;
	ssp_options *o;
	char err[256];
	int rc;

	if (base == NULL)
		base = "http://api.github.com";
	if (ssp_global_init() != 0)
		return 1;
	if (argc > 1 && strcmp(argv[1], "--direct") == 0) {
		t.call = via_curl;
		t.impl = curl_easy_init();
		rc = gh_list_repos(&t, base);
		curl_easy_cleanup(t.impl);
	} else {
		if (function == NULL) {
			fprintf(stderr, "github-repos: set SSM_SIGN_PROXY_FUNCTION\n");
			return 2;
		}
		o = ssp_options_new();
		ssp_options_set_function(o, function);
		t.call = via_lambda;
		t.impl = ssp_client_new(o, err, sizeof err);
		ssp_options_free(o);
		if (t.impl == NULL) {
			fprintf(stderr, "github-repos: %s\n", err);
			return 2;
		}
		rc = gh_list_repos(&t, base);
		ssp_client_free(t.impl);
	}
	ssp_global_cleanup();
	return rc == 0 ? 0 : 1;
}
