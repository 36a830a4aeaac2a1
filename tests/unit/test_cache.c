/*
 * test_cache.c: the response cache's parts (src/cache.c) without the
 * daemon: store and lookup, TTL expiry on an injected clock, LRU eviction
 * under max_size with a flood of distinct keys, Vary keys, the
 * Cache-Control rules, the fill markers, the zone shared with a forked
 * process, and recovery from a process that died holding the lock.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/config.h" /* the daemon's, not autoconf's */
#include "cache.h"
#include "kvlist.h"
#include "tap.h"

static double fake_now = 1000;

static double
fake_clock(void)
{
	return fake_now;
}

static void
setup(struct config *cfg, size_t size)
{
	char err[256];

	memset(cfg, 0, sizeof *cfg);
	cfg->cache.ttl = 60;
	cfg->cache.negative_ttl = 10;
	cfg->cache.lock_timeout = 5;
	cfg->cache.max_size = size;
	cache_teardown();
	if (cache_setup(cfg, err, sizeof err) != 0) {
		printf("Bail out! cache_setup: %s\n", err);
		exit(1);
	}
}

static int
lookup_body(const char *key, const struct kvlist *req, const char *want)
{
	struct cache_hit hit;
	int ok;

	if (!cache_lookup(key, req, &hit))
		return want == NULL;
	ok = want != NULL && hit.body_len == strlen(want) &&
	     memcmp(hit.body, want, hit.body_len) == 0;
	cache_hit_free(&hit);
	return ok;
}

static void
test_store_lookup(void)
{
	struct kvlist resp = KVLIST_INIT, req = KVLIST_INIT;
	struct cache_hit hit;
	struct cache_stats st;

	kvlist_add(&resp, "Content-Type", "text/plain");
	kvlist_add(&resp, "X-Two", "a");
	kvlist_add(&resp, "X-Two", "b");
	tap_ok(cache_store("GET h/a", &req, 200, &resp, "hello", 5, 30, 0) == 0, "store");
	tap_ok(cache_lookup("GET h/a", &req, &hit) == 1, "lookup finds it");
	tap_ok(hit.status == 200 && hit.body_len == 5 && memcmp(hit.body, "hello", 5) == 0,
	       "status and body kept");
	tap_ok(hit.headers->n == 3 && strcmp(hit.headers->v[2].value, "b") == 0,
	       "headers kept, repeated ones too");
	tap_ok(hit.ttl > 29.9 && hit.ttl <= 30 && hit.age < 0.1, "ttl %.1f age %.1f", hit.ttl,
	       hit.age);
	cache_hit_free(&hit);
	tap_ok(lookup_body("GET h/b", &req, NULL), "another key misses");
	tap_ok(lookup_body("HEAD h/a", &req, NULL), "the method is part of the key");
	/* Storing again replaces. */
	cache_store("GET h/a", &req, 200, &resp, "world", 5, 30, 0);
	tap_ok(lookup_body("GET h/a", &req, "world"), "a new store replaces the entry");
	cache_stats_get(&st);
	tap_ok(st.entries == 1 && st.stores == 2 && st.hits == 2,
	       "stats: %llu entries %llu stores %llu hits", (unsigned long long)st.entries,
	       (unsigned long long)st.stores, (unsigned long long)st.hits);
	/* An empty body (HEAD, 204). */
	tap_ok(cache_store("HEAD h/a", &req, 204, &resp, NULL, 0, 30, 0) == 0 &&
	           lookup_body("HEAD h/a", &req, ""),
	       "empty body");
	kvlist_free(&resp);
}

static void
test_invalidate(void)
{
	struct kvlist resp = KVLIST_INIT, en = KVLIST_INIT, fr = KVLIST_INIT;

	kvlist_add(&resp, "Vary", "Accept-Language");
	kvlist_add(&en, "Accept-Language", "en");
	kvlist_add(&fr, "Accept-Language", "fr");
	cache_store("GET h/inv?a=1", &en, 200, &resp, "en", 2, 30, 0);
	cache_store("GET h/inv?a=1", &fr, 200, &resp, "fr", 2, 30, 0);
	cache_store("HEAD h/inv?a=1", &en, 200, &resp, NULL, 0, 30, 0);
	cache_store("GET h/inv?a=2", &en, 200, &resp, "other", 5, 30, 0);
	tap_ok(cache_invalidate("h", "/inv?a=1") == 3,
	       "invalidate drops GET and HEAD, every variant");
	tap_ok(lookup_body("GET h/inv?a=1", &en, NULL) && lookup_body("GET h/inv?a=1", &fr, NULL),
	       "they are gone");
	tap_ok(lookup_body("GET h/inv?a=2", &en, "other"), "another URL stays");
	kvlist_free(&resp);
	kvlist_free(&en);
	kvlist_free(&fr);
}

