/*
 * cache.c: the response cache (cache.h, doc/cache.md). One shared-memory
 * zone (an anonymous MAP_SHARED mapping the master makes before it forks)
 * holds everything: a header with the counters, the fill markers and a
 * process-shared robust mutex; a hash index; and fixed-size blocks. An
 * entry is a chain of blocks (so there is no fragmentation to manage), its
 * first block starting with the entry's header; entries sit on a hash chain
 * and on an LRU list. Links are block numbers, never pointers, since every
 * process maps the zone at its own address. Block 0 is never used, so 0
 * means "none".
 *
 * The mutex is held only to copy bytes in or out of the zone and to fix
 * links, never across I/O. A process that dies holding it leaves the zone in
 * an unknown state: the next locker gets EOWNERDEAD and wipes the entries
 * (the counters stay), which costs misses but never serves a half-written
 * entry.
 */
#include <sys/mman.h>
#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "httpconn.h"
#include "httputil.h"
#include "kvlist.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define CACHE_MAGIC 0x53535043u
#define CACHE_BLOCK 512
#define CACHE_BDATA (CACHE_BLOCK - sizeof(uint32_t))
#define CACHE_NMARKERS 256
/* An entry may take at most this fraction of the blocks: one large
 * response must not flush the whole cache. */
#define CACHE_MAX_FRACTION 8
/* How often a request waiting for another's fill looks again. */
#define CACHE_POLL_MS 10
#define CACHE_NAME "ssm-sign-proxy"

struct zblock {
	uint32_t next;
	unsigned char data[CACHE_BDATA];
};

/* At the start of an entry's first block (copied in and out: the data area
 * is not aligned for the doubles). */
struct zentry {
	uint64_t hash;
	uint32_t hnext; /* next entry on the hash chain */
	uint32_t lprev; /* toward the most recently used */
	uint32_t lnext; /* toward the least recently used */
	uint32_t nblocks;
	uint32_t keylen, varylen, hdrlen, bodylen;
	int32_t status;
	double stored;  /* clock when it was stored, minus its age then */
	double expires; /* clock when it stops being fresh */
};

struct zmarker {
	uint64_t hash; /* 0: free */
	pid_t pid;
	double since;
};

struct zone {
	uint32_t magic;
	uint64_t size;
	pthread_mutex_t lock;
	struct cache_stats st;
	uint32_t nbuckets;
	uint32_t nblocks;  /* blocks in the zone, block 0 included */
	uint32_t freelist; /* blocks given back */
	uint32_t fresh;    /* blocks from here on were never used (so never touched) */
	uint32_t nfree;    /* free blocks: the list plus the never used */
	uint32_t lru_head, lru_tail;
	uint64_t buckets_off, blocks_off;
	struct zmarker markers[CACHE_NMARKERS];
};

static struct zone *zone;
static size_t zone_size;

static double
cache_clock_default(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double (*cache_now)(void) = cache_clock_default;

void
cache_set_clock(double (*now)(void))
{
	cache_now = now != NULL ? now : cache_clock_default;
}

/* --- the zone ----------------------------------------------------------- */

static uint32_t *
zbuckets(void)
{
	return (uint32_t *)((char *)zone + zone->buckets_off);
}

static struct zblock *
zblk(uint32_t b)
{
	return (struct zblock *)((char *)zone + zone->blocks_off) + b;
}

/* Forget every entry and marker; the counters other than bytes and
 * entries stay. */
static void
zone_wipe(void)
{
	memset(zbuckets(), 0, zone->nbuckets * sizeof(uint32_t));
	zone->freelist = 0;
	zone->fresh = 1;
	zone->nfree = zone->nblocks - 1;
	zone->lru_head = zone->lru_tail = 0;
	zone->st.bytes = 0;
	zone->st.entries = 0;
	memset(zone->markers, 0, sizeof zone->markers);
}

static int
zlock(void)
{
	int r = pthread_mutex_lock(&zone->lock);

	if (r == EOWNERDEAD) {
		/* A process died in the middle of an update. */
		zone_wipe();
		zone->st.recoveries++;
		pthread_mutex_consistent(&zone->lock);
		return 0;
	}
	return r == 0 ? 0 : -1;
}

static void
zunlock(void)
{
	pthread_mutex_unlock(&zone->lock);
}

static struct zone *
zone_create(size_t size, char *err, size_t errlen)
{
	pthread_mutexattr_t ma;
	struct zone *z;
	size_t off;

	z = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (z == MAP_FAILED) {
		snprintf(err, errlen, "cache: cannot map %zu bytes: %s", size, strerror(errno));
		return NULL;
	}
	z->magic = CACHE_MAGIC;
	z->size = size;
	z->st.size = size;
	z->nbuckets = (uint32_t)(size / 2048 > 64 ? size / 2048 : 64);
	off = (sizeof *z + 63) & ~(size_t)63;
	z->buckets_off = off;
	off += z->nbuckets * sizeof(uint32_t);
	off = (off + 63) & ~(size_t)63;
	z->blocks_off = off;
	if (off + 16 * CACHE_BLOCK > size) {
		munmap(z, size);
		snprintf(err, errlen, "cache: max_size %zu is too small", size);
		return NULL;
	}
	z->nblocks = (uint32_t)((size - off) / CACHE_BLOCK);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&z->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	/* The mapping is zero-filled: the buckets are empty already. */
	z->freelist = 0;
	z->fresh = 1;
	z->nfree = z->nblocks - 1;
	return z;
}

/* Is the cache wanted at all by cfg? */
static int
cache_wanted(const struct config *cfg)
{
	size_t i;

	if (cfg->cache.ttl > 0 || cfg->cache.negative_ttl > 0)
		return 1;
	for (i = 0; i < cfg->cache.nhosts; i++)
		if (cfg->cache.hosts[i].ttl > 0)
			return 1;
	return 0;
}

int
cache_setup(const struct config *cfg, char *err, size_t errlen)
{
	struct zone *z;

	if (!cache_wanted(cfg)) {
		cache_teardown();
		return 0;
	}
	if (zone != NULL && zone_size == cfg->cache.max_size)
		return 0;
	z = zone_create(cfg->cache.max_size, err, errlen);
	if (z == NULL)
		return -1;
	/* Workers already running keep the old zone mapped until they exit. */
	cache_teardown();
	zone = z;
	zone_size = cfg->cache.max_size;
	log_debug("cache: %zu bytes shared by all workers", zone_size);
	return 0;
}

void
cache_teardown(void)
{
	if (zone != NULL)
		munmap(zone, zone_size);
	zone = NULL;
	zone_size = 0;
}

int
cache_stats_get(struct cache_stats *st)
{
	if (zone == NULL || zlock() == -1)
		return -1;
	*st = zone->st;
	zunlock();
	return 0;
}

void
cache_log_stats(void)
{
	struct cache_stats st;

	if (cache_stats_get(&st) == -1) {
		log_info("cache: off");
		return;
	}
	log_info("cache: hits %llu misses %llu stores %llu evictions %llu bytes %llu "
	         "entries %llu size %llu lock-recoveries %llu",
	         (unsigned long long)st.hits, (unsigned long long)st.misses,
	         (unsigned long long)st.stores, (unsigned long long)st.evictions,
	         (unsigned long long)st.bytes, (unsigned long long)st.entries,
	         (unsigned long long)st.size, (unsigned long long)st.recoveries);
}

void
cache_lock_test_hold(void)
{
	if (zone != NULL)
		zlock();
}

void
cache_lock_test_release(void)
{
	if (zone != NULL)
		zunlock();
}

/* --- entries (the lock held) -------------------------------------------- */

static uint64_t
cache_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h != 0 ? h : 1;
}

