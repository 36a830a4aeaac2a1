/*
 * metrics.h: the daemon's counters for /metrics and /readyz. The master
 * creates one shared-memory segment before it forks anything (like the
 * cache's zone), so every worker, the credentials agent and the master see
 * the same counters; the request path updates them with relaxed atomic
 * adds (no lock, no system call). Gauges that belong to one process (open
 * connections, requests in flight, local function processes) live in a
 * per-process slot, which the master clears when the process dies, so a
 * killed worker does not leave them counted forever. The admin listener
 * (admin.c, in the master) renders them in the Prometheus text format.
 *
 * Every metrics_*() call is a no-op when there is no segment (unit tests,
 * -t), so callers never check.
 */
#ifndef SSP_METRICS_H
#define SSP_METRICS_H

#include <stddef.h>
#include <sys/types.h>

struct config;
struct evbuffer;
struct accesslog_entry;

/* --- the master --------------------------------------------------------- */

/* Create the segment (before forking). 0, or -1 with err set. */
int metrics_init(char *err, size_t errlen);
/* Unmap (every process); the master's segment goes with the last user. */
void metrics_shutdown(void);
/* A child died: free its slot (its gauges stop counting). */
void metrics_process_gone(pid_t pid);
/* A reload ended: ok 1 applied, 0 refused. */
void metrics_reload(int ok);
/*
 * Append the Prometheus text exposition (format 0.0.4) of everything to
 * out. cfg gives the host labels (admin.metrics_hosts), the readiness
 * settings and the mode (local function or Lambda).
 */
void metrics_render(struct evbuffer *out, const struct config *cfg);
/* Workers alive (their slots). */
int metrics_workers_alive(void);

/*
 * Readiness, as /readyz, the log and systemd's STATUS= say it: 1 ready, 0
 * not (why says why: a short sentence, and *reason a token such as
 * "credentials_expired" or "invocations_failing").
 */
int metrics_ready(const struct config *cfg, const char **reason, char *why, size_t whylen);

/* --- the workers ------------------------------------------------------- */

/*
 * A worker starts: claim a slot for its gauges, and summarise repeated
 * warnings (log_repeat_flush()) every few seconds on base.
 */
struct event_base;
void metrics_worker_start(const struct config *cfg, struct event_base *base);
/* One request answered (from the access log's record). */
void metrics_request(const struct accesslog_entry *e);
/* Client connections opened (+1) and closed (-1). */
void metrics_connection(int delta);
/* Requests waiting for the function or the cache (+1 / -1). */
void metrics_inflight(int delta);
/* One invocation ended: ok (the function answered without an error),
 * and how long it took (seconds, retries included). */
void metrics_invocation(int ok, double seconds);
/* One HTTP request to Lambda answered with status (0: no answer). */
void metrics_lambda_attempt(long status);
/* A retry: "throttled", "5xx", "connection", "timeout" or "clock_skew". */
void metrics_invoke_retry(const char *reason);
/* X-Amz-Function-Error: kind is "Unhandled" or "Handled". */
void metrics_function_error(const char *kind);
/* A request waited for another one's fill of the same cache key. */
void metrics_cache_wait(void);
/* Local function processes: started (+1), ended (-1); restarts, timeouts. */
void metrics_local_process(int delta);
void metrics_local_restart(void);
void metrics_local_timeout(void);

/* --- the credentials agent --------------------------------------------- */

/* A refresh of the credentials ended: ok 1 new ones, 0 failed. */
void metrics_credentials_refresh(int ok);

#endif
