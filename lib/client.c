/*
 * client.c: the public options and client (see ssm-sign-proxy.h), the log
 * callback, and where a call's credentials and region come from: the
 * caller's callbacks when it gave some (the daemon's shared-memory agent),
 * else the in-process provider chain of credprov.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "creds.h"
#include "sspint.h"
#include "xmalloc.h"

int
ssp_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
ssp_global_cleanup(void)
{
	curl_global_cleanup();
}

const char *
ssp_version(void)
{
	return PACKAGE_VERSION;
}

ssp_options *
ssp_options_new(void)
{
	ssp_options *o = xcalloc(1, sizeof *o);

	o->connect_timeout = 5;
	o->budget = 30;
	o->stream_idle = 30;
	o->attempts = 3;
	o->backoff_base = 0.05;
	o->backoff_cap = 2;
	o->log_level = SSP_LOG_WARN;
	return o;
}

static void
options_clear(ssp_options *o)
{
	free(o->function);
	free(o->region);
	free(o->endpoint);
	free(o->egress_proxy);
	free(o->ca_bundle);
}

void
ssp_options_free(ssp_options *o)
{
	if (o == NULL)
		return;
	options_clear(o);
	free(o);
}

static int
options_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v != NULL && *v != '\0' ? xstrdup(v) : NULL;
	return 0;
}

int
ssp_options_set_function(ssp_options *o, const char *name)
{
	return options_str(&o->function, name);
}

int
ssp_options_set_region(ssp_options *o, const char *region)
{
	return options_str(&o->region, region);
}

int
ssp_options_set_endpoint(ssp_options *o, const char *url)
{
	if (url != NULL && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return -1;
	options_str(&o->endpoint, url);
	/* No trailing slash: the invoke path is appended. */
	if (o->endpoint != NULL) {
		size_t n = strlen(o->endpoint);

		while (n > 0 && o->endpoint[n - 1] == '/')
			o->endpoint[--n] = '\0';
	}
	return 0;
}

int
ssp_options_set_egress_proxy(ssp_options *o, const char *url)
{
	return options_str(&o->egress_proxy, url);
}

int
ssp_options_set_ca_bundle(ssp_options *o, const char *path)
{
	return options_str(&o->ca_bundle, path);
}

int
ssp_options_set_timeouts(ssp_options *o, double connect, double budget)
{
	if (!(connect >= 0) || !(budget > 0))
		return -1;
	o->connect_timeout = connect;
	o->budget = budget;
	return 0;
}

int
ssp_options_set_stream_idle(ssp_options *o, double seconds)
{
	if (!(seconds >= 0))
		return -1;
	o->stream_idle = seconds;
	return 0;
}

int
ssp_options_set_retry(ssp_options *o, int attempts, double base, double cap)
{
	if (attempts < 1 || !(base > 0) || !(cap >= base))
		return -1;
	o->attempts = attempts;
	o->backoff_base = base;
	o->backoff_cap = cap;
	return 0;
}

int
ssp_options_set_max_connections(ssp_options *o, long n)
{
	if (n < 0)
		return -1;
	o->max_connections = n;
	return 0;
}

int
ssp_options_set_log(ssp_options *o, enum ssp_log_level level, ssp_log_fn fn, void *arg)
{
	if (level < SSP_LOG_ERROR || level > SSP_LOG_DEBUG)
		return -1;
	o->log_level = level;
	o->log_fn = fn;
	o->log_arg = arg;
	return 0;
}

int
ssp_options_set_observer(ssp_options *o, ssp_observer_fn fn, void *arg)
{
	o->observer = fn;
	o->observer_arg = arg;
	return 0;
}

int
ssp_options_set_credentials_provider(ssp_options *o, ssp_credentials_fn get, ssp_refresh_fn refresh,
                                     ssp_generation_fn generation, ssp_region_fn region, void *arg)
{
	if (get == NULL || refresh == NULL || generation == NULL)
		return -1;
	o->cred_get = get;
	o->cred_refresh = refresh;
	o->cred_generation = generation;
	o->cred_region = region;
	o->cred_arg = arg;
	return 0;
}

int
ssp_credentials_set(ssp_credentials *c, const char *id, const char *secret, const char *token,
                    int64_t expiration)
{
	if (id == NULL || *id == '\0' || secret == NULL || *secret == '\0')
		return -1;
	creds_clear(&c->c);
	creds_fill(&c->c, id, secret, token, (time_t)expiration, "caller");
	return 0;
}

static void creds_ref_drop(struct creds_ref *);

