/*
 * credstore.h: AWS credentials, region and instance identity shared by all
 * processes of the daemon. One credentials agent process (forked by the
 * master, supervised like a worker) resolves the provider chain (creds.h),
 * refreshes temporary credentials ahead of expiry with back-off, and
 * publishes the result into a shared memory segment created before the
 * workers are forked. Workers read it without blocking and without system
 * calls; when what they find has expired they poke the agent and park the
 * request until a new generation appears or the invoke budget runs out.
 * So a fleet host makes one IMDS/STS/ECS call per refresh, not one per
 * worker.
 */
#ifndef SSP_CREDSTORE_H
#define SSP_CREDSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "creds.h"

struct config;

/* Master: create the shared segment (before forking anything). 0 or -1. */
int credstore_init(void);
/*
 * Master: settings that change on reload (region key, timeouts), and the
 * statically known region (full ARN > config > AWS_REGION >
 * AWS_DEFAULT_REGION > profile). Wakes the agent, which re-resolves the
 * credentials at once (a reload picks up edited shared files).
 */
void credstore_configure(const struct config *);
/*
 * Master: fork the agent; returns its pid, or -1. Supervise it like a
 * worker: when it exits, call this again (with a back-off if it keeps
 * dying); what it published stays valid meanwhile and its successor takes
 * it over. It ends on SIGTERM and with the master (PR_SET_PDEATHSIG).
 * Settings reach it through credstore_configure(), not through fork.
 */
int credstore_spawn_agent(const struct config *);
/*
 * Master: whether an agent runs, for credstore_agent_problem(). DOWN (it
 * died and its replacement waits for a back-off) and NONE (none in local
 * function mode) come with a message naming why.
 */
enum credstore_agent_state {
	CREDSTORE_AGENT_RUNNING = 0,
	CREDSTORE_AGENT_DOWN,
	CREDSTORE_AGENT_NONE,
};
void credstore_agent_state(enum credstore_agent_state, const char *why);
/*
 * Worker: is no agent there to answer a refresh soon? Returns 1 with err
 * naming why (a parked request then fails at once), else 0.
 */
int credstore_agent_problem(char *err, size_t errlen);
/*
 * Agent: take the writer lease (credshm.h). Returns 0 when taken (*took_over
 * set when a dead agent held it), -1 when a live agent holds it (*holder
 * its pid, when known).
 */
int credstore_lease_take(int *took_over, pid_t *holder);
/* Agent, leaving: give the lease back. */
void credstore_lease_release(void);

/*
 * At exit: unmap the segment and close the pipe. In the process that called
 * credstore_init() (the master) it zeroes the secrets first; in a child (a
 * worker) it only unmaps, so it is safe on a shared cleanup path.
 */
void credstore_shutdown(void);

/*
 * Worker: copy the current credentials into out (clear it afterwards).
 * Returns 0 when valid ones are there; -1 otherwise, with err naming the
 * problem ("no AWS credentials found: tried environment, ...").
 */
int credstore_get(struct aws_creds *out, char *err, size_t errlen);
/* Worker: the region to call (ARN > config > env > profile > IMDS); NULL with err when unknown. */
const char *credstore_region(char *buf, size_t len, char *err, size_t errlen);
/* Worker: instance id from IMDS ("" until known or when IMDS is absent). */
const char *credstore_instance_id(char *buf, size_t len);
/*
 * Worker: ask the agent to refresh now (credentials expired, or refused by
 * AWS). Never blocks. The agent coalesces: pokes about credentials it has
 * already replaced are dropped, and a poke brings the next attempt no closer
 * than credentials.retry seconds after the previous one. The poke names the
 * credentials this process last got from credstore_get(), so call this
 * after a credstore_get() that found them wanting (or whose credentials AWS
 * refused). credstore_get() pokes by itself when what it finds has expired.
 */
void credstore_request_refresh(void);
/*
 * A counter that changes whenever the agent publishes the outcome of an
 * attempt at credentials (new ones, or a failure): a parked request
 * re-checks when it moves. The region and instance id do not move it.
 */
uint64_t credstore_generation(void);

/* What /metrics and /readyz tell about the credentials: never a secret. */
struct credstore_status {
	int state;          /* 0: no attempt finished yet; 1: credentials; 2: none */
	char source[48];    /* "environment", "instance metadata", ... */
	int64_t expiration; /* seconds since the epoch; 0 = they do not expire */
	char error[256];    /* why there are none, or the last failed refresh */
};
/* Any process: copy the status. 0, or -1 when the store is missing or busy. */
int credstore_status(struct credstore_status *);

#endif
