/*
 * sspint.h: what the library's modules share and its users never see: the
 * public objects' insides, the client's shared state (behind its mutex),
 * the credentials dispatch (the caller's callbacks or the in-process
 * provider chain of credprov.c) and the log callback.
 */
#ifndef SSP_SSPINT_H
#define SSP_SSPINT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "creds.h"
#include "kvlist.h"
#include "ssm-sign-proxy.h"

struct credprov;

/* Credentials shared by the calls that sign with them (see
 * client_creds_get()); freed, secrets zeroed, with the last reference. */
struct creds_ref {
	unsigned refs;
	uint64_t generation; /* the provider's when they were fetched */
	struct aws_creds c;
};

struct ssp_options {
	char *function;
	char *region;
	char *endpoint;
	char *egress_proxy;
	char *ca_bundle;
	double connect_timeout;
	double budget;
	double stream_idle;
	int attempts;
	double backoff_base;
	double backoff_cap;
	long max_connections;
	enum ssp_log_level log_level;
	ssp_log_fn log_fn;
	void *log_arg;
	ssp_observer_fn observer;
	void *observer_arg;
	ssp_credentials_fn cred_get;
	ssp_refresh_fn cred_refresh;
	ssp_generation_fn cred_generation;
	ssp_region_fn cred_region;
	void *cred_arg;
};

struct ssp_credentials {
	struct aws_creds c;
};

struct ssp_client {
	struct ssp_options o;  /* a deep copy */
	char hostname[256];    /* requestContext.instance.hostname of events */
	struct credprov *prov; /* when the caller gives no credentials callbacks */

	pthread_mutex_t mu; /* guards what follows */
	/* Seconds to add to our clock when signing, learnt from a
	 * signature-expired answer's Date header. */
	time_t skew;
	/* A credentials generation known to be unusable: calls fail at once
	 * instead of waiting out the budget, until the generation moves. */
	uint64_t bad_generation;
	int bad_generation_set;
	/* Idle loops of the blocking calls (each with its connections). */
	struct blocker *idle;
	/* The credentials last fetched from the provider. */
	struct creds_ref *creds;
};

struct ssp_request {
	char *method;
	char *url;
	struct kvlist headers;
	unsigned char *body;
	size_t body_len;
};

struct ssp_response {
	int status;
	struct kvlist headers;
	unsigned char *body;
	size_t body_len;
	char *request_id;
};

struct ssp_event {
	enum ssp_event_kind kind;
	int status;
	const char *reason;
	const char *message;
	const char *request_id;
	unsigned attempt;
};

struct ssp_error {
	enum ssp_error_kind kind;
	int status;
	char *message;
	char *request_id;
	char *function_error;
	unsigned attempts;
};

void client_log(const struct ssp_client *, enum ssp_log_level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int client_log_enabled(const struct ssp_client *, enum ssp_log_level);
/* Give ev to the observer, if any. */
void client_observe(const struct ssp_client *, const struct ssp_event *);

/*
 * Credentials and region for a call, from the caller's callbacks or the
 * in-process chain. All thread-safe and non-blocking. client_creds_get()
 * asks the provider again only when its generation moved (or what it has
 * expired): a copy of the credentials per request showed in the profile.
 * NULL with err when there are none; release what it returns. *generation
 * (may be NULL) is the provider's generation seen before asking it: a
 * call that waits for new credentials waits for a move from there, so a
 * publication between the failed fetch and the wait is not missed. *gone
 * (may be NULL) is set when the provider said no refresh is coming
 * (SSP_CREDENTIALS_GONE).
 */
struct creds_ref *client_creds_get(struct ssp_client *, uint64_t *generation, int *gone, char *err,
                                   size_t errlen);
/* For a call waiting for credentials: 1 with err when the provider says
 * none are coming (SSP_CREDENTIALS_GONE), else 0. */
int client_creds_gone(struct ssp_client *, char *err, size_t errlen);
void client_creds_release(struct ssp_client *, struct creds_ref *);
void client_creds_refresh(struct ssp_client *);
uint64_t client_creds_generation(struct ssp_client *);
int client_region(struct ssp_client *, char *buf, size_t len, char *err, size_t errlen);

/* api.c: free the blocking calls' idle loops (ssp_client_free()). */
void client_blockers_free(struct ssp_client *);

/* credprov.c: the provider chain in a thread of its own, refreshed ahead
 * of expiry, pokes coalesced. Started on first use. */
struct credprov *credprov_new(struct ssp_client *);
void credprov_free(struct credprov *);
int credprov_get(struct credprov *, struct aws_creds *out, char *err, size_t errlen);
void credprov_refresh(struct credprov *);
uint64_t credprov_generation(struct credprov *);
int credprov_region(struct credprov *, char *buf, size_t len, char *err, size_t errlen);

#endif