ssp_client *
ssp_client_new(const ssp_options *o, char *err, size_t errlen)
{
	ssp_client *c;

	if (o == NULL || o->function == NULL) {
		snprintf(err, errlen,
		         "no Lambda function: set one with ssp_options_set_function()");
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->o = *o;
	c->o.function = xstrdup(o->function);
	c->o.region = o->region ? xstrdup(o->region) : NULL;
	c->o.endpoint = o->endpoint ? xstrdup(o->endpoint) : NULL;
	c->o.egress_proxy = o->egress_proxy ? xstrdup(o->egress_proxy) : NULL;
	c->o.ca_bundle = o->ca_bundle ? xstrdup(o->ca_bundle) : NULL;
	if (gethostname(c->hostname, sizeof c->hostname - 1) != 0)
		c->hostname[0] = '\0';
	pthread_mutex_init(&c->mu, NULL);
	if (c->o.cred_get == NULL)
		c->prov = credprov_new(c);
	return c;
}

void
ssp_client_free(ssp_client *c)
{
	if (c == NULL)
		return;
	client_blockers_free(c);
	credprov_free(c->prov);
	creds_ref_drop(c->creds);
	pthread_mutex_destroy(&c->mu);
	options_clear(&c->o);
	free(c);
}

int
client_log_enabled(const struct ssp_client *c, enum ssp_log_level level)
{
	return c->o.log_fn != NULL && level <= c->o.log_level;
}

void
client_log(const struct ssp_client *c, enum ssp_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!client_log_enabled(c, level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->o.log_fn(level, msg, c->o.log_arg);
}

void
client_observe(const struct ssp_client *c, const struct ssp_event *ev)
{
	if (c->o.observer != NULL)
		c->o.observer(ev, c->o.observer_arg);
}

enum ssp_event_kind
ssp_event_kind(const ssp_event *ev)
{
	return ev->kind;
}

int
ssp_event_status(const ssp_event *ev)
{
	return ev->status;
}

const char *
ssp_event_reason(const ssp_event *ev)
{
	return ev->reason != NULL ? ev->reason : "";
}

const char *
ssp_event_message(const ssp_event *ev)
{
	return ev->message != NULL ? ev->message : "";
}

const char *
ssp_event_request_id(const ssp_event *ev)
{
	return ev->request_id != NULL ? ev->request_id : "";
}

unsigned
ssp_event_attempt(const ssp_event *ev)
{
	return ev->attempt;
}

/* The provider's credentials (0), or -1 with err, or SSP_CREDENTIALS_GONE
 * when the caller's provider says none are coming. */
static int
client_creds_fetch(struct ssp_client *c, struct aws_creds *out, char *err, size_t errlen)
{
	struct ssp_credentials sc;
	int rc;

	if (c->prov != NULL)
		return credprov_get(c->prov, out, err, errlen);
	memset(&sc, 0, sizeof sc);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = c->o.cred_get(c->o.cred_arg, &sc, err, errlen);
	if (rc != 0 || sc.c.access_key_id == NULL) {
		creds_clear(&sc.c);
		if (err != NULL && errlen > 0 && err[0] == '\0')
			snprintf(err, errlen, "no AWS credentials from the caller's provider");
		return rc == SSP_CREDENTIALS_GONE ? SSP_CREDENTIALS_GONE : -1;
	}
	if (sc.c.expiration != 0 && sc.c.expiration <= time(NULL)) {
		snprintf(err, errlen,
		         "the AWS credentials from the caller's provider have expired");
		creds_clear(&sc.c);
		return -1;
	}
	*out = sc.c;
	return 0;
}

static void
creds_ref_drop(struct creds_ref *r)
{
	if (r != NULL && --r->refs == 0) {
		creds_clear(&r->c);
		free(r);
	}
}

struct creds_ref *
client_creds_get(struct ssp_client *c, uint64_t *generation, int *gone, char *err, size_t errlen)
{
	uint64_t gen = client_creds_generation(c);
	struct creds_ref *r;
	time_t now = time(NULL);
	int rc;

	if (generation != NULL)
		*generation = gen;
	if (gone != NULL)
		*gone = 0;
	pthread_mutex_lock(&c->mu);
	r = c->creds;
	if (r != NULL && r->generation == gen && (r->c.expiration == 0 || r->c.expiration > now)) {
		r->refs++;
		pthread_mutex_unlock(&c->mu);
		return r;
	}
	pthread_mutex_unlock(&c->mu);

	r = xcalloc(1, sizeof *r);
	if ((rc = client_creds_fetch(c, &r->c, err, errlen)) != 0) {
		creds_clear(&r->c);
		free(r);
		if (gone != NULL)
			*gone = rc == SSP_CREDENTIALS_GONE;
		return NULL;
	}
	r->generation = gen;
	r->refs = 2; /* the caller's and the client's */
	pthread_mutex_lock(&c->mu);
	creds_ref_drop(c->creds);
	c->creds = r;
	pthread_mutex_unlock(&c->mu);
	return r;
}

int
client_creds_gone(struct ssp_client *c, char *err, size_t errlen)
{
	struct aws_creds tmp;
	char why[600];
	int rc;

	/* The in-process chain always tries again. */
	if (c->prov != NULL)
		return 0;
	memset(&tmp, 0, sizeof tmp);
	rc = client_creds_fetch(c, &tmp, why, sizeof why);
	creds_clear(&tmp);
	if (rc != SSP_CREDENTIALS_GONE)
		return 0;
	snprintf(err, errlen, "%s", why);
	return 1;
}

void
client_creds_release(struct ssp_client *c, struct creds_ref *r)
{
	pthread_mutex_lock(&c->mu);
	creds_ref_drop(r);
	pthread_mutex_unlock(&c->mu);
}

void
client_creds_refresh(struct ssp_client *c)
{
	if (c->prov != NULL)
		credprov_refresh(c->prov);
	else
		c->o.cred_refresh(c->o.cred_arg);
}

uint64_t
client_creds_generation(struct ssp_client *c)
{
	if (c->prov != NULL)
		return credprov_generation(c->prov);
	return c->o.cred_generation(c->o.cred_arg);
}

int
client_region(struct ssp_client *c, char *buf, size_t len, char *err, size_t errlen)
{
	if (c->prov != NULL)
		return credprov_region(c->prov, buf, len, err, errlen);
	if (c->o.cred_region == NULL) {
		snprintf(err, errlen,
		         "no AWS region: set one with ssp_options_set_region() or use a full "
		         "function ARN");
		return -1;
	}
	return c->o.cred_region(c->o.cred_arg, buf, len, err, errlen);
}