static void
ent_get(uint32_t b, struct zentry *e)
{
	memcpy(e, zblk(b)->data, sizeof *e);
}

static void
ent_put(uint32_t b, const struct zentry *e)
{
	memcpy(zblk(b)->data, e, sizeof *e);
}

/* Copy len bytes at offset off of entry b's stream out to dst. */
static void
ent_read(uint32_t b, size_t off, void *dst, size_t len)
{
	unsigned char *d = dst;
	size_t n;

	while (off >= CACHE_BDATA) {
		b = zblk(b)->next;
		off -= CACHE_BDATA;
	}
	while (len > 0) {
		n = CACHE_BDATA - off < len ? CACHE_BDATA - off : len;
		memcpy(d, zblk(b)->data + off, n);
		d += n;
		len -= n;
		off = 0;
		b = zblk(b)->next;
	}
}

static void
ent_write(uint32_t b, size_t off, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t n;

	while (off >= CACHE_BDATA) {
		b = zblk(b)->next;
		off -= CACHE_BDATA;
	}
	while (len > 0) {
		n = CACHE_BDATA - off < len ? CACHE_BDATA - off : len;
		memcpy(zblk(b)->data + off, s, n);
		s += n;
		len -= n;
		off = 0;
		b = zblk(b)->next;
	}
}

static void
lru_unlink(uint32_t b, struct zentry *e)
{
	struct zentry o;

	if (e->lprev != 0) {
		ent_get(e->lprev, &o);
		o.lnext = e->lnext;
		ent_put(e->lprev, &o);
	} else
		zone->lru_head = e->lnext;
	if (e->lnext != 0) {
		ent_get(e->lnext, &o);
		o.lprev = e->lprev;
		ent_put(e->lnext, &o);
	} else
		zone->lru_tail = e->lprev;
	e->lprev = e->lnext = 0;
	ent_put(b, e);
}

static void
lru_push(uint32_t b, struct zentry *e)
{
	struct zentry o;

	e->lprev = 0;
	e->lnext = zone->lru_head;
	if (zone->lru_head != 0) {
		ent_get(zone->lru_head, &o);
		o.lprev = b;
		ent_put(zone->lru_head, &o);
	} else
		zone->lru_tail = b;
	zone->lru_head = b;
	ent_put(b, e);
}

/* Unlink entry b from everything and give its blocks back. */
static void
ent_free(uint32_t b)
{
	struct zentry e, o;
	uint32_t *bucket, p, last;
	uint32_t i;

	ent_get(b, &e);
	bucket = &zbuckets()[e.hash % zone->nbuckets];
	if (*bucket == b)
		*bucket = e.hnext;
	else {
		for (p = *bucket; p != 0; p = o.hnext) {
			ent_get(p, &o);
			if (o.hnext == b) {
				o.hnext = e.hnext;
				ent_put(p, &o);
				break;
			}
		}
	}
	lru_unlink(b, &e);
	last = b;
	for (i = 1; i < e.nblocks; i++)
		last = zblk(last)->next;
	zblk(last)->next = zone->freelist;
	zone->freelist = b;
	zone->nfree += e.nblocks;
	zone->st.entries--;
	zone->st.bytes -= (uint64_t)e.nblocks * CACHE_BLOCK;
}

