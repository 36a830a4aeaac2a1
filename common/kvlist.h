/*
 * kvlist.h: an ordered list of name/value string pairs that allows
 * duplicates: HTTP headers and query parameters. Lookups by name are
 * case-insensitive for headers (kvlist_*) and exact for query keys
 * (kvlist_*_exact). Strings are copied; the list owns them.
 */
#ifndef SSP_KVLIST_H
#define SSP_KVLIST_H

#include <stddef.h>

struct kv {
	char *name;
	char *value;
};

struct kvlist {
	struct kv *v;
	size_t n;
	size_t cap;
};

#define KVLIST_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void kvlist_init(struct kvlist *);
void kvlist_free(struct kvlist *);
void kvlist_add(struct kvlist *, const char *name, const char *value);
void kvlist_addn(struct kvlist *, const char *name, size_t nlen, const char *value, size_t vlen);
/* First value for name (case-insensitive), or NULL. */
const char *kvlist_get(const struct kvlist *, const char *name);
const char *kvlist_get_exact(const struct kvlist *, const char *name);
/* Remove every entry named name; returns how many were removed. */
size_t kvlist_del(struct kvlist *, const char *name);
size_t kvlist_del_exact(struct kvlist *, const char *name);
/* Replace every entry named name by one entry (added last if absent). */
void kvlist_set(struct kvlist *, const char *name, const char *value);
size_t kvlist_count(const struct kvlist *, const char *name);

#endif
