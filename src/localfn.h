/*
 * localfn.h: local function mode. Instead of invoking AWS Lambda, a worker
 * runs the function itself, as AWS's Runtime Interface Emulator does: it
 * serves the Lambda Runtime API on loopback, starts `concurrency` processes
 * of any custom runtime (`local_function.command`), hands them invocations
 * in FIFO order, and restarts a process that crashes, fails to initialise
 * or exceeds the timeout. The interface mirrors the Invoke client's
 * (invoke.h) so that proxy.c calls one or the other; nothing here blocks
 * the worker's event loop (children are reaped from a SIGCHLD event, their
 * output is read from non-blocking pipes).
 */
#ifndef SSP_LOCALFN_H
#define SSP_LOCALFN_H

#include <stddef.h>

#include "fnstream.h"
#include "invoke.h"

struct event_base;
struct kvlist;
struct localfn_ctx;
struct localfn_call;

struct localfn_options {
	const char *command; /* executable (a Lambda custom runtime); no shell */
	/* Extra environment for the function (exact names); may be NULL. The
	 * function gets the Lambda variables plus these, nothing else. */
	const struct kvlist *environment;
	int concurrency;           /* function processes (>= 1) */
	double timeout;            /* seconds: one invocation, and waiting for a process */
	const char *function_name; /* AWS_LAMBDA_FUNCTION_NAME and the ARN; NULL: command's name */
	const char *region;        /* AWS_REGION / AWS_DEFAULT_REGION; NULL: unknown */
	double respawn;            /* first restart back-off after repeated failures */
	double respawn_cap;        /* largest restart back-off */
	double kill_grace;         /* SIGTERM -> SIGKILL when stopping the processes */
	/* Called once, when every function process has asked for work for the
	 * first time (a reload waits for it); may be NULL. */
	void (*ready)(void *arg);
	void *ready_arg;
};

/*
 * Invocations report through invoke.h's struct invoke_result and
 * invoke_done_cb, exactly as a Lambda Invoke does, so that proxy.c has one
 * response path: status 200 with the function's ALB response JSON as
 * payload, or the status for the client (502, 504) and a message;
 * request_id is the invocation's id as given to the function;
 * function_error is "Unhandled" when the function reported an error through
 * /invocation/{id}/error (already logged here). Called once per invocation,
 * never from inside localfn_start(); the call is freed when it returns.
 */

/*
 * Start the Runtime API servers and the function processes on base.
 * Options are copied. Returns NULL with err set when the servers cannot be
 * set up; a command that cannot be run is not an error here (it is logged,
 * retried with back-off, and invocations get 502 saying why).
 */
struct localfn_ctx *localfn_ctx_new(struct event_base *, const struct localfn_options *, char *err,
                                    size_t errlen);
/*
 * Cancel what is in flight (no callbacks), stop the function processes
 * (SIGTERM to each process group, SIGKILL after kill_grace; this waits for
 * them, at most kill_grace plus a moment) and free.
 */
void localfn_ctx_free(struct localfn_ctx *);
/* Invocations queued or running. */
unsigned localfn_inflight(const struct localfn_ctx *);

/*
 * Queue an invocation of the function with payload (the ALB event; the call
 * takes ownership of the malloc'd buffer). method is the client's method,
 * for the log. Never returns NULL.
 */
struct localfn_call *localfn_start(struct localfn_ctx *, const char *method, char *payload,
                                   size_t len, invoke_done_cb, void *arg);
/*
 * The same with the answer as a stream (fnstream.h): a function that
 * answers in streaming mode has its bytes passed on as they arrive (read
 * from its Runtime API connection by rtstream.c); a buffered answer comes
 * in one piece. Never returns NULL; the ops must outlive the call.
 */
struct localfn_call *localfn_start_stream(struct localfn_ctx *, const char *method, char *payload,
                                          size_t len, const struct fnstream_ops *, void *arg);
/* The streaming consumer has room again after data() returned 1. */
void localfn_stream_resume(struct localfn_call *);
/* Abandon a call (the client went away); its callback is not called. A
 * function already working on it finishes, and its answer is dropped. */
void localfn_cancel(struct localfn_call *);

#endif