static void
test_expiry(void)
{
	struct kvlist resp = KVLIST_INIT;
	struct cache_hit hit;

	fake_now = 1000;
	cache_store("GET h/ttl", NULL, 200, &resp, "x", 1, 2, 0);
	fake_now = 1001.5;
	tap_ok(cache_lookup("GET h/ttl", NULL, &hit) == 1 && hit.age > 1.4 && hit.age < 1.6 &&
	           hit.ttl > 0.4 && hit.ttl < 0.6,
	       "fresh before the TTL, with its age");
	cache_hit_free(&hit);
	fake_now = 1002.01;
	tap_ok(lookup_body("GET h/ttl", NULL, NULL), "gone after the TTL");
	/* An age on arrival counts. */
	fake_now = 2000;
	cache_store("GET h/aged", NULL, 200, &resp, "x", 1, 5, 7);
	tap_ok(cache_lookup("GET h/aged", NULL, &hit) == 1 && hit.age >= 7 && hit.age < 7.1,
	       "Age on arrival is part of the age (%.1f)", hit.age);
	cache_hit_free(&hit);
}

static void
test_vary(void)
{
	struct kvlist resp = KVLIST_INIT, en = KVLIST_INIT, fr = KVLIST_INIT, none = KVLIST_INIT;

	kvlist_add(&resp, "Vary", "Accept-Language, accept-encoding");
	kvlist_add(&en, "accept-language", "en");
	kvlist_add(&fr, "Accept-Language", "fr");
	cache_store("GET h/v", &en, 200, &resp, "english", 7, 30, 0);
	tap_ok(lookup_body("GET h/v", &en, "english"), "Vary: same header value hits");
	tap_ok(lookup_body("GET h/v", &fr, NULL), "Vary: another value misses");
	tap_ok(lookup_body("GET h/v", &none, NULL), "Vary: absent header misses");
	cache_store("GET h/v", &fr, 200, &resp, "french", 6, 30, 0);
	tap_ok(lookup_body("GET h/v", &fr, "french") && lookup_body("GET h/v", &en, "english"),
	       "Vary: both variants stored side by side");
	cache_store("GET h/v", &none, 200, &resp, "plain", 5, 30, 0);
	tap_ok(lookup_body("GET h/v", &none, "plain"), "Vary: the header's absence is a variant");
	kvlist_add(&fr, "Accept-Encoding", "gzip");
	tap_ok(lookup_body("GET h/v", &fr, NULL), "Vary: every named header counts");
	kvlist_free(&resp);
	kvlist_add(&resp, "Vary", "*");
	tap_ok(cache_store("GET h/star", &en, 200, &resp, "x", 1, 30, 0) == -1 &&
	           lookup_body("GET h/star", &en, NULL),
	       "Vary: * is never stored");
	kvlist_free(&resp);
	kvlist_free(&en);
	kvlist_free(&fr);
}

static void
test_eviction(void)
{
	struct config cfg;
	struct kvlist resp = KVLIST_INIT;
	struct cache_stats st;
	char key[64], body[1500];
	int i, ok = 1, first_gone, last_there;

	setup(&cfg, 256 * 1024);
	memset(body, 'b', sizeof body);
	kvlist_add(&resp, "Content-Type", "text/plain");
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof key, "GET h/flood/%d", i);
		if (cache_store(key, NULL, 200, &resp, body, sizeof body, 60, 0) != 0)
			ok = 0;
		/* Keep one key in use: LRU must spare it. */
		if (i % 10 == 0)
			lookup_body("GET h/flood/0", NULL, NULL);
		cache_stats_get(&st);
		if (st.bytes > cfg.cache.max_size)
			ok = 0;
	}
	cache_stats_get(&st);
	tap_ok(ok,
	       "2000 stores of 1.5 KB into 256 KB: every one stored, bytes never above max_size");
	tap_ok(st.evictions > 1500 && st.entries < 200 && st.bytes <= 256 * 1024,
	       "evictions counted (%llu), %llu entries, %llu bytes",
	       (unsigned long long)st.evictions, (unsigned long long)st.entries,
	       (unsigned long long)st.bytes);
	first_gone = lookup_body("GET h/flood/1", NULL, NULL);
	{
		struct cache_hit hit;

		last_there = cache_lookup("GET h/flood/1999", NULL, &hit);
		cache_hit_free(&hit);
	}
	tap_ok(first_gone && last_there, "oldest evicted, newest kept");
	{
		struct cache_hit hit;

		tap_ok(cache_lookup("GET h/flood/0", NULL, &hit) == 1,
		       "a key used all along survives (LRU, not FIFO)");
		cache_hit_free(&hit);
	}
	/* Larger than a fraction of the zone: not stored, nothing evicted. */
	{
		char *big = calloc(1, 100 * 1024);
		uint64_t ev = st.evictions;

		tap_ok(cache_store("GET h/big", NULL, 200, &resp, big, 100 * 1024, 60, 0) == -1,
		       "an entry larger than 1/8 of the zone is refused");
		cache_stats_get(&st);
		tap_ok(st.evictions == ev, "and evicts nothing");
		free(big);
	}
	kvlist_free(&resp);
	setup(&cfg, 1024 * 1024);
}