/* Take n blocks (n <= nfree), chained; returns the first. */
static uint32_t
blocks_take(uint32_t n)
{
	uint32_t first = 0, prev = 0, b, i;

	for (i = 0; i < n; i++) {
		if (zone->freelist != 0) {
			b = zone->freelist;
			zone->freelist = zblk(b)->next;
		} else
			b = zone->fresh++;
		zblk(b)->next = 0;
		if (prev != 0)
			zblk(prev)->next = b;
		else
			first = b;
		prev = b;
	}
	zone->nfree -= n;
	return first;
}

/* --- serialising -------------------------------------------------------- */

static void
buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2 + 64;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
}

/* "name\0value\0" for every header. */
static char *
headers_pack(const struct kvlist *h, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, i;

	*len = 0;
	for (i = 0; i < h->n; i++) {
		buf_add(&buf, len, &cap, h->v[i].name, strlen(h->v[i].name) + 1);
		buf_add(&buf, len, &cap, h->v[i].value, strlen(h->v[i].value) + 1);
	}
	return buf;
}

static struct kvlist *
headers_unpack(const char *p, size_t len)
{
	struct kvlist *h = xcalloc(1, sizeof *h);
	const char *end = p + len, *name;

	kvlist_init(h);
	while (p < end) {
		name = p;
		p += strlen(p) + 1;
		if (p >= end)
			break;
		kvlist_add(h, name, p);
		p += strlen(p) + 1;
	}
	return h;
}

/*
 * The secondary key: for every field the response's Vary names, the name
 * (lower case) and the request's value ("1value", or "0" when absent), as
 * "name\0value\0". -1 for "Vary: *".
 */
