/*
 * bootstrap.c: the Lambda custom runtime's main: read the configuration,
 * build the clients (Runtime API, Parameter Store or the parameters file,
 * origins), then serve one invocation at a time until SIGTERM.
 *
 * A broken configuration is reported through /runtime/init/error and the
 * process exits 1, as Lambda expects of a runtime.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "awsenv.h"
#include "creds.h"
#include "curlbuf.h"
#include "fnconf.h"
#include "handler.h"
#include "log.h"
#include "origin.h"
#include "paramfile.h"
#include "params.h"
#include "runtime.h"
#include "ssm.h"
#include "xmalloc.h"

static volatile sig_atomic_t bootstrap_stop;

static void
bootstrap_signal(int sig)
{
	bootstrap_stop = 1;
}

/* Printable, bounded, for the log line: the path comes from the client. */
static void
bootstrap_clean(const char *s, char *buf, size_t len)
{
	size_t i;

	if (s == NULL)
		s = "-";
	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = isprint((unsigned char)s[i]) && s[i] != ' ' ? s[i] : '?';
	buf[i] = '\0';
	if (s[i] != '\0' && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

/* Build the parameter source and the origin client from the configuration.
 * 0, or -1 with err set. */
static int
bootstrap_setup(const struct fnconf *conf, struct handler *h, char *err, size_t errlen)
{
	struct aws_creds creds;
	struct ssm_options so;
	struct ssm_client *ssm;
	struct paramfile *pf;
	const char *region;
	char *endpoint, cerr[512];

	memset(h, 0, sizeof *h);
	h->deadline_margin_ms = conf->deadline_margin_ms;
	h->max_response_bytes = (size_t)conf->max_response_bytes;
	h->stream_buffer_bytes = (size_t)conf->stream_buffer_bytes;
	if ((h->origin = origin_new(conf->connect_to, conf->origin_connect_timeout_ms,
	                            conf->origin_timeout_ms, err, errlen)) == NULL)
		return -1;

	if (conf->parameters_file != NULL) {
		pf = paramfile_new(conf->parameters_file);
		if (paramfile_refresh(pf, err, errlen) != 0) {
			paramfile_free(pf);
			return -1;
		}
		h->params = params_new_file(pf, conf->prefix);
		return 0;
	}

	if ((region = awsenv_region_from_env()) == NULL) {
		snprintf(err, errlen, "AWS_REGION is not set: Parameter Store needs a region");
		return -1;
	}
	memset(&creds, 0, sizeof creds);
	if (creds_from_env(&creds, cerr, sizeof cerr) != 0) {
		snprintf(err, errlen,
		         "no AWS credentials in the environment (AWS_ACCESS_KEY_ID, "
		         "AWS_SECRET_ACCESS_KEY): %s",
		         cerr);
		creds_clear(&creds);
		return -1;
	}
	so.retries = conf->ssm_retries;
	so.backoff_ms = conf->ssm_backoff_ms;
	so.backoff_max_ms = conf->ssm_backoff_max_ms;
	so.connect_timeout_ms = conf->ssm_connect_timeout_ms;
	so.timeout_ms = conf->ssm_timeout_ms;
	so.margin_ms = conf->deadline_margin_ms;
	endpoint = awsenv_endpoint("ssm", region);
	ssm = ssm_new(&so, endpoint, region, &creds, err, errlen);
	free(endpoint);
	creds_clear(&creds);
	if (ssm == NULL)
		return -1;
	h->params = params_new_ssm(ssm, conf->prefix, conf->cache_ttl, conf->cache_max_hosts);
	return 0;
}

static void
bootstrap_teardown(struct handler *h)
{
	params_free(h->params);
	origin_free(h->origin);
	memset(h, 0, sizeof *h);
}

/* Returns 0 when stopped by a signal, 1 when the Runtime API failed. */
static int
bootstrap_serve(struct runtime *rt, struct handler *h, int streaming)
{
	struct runtime_invocation inv;
	struct handler_result res;
	char err[512], path[256], host[300], method[40];
	char *json;
	size_t len;
	long long start;
	int r;

	while (!bootstrap_stop) {
		r = runtime_next(rt, &inv, err, sizeof err);
		if (r == 1)
			break;
		if (r != 0) {
			/* The Runtime API is gone: nothing left to serve. */
			log_error("%s", err);
			return 1;
		}
		start = curlbuf_now_ms();
		if (inv.trace_id != NULL)
			setenv("_X_AMZN_TRACE_ID", inv.trace_id, 1);
		else
			unsetenv("_X_AMZN_TRACE_ID");

		if (streaming) {
			if (handler_stream(h, rt, inv.request_id, inv.event, inv.event_len,
			                   inv.deadline_ms, &res, err, sizeof err) != 0)
				log_error("request %s: %s", inv.request_id, err);
		} else if ((json = handler_invoke(h, inv.event, inv.event_len, inv.deadline_ms,
		                                  &res, &len)) != NULL) {
			if (runtime_respond(rt, inv.request_id, json, len, err, sizeof err) != 0)
				log_error("request %s: %s", inv.request_id, err);
			free(json);
		} else {
			res.status = 0;
			if (runtime_error(rt, inv.request_id, "Runtime.EncodeError",
			                  "cannot encode the response", err, sizeof err) != 0)
				log_error("request %s: %s", inv.request_id, err);
		}
		bootstrap_clean(res.method, method, sizeof method);
		bootstrap_clean(res.host, host, sizeof host);
		bootstrap_clean(res.path, path, sizeof path);
		log_info("request_id=%s method=%s host=%s path=%s status=%d duration_ms=%lld "
		         "params=%s%s%s%s",
		         inv.request_id, method, host, path, res.status, curlbuf_now_ms() - start,
		         params_how_name(res.how), res.truncated ? " truncated=1" : "",
		         res.error ? " error=" : "", res.error ? res.error : "");
		handler_result_free(&res);
		runtime_invocation_free(&inv);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct fnconf conf;
	struct runtime *rt = NULL;
	struct handler h;
	struct sigaction sa;
	const char *api;
	char err[1024], rerr[512];
	int status = 0;

	log_init("bootstrap", LOG_LVL_INFO, 0);
	setvbuf(stderr, NULL, _IOLBF, 0);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	memset(&h, 0, sizeof h);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = bootstrap_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("libcurl initialization failed");
		return 1;
	}
	if ((api = getenv("AWS_LAMBDA_RUNTIME_API")) == NULL || *api == '\0') {
		log_error("AWS_LAMBDA_RUNTIME_API is not set: not running as a Lambda custom "
		          "runtime");
		curl_global_cleanup();
		return 1;
	}
	if ((rt = runtime_new(api, &bootstrap_stop)) == NULL) {
		log_error("libcurl: cannot create a handle");
		curl_global_cleanup();
		return 1;
	}

	if (fnconf_load(&conf, err, sizeof err) != 0) {
		memset(&conf, 0, sizeof conf);
		goto init_error;
	}
	log_set_level(conf.log_level);
	runtime_set_timeout(rt, conf.runtime_timeout_ms);
	if (bootstrap_setup(&conf, &h, err, sizeof err) != 0)
		goto init_error;
	log_info("ready: parameters from %s, prefix \"/%s\", cache ttl %lds, %s responses, "
	         "CA bundle %s",
	         conf.parameters_file ? conf.parameters_file : "Parameter Store", conf.prefix,
	         conf.parameters_file ? 0L : conf.cache_ttl,
	         conf.streaming ? "streaming" : "buffered",
	         awsenv_ca_bundle() ? awsenv_ca_bundle() : "(libcurl's default)");

	status = bootstrap_serve(rt, &h, conf.streaming);
	goto out;

init_error:
	log_error("configuration: %s", err);
	if (runtime_init_error(rt, "Runtime.ConfigError", err, rerr, sizeof rerr) != 0)
		log_error("%s", rerr);
	status = 1;
out:
	bootstrap_teardown(&h);
	fnconf_free(&conf);
	runtime_free(rt);
	curl_global_cleanup();
	return status;
}