static void
test_freshness(void)
{
	struct kvlist h = KVLIST_INIT;
	const char *why;
	double t, wall = 1700000000;

#define FRESH(ttl, priv, cook) cache_freshness(200, &h, ttl, priv, cook, 0, wall, &why)
	tap_ok(FRESH(60, 0, 0) == 60, "no directives: the host TTL");
	kvlist_add(&h, "Cache-Control", "public, max-age=30");
	tap_ok(FRESH(60, 0, 0) == 30, "max-age below the TTL");
	tap_ok(FRESH(10, 0, 0) == 10, "max-age capped by the TTL");
	kvlist_set(&h, "Cache-Control", "max-age=30, s-maxage=5");
	tap_ok(FRESH(60, 0, 0) == 5, "s-maxage wins over max-age");
	t = cache_freshness(200, &h, 60, 0, 0, 3, wall, &why);
	tap_ok(t == 2, "the response's Age is taken off (%g)", t);
	kvlist_set(&h, "Cache-Control", "max-age=0");
	tap_ok(FRESH(60, 0, 0) == 0 && why != NULL, "max-age=0: not stored (%s)", why);
	kvlist_set(&h, "Cache-Control", "max-age=\"20\"");
	tap_ok(FRESH(60, 0, 0) == 20, "a quoted value");
	kvlist_del(&h, "Cache-Control");
	kvlist_add(&h, "Date", "Tue, 14 Nov 2023 22:13:20 GMT");    /* 1700000000 */
	kvlist_add(&h, "Expires", "Tue, 14 Nov 2023 22:13:45 GMT"); /* +25 */
	tap_ok(FRESH(60, 0, 0) == 25, "Expires minus Date");
	kvlist_set(&h, "Expires", "Tue, 14 Nov 2023 21:00:00 GMT");
	tap_ok(FRESH(60, 0, 0) == 0 && strcmp(why, "stale") == 0,
	       "Expires before Date: already stale, not the host TTL");
	kvlist_set(&h, "Expires", "0");
	tap_ok(FRESH(60, 0, 0) == 0, "an invalid Expires is in the past");
	kvlist_del(&h, "Expires");
	kvlist_del(&h, "Date");
	kvlist_add(&h, "Cache-Control", "no-store");
	tap_ok(FRESH(60, 0, 0) == 0 && strcmp(why, "no-store") == 0, "no-store");
	kvlist_set(&h, "Cache-Control", "max-age=60, no-cache");
	tap_ok(FRESH(60, 0, 0) == 0 && strcmp(why, "no-cache") == 0, "no-cache");
	kvlist_set(&h, "Cache-Control", "no-cache=\"Set-Cookie\"");
	tap_ok(FRESH(60, 0, 0) == 0, "no-cache with fields: not stored either");
	kvlist_set(&h, "Cache-Control", "private, max-age=10");
	tap_ok(FRESH(60, 0, 0) == 0 && strcmp(why, "private") == 0, "private");
	tap_ok(FRESH(60, 1, 0) == 10, "private with the host's opt-in");
	kvlist_set(&h, "Cache-Control", "foo=\"a, private\", max-age=7");
	tap_ok(FRESH(60, 0, 0) == 7, "a directive inside a quoted value does not count");
	kvlist_del(&h, "Cache-Control");
	kvlist_add(&h, "Set-Cookie", "a=b");
	tap_ok(FRESH(60, 0, 0) == 0 && strcmp(why, "set-cookie") == 0, "Set-Cookie");
	tap_ok(FRESH(60, 0, 1) == 60, "Set-Cookie with the host's opt-in");
	kvlist_del(&h, "Set-Cookie");
	tap_ok(cache_freshness(404, &h, 60, 0, 0, 0, wall, &why) == 60 &&
	           cache_freshness(301, &h, 60, 0, 0, 0, wall, &why) == 60,
	       "404 and 301 are heuristically cacheable");
	tap_ok(cache_freshness(500, &h, 60, 0, 0, 0, wall, &why) == 0 &&
	           cache_freshness(302, &h, 60, 0, 0, 0, wall, &why) == 0 &&
	           cache_freshness(201, &h, 60, 0, 0, 0, wall, &why) == 0,
	       "500, 302, 201 are not");
	tap_ok(FRESH(0, 0, 0) == 0, "a host TTL of 0 stores nothing");
#undef FRESH
	kvlist_free(&h);
}