static int
vary_pack(const struct kvlist *resp, const struct kvlist *req, char **out, size_t *outlen)
{
	char *buf = NULL, name[128];
	size_t cap = 0, len = 0, i, n;
	const char *p, *v;

	*out = NULL;
	*outlen = 0;
	for (i = 0; i < resp->n; i++) {
		if (strcasecmp(resp->v[i].name, "Vary") != 0)
			continue;
		p = resp->v[i].value;
		while (*p != '\0') {
			p += strspn(p, " \t,");
			n = strcspn(p, " \t,");
			if (n == 0)
				break;
			if (n == 1 && *p == '*') {
				free(buf);
				return -1;
			}
			if (n < sizeof name) {
				memcpy(name, p, n);
				name[n] = '\0';
				for (v = name; *v != '\0'; v++)
					name[v - name] = (char)tolower((unsigned char)*v);
				buf_add(&buf, &len, &cap, name, n + 1);
				v = req != NULL ? kvlist_get(req, name) : NULL;
				if (v != NULL) {
					buf_add(&buf, &len, &cap, "1", 1);
					buf_add(&buf, &len, &cap, v, strlen(v) + 1);
				} else
					buf_add(&buf, &len, &cap, "0", 2);
			}
			p += n;
		}
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* Does the request match a stored secondary key? */
static int
vary_match(const char *p, size_t len, const struct kvlist *req)
{
	const char *end = p + len, *name, *v;

	while (p < end) {
		name = p;
		p += strlen(p) + 1;
		if (p >= end)
			return 0;
		v = req != NULL ? kvlist_get(req, name) : NULL;
		if (*p == '0') {
			if (v != NULL)
				return 0;
		} else if (v == NULL || strcmp(p + 1, v) != 0)
			return 0;
		p += strlen(p) + 1;
	}
	return 1;
}

/* --- store and lookup --------------------------------------------------- */

/* Find key's entry whose secondary key is vary (exact bytes) or, with
 * req, whose secondary key req matches. The lock is held. */
static uint32_t
ent_find(const char *key, size_t keylen, uint64_t h, const char *vary, size_t varylen,
         const struct kvlist *req, double now, struct zentry *out)
{
	struct zentry e;
	uint32_t b, next;
	char *tmp;
	int ok;

	for (b = zbuckets()[h % zone->nbuckets]; b != 0; b = next) {
		ent_get(b, &e);
		next = e.hnext;
		if (e.hash != h || e.keylen != keylen)
			continue;
		tmp = xmalloc(keylen + e.varylen + 1);
		ent_read(b, sizeof e, tmp, keylen + e.varylen);
		ok = memcmp(tmp, key, keylen) == 0;
		if (ok && e.expires <= now) {
			/* Stale: no revalidation here, so it is only in the way. */
			free(tmp);
			ent_free(b);
			continue;
		}
		if (ok && req != NULL)
			ok = vary_match(tmp + keylen, e.varylen, req);
		else if (ok)
			ok = e.varylen == varylen && memcmp(tmp + keylen, vary, varylen) == 0;
		free(tmp);
		if (ok) {
			*out = e;
			return b;
		}
	}
	return 0;
}

static int
store_blob(const char *key, const char *vary, size_t varylen, int status, const struct kvlist *hdrs,
           const void *body, size_t body_len, double ttl, double age)
{
	struct zentry e;
	uint32_t b, need, *bucket;
	size_t keylen = strlen(key), hdrlen, total;
	char *packed;
	double now;
	int rc = -1;

	if (zone == NULL || ttl <= 0)
		return -1;
	packed = headers_pack(hdrs, &hdrlen);
	total = sizeof e + keylen + varylen + hdrlen + body_len;
	need = (uint32_t)((total + CACHE_BDATA - 1) / CACHE_BDATA);
	if (total > UINT32_MAX || need > (zone->nblocks - 1) / CACHE_MAX_FRACTION) {
		free(packed);
		return -1;
	}
	memset(&e, 0, sizeof e);
	e.hash = cache_hash(key, keylen);
	e.nblocks = need;
	e.keylen = (uint32_t)keylen;
	e.varylen = (uint32_t)varylen;
	e.hdrlen = (uint32_t)hdrlen;
	e.bodylen = (uint32_t)body_len;
	e.status = status;
	if (zlock() == -1) {
		free(packed);
		return -1;
	}
	now = cache_now();
	e.stored = now - age;
	e.expires = now + ttl;
	{
		struct zentry old;
		uint32_t ob = ent_find(key, keylen, e.hash, vary, varylen, NULL, now, &old);

		if (ob != 0)
			ent_free(ob);
	}
	while (zone->nfree < need && zone->lru_tail != 0) {
		ent_free(zone->lru_tail);
		zone->st.evictions++;
	}
	if (zone->nfree >= need) {
		b = blocks_take(need);
		ent_put(b, &e);
		ent_write(b, sizeof e, key, keylen);
		ent_write(b, sizeof e + keylen, vary, varylen);
		ent_write(b, sizeof e + keylen + varylen, packed, hdrlen);
		ent_write(b, sizeof e + keylen + varylen + hdrlen, body, body_len);
		bucket = &zbuckets()[e.hash % zone->nbuckets];
		e.hnext = *bucket;
		*bucket = b;
		lru_push(b, &e);
		zone->st.stores++;
		zone->st.entries++;
		zone->st.bytes += (uint64_t)need * CACHE_BLOCK;
		rc = 0;
	}
	zunlock();
	free(packed);
	return rc;
}

int
cache_store(const char *key, const struct kvlist *req, int status, const struct kvlist *resp,
            const void *body, size_t body_len, double ttl, double age)
{
	char *vary;
	size_t varylen;
	int rc;

	if (vary_pack(resp, req, &vary, &varylen) == -1)
		return -1;
	rc = store_blob(key, vary != NULL ? vary : "", varylen, status, resp, body, body_len, ttl,
	                age);
	free(vary);
	return rc;
}

int
cache_lookup(const char *key, const struct kvlist *req, struct cache_hit *hit)
{
	static const struct kvlist none = KVLIST_INIT;
	struct zentry e;
	size_t keylen = strlen(key), off;
	uint32_t b;
	char *hdrs;
	double now;

	memset(hit, 0, sizeof *hit);
	if (zone == NULL || zlock() == -1)
		return 0;
	now = cache_now();
	b = ent_find(key, keylen, cache_hash(key, keylen), NULL, 0, req != NULL ? req : &none, now,
	             &e);
	if (b == 0) {
		zunlock();
		return 0;
	}
	lru_unlink(b, &e);
	lru_push(b, &e);
	zone->st.hits++;
	off = sizeof e + e.keylen + e.varylen;
	hdrs = xmalloc(e.hdrlen + 1);
	ent_read(b, off, hdrs, e.hdrlen);
	hit->body = xmalloc(e.bodylen + 1);
	ent_read(b, off + e.hdrlen, hit->body, e.bodylen);
	zunlock();
	hit->body_len = e.bodylen;
	hit->status = e.status;
	hit->age = now - e.stored;
	hit->ttl = e.expires - now;
	hit->headers = headers_unpack(hdrs, e.hdrlen);
	free(hdrs);
	return 1;
}

void
cache_hit_free(struct cache_hit *hit)
{
	if (hit->headers != NULL) {
		kvlist_free(hit->headers);
		free(hit->headers);
	}
	free(hit->body);
	memset(hit, 0, sizeof *hit);
}

/* Drop every variant stored under key. Returns how many. */
static int
cache_remove_key(const char *key)
{
	struct zentry e;
	size_t keylen = strlen(key);
	uint64_t h = cache_hash(key, keylen);
	uint32_t b, next;
	char *tmp;
	int n = 0;

	if (zone == NULL || zlock() == -1)
		return 0;
	tmp = xmalloc(keylen + 1);
	for (b = zbuckets()[h % zone->nbuckets]; b != 0; b = next) {
		ent_get(b, &e);
		next = e.hnext;
		if (e.hash != h || e.keylen != keylen)
			continue;
		ent_read(b, sizeof e, tmp, keylen);
		if (memcmp(tmp, key, keylen) == 0) {
			ent_free(b);
			n++;
		}
	}
	zunlock();
	free(tmp);
	return n;
}

int
cache_invalidate(const char *host, const char *target)
{
	char *key;
	int n;

	xasprintf(&key, "GET %s%s", host, target);
	n = cache_remove_key(key);
	free(key);
	xasprintf(&key, "HEAD %s%s", host, target);
	n += cache_remove_key(key);
	free(key);
	return n;
}

/* --- fill markers ------------------------------------------------------- */

static int
marker_live(const struct zmarker *mk, double now, double timeout)
{
	if (mk->hash == 0 || now - mk->since >= timeout)
		return 0;
	return kill(mk->pid, 0) == 0 || errno == EPERM;
}

int
cache_marker_take(const char *key, double timeout)
{
	uint64_t h = cache_hash(key, strlen(key));
	struct zmarker *mk, *slot = NULL;
	double now;
	int i, rc = -1;

	if (zone == NULL || timeout <= 0 || zlock() == -1)
		return -1;
	now = cache_now();
	for (i = 0; i < CACHE_NMARKERS; i++) {
		mk = &zone->markers[i];
		if (mk->hash == h) {
			if (marker_live(mk, now, timeout)) {
				zunlock();
				return 0;
			}
			slot = mk; /* its owner died or overstayed: take it over */
			break;
		}
		if (slot == NULL && !marker_live(mk, now, timeout))
			slot = mk;
	}
	if (slot != NULL) {
		slot->hash = h;
		slot->pid = getpid();
		slot->since = now;
		rc = 1;
	}
	zunlock();
	return rc;
}

int
cache_marker_held(const char *key, double timeout)
{
	uint64_t h = cache_hash(key, strlen(key));
	int i, held = 0;
	double now;

	if (zone == NULL || zlock() == -1)
		return 0;
	now = cache_now();
	for (i = 0; i < CACHE_NMARKERS; i++)
		if (zone->markers[i].hash == h) {
			held = marker_live(&zone->markers[i], now, timeout);
			break;
		}
	zunlock();
	return held;
}

void
cache_marker_release(const char *key)
{
	uint64_t h = cache_hash(key, strlen(key));
	pid_t me = getpid();
	int i;

	if (zone == NULL || zlock() == -1)
		return;
	for (i = 0; i < CACHE_NMARKERS; i++)
		if (zone->markers[i].hash == h && zone->markers[i].pid == me) {
			memset(&zone->markers[i], 0, sizeof zone->markers[i]);
			break;
		}
	zunlock();
}

/* --- the rules ---------------------------------------------------------- */

static int
status_cacheable(int status)
{
	switch (status) {
	case 200:
	case 203:
	case 204:
	case 300:
	case 301:
	case 308:
	case 404:
	case 405:
	case 410:
	case 414:
	case 501:
		return 1;
	}
	return 0;
}

static int
parse_http_date(const char *s, double *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	/* RFC 9110's preferred form; the obsolete ones count as invalid, which
	 * for Expires means "already expired". */
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	*out = (double)timegm(&tm);
	return 0;
}

/* Look for directive name (case-insensitive) in every Cache-Control header;
 * its value (if any, unquoted) goes to val. 1 found. */
static int
cc_find(const struct kvlist *h, const char *name, char *val, size_t vallen)
{
	size_t i, n, nl = strlen(name);
	const char *p;

	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, "Cache-Control") != 0)
			continue;
		p = h->v[i].value;
		while (*p != '\0') {
			p += strspn(p, " \t,");
			n = strcspn(p, "=, \t");
			if (n == nl && strncasecmp(p, name, nl) == 0) {
				p += n;
				p += strspn(p, " \t");
				if (val != NULL)
					val[0] = '\0';
				if (*p == '=' && val != NULL) {
					p++;
					p += strspn(p, " \t");
					if (*p == '"') {
						p++;
						n = strcspn(p, "\"");
					} else
						n = strcspn(p, ", \t");
					if (n >= vallen)
						n = vallen - 1;
					memcpy(val, p, n);
					val[n] = '\0';
				}
				return 1;
			}
			/* Skip this directive, a quoted value included. */
			p += n;
			if (*p == '=') {
				p++;
				if (*p == '"') {
					p++;
					p += strcspn(p, "\"");
					if (*p == '"')
						p++;
				}
			}
			p += strcspn(p, ",");
		}
	}
	return 0;
}

