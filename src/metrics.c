/*
 * metrics.c: the shared counters (see metrics.h) and their Prometheus
 * rendering. Names follow Prometheus's conventions (base units, _total
 * for counters, _info for labels worth a constant 1) so that
 * `promtool check metrics` passes without a lint warning. Label values
 * come from fixed sets (method, status class, outcome, retry reason) or
 * from the configuration (admin.metrics_hosts, everything else "other"),
 * so the number of series stays bounded whatever clients send.
 */
#include <sys/mman.h>
#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "accesslog.h"
#include "cache.h"
#include "clock.h"
#include "config.h"
#include "credstore.h"
#include "log.h"
#include "metrics.h"

#define M_HOSTS (CONFIG_METRICS_HOSTS_MAX + 1) /* index 0: "other"; then admin.metrics_hosts */
#define M_METHODS 8
#define M_STATUS 5
#define M_OUTCOMES 5
#define M_REASONS 5
#define M_FNERR 3
#define M_SLOTS 256 /* processes at once: workers of two generations */
#define M_RING 1024 /* last invocations kept for /readyz (ready_invocations <= 1000) */

static const char *const m_methods[M_METHODS] = {"GET",    "HEAD",    "POST",  "PUT",
                                                 "DELETE", "OPTIONS", "PATCH", "other"};
static const char *const m_outcomes[M_OUTCOMES] = {"function", "cache_hit", "denied", "rejected",
                                                   "error"};
static const char *const m_reasons[M_REASONS] = {"throttled", "5xx", "connection", "timeout",
                                                 "clock_skew"};
static const char *const m_fnerr[M_FNERR] = {"Unhandled", "Handled", "other"};
/* Seconds: 1 ms to 30 s, as the issue asks of both histograms. */
static const double m_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,  0.5,    1,     2.5,  5,     10,   30};
#define M_BUCKETS (sizeof m_bounds / sizeof m_bounds[0] + 1)

struct m_hist {
	uint64_t bucket[M_BUCKETS]; /* not cumulative; the last is +Inf */
	uint64_t sum_us;
	uint64_t count;
};

struct m_slot {
	pid_t pid; /* 0: free */
	int64_t connections;
	int64_t inflight;
	int64_t local_alive;
};

struct metrics_shm {
	uint64_t requests[M_HOSTS][M_METHODS][M_STATUS][M_OUTCOMES];
	uint64_t bytes_in, bytes_out;
	struct m_hist request_duration, invoke_duration;
	uint64_t invocations[2]; /* failed, ok */
	uint64_t attempts;
	uint64_t retries[M_REASONS];
	uint64_t function_errors[M_FNERR];
	uint64_t api_errors[600]; /* by HTTP status */
	uint64_t no_answer;       /* attempts without an HTTP answer */
	uint64_t reloads[2];      /* failed, ok */
	uint64_t refreshes[2];    /* failed, ok */
	uint64_t cache_waits;
	uint64_t local_restarts, local_timeouts;
	struct m_slot slots[M_SLOTS];
	/* The last invocations: (monotonic ms << 1) | failed, 0 = none yet. */
	uint64_t ring_next;
	uint64_t ring[M_RING];
};

static struct metrics_shm *m_shm;
static struct m_slot *m_self;
static const struct config *m_cfg; /* a worker's, for host labels */

#define ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

int
metrics_init(char *err, size_t errlen)
{
	void *p;

	if (m_shm != NULL)
		return 0; /* a reload keeps the counters */
	p = mmap(NULL, sizeof *m_shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "metrics: mmap of %zu bytes: %s", sizeof *m_shm,
		         strerror(errno));
		return -1;
	}
	m_shm = p;
	return 0;
}

void
metrics_shutdown(void)
{
	if (m_shm != NULL)
		munmap(m_shm, sizeof *m_shm);
	m_shm = NULL;
	m_self = NULL;
}

void
metrics_process_gone(pid_t pid)
{
	size_t i;

	if (m_shm == NULL)
		return;
	for (i = 0; i < M_SLOTS; i++)
		if (LOAD(m_shm->slots[i].pid) == pid) {
			__atomic_store_n(&m_shm->slots[i].connections, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&m_shm->slots[i].inflight, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&m_shm->slots[i].local_alive, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&m_shm->slots[i].pid, 0, __ATOMIC_RELEASE);
		}
}

void
metrics_reload(int ok)
{
	if (m_shm != NULL)
		ADD(m_shm->reloads[ok ? 1 : 0], 1);
}

/* A one-shot timer that re-arms itself: event_base_free() frees it with the loop. */
static void
m_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;
	struct timeval tv = clock_tv(5);

	log_repeat_flush();
	event_base_once(base, -1, EV_TIMEOUT, m_flush_cb, base, &tv);
}

