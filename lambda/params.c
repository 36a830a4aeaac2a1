/*
 * params.c: the parameter source and its per-host cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "paramfile.h"
#include "params.h"
#include "ssm.h"
#include "xmalloc.h"

struct params_entry {
	char *base;
	struct kvlist rel;    /* relative name -> value; may be empty */
	long long expires_ms; /* monotonic */
	TAILQ_ENTRY(params_entry) link;
};
TAILQ_HEAD(params_list, params_entry);

struct params {
	struct ssm_client *ssm;
	struct paramfile *file;
	char *prefix;
	long ttl_ms;
	long max_hosts;
	long count;
	struct params_list cache; /* oldest first */
};

const char *
params_how_name(enum params_how how)
{
	switch (how) {
	case PARAMS_HOW_HIT:
		return "hit";
	case PARAMS_HOW_MISS:
		return "miss";
	case PARAMS_HOW_FILE:
		return "file";
	default:
		return "-";
	}
}

static long long
params_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
params_kv_clear(struct kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		explicit_bzero(l->v[i].value, strlen(l->v[i].value));
	kvlist_free(l);
}

static void
params_entry_free(struct params *p, struct params_entry *e)
{
	TAILQ_REMOVE(&p->cache, e, link);
	p->count--;
	params_kv_clear(&e->rel);
	free(e->base);
	free(e);
}

struct params *
params_new_ssm(struct ssm_client *ssm, const char *prefix, long ttl_seconds, long max_hosts)
{
	struct params *p = xcalloc(1, sizeof *p);

	p->ssm = ssm;
	p->prefix = xstrdup(prefix);
	p->ttl_ms = ttl_seconds * 1000;
	p->max_hosts = max_hosts;
	TAILQ_INIT(&p->cache);
	return p;
}

struct params *
params_new_file(struct paramfile *file, const char *prefix)
{
	struct params *p = xcalloc(1, sizeof *p);

	p->file = file;
	p->prefix = xstrdup(prefix);
	TAILQ_INIT(&p->cache);
	return p;
}

void
params_free(struct params *p)
{
	struct params_entry *e;

	if (p == NULL)
		return;
	while ((e = TAILQ_FIRST(&p->cache)) != NULL)
		params_entry_free(p, e);
	ssm_free(p->ssm);
	paramfile_free(p->file);
	free(p->prefix);
	free(p);
}

char *
params_base(const char *prefix, const char *key)
{
	char *s;

	if (*prefix == '\0')
		xasprintf(&s, "/%s", key);
	else
		xasprintf(&s, "/%s/%s", prefix, key);
	return s;
}

static void
params_copy_rel(const struct kvlist *from, struct kvlist *to)
{
	size_t i;

	for (i = 0; i < from->n; i++)
		kvlist_add(to, from->v[i].name, from->v[i].value);
}

enum params_status
params_lookup(struct params *p, const char *key, long long deadline_ms, struct kvlist *out,
              enum params_how *how, char *err, size_t errlen)
{
	struct params_entry *e, *next;
	struct kvlist full = KVLIST_INIT;
	enum ssm_status st;
	long long now;
	char *base;
	size_t i, blen;

	base = params_base(p->prefix, key);
	if (p->file != NULL) {
		*how = PARAMS_HOW_FILE;
		if (paramfile_refresh(p->file, err, errlen) != 0) {
			free(base);
			return PARAMS_FAILED;
		}
		paramfile_lookup(p->file, base, out);
		free(base);
		return PARAMS_OK;
	}

	now = params_mono_ms();
	for (e = TAILQ_FIRST(&p->cache); e != NULL; e = next) {
		next = TAILQ_NEXT(e, link);
		if (e->expires_ms <= now) {
			params_entry_free(p, e);
			continue;
		}
		if (strcmp(e->base, base) == 0) {
			*how = PARAMS_HOW_HIT;
			params_copy_rel(&e->rel, out);
			free(base);
			return PARAMS_OK;
		}
	}

	*how = PARAMS_HOW_MISS;
	st = ssm_get_path(p->ssm, base, deadline_ms, &full, err, errlen);
	if (st != SSM_OK) {
		params_kv_clear(&full);
		free(base);
		return st == SSM_TIMEOUT ? PARAMS_TIMEOUT : PARAMS_FAILED;
	}
	blen = strlen(base);
	for (i = 0; i < full.n; i++) {
		const char *name = full.v[i].name;

		/* GetParametersByPath answers names under base + "/" only;
		 * check anyway rather than trust the stand-in in front of us. */
		if (strncmp(name, base, blen) == 0 && name[blen] == '/' && name[blen + 1] != '\0')
			kvlist_add(out, name + blen + 1, full.v[i].value);
	}
	params_kv_clear(&full);

	if (p->ttl_ms > 0) {
		while (p->count >= p->max_hosts && (e = TAILQ_FIRST(&p->cache)) != NULL)
			params_entry_free(p, e);
		e = xcalloc(1, sizeof *e);
		e->base = base;
		kvlist_init(&e->rel);
		params_copy_rel(out, &e->rel);
		e->expires_ms = params_mono_ms() + p->ttl_ms;
		TAILQ_INSERT_TAIL(&p->cache, e, link);
		p->count++;
	} else
		free(base);
	return PARAMS_OK;
}