/* A delta-seconds value; -1 when invalid. */
static double
delta_seconds(const char *s)
{
	char *end;
	double v;

	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtod(s, &end);
	if (*end != '\0')
		return -1;
	return v;
}

double
cache_freshness(int status, const struct kvlist *resp, double host_ttl, int private_ok,
                int cookies_ok, double age, double wall, const char **why)
{
	char val[64];
	const char *exp, *date;
	double life = 0, d, ex;
	int explicit = 1;

	*why = NULL;
	if (host_ttl <= 0) {
		*why = "host-ttl-0";
		return 0;
	}
	if (!status_cacheable(status)) {
		*why = "status";
		return 0;
	}
	if (cc_find(resp, "no-store", NULL, 0)) {
		*why = "no-store";
		return 0;
	}
	if (cc_find(resp, "no-cache", NULL, 0)) {
		*why = "no-cache";
		return 0;
	}
	if (!private_ok && cc_find(resp, "private", NULL, 0)) {
		*why = "private";
		return 0;
	}
	if (!cookies_ok && kvlist_get(resp, "Set-Cookie") != NULL) {
		*why = "set-cookie";
		return 0;
	}
	if (cc_find(resp, "s-maxage", val, sizeof val))
		life = delta_seconds(val) >= 0 ? delta_seconds(val) : 0;
	else if (cc_find(resp, "max-age", val, sizeof val))
		life = delta_seconds(val) >= 0 ? delta_seconds(val) : 0;
	else if ((exp = kvlist_get(resp, "Expires")) != NULL) {
		/* Expires is relative to the origin's Date (clock skew). */
		date = kvlist_get(resp, "Date");
		if (date == NULL || parse_http_date(date, &d) == -1)
			d = wall;
		life = parse_http_date(exp, &ex) == 0 ? ex - d : 0;
	} else
		explicit = 0;
	if (explicit) {
		life -= age;
		if (life > host_ttl)
			life = host_ttl;
		if (life <= 0) {
			*why = "stale";
			return 0;
		}
		return life;
	}
	return host_ttl;
}

