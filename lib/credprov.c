/*
 * credprov.c: the library's own credentials and region, for users that
 * give no credentials callbacks. What the daemon's credentials agent does
 * in a process, this does in one thread of the client: resolve the provider
 * chain (creds.c: environment, shared files and profile, web identity,
 * container, IMDSv2) with blocking calls, publish the result under a mutex
 * with a generation counter, refresh temporary credentials ahead of expiry
 * (refresh_ahead before it, never before 80% of their lifetime), retry a
 * failure with a doubling back-off, and answer refresh pokes no sooner than
 * a second after the previous attempt. Calls never wait for it: they park
 * on the generation like the daemon's workers do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awsenv.h"
#include "clock.h"
#include "creds.h"
#include "imds.h"
#include "sspint.h"
#include "xmalloc.h"

#define PROV_REFRESH_AHEAD 300.0
#define PROV_RETRY 1.0
#define PROV_RETRY_CAP 60.0
#define PROV_NEVER 1e18

struct credprov {
	struct ssp_client *client;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started;
	int stop;
	int poke;

	struct aws_creds cur;
	int have;
	char err[512];
	uint64_t generation;
	char region[64];
	char region_err[256];
	int region_tried;
};

struct credprov *
credprov_new(struct ssp_client *client)
{
	struct credprov *p = xcalloc(1, sizeof *p);
	pthread_condattr_t ca;
	const char *r;
	char *pr;

	p->client = client;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(p->err, sizeof p->err, "looking for AWS credentials");
	/* The region known without the network: the ARN's is the caller's
	 * (invoke.c), then AWS_REGION, AWS_DEFAULT_REGION, the profile's. */
	if ((r = awsenv_region_from_env()) != NULL)
		snprintf(p->region, sizeof p->region, "%s", r);
	else if ((pr = creds_profile_region()) != NULL) {
		snprintf(p->region, sizeof p->region, "%s", pr);
		free(pr);
	}
	return p;
}

/* Seconds from now to the next attempt after a success. */
static double
prov_next(const struct aws_creds *c)
{
	double life, ahead;

	if (c->expiration == 0)
		return PROV_NEVER;
	life = (double)c->expiration - clock_wall();
	if (life <= 1)
		return 1;
	ahead = life - PROV_REFRESH_AHEAD;
	if (ahead < life * 0.8)
		ahead = life * 0.8;
	return ahead;
}

/* Instance metadata's region, when nothing else named one. */
static void
prov_imds_region(struct credprov *p, const struct creds_options *co, struct imds *im)
{
	char err[256], *body = NULL;
	int rc;

	if (awsenv_imds_disabled()) {
		snprintf(p->region_err, sizeof p->region_err,
		         "instance metadata is disabled by AWS_EC2_METADATA_DISABLED");
		return;
	}
	rc = imds_get(im, co, "/latest/meta-data/placement/region", &body, err, sizeof err);
	pthread_mutex_lock(&p->mu);
	if (rc == 0 && body[0] != '\0' && strlen(body) < sizeof p->region)
		snprintf(p->region, sizeof p->region, "%s", body);
	else
		snprintf(p->region_err, sizeof p->region_err, "%s",
		         rc == 0 ? "instance metadata has no placement/region" : err);
	pthread_mutex_unlock(&p->mu);
	free(body);
}

static void *
prov_main(void *arg)
{
	struct credprov *p = arg;
	struct ssp_client *client = p->client;
	struct creds_options co;
	struct aws_creds c;
	struct imds im;
	struct timespec ts;
	char err[512];
	double next, last, backoff = PROV_RETRY, wait;
	int rc, need_region;

	creds_options_default(&co);
	co.egress_proxy = client->o.egress_proxy;
	imds_init(&im);
	co.imds = &im;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		need_region = p->region[0] == '\0' && !p->region_tried && client->o.region == NULL;
		pthread_mutex_unlock(&p->mu);
		if (need_region) {
			prov_imds_region(p, &co, &im);
			pthread_mutex_lock(&p->mu);
			p->region_tried = 1;
			pthread_mutex_unlock(&p->mu);
		}
		co.region = client->o.region != NULL ? client->o.region : p->region;
		if (co.region != NULL && co.region[0] == '\0')
			co.region = NULL;
		memset(&c, 0, sizeof c);
		err[0] = '\0';
		rc = creds_resolve(&co, &c, err, sizeof err);
		last = clock_mono();
		pthread_mutex_lock(&p->mu);
		if (rc == 0) {
			creds_clear(&p->cur);
			p->cur = c;
			p->have = 1;
			p->err[0] = '\0';
			backoff = PROV_RETRY;
			next = last + prov_next(&p->cur);
			client_log(client, SSP_LOG_INFO, "AWS credentials from %s", p->cur.source);
		} else {
			creds_clear(&c);
			snprintf(p->err, sizeof p->err, "%s", err);
			next = last + backoff;
			backoff = backoff * 2 > PROV_RETRY_CAP ? PROV_RETRY_CAP : backoff * 2;
			client_log(client, SSP_LOG_WARN, "%s", err);
		}
		p->generation++;
		p->poke = 0;
		while (!p->stop) {
			double now = clock_mono();

			if (now >= next || (p->poke && now >= last + PROV_RETRY))
				break;
			wait = p->poke ? last + PROV_RETRY : next;
			if (wait > now + 3600)
				wait = now + 3600;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		}
	}
	pthread_mutex_unlock(&p->mu);
	imds_free(&im);
	return NULL;
}

/* Start the thread on first use (with p->mu held). */
static void
prov_start(struct credprov *p)
{
	if (p->started)
		return;
	if (pthread_create(&p->thread, NULL, prov_main, p) != 0) {
		snprintf(p->err, sizeof p->err, "cannot start the credentials thread");
		return;
	}
	p->started = 1;
}

void
credprov_free(struct credprov *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->started)
		pthread_join(p->thread, NULL);
	creds_clear(&p->cur);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
credprov_get(struct credprov *p, struct aws_creds *out, char *err, size_t errlen)
{
	time_t now = time(NULL);
	int rc = -1;

	pthread_mutex_lock(&p->mu);
	prov_start(p);
	if (p->have && (p->cur.expiration == 0 || p->cur.expiration > now)) {
		creds_copy(out, &p->cur);
		rc = 0;
	} else {
		snprintf(err, errlen, "%s",
		         p->err[0] ? p->err : "the AWS credentials have expired");
		p->poke = 1;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void
credprov_refresh(struct credprov *p)
{
	pthread_mutex_lock(&p->mu);
	prov_start(p);
	p->poke = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

uint64_t
credprov_generation(struct credprov *p)
{
	uint64_t g;

	pthread_mutex_lock(&p->mu);
	g = p->generation;
	pthread_mutex_unlock(&p->mu);
	return g;
}

int
credprov_region(struct credprov *p, char *buf, size_t len, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	prov_start(p);
	if (p->region[0] != '\0')
		snprintf(buf, len, "%s", p->region);
	else {
		snprintf(err, errlen,
		         "no AWS region: set one with ssp_options_set_region(), AWS_REGION or "
		         "AWS_DEFAULT_REGION, or use a full function ARN (%s)",
		         p->region_err[0] ? p->region_err
		                          : "instance metadata has not answered yet");
		rc = -1;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}