void
metrics_worker_start(const struct config *cfg, struct event_base *base)
{
	struct timeval tv = clock_tv(5);
	pid_t zero, self = getpid();
	size_t i;

	if (base != NULL)
		event_base_once(base, -1, EV_TIMEOUT, m_flush_cb, base, &tv);
	m_cfg = cfg;
	m_self = NULL;
	if (m_shm == NULL)
		return;
	for (i = 0; i < M_SLOTS; i++) {
		zero = 0;
		if (__atomic_compare_exchange_n(&m_shm->slots[i].pid, &zero, self, 0,
		                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			m_self = &m_shm->slots[i];
			return;
		}
	}
}

int
metrics_workers_alive(void)
{
	int n = 0;
	size_t i;
	pid_t pid;

	if (m_shm == NULL)
		return 0;
	for (i = 0; i < M_SLOTS; i++)
		if ((pid = LOAD(m_shm->slots[i].pid)) != 0 && kill(pid, 0) == 0)
			n++;
	return n;
}

static void
hist_add(struct m_hist *h, double seconds)
{
	size_t i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < M_BUCKETS - 1 && seconds > m_bounds[i]; i++)
		;
	ADD(h->bucket[i], 1);
	ADD(h->sum_us, (uint64_t)(seconds * 1e6));
	ADD(h->count, 1);
}

static size_t
method_index(const char *m)
{
	size_t i;

	for (i = 0; m != NULL && i < M_METHODS - 1; i++)
		if (strcmp(m, m_methods[i]) == 0)
			return i;
	return M_METHODS - 1;
}

static size_t
outcome_index(const char *o)
{
	size_t i;

	for (i = 0; i < M_OUTCOMES; i++)
		if (strcmp(o, m_outcomes[i]) == 0)
			return i;
	return M_OUTCOMES - 1;
}

/* A host's label index: its place in admin.metrics_hosts plus one, 0 for the rest. */
static size_t
host_index(const struct config *cfg, const char *host)
{
	size_t i;

	if (cfg == NULL || host == NULL)
		return 0;
	for (i = 0; i < cfg->admin.nmetrics_hosts && i < M_HOSTS - 1; i++)
		if (strcasecmp(cfg->admin.metrics_hosts[i], host) == 0)
			return i + 1;
	return 0;
}

void
metrics_request(const struct accesslog_entry *e)
{
	int sc;

	if (m_shm == NULL)
		return;
	sc = e->status / 100 - 1;
	if (sc < 0 || sc >= M_STATUS)
		sc = M_STATUS - 1;
	ADD(m_shm->requests[host_index(m_cfg, e->host)][method_index(e->method)][sc]
	                   [outcome_index(accesslog_outcome_name(e))],
	    1);
	if (e->req != NULL)
		ADD(m_shm->bytes_in, e->req->bytes_in);
	ADD(m_shm->bytes_out, e->bytes);
	hist_add(&m_shm->request_duration, e->duration_ms / 1000);
}

static void
slot_add(int64_t *field, int delta)
{
	if (m_self != NULL)
		ADD(*field, delta);
}

void
metrics_connection(int delta)
{
	if (m_self != NULL)
		slot_add(&m_self->connections, delta);
}

void
metrics_inflight(int delta)
{
	if (m_self != NULL)
		slot_add(&m_self->inflight, delta);
}

void
metrics_local_process(int delta)
{
	if (m_self != NULL)
		slot_add(&m_self->local_alive, delta);
}

void
metrics_invocation(int ok, double seconds)
{
	uint64_t i, ms;

	if (m_shm == NULL)
		return;
	ADD(m_shm->invocations[ok ? 1 : 0], 1);
	hist_add(&m_shm->invoke_duration, seconds);
	ms = (uint64_t)(clock_mono() * 1000) + 1;
	i = ADD(m_shm->ring_next, 1);
	__atomic_store_n(&m_shm->ring[i % M_RING], (ms << 1) | (ok ? 0 : 1), __ATOMIC_RELAXED);
}

void
metrics_lambda_attempt(long status)
{
	if (m_shm == NULL)
		return;
	ADD(m_shm->attempts, 1);
	if (status == 0)
		ADD(m_shm->no_answer, 1);
	else if (status >= 400 && status < 600)
		ADD(m_shm->api_errors[status], 1);
}

void
metrics_invoke_retry(const char *reason)
{
	size_t i;

	if (m_shm == NULL)
		return;
	for (i = 0; i < M_REASONS; i++)
		if (strcmp(reason, m_reasons[i]) == 0)
			ADD(m_shm->retries[i], 1);
}