/* --- the request path --------------------------------------------------- */

struct cache_req {
	const struct config *cfg;
	char *key;     /* "GET host/path?query" */
	char *nkey;    /* the host's negative (407) entry */
	char *logname; /* "GET host/path", no query (clients put tokens there) */
	struct kvlist reqh;
	double host_ttl;
	int private_ok, cookies_ok;
	int marker;     /* this request holds key's fill marker */
	int invalidate; /* an unsafe method: a success invalidates the URL */
	char *host;
	char *target; /* path?query */
	const char *logstatus;
	struct cache_hit hit;
	int have_hit;
	/* A streamed response gathered for the store (cache_stream_*). */
	int s_on;
	int s_status;
	int s_negative;
	struct kvlist s_resp;
	double s_ttl, s_age;
	struct evbuffer *s_body;
	size_t s_max;
	/* Waiting for another request's fill. */
	struct event *timer;
	double wait_start;
	cache_resume_cb cb;
	void *arg;
};

static void
cache_count_miss(void)
{
	if (zone != NULL && zlock() == 0) {
		zone->st.misses++;
		zunlock();
	}
}

/* Look for a fresh entry: the host's negative one, then the request's. */
static int
cache_req_lookup(struct cache_req *cr)
{
	if (cr->cfg->cache.negative_ttl > 0 && cache_lookup(cr->nkey, NULL, &cr->hit)) {
		cr->have_hit = 1;
		return 1;
	}
	if (cr->host_ttl > 0 && cache_lookup(cr->key, &cr->reqh, &cr->hit)) {
		cr->have_hit = 1;
		return 1;
	}
	return 0;
}

static void
cache_poll(evutil_socket_t fd, short what, void *arg)
{
	struct cache_req *cr = arg;
	struct timeval tv = {0, CACHE_POLL_MS * 1000};
	double lt = cr->cfg->cache.lock_timeout;

	if (cache_req_lookup(cr)) {
		log_debug("cache: hit %s (collapsed)", cr->logname);
		cr->logstatus = "HIT";
		cr->cb(1, cr->arg);
		return;
	}
	/* The fill ended without a storable answer, its owner died, or we
	 * waited long enough: go ourselves, without a marker, so that the
	 * waiters do not queue behind each other. */
	if (!cache_marker_held(cr->key, lt) || cache_now() - cr->wait_start >= lt) {
		cache_count_miss();
		cr->cb(0, cr->arg);
		return;
	}
	evtimer_add(cr->timer, &tv);
}

enum cache_verdict
cache_begin(struct cache_req **crp, struct event_base *base, const struct config *cfg,
            const struct kvlist *in, const char *method, const char *host, const char *path,
            const char *query, cache_resume_cb cb, void *arg)
{
	struct cache_req *cr;
	struct timeval tv = {0, CACHE_POLL_MS * 1000};
	double ttl = cfg->cache.ttl;
	int private_ok = 0, cookies_ok = 0, r;
	size_t i;

	*crp = NULL;
	if (zone == NULL)
		return CACHE_GO;
	/* Only GET and HEAD; a request with credentials of its own gets an
	 * answer meant for it alone. */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		/* Never looked up nor stored; but an unsafe method that
		 * succeeds invalidates what is stored for its URL (RFC 9111
		 * 4.4), so that a client reads its own write. */
		if (strcmp(method, "OPTIONS") == 0 || strcmp(method, "TRACE") == 0)
			return CACHE_GO;
		cr = xcalloc(1, sizeof *cr);
		cr->cfg = cfg;
		cr->invalidate = 1;
		cr->host = xstrdup(host);
		xasprintf(&cr->target, "%s%s%s", path, query != NULL ? "?" : "",
		          query != NULL ? query : "");
		kvlist_init(&cr->reqh);
		*crp = cr;
		return CACHE_GO;
	}
	if (kvlist_get(in, "Authorization") != NULL)
		return CACHE_GO;
	for (i = 0; i < cfg->cache.nhosts; i++)
		if (strcasecmp(cfg->cache.hosts[i].host, host) == 0) {
			ttl = cfg->cache.hosts[i].ttl;
			private_ok = cfg->cache.hosts[i].private_ok;
			cookies_ok = cfg->cache.hosts[i].cookies_ok;
			break;
		}
	if (ttl <= 0 && cfg->cache.negative_ttl <= 0)
		return CACHE_GO;

	cr = xcalloc(1, sizeof *cr);
	cr->cfg = cfg;
	cr->host_ttl = ttl;
	cr->private_ok = private_ok;
	cr->cookies_ok = cookies_ok;
	xasprintf(&cr->key, "%s %s%s%s%s", method, host, path, query != NULL ? "?" : "",
	          query != NULL ? query : "");
	xasprintf(&cr->nkey, "407 %s %s", method, host);
	xasprintf(&cr->logname, "%s %s%s", method, host, path);
	kvlist_init(&cr->reqh);
	for (i = 0; i < in->n; i++)
		kvlist_add(&cr->reqh, in->v[i].name, in->v[i].value);
	*crp = cr;

	if (cache_req_lookup(cr)) {
		log_debug("cache: hit %s", cr->logname);
		cr->logstatus = "HIT";
		return CACHE_HIT;
	}
	if (ttl <= 0)
		return CACHE_GO;
	cr->logstatus = "MISS";
	r = cache_marker_take(cr->key, cfg->cache.lock_timeout);
	if (r == 0 && base != NULL) {
		cr->timer = evtimer_new(base, cache_poll, cr);
		if (cr->timer != NULL) {
			cr->cb = cb;
			cr->arg = arg;
			cr->wait_start = cache_now();
			evtimer_add(cr->timer, &tv);
			log_debug("cache: waiting for another request's fill of %s", cr->logname);
			metrics_cache_wait();
			return CACHE_WAIT;
		}
	}
	cr->marker = r == 1;
	if (cr->marker)
		log_debug("cache: filling %s", cr->logname);
	cache_count_miss();
	return CACHE_GO;
}

