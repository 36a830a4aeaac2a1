/*
 * invoke.c: the daemon's side of libssm-sign-proxy (see invoke.h). The
 * library knows no configuration file, no credentials agent, no metrics
 * and no log module: this module turns the configuration into the client's
 * options, hands it the agent's credentials and region through the
 * credentials callbacks (and tells it when no agent will answer a refresh),
 * and turns its log lines and events into log.c's lines and metrics.c's
 * counters.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "credstore.h"
#include "invoke.h"
#include "log.h"
#include "metrics.h"

/*
 * The library's credentials callbacks, answered from the shared store.
 * Without credentials, and with no agent running to answer a refresh soon
 * (it died and its replacement waits out a back-off: credstore_agent_problem()),
 * a request waiting for them fails at once with the reason instead of
 * waiting out timeouts.invoke.
 */
static int
invoke_creds_get(void *arg, ssp_credentials *out, char *err, size_t errlen)
{
	struct aws_creds c;
	char why[256], msg[512];
	int rc;

	memset(&c, 0, sizeof c);
	if (credstore_get(&c, err, errlen) != 0) {
		creds_clear(&c);
		if (!credstore_agent_problem(why, sizeof why))
			return -1;
		snprintf(msg, sizeof msg, "%s", err);
		snprintf(err, errlen, "%s (%s)", msg, why);
		return SSP_CREDENTIALS_GONE;
	}
	rc = ssp_credentials_set(out, c.access_key_id, c.secret_access_key, c.session_token,
	                         (int64_t)c.expiration);
	creds_clear(&c);
	return rc;
}

static void
invoke_creds_refresh(void *arg)
{
	credstore_request_refresh();
}

static uint64_t
invoke_creds_generation(void *arg)
{
	return credstore_generation();
}

static int
invoke_region(void *arg, char *buf, size_t len, char *err, size_t errlen)
{
	const char *r = credstore_region(buf, len, err, errlen);

	if (r == NULL)
		return -1;
	if (r != buf)
		snprintf(buf, len, "%s", r);
	return 0;
}

static void
invoke_log(enum ssp_log_level level, const char *msg, void *arg)
{
	switch (level) {
	case SSP_LOG_ERROR:
		log_error("%s", msg);
		break;
	case SSP_LOG_WARN:
		log_warn("%s", msg);
		break;
	case SSP_LOG_INFO:
		log_info("%s", msg);
		break;
	default:
		log_debug("%s", msg);
		break;
	}
}

/* The library's events: metrics, and throttling summarised in the log (a
 * throttled burst would otherwise write a line per attempt). */
static void
invoke_observe(const ssp_event *ev, void *arg)
{
	const char *rid;

	switch (ssp_event_kind(ev)) {
	case SSP_EVENT_ATTEMPT:
		metrics_lambda_attempt(ssp_event_status(ev));
		break;
	case SSP_EVENT_RETRY:
		metrics_invoke_retry(ssp_event_reason(ev));
		break;
	case SSP_EVENT_THROTTLED:
		rid = ssp_event_request_id(ev);
		log_repeat(LOG_LVL_WARN, "throttled by Lambda", NULL,
		           "throttled by Lambda (%s, request %s, attempt %u)",
		           ssp_event_message(ev), rid[0] ? rid : "-", ssp_event_attempt(ev));
		break;
	case SSP_EVENT_FUNCTION_ERROR:
		metrics_function_error(ssp_event_reason(ev));
		break;
	}
}

ssp_client *
invoke_client_new(const struct config *cfg, char *err, size_t errlen)
{
	static const enum ssp_log_level levels[] = {SSP_LOG_ERROR, SSP_LOG_WARN, SSP_LOG_INFO,
	                                            SSP_LOG_DEBUG};
	ssp_options *o = ssp_options_new();
	ssp_client *c;

	ssp_options_set_function(o, cfg->function_name);
	ssp_options_set_egress_proxy(o, cfg->egress_proxy);
	/* Checked by the configuration: positive, attempts >= 1. */
	ssp_options_set_timeouts(o, cfg->timeouts.connect > 0 ? cfg->timeouts.connect : 0,
	                         cfg->timeouts.invoke > 0 ? cfg->timeouts.invoke : 30);
	/* invoke_mode stream: the silence that ends a started stream. */
	ssp_options_set_stream_idle(o,
	                            cfg->timeouts.stream_idle > 0 ? cfg->timeouts.stream_idle : 0);
	ssp_options_set_retry(o, cfg->retry.attempts > 0 ? cfg->retry.attempts : 1,
	                      cfg->retry.base > 0 ? cfg->retry.base : 0.05,
	                      cfg->retry.cap >= cfg->retry.base ? cfg->retry.cap : cfg->retry.base);
	/* Every invocation in flight needs its own HTTP/1.1 connection. */
	ssp_options_set_max_connections(o, cfg->limits.max_inflight > 0 ? cfg->limits.max_inflight
	                                                                : 0);
	ssp_options_set_log(o, levels[log_get_level()], invoke_log, NULL);
	ssp_options_set_observer(o, invoke_observe, NULL);
	/* The region comes from the agent too (it knows the configuration's,
	 * the ARN's and instance metadata's). */
	ssp_options_set_credentials_provider(o, invoke_creds_get, invoke_creds_refresh,
	                                     invoke_creds_generation, invoke_region, NULL);
	c = ssp_client_new(o, err, errlen);
	ssp_options_free(o);
	return c;
}

void
invoke_result_from(const ssp_response *resp, const ssp_error *e, struct invoke_result *r)
{
	memset(r, 0, sizeof *r);
	if (resp != NULL) {
		r->status = 200;
		r->payload = ssp_response_body(resp, &r->payload_len);
		r->request_id = ssp_response_request_id(resp);
		return;
	}
	r->status = ssp_error_status(e);
	r->message = ssp_error_message(e);
	r->request_id = ssp_error_request_id(e);
	r->function_error = ssp_error_function_error(e);
	r->attempts = ssp_error_attempts(e);
	r->credentials = ssp_error_kind(e) == SSP_ERR_CREDENTIALS;
}
