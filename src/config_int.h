/*
 * config_int.h: what the configuration modules share and nobody else sees.
 * config.c walks the YAML document against the key tables of
 * config_keys.c; config_addr.c parses addresses and ACLs; config_cli.c the
 * command line.
 */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include <stddef.h>
#include <yaml.h>

#include "config.h"

#define PLACEHOLDER "XXXXXXXX"
#define MAX_FILE_SIZE (1024 * 1024)
#define MAX_REPAIRS 64
#define MAX_DEPTH 32

/* The field a key sets, at base + key->off. */
#define FIELD(base, k, type) ((type *)(void *)((char *)(base) + (k)->off))

struct key;

/* Where a value is being set from, for messages. */
struct load {
	const char *file; /* file name, or "command line" */
	int line;         /* 0: no line (defaults, command line) */
	char path[512];   /* dotted key being set (host names can be long) */
	char *err;        /* the problems, one per line */
	size_t errlen;
	int nerrors;
	struct config *cfg;

	/* Keys the file set, with their lines: duplicates and cross checks. */
	struct seen {
		char *path;
		int line;
	} * seen;
	size_t nseen;
};

/*
 * A setter parses node (a YAML node, or NULL when text is a default or a
 * command-line value) into the field at base + key->off, replacing what
 * was there. Returns 0, or -1 after load_error().
 */
typedef int (*key_set)(struct load *, const struct key *, void *base, yaml_document_t *,
                       yaml_node_t *, const char *text);

struct key_type {
	const char *name; /* "duration", for documentation */
	const char *what; /* "a duration (...)", for "expected ..." */
	key_set set;
};

struct key {
	const char *name;
	const struct key_type *type;
	size_t off;
	const char *def; /* as written in the file; NULL: none */
	double min, max;
	const struct key *block; /* the sub-table of a block */
	const char *doc;
};

/* config.c: messages and the walk. */
int load_error(struct load *, const char *, ...) __attribute__((format(printf, 2, 3)));
int walk_block(struct load *, const struct key *table, void *base, yaml_document_t *,
               yaml_node_t *);
int set_defaults(struct load *, const struct key *table, void *base);
const char *node_kind(const yaml_node_t *n);
int node_is_null(const yaml_node_t *n);
struct seen *seen_find(struct load *ld, const char *path);
int seen_line(struct load *ld, const char *path);
const char *scalar_text(struct load *ld, const struct key *k, yaml_node_t *node, const char *text);

/* config_keys.c: the tables and the checks across keys. */
extern const struct key root_keys[];
void config_warn(struct config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int check_config(struct load *ld, const struct config_cli *cli);
typedef int (*item_fn)(struct load *, const char *item, void *arg);
int each_item(struct load *ld, const struct key *k, yaml_document_t *doc, yaml_node_t *node,
              const char *text, item_fn fn, void *arg);
void cache_hosts_free(struct config_cache_host *h, size_t n);
extern const struct key_type t_block;

/* config_check.c: what -t checks beyond the file (files, directories, users). */
int check_system(struct load *ld, const struct config_cli *cli);

/* config_addr.c: the setters of addresses and ACLs. */
int port_parse(const char *s, int *port);
int parse_int(const char *v, long long *out);
int set_listen(struct load *, const struct key *, void *base, yaml_document_t *, yaml_node_t *,
               const char *text);
int set_allow(struct load *, const struct key *, void *base, yaml_document_t *, yaml_node_t *,
              const char *text);

#endif