size_t
cache_send(struct cache_req *cr, struct httpreq *req, int *status)
{
	struct kvlist out = KVLIST_INIT;
	struct cache_hit *h = &cr->hit;
	char v[96];
	size_t i, n;

	for (i = 0; i < h->headers->n; i++)
		kvlist_add(&out, h->headers->v[i].name, h->headers->v[i].value);
	snprintf(v, sizeof v, "%.0f", floor(h->age > 0 ? h->age : 0));
	kvlist_add(&out, "Age", v);
	snprintf(v, sizeof v, "%s; hit; ttl=%.0f", CACHE_NAME, floor(h->ttl > 0 ? h->ttl : 0));
	kvlist_add(&out, "Cache-Status", v);
	*status = h->status;
	n = httpreq_send(req, h->status, NULL, &out, h->body,
	                 h->status != 204 && h->status != 304 ? h->body_len : 0);
	kvlist_free(&out);
	return n;
}

/* An unsafe method succeeded: its URL, and its Location and
 * Content-Location when they are on the same host, are stale now. */
static void
cache_invalidate_response(struct cache_req *cr, const struct kvlist *out)
{
	static const char *const names[] = {"Location", "Content-Location"};
	const char *v, *p;
	size_t i, hl = strlen(cr->host);

	cache_invalidate(cr->host, cr->target);
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if ((v = kvlist_get(out, names[i])) == NULL)
			continue;
		p = NULL;
		if (*v == '/' && v[1] != '/')
			p = v;
		else if (strncasecmp(v, "http://", 7) == 0 &&
		         strncasecmp(v + 7, cr->host, hl) == 0 &&
		         (v[7 + hl] == '/' || v[7 + hl] == '\0'))
			p = v[7 + hl] == '/' ? v + 7 + hl : "/";
		if (p != NULL)
			cache_invalidate(cr->host, p);
	}
}

void
cache_response(struct cache_req *cr, struct kvlist *out, int status, const void *body,
               size_t body_len)
{
	struct kvlist resp = KVLIST_INIT;
	size_t i;
	const char *why = NULL, *a;
	char cs[160];
	double ttl, age = 0, wall = (double)time(NULL);
	int stored = 0;

	if (cr == NULL)
		return;
	if (cr->invalidate) {
		if (status >= 200 && status < 400)
			cache_invalidate_response(cr, out);
		return;
	}
	for (i = 0; i < out->n; i++) {
		const char *name = out->v[i].name;

		/* Per connection, or ours to compute on every hit (the request
		 * id is the request's, not the response's). */
		if (strcasecmp(name, "Connection") == 0 || strcasecmp(name, "Age") == 0 ||
		    strcasecmp(name, "Cache-Status") == 0 || strcasecmp(name, "X-Request-Id") == 0)
			continue;
		kvlist_add(&resp, name, out->v[i].value);
	}
	if ((a = kvlist_get(out, "Age")) != NULL && delta_seconds(a) > 0)
		age = delta_seconds(a);
	if (status == 407 && cr->cfg->cache.negative_ttl > 0) {
		/* No parameters for this host: whatever the path, for a while. */
		stored = store_blob(cr->nkey, "", 0, status, &resp, body, body_len,
		                    cr->cfg->cache.negative_ttl, 0) == 0;
		if (!stored)
			why = "too-large";
	} else if (cr->host_ttl > 0) {
		ttl = cache_freshness(status, &resp, cr->host_ttl, cr->private_ok, cr->cookies_ok,
		                      age, wall, &why);
		if (ttl > 0) {
			stored = cache_store(cr->key, &cr->reqh, status, &resp, body, body_len, ttl,
			                     age) == 0;
			if (!stored)
				why = kvlist_get(&resp, "Vary") != NULL ? "vary-or-size"
				                                        : "too-large";
		}
	}
	if (stored)
		log_debug("cache: stored %s (%d)", cr->logname, status);
	else if (why != NULL)
		log_debug("cache: not storing %s (%d): %s", cr->logname, status, why);
	if (cr->host_ttl > 0 || stored) {
		cr->logstatus = "MISS";
		snprintf(cs, sizeof cs, "%s; fwd=uri-miss%s%s%s", CACHE_NAME,
		         stored ? "; stored" : "", !stored && why != NULL ? "; detail=" : "",
		         !stored && why != NULL ? why : "");
		kvlist_add(out, "Cache-Status", cs);
	}
	kvlist_free(&resp);
	if (cr->marker) {
		cache_marker_release(cr->key);
		cr->marker = 0;
	}
}