static void
test_markers(void)
{
	pid_t pid;
	int st;

	fake_now = 5000;
	tap_ok(cache_marker_take("GET h/m", 5) == 1, "marker taken");
	tap_ok(cache_marker_take("GET h/m", 5) == 0 && cache_marker_held("GET h/m", 5),
	       "held: a second filler waits");
	tap_ok(cache_marker_take("GET h/m", 0) == -1, "lock_timeout 0: no collapsing");
	fake_now = 5006;
	tap_ok(!cache_marker_held("GET h/m", 5), "a marker older than lock_timeout is not held");
	tap_ok(cache_marker_take("GET h/m", 5) == 1, "and is taken over");
	cache_marker_release("GET h/m");
	tap_ok(!cache_marker_held("GET h/m", 5), "released");
	/* A child takes the marker and dies: the marker goes with it. */
	pid = fork();
	if (pid == 0)
		_exit(cache_marker_take("GET h/dead", 5) == 1 ? 0 : 1);
	waitpid(pid, &st, 0);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child took a marker in the shared zone");
	tap_ok(!cache_marker_held("GET h/dead", 5) && cache_marker_take("GET h/dead", 5) == 1,
	       "its death releases it");
	cache_marker_release("GET h/dead");
}

static void
test_shared_and_robust(void)
{
	struct kvlist resp = KVLIST_INIT;
	struct cache_stats st, st2;
	pid_t pid;
	int status;

	/* A child stores, the parent finds it: one zone. */
	pid = fork();
	if (pid == 0)
		_exit(cache_store("GET h/child", NULL, 200, &resp, "from child", 10, 60, 0) == 0
		          ? 0
		          : 1);
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	           lookup_body("GET h/child", NULL, "from child"),
	       "an entry stored by another process is found");
	cache_stats_get(&st);
	/* A child takes the lock and dies without giving it back. */
	pid = fork();
	if (pid == 0) {
		cache_lock_test_hold();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	alarm(5); /* a wedged lock fails the test instead of hanging it */
	tap_ok(cache_stats_get(&st2) == 0, "the lock is usable after its owner died");
	alarm(0);
	tap_ok(st2.recoveries == st.recoveries + 1 && st2.entries == 0 && st2.bytes == 0,
	       "recovery counted and the zone wiped (%llu entries)",
	       (unsigned long long)st2.entries);
	tap_ok(st2.hits == st.hits && st2.stores == st.stores, "counters survive the recovery");
	tap_ok(cache_store("GET h/after", NULL, 200, &resp, "ok", 2, 60, 0) == 0 &&
	           lookup_body("GET h/after", NULL, "ok"),
	       "and the cache works again");
}

static void
test_setup(void)
{
	struct config cfg;
	struct kvlist resp = KVLIST_INIT;
	char err[256];

	setup(&cfg, 1024 * 1024);
	cache_store("GET h/keep", NULL, 200, &resp, "kept", 4, 60, 0);
	tap_ok(cache_setup(&cfg, err, sizeof err) == 0 && lookup_body("GET h/keep", NULL, "kept"),
	       "setup with the same size keeps the zone (reload)");
	cfg.cache.max_size = 2 * 1024 * 1024;
	tap_ok(cache_setup(&cfg, err, sizeof err) == 0 && lookup_body("GET h/keep", NULL, NULL),
	       "another size makes a new zone");
	cfg.cache.ttl = 0;
	cfg.cache.negative_ttl = 0;
	tap_ok(cache_setup(&cfg, err, sizeof err) == 0 &&
	           cache_store("GET h/x", NULL, 200, &resp, "x", 1, 60, 0) == -1,
	       "no TTL anywhere: no zone, nothing stored");
}

int
main(void)
{
	struct config cfg;

	cache_set_clock(fake_clock);
	setup(&cfg, 1024 * 1024);
	test_store_lookup();
	test_expiry();
	test_invalidate();
	test_vary();
	test_eviction();
	test_freshness();
	test_markers();
	test_shared_and_robust();
	test_setup();
	cache_teardown();
	tap_plan(tap_n);
	return tap_failed ? 1 : 0;
}