void
metrics_function_error(const char *kind)
{
	size_t i;

	if (m_shm == NULL)
		return;
	for (i = 0; i < M_FNERR - 1 && strcmp(kind, m_fnerr[i]) != 0; i++)
		;
	ADD(m_shm->function_errors[i], 1);
}

void
metrics_cache_wait(void)
{
	if (m_shm != NULL)
		ADD(m_shm->cache_waits, 1);
}

void
metrics_local_restart(void)
{
	if (m_shm != NULL)
		ADD(m_shm->local_restarts, 1);
}

void
metrics_local_timeout(void)
{
	if (m_shm != NULL)
		ADD(m_shm->local_timeouts, 1);
}

void
metrics_credentials_refresh(int ok)
{
	if (m_shm != NULL)
		ADD(m_shm->refreshes[ok ? 1 : 0], 1);
}

/* --- readiness ---------------------------------------------------------- */

int
metrics_ready(const struct config *cfg, const char **reason, char *why, size_t whylen)
{
	struct credstore_status st;
	uint64_t next, v, now_ms, window_ms;
	unsigned n, failed;
	double left;

	*reason = "ok";
	snprintf(why, whylen, "ready");
	if (metrics_workers_alive() == 0) {
		*reason = "no_workers";
		snprintf(why, whylen, "no worker process is running");
		return 0;
	}
	if (cfg->local_function.command == NULL) {
		if (cfg->function_name == NULL) {
			*reason = "not_configured";
			snprintf(why, whylen, "function_name is not configured");
			return 0;
		}
		if (credstore_status(&st) == -1 || st.state == 0) {
			*reason = "credentials_pending";
			snprintf(why, whylen, "the AWS credentials are not resolved yet");
			return 0;
		}
		if (st.state != 1) {
			*reason = "credentials_missing";
			snprintf(why, whylen, "no usable AWS credentials: %s", st.error);
			return 0;
		}
		left = st.expiration == 0 ? 1e18 : (double)st.expiration - clock_wall();
		if (left < cfg->admin.ready_margin) {
			*reason = "credentials_expiring";
			if (left <= 0)
				snprintf(why, whylen,
				         "the AWS credentials from %s have expired%s%s", st.source,
				         st.error[0] ? ": " : "", st.error);
			else
				snprintf(why, whylen,
				         "the AWS credentials from %s expire in %.0f s (less than "
				         "admin.ready_margin, %.0f s)%s%s",
				         st.source, left, cfg->admin.ready_margin,
				         st.error[0] ? ": " : "", st.error);
			return 0;
		}
	}
	/* The last ready_invocations invocations, newest first. */
	if (m_shm == NULL)
		return 1;
	next = LOAD(m_shm->ring_next);
	now_ms = (uint64_t)(clock_mono() * 1000) + 1;
	window_ms = (uint64_t)(cfg->admin.ready_window * 1000);
	for (n = failed = 0; n < (unsigned)cfg->admin.ready_invocations && n < M_RING && n < next;
	     n++) {
		v = LOAD(m_shm->ring[(next - 1 - n) % M_RING]);
		if (v == 0 || now_ms - (v >> 1) > window_ms)
			break;
		if (!(v & 1))
			break;
		failed++;
	}
	if (failed >= (unsigned)cfg->admin.ready_invocations) {
		*reason = "invocations_failing";
		snprintf(why, whylen, "the last %u invocations failed (within %.0f s)", failed,
		         cfg->admin.ready_window);
		return 0;
	}
	return 1;
}

/* --- rendering ---------------------------------------------------------- */

