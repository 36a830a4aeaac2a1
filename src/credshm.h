/*
 * credshm.h: the layout of the credentials store's shared memory segment and
 * its seqlocks, shared by credstore.c (the master's and the workers' side)
 * and credagent.c (the agent, which publishes). Internal to those two files.
 *
 * Three independently locked blocks, each with exactly one writer:
 *   config  written by the master (credstore_configure), read by the agent
 *           and the workers: settings and the statically known region;
 *   creds   written by the agent: the credentials, their source and the
 *           last error;
 *   meta    written by the agent: what instance metadata told us (region,
 *           instance id).
 * A seqlock lets readers copy a block without a system call or a lock: the
 * writer makes the sequence odd, writes, makes it even again; a reader
 * retries when it saw an odd or changed sequence. A writer killed half-way
 * leaves the sequence odd: readers give up after a bounded number of tries
 * and the next agent makes it even again before writing.
 */
#ifndef SSP_CREDSHM_H
#define SSP_CREDSHM_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define CS_KEYID_MAX 128
#define CS_SECRET_MAX 128
#define CS_TOKEN_MAX 8192 /* STS session tokens run to about 2 KiB; room for growth */
#define CS_SOURCE_MAX 48
#define CS_ERR_MAX 1024
#define CS_REGION_MAX 64
#define CS_INSTANCE_MAX 64
#define CS_PROXY_MAX 1024

/* A poke that is not a generation: "the configuration changed". */
#define CS_POKE_CONFIG UINT64_MAX

enum cs_state {
	CS_STATE_NONE = 0, /* the agent has not finished its first attempt */
	CS_STATE_OK,       /* credentials present (error may name a failing refresh) */
	CS_STATE_ERROR,    /* no usable credentials; error says why */
};

enum cs_imds_state {
	CS_IMDS_PENDING = 0, /* not asked yet, or asking */
	CS_IMDS_DONE,        /* answered (region/instance id may still be empty: 404) */
	CS_IMDS_DISABLED,    /* AWS_EC2_METADATA_DISABLED=true */
	CS_IMDS_FAILED,      /* unreachable or refusing; retried with back-off */
};

struct cs_config {
	uint64_t generation; /* bumped by every credstore_configure */
	double refresh_ahead;
	double retry;
	double retry_cap;
	double timeout;
	int imds_attempts;
	int log_level;              /* the agent follows the master's on reload */
	char region[CS_REGION_MAX]; /* ARN > config > env > profile; "" when none */
	char region_origin[48];     /* where region came from, for messages */
	char egress_proxy[CS_PROXY_MAX];
};

struct cs_creds {
	uint64_t generation; /* the value credstore_generation() takes with this block */
	int state;           /* enum cs_state */
	int64_t expiration;  /* 0 = does not expire */
	char key_id[CS_KEYID_MAX];
	char secret[CS_SECRET_MAX];
	char token[CS_TOKEN_MAX]; /* "" = none */
	char source[CS_SOURCE_MAX];
	char error[CS_ERR_MAX]; /* last failure (CS_STATE_ERROR, or a failing refresh) */
};

struct cs_meta {
	int imds_state; /* enum cs_imds_state */
	char region[CS_REGION_MAX];
	char instance_id[CS_INSTANCE_MAX];
	char error[256];
};

struct cs_shm {
	_Atomic uint64_t config_seq;
	struct cs_config config;
	_Atomic uint64_t creds_seq;
	struct cs_creds creds;
	_Atomic uint64_t meta_seq;
	struct cs_meta meta;
	/* Bumped after every publication of creds; see credstore_generation(). */
	_Atomic uint64_t generation;
	/* The agent holding the lease (0: none, or it exited cleanly). */
	_Atomic pid_t agent_pid;
	/*
	 * The writer lease: a process-shared robust mutex the agent holds for
	 * its whole life. A second agent finds it busy and refuses to run; when
	 * the holder dies (even of SIGKILL) the kernel marks it, and the next
	 * agent takes it over (EOWNERDEAD) and evens out what it left.
	 */
	pthread_mutex_t lease;
	/* Written by the master: enum credstore_agent_state, and why not running. */
	_Atomic int agent_state;
	_Atomic uint64_t agent_seq;
	char agent_msg[256];
};

/* Set up by credstore_init() in the master; inherited by every child. */
extern struct cs_shm *credstore_shm;
extern int credstore_poke_rd, credstore_poke_wr;

static inline void
cs_write_begin(_Atomic uint64_t *seq)
{
	uint64_t s = atomic_load_explicit(seq, memory_order_relaxed);

	if (s & 1)
		s++; /* the previous writer died half-way: start from even */
	atomic_store_explicit(seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static inline void
cs_write_end(_Atomic uint64_t *seq)
{
	uint64_t s = atomic_load_explicit(seq, memory_order_relaxed);

	atomic_store_explicit(seq, s + 1, memory_order_release);
}

/* Copy a consistent snapshot of src (n bytes) into dst. 0, or -1 when it stayed busy. */
static inline int
cs_read(_Atomic uint64_t *seq, void *dst, const void *src, size_t n)
{
	uint64_t s1, s2;
	int tries;

	for (tries = 0; tries < 2000; tries++) {
		s1 = atomic_load_explicit(seq, memory_order_acquire);
		if ((s1 & 1) == 0) {
			memcpy(dst, src, n);
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(seq, memory_order_relaxed);
			if (s1 == s2)
				return 0;
		}
		if (tries % 16 == 15)
			sched_yield();
	}
	return -1;
}

#endif
