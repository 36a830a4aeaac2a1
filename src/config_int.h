/*
 * config_int.h: what the configuration modules share and nobody else sees.
 * config.c walks the YAML document against the key tables of
 * config_keys.c; config_addr.c parses addresses and ACLs; config_cli.c the
 * command line.
 */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include <stddef.h>
#include <stdio.h>
#include <yaml.h>

#include "config.h"

#define PLACEHOLDER "XXXXXXXX"
#define MAX_FILE_SIZE (1024 * 1024)
#define MAX_REPAIRS 64
#define MAX_DEPTH 32
#define MAX_INCLUDE_DEPTH 8

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

	/* Keys the files set, with where the value that holds came from:
	 * duplicates and cross checks. */
	struct seen {
		char *path;
		const char *file; /* one of files[], or the main file's name */
		int line;
		unsigned order; /* later settings have larger numbers */
	} * seen;
	size_t nseen;
	unsigned order;

	/* Included files, by name (owned; seen[] points into them). */
	char **files;
	size_t nfiles;
	int depth;
};

/*
 * A setter parses node (a YAML node, or NULL when text is a default or a
 * command-line value) into the field at base + key->off, replacing what
 * was there. Returns 0, or -1 after load_error().
 */
typedef int (*key_set)(struct load *, const struct key *, void *base, yaml_document_t *,
                       yaml_node_t *, const char *text);

/*
 * A printer writes the value of the field at base + key->off as YAML that
 * the setter reads back (config_dump.c): the rest of the line after
 * "key: ", newline included; a multi-line value indents by indent + 2.
 */
typedef void (*key_print)(FILE *, const struct key *, const void *base, int indent);

struct key_type {
	const char *name; /* "duration", for documentation */
	const char *what; /* "a duration (...)", for "expected ..." */
	key_set set;
	key_print print;
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
/* Point ld's file and line at where path was set; 0 when it was not. */
int seen_at(struct load *ld, const char *path);
const char *scalar_text(struct load *ld, const struct key *k, yaml_node_t *node, const char *text);

/* config_keys.c: the tables and the checks across keys. */
extern const struct key root_keys[];
void config_warn(struct config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int check_config(struct load *ld, const struct config_cli *cli);
typedef int (*item_fn)(struct load *, const char *item, void *arg);
int each_item(struct load *ld, const struct key *k, yaml_document_t *doc, yaml_node_t *node,
              const char *text, item_fn fn, void *arg);
void cache_hosts_free(struct config_cache_host *h, size_t n);
void metrics_hosts_free(struct config *cfg);
extern const struct key cache_host_keys[];
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
int set_admin_listen(struct load *, const struct key *, void *base, yaml_document_t *,
                     yaml_node_t *, const char *text);
int set_admin_allow(struct load *, const struct key *, void *base, yaml_document_t *, yaml_node_t *,
                    const char *text);

/* config_dump.c: the printers of the types. */
void print_string(FILE *, const struct key *, const void *, int);
void print_bool(FILE *, const struct key *, const void *, int);
void print_int(FILE *, const struct key *, const void *, int);
void print_duration(FILE *, const struct key *, const void *, int);
void print_size(FILE *, const struct key *, const void *, int);
void print_log_level(FILE *, const struct key *, const void *, int);
void print_format(FILE *, const struct key *, const void *, int);
void print_invoke_mode(FILE *, const struct key *, const void *, int);
void print_mode(FILE *, const struct key *, const void *, int);
void print_listen(FILE *, const struct key *, const void *, int);
void print_allow(FILE *, const struct key *, const void *, int);
void print_admin_listen(FILE *, const struct key *, const void *, int);
void print_admin_allow(FILE *, const struct key *, const void *, int);
void print_metrics_hosts(FILE *, const struct key *, const void *, int);
void print_env(FILE *, const struct key *, const void *, int);
void print_cache_hosts(FILE *, const struct key *, const void *, int);

#endif
