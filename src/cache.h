/*
 * cache.h: the response cache (the cache: block of the configuration), one
 * for the whole daemon. The master creates a shared-memory zone of
 * cache.max_size bytes before it forks, so every worker (and every worker
 * that replaces one, and, when the size stays the same, the workers of a
 * reload) sees the same entries, the same LRU order and the same fill
 * markers that collapse concurrent misses into one invocation. See
 * doc/cache.md for the rules (what is stored, keys, freshness).
 *
 * Memory: everything a function returns is owned by the caller unless the
 * comment says otherwise; the zone itself is owned by this module.
 */
#ifndef SSP_CACHE_H
#define SSP_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct httpreq;
struct kvlist;

/* Counters kept in the zone (all processes together). */
struct cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t stores;
	uint64_t evictions; /* entries dropped to make room (not expiry) */
	uint64_t bytes;     /* memory held by entries (whole blocks) */
	uint64_t entries;
	uint64_t recoveries; /* lock owner died: the zone was wiped */
	uint64_t size;       /* the zone's size (cache.max_size) */
};

/* --- the master --------------------------------------------------------- */

/*
 * Create the zone for cfg, or keep the current one when cache.max_size did
 * not change (a reload keeps the cache). Processes forked afterwards share
 * it. 0, or -1 with err set (the previous zone stays).
 */
int cache_setup(const struct config *cfg, char *err, size_t errlen);
/* Unmap this process's zone (workers that forked keep theirs). */
void cache_teardown(void);
/* Copy the counters; -1 when there is no zone. */
int cache_stats_get(struct cache_stats *);
/* Log the counters at info (the master does on SIGUSR2). */
void cache_log_stats(void);

/* --- the request path (a worker) --------------------------------------- */

enum cache_verdict {
	CACHE_GO,   /* go to the function (a miss, or not cacheable) */
	CACHE_HIT,  /* answer with cache_send() */
	CACHE_WAIT, /* another request fills this key: the resume callback
	             * says later whether it became a hit or the caller must go */
};

/* hit: 1 answer with cache_send(), 0 go to the function. */
typedef void (*cache_resume_cb)(int hit, void *arg);

struct cache_req;

/*
 * Look the request up (reqh: its header fields). *crp gets the request's cache state (possibly NULL
 * when the cache has nothing to do with it), freed with cache_req_free().
 * With CACHE_WAIT a timer on base polls the zone until the fill ends or
 * cache.lock_timeout passes, then calls cb once.
 */
enum cache_verdict cache_begin(struct cache_req **crp, struct event_base *base,
                               const struct config *cfg, const struct kvlist *reqh,
                               const char *method, const char *host, const char *path,
                               const char *query, cache_resume_cb cb, void *arg);
/*
 * Answer req from the hit found by cache_begin() (or the wait): the stored
 * status, headers and body plus Age and Cache-Status. This ends req.
 * Returns the body bytes sent; *status gets the status.
 */
size_t cache_send(struct cache_req *, struct httpreq *req, int *status);
/*
 * The function answered a miss: out holds the response headers about to be
 * sent and body is what will be sent. Stores the response when the rules
 * allow it, adds Cache-Status to out, and releases the fill marker.
 */
void cache_response(struct cache_req *, struct kvlist *out, int status, const void *body,
                    size_t body_len);
/*
 * The same for a streamed answer (invoke_mode: stream), whose head goes out
 * before its body is known: cache_stream_head() with the headers about to
 * be sent (adds Cache-Status), cache_stream_body() for every piece sent,
 * cache_stream_end() at the end; complete 0 (the stream was cut) stores
 * nothing. A body larger than the zone's largest entry is not gathered.
 */
void cache_stream_head(struct cache_req *, struct kvlist *out, int status);
void cache_stream_body(struct cache_req *, const void *, size_t);
void cache_stream_end(struct cache_req *, int complete);
/* "HIT", "MISS" or NULL (the cache did not apply) for the access log. */
const char *cache_req_logstatus(const struct cache_req *);
/* Stop waiting, release a marker still held, free. NULL is fine. */
void cache_req_free(struct cache_req *);

/* --- the parts, for unit tests ----------------------------------------- */

/* The clock everything uses (monotonic seconds); tests inject theirs. */
void cache_set_clock(double (*now)(void));

/*
 * How long a response may be stored: status, the response headers (after
 * hop-by-hop removal), the host's TTL and opt-ins, and the response's age
 * on arrival (its Age header). Returns the seconds of freshness left (> 0),
 * or 0 when it must not be stored (*why says why, a short token). wall is
 * the wall clock (seconds since the epoch) for Expires and Date.
 */
double cache_freshness(int status, const struct kvlist *resp, double host_ttl, int private_ok,
                       int cookies_ok, double age, double wall, const char **why);

/*
 * Store a response under key, varying on the request headers the
 * response's Vary names (resp's Vary; req gives their values). age is the
 * response's age on arrival. 0 stored, -1 not (too large, Vary: *).
 */
int cache_store(const char *key, const struct kvlist *req, int status, const struct kvlist *resp,
                const void *body, size_t body_len, double ttl, double age);

/* Drop what is stored for GET and HEAD of host + target (path?query),
 * every variant. Returns how many entries went. */
int cache_invalidate(const char *host, const char *target);

/* A copy of a fresh entry. */
struct cache_hit {
	int status;
	struct kvlist *headers; /* malloc'd, with its strings */
	unsigned char *body;
	size_t body_len;
	double age; /* seconds */
	double ttl; /* seconds of freshness left */
};
/* 1 found (fill hit; free with cache_hit_free()), 0 not. */
int cache_lookup(const char *key, const struct kvlist *req, struct cache_hit *hit);
void cache_hit_free(struct cache_hit *);

/*
 * The fill marker of key: 1 taken by this process, 0 held by another live
 * process for less than timeout, -1 no room (go without one).
 */
int cache_marker_take(const char *key, double timeout);
/* Is key's marker held by another live process for less than timeout? */
int cache_marker_held(const char *key, double timeout);
void cache_marker_release(const char *key);

/* For tests: take the zone's lock and return (so that a child can die
 * holding it); cache_lock_test_release() undoes it. */
void cache_lock_test_hold(void);
void cache_lock_test_release(void);

#endif