static void
head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static void
label(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

static void
hist(struct evbuffer *out, const char *name, const char *help, const struct m_hist *h)
{
	uint64_t cum = 0;
	size_t i;

	head(out, name, "histogram", help);
	for (i = 0; i < M_BUCKETS; i++) {
		cum += LOAD(h->bucket[i]);
		if (i < M_BUCKETS - 1)
			evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, m_bounds[i],
			                    (unsigned long long)cum);
		else
			evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			                    (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "%s_sum %.6f\n%s_count %llu\n", name,
	                    (double)LOAD(h->sum_us) / 1e6, name, (unsigned long long)cum);
}

static void
counter1(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
	head(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void
gauge1(struct evbuffer *out, const char *name, const char *help, double v)
{
	head(out, name, "gauge", help);
	evbuffer_add_printf(out, "%s %.15g\n", name, v);
}

static void
render_requests(struct evbuffer *out, const struct config *cfg)
{
	size_t h, m, s, o;
	uint64_t v;

	head(out, "ssm_sign_proxy_requests_total", "counter",
	     "Requests answered, by method, status class, outcome and host (admin.metrics_hosts, "
	     "else other).");
	for (h = 0; h < M_HOSTS; h++)
		for (m = 0; m < M_METHODS; m++)
			for (s = 0; s < M_STATUS; s++)
				for (o = 0; o < M_OUTCOMES; o++) {
					if ((v = LOAD(m_shm->requests[h][m][s][o])) == 0)
						continue;
					evbuffer_add_printf(
					    out,
					    "ssm_sign_proxy_requests_total{method=\"%s\",status="
					    "\"%zuxx\",outcome=\"%s\",host=\"",
					    m_methods[m], s + 1, m_outcomes[o]);
					label(out, h == 0 || h > cfg->admin.nmetrics_hosts
					               ? "other"
					               : cfg->admin.metrics_hosts[h - 1]);
					evbuffer_add_printf(out, "\"} %llu\n",
					                    (unsigned long long)v);
				}
}

void
metrics_render(struct evbuffer *out, const struct config *cfg)
{
	struct credstore_status st;
	struct cache_stats cs;
	int64_t conns = 0, inflight = 0, local = 0;
	char region[64], err[256];
	const char *reason;
	size_t i;
	int ready;

	if (m_shm == NULL)
		return;
	head(out, "ssm_sign_proxy_build_info", "gauge", "The daemon's version, always 1.");
	evbuffer_add_printf(out, "ssm_sign_proxy_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);

	render_requests(out, cfg);
	hist(out, "ssm_sign_proxy_request_duration_seconds",
	     "Time from a request's arrival to its answer.", &m_shm->request_duration);
	counter1(out, "ssm_sign_proxy_request_body_bytes_total", "Request body bytes received.",
	         LOAD(m_shm->bytes_in));
	counter1(out, "ssm_sign_proxy_response_body_bytes_total", "Response body bytes sent.",
	         LOAD(m_shm->bytes_out));

	for (i = 0; i < M_SLOTS; i++) {
		if (LOAD(m_shm->slots[i].pid) == 0)
			continue;
		conns += LOAD(m_shm->slots[i].connections);
		inflight += LOAD(m_shm->slots[i].inflight);
		local += LOAD(m_shm->slots[i].local_alive);
	}
	gauge1(out, "ssm_sign_proxy_client_connections", "Open client connections.",
	       (double)(conns < 0 ? 0 : conns));
	gauge1(out, "ssm_sign_proxy_requests_in_flight",
	       "Requests waiting for the function or the cache.",
	       (double)(inflight < 0 ? 0 : inflight));
	gauge1(out, "ssm_sign_proxy_workers", "Worker processes alive.",
	       (double)metrics_workers_alive());

	head(out, "ssm_sign_proxy_reloads_total", "counter", "Configuration reloads, by result.");
	evbuffer_add_printf(out,
	                    "ssm_sign_proxy_reloads_total{result=\"ok\"} %llu\n"
	                    "ssm_sign_proxy_reloads_total{result=\"failed\"} %llu\n",
	                    (unsigned long long)LOAD(m_shm->reloads[1]),
	                    (unsigned long long)LOAD(m_shm->reloads[0]));

	head(out, "ssm_sign_proxy_invocations_total", "counter",
	     "Invocations of the function, retries included, by result.");
	evbuffer_add_printf(out,
	                    "ssm_sign_proxy_invocations_total{result=\"ok\"} %llu\n"
	                    "ssm_sign_proxy_invocations_total{result=\"failed\"} %llu\n",
	                    (unsigned long long)LOAD(m_shm->invocations[1]),
	                    (unsigned long long)LOAD(m_shm->invocations[0]));
	hist(out, "ssm_sign_proxy_invoke_duration_seconds",
	     "Time of one invocation, retries and back-off included.", &m_shm->invoke_duration);
	counter1(out, "ssm_sign_proxy_invoke_attempts_total",
	         "HTTP requests sent to Lambda (first attempts and retries).",
	         LOAD(m_shm->attempts));
	head(out, "ssm_sign_proxy_invoke_retries_total", "counter", "Invoke retries, by reason.");
	for (i = 0; i < M_REASONS; i++)
		evbuffer_add_printf(out,
		                    "ssm_sign_proxy_invoke_retries_total{reason=\"%s\"} %llu\n",
		                    m_reasons[i], (unsigned long long)LOAD(m_shm->retries[i]));
	head(out, "ssm_sign_proxy_function_errors_total", "counter",
	     "Invocations where the function failed (X-Amz-Function-Error), by kind.");
	for (i = 0; i < M_FNERR; i++)
		evbuffer_add_printf(out, "ssm_sign_proxy_function_errors_total{kind=\"%s\"} %llu\n",
		                    m_fnerr[i],
		                    (unsigned long long)LOAD(m_shm->function_errors[i]));
	head(out, "ssm_sign_proxy_lambda_api_errors_total", "counter",
	     "Lambda API answers with an error status, by status (0: no answer).");
	evbuffer_add_printf(out, "ssm_sign_proxy_lambda_api_errors_total{status=\"0\"} %llu\n",
	                    (unsigned long long)LOAD(m_shm->no_answer));
	for (i = 400; i < 600; i++)
		if (LOAD(m_shm->api_errors[i]) != 0)
			evbuffer_add_printf(
			    out,
			    "ssm_sign_proxy_lambda_api_errors_total{status=\"%zu\"} "
			    "%llu\n",
			    i, (unsigned long long)LOAD(m_shm->api_errors[i]));

	if (cfg->local_function.command == NULL) {
		head(out, "ssm_sign_proxy_credentials_info", "gauge",
		     "Where the AWS credentials come from, always 1.");
		if (credstore_status(&st) == -1)
			memset(&st, 0, sizeof st);
		evbuffer_add_printf(out, "ssm_sign_proxy_credentials_info{source=\"");
		label(out, st.state == 1 ? st.source : "none");
		evbuffer_add_printf(out, "\"} 1\n");
		gauge1(out, "ssm_sign_proxy_credentials_expiry_seconds",
		       "Seconds until the AWS credentials expire (-1: they do not; 0: none).",
		       st.state != 1        ? 0
		       : st.expiration == 0 ? -1
		       : (double)st.expiration - clock_wall() > 0
		           ? (double)(int64_t)((double)st.expiration - clock_wall())
		           : 0);
		head(out, "ssm_sign_proxy_credentials_refreshes_total", "counter",
		     "Attempts at the AWS credentials, by result.");
		evbuffer_add_printf(
		    out,
		    "ssm_sign_proxy_credentials_refreshes_total{result=\"ok\"} %llu\n"
		    "ssm_sign_proxy_credentials_refreshes_total{result=\"failed\"} "
		    "%llu\n",
		    (unsigned long long)LOAD(m_shm->refreshes[1]),
		    (unsigned long long)LOAD(m_shm->refreshes[0]));
		head(out, "ssm_sign_proxy_region_info", "gauge",
		     "The AWS region Lambda is called in, always 1.");
		evbuffer_add_printf(out, "ssm_sign_proxy_region_info{region=\"");
		label(out, cfg->function_region != NULL ? cfg->function_region
		           : credstore_region(region, sizeof region, err, sizeof err) != NULL
		               ? region
		               : "unknown");
		evbuffer_add_printf(out, "\"} 1\n");
	} else {
		gauge1(out, "ssm_sign_proxy_local_function_processes",
		       "Local function processes alive.", (double)(local < 0 ? 0 : local));
		counter1(out, "ssm_sign_proxy_local_function_restarts_total",
		         "Local function processes started again after one ended.",
		         LOAD(m_shm->local_restarts));
		counter1(out, "ssm_sign_proxy_local_function_timeouts_total",
		         "Local invocations that ran past local_function.timeout.",
		         LOAD(m_shm->local_timeouts));
	}

	if (cache_stats_get(&cs) == 0) {
		counter1(out, "ssm_sign_proxy_cache_hits_total",
		         "Cache lookups that found an entry.", cs.hits);
		counter1(out, "ssm_sign_proxy_cache_misses_total",
		         "Cache lookups that found nothing.", cs.misses);
		counter1(out, "ssm_sign_proxy_cache_stores_total", "Responses stored.", cs.stores);
		counter1(out, "ssm_sign_proxy_cache_evictions_total",
		         "Entries dropped to make room.", cs.evictions);
		counter1(out, "ssm_sign_proxy_cache_collapsed_waits_total",
		         "Requests that waited for another request's fill of the same key.",
		         LOAD(m_shm->cache_waits));
		gauge1(out, "ssm_sign_proxy_cache_used_bytes", "Memory held by entries.",
		       (double)cs.bytes);
		gauge1(out, "ssm_sign_proxy_cache_size_bytes", "The cache's size (cache.max_size).",
		       (double)cs.size);
		gauge1(out, "ssm_sign_proxy_cache_objects", "Entries stored.", (double)cs.entries);
	}

	ready = metrics_ready(cfg, &reason, err, sizeof err);
	gauge1(out, "ssm_sign_proxy_ready", "1 when /readyz answers 200.", ready);
}