/* The response headers worth storing (not Connection, Age, Cache-Status,
 * X-Request-Id) and the response's age on arrival. */
static double
cache_resp_headers(const struct kvlist *out, struct kvlist *resp)
{
	const char *a;
	size_t i;

	for (i = 0; i < out->n; i++) {
		const char *name = out->v[i].name;

		if (strcasecmp(name, "Connection") == 0 || strcasecmp(name, "Age") == 0 ||
		    strcasecmp(name, "Cache-Status") == 0 || strcasecmp(name, "X-Request-Id") == 0)
			continue;
		kvlist_add(resp, name, out->v[i].value);
	}
	if ((a = kvlist_get(out, "Age")) != NULL && delta_seconds(a) > 0)
		return delta_seconds(a);
	return 0;
}

static void
cache_stream_drop(struct cache_req *cr, const char *why)
{
	if (why != NULL)
		log_debug("cache: not storing %s (%d): %s", cr->logname, cr->s_status, why);
	cr->s_on = 0;
	kvlist_free(&cr->s_resp);
	if (cr->s_body != NULL) {
		evbuffer_free(cr->s_body);
		cr->s_body = NULL;
	}
	if (cr->marker) {
		cache_marker_release(cr->key);
		cr->marker = 0;
	}
}

void
cache_stream_head(struct cache_req *cr, struct kvlist *out, int status)
{
	const char *why = NULL;
	double ttl = 0, wall = (double)time(NULL);
	char cs[160];

	if (cr == NULL)
		return;
	if (cr->invalidate) {
		if (status >= 200 && status < 400)
			cache_invalidate_response(cr, out);
		return;
	}
	kvlist_init(&cr->s_resp);
	cr->s_age = cache_resp_headers(out, &cr->s_resp);
	cr->s_status = status;
	if (status == 407 && cr->cfg->cache.negative_ttl > 0) {
		ttl = cr->cfg->cache.negative_ttl;
		cr->s_negative = 1;
	} else if (cr->host_ttl > 0)
		ttl = cache_freshness(status, &cr->s_resp, cr->host_ttl, cr->private_ok,
		                      cr->cookies_ok, cr->s_age, wall, &why);
	if (ttl > 0 && zone != NULL) {
		/* Gathered while it passes, up to the largest entry the zone
		 * takes: a longer body is not kept (nor its memory). */
		cr->s_on = 1;
		cr->s_ttl = ttl;
		cr->s_max = (size_t)((zone->nblocks - 1) / CACHE_MAX_FRACTION) * CACHE_BDATA;
		if ((cr->s_body = evbuffer_new()) == NULL)
			cache_stream_drop(cr, "no memory");
	} else
		cache_stream_drop(cr, why);
	if (cr->host_ttl > 0 || cr->s_on) {
		cr->logstatus = "MISS";
		/* Whether it will be stored is known only at its end. */
		snprintf(cs, sizeof cs, "%s; fwd=uri-miss%s%s", CACHE_NAME,
		         !cr->s_on && why != NULL ? "; detail=" : "",
		         !cr->s_on && why != NULL ? why : "");
		kvlist_add(out, "Cache-Status", cs);
	}
}

void
cache_stream_body(struct cache_req *cr, const void *p, size_t n)
{
	if (cr == NULL || !cr->s_on)
		return;
	if (evbuffer_get_length(cr->s_body) + n > cr->s_max) {
		cache_stream_drop(cr, "too-large");
		return;
	}
	evbuffer_add(cr->s_body, p, n);
}

void
cache_stream_end(struct cache_req *cr, int complete)
{
	size_t len;
	const void *body;
	int stored;

	if (cr == NULL)
		return;
	if (!cr->s_on || !complete) {
		cache_stream_drop(cr, cr->s_on ? "incomplete" : NULL);
		return;
	}
	len = evbuffer_get_length(cr->s_body);
	body = len > 0 ? evbuffer_pullup(cr->s_body, -1) : NULL;
	if (cr->s_negative)
		stored = store_blob(cr->nkey, "", 0, cr->s_status, &cr->s_resp, body, len,
		                    cr->s_ttl, 0) == 0;
	else
		stored = cache_store(cr->key, &cr->reqh, cr->s_status, &cr->s_resp, body, len,
		                     cr->s_ttl, cr->s_age) == 0;
	if (stored) {
		log_debug("cache: stored %s (%d, streamed)", cr->logname, cr->s_status);
		cache_stream_drop(cr, NULL);
	} else
		cache_stream_drop(cr, "vary-or-size");
}

const char *
cache_req_logstatus(const struct cache_req *cr)
{
	return cr != NULL ? cr->logstatus : NULL;
}

void
cache_req_free(struct cache_req *cr)
{
	if (cr == NULL)
		return;
	if (cr->timer != NULL)
		event_free(cr->timer);
	if (cr->marker)
		cache_marker_release(cr->key);
	cache_hit_free(&cr->hit);
	kvlist_free(&cr->reqh);
	kvlist_free(&cr->s_resp);
	if (cr->s_body != NULL)
		evbuffer_free(cr->s_body);
	free(cr->key);
	free(cr->nkey);
	free(cr->logname);
	free(cr->host);
	free(cr->target);
	free(cr);
}
