/*
 * kvlist.c: ordered name/value lists for headers and query parameters.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kvlist.h"
#include "xmalloc.h"

void
kvlist_init(struct kvlist *l)
{
	l->v = NULL;
	l->n = l->cap = 0;
}

void
kvlist_free(struct kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
	}
	free(l->v);
	kvlist_init(l);
}

void
kvlist_addn(struct kvlist *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
	}
	l->v[l->n].name = xstrndup(name, nlen);
	l->v[l->n].value = xstrndup(value, vlen);
	l->n++;
}

void
kvlist_add(struct kvlist *l, const char *name, const char *value)
{
	kvlist_addn(l, name, strlen(name), value, strlen(value));
}

static const char *
kvlist_find(const struct kvlist *l, const char *name, int (*cmp)(const char *, const char *))
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (cmp(l->v[i].name, name) == 0)
			return l->v[i].value;
	return NULL;
}

const char *
kvlist_get(const struct kvlist *l, const char *name)
{
	return kvlist_find(l, name, strcasecmp);
}

const char *
kvlist_get_exact(const struct kvlist *l, const char *name)
{
	return kvlist_find(l, name, strcmp);
}

static size_t
kvlist_remove(struct kvlist *l, const char *name, int (*cmp)(const char *, const char *))
{
	size_t i, j, removed = 0;

	for (i = j = 0; i < l->n; i++) {
		if (cmp(l->v[i].name, name) == 0) {
			free(l->v[i].name);
			free(l->v[i].value);
			removed++;
			continue;
		}
		l->v[j++] = l->v[i];
	}
	l->n = j;
	return removed;
}

size_t
kvlist_del(struct kvlist *l, const char *name)
{
	return kvlist_remove(l, name, strcasecmp);
}

size_t
kvlist_del_exact(struct kvlist *l, const char *name)
{
	return kvlist_remove(l, name, strcmp);
}

void
kvlist_set(struct kvlist *l, const char *name, const char *value)
{
	kvlist_del(l, name);
	kvlist_add(l, name, value);
}

size_t
kvlist_count(const struct kvlist *l, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, name) == 0)
			n++;
	return n;
}
