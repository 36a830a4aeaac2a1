/*
 * config.c: loading the daemon's configuration. Every key is declared once,
 * in the tables of config_keys.c (nginx style): its name, its type, where
 * its value lands, its default (written as it would be in the file, and
 * parsed by the same code as the file), its bounds and a one-line
 * description. Loading walks the YAML document (libyaml's document API,
 * which keeps the line of every node) against the tables, so that every key
 * is typed, defaulted and validated the same way and an unknown key is an
 * error that names it.
 *
 * Errors are values: "FILE:LINE: KEY: message", KEY a dotted path.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "xmalloc.h"

int
load_error(struct load *ld, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	char *out;
	size_t used, room;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ld->errlen == 0)
		return -1;
	/*
	 * Every problem is reported, one per line (-t shows them all in one
	 * run): later ones are appended after a newline while there is room.
	 */
	used = ld->nerrors > 0 ? strlen(ld->err) : 0;
	if (ld->nerrors > 0 && used + 2 >= ld->errlen) {
		ld->nerrors++;
		return -1;
	}
	out = ld->err + used;
	room = ld->errlen - used;
	if (ld->nerrors > 0) {
		*out++ = '\n';
		room--;
	}
	ld->nerrors++;
	if (ld->line > 0 && ld->path[0] != '\0')
		snprintf(out, room, "%s:%d: %s: %s", ld->file, ld->line, ld->path, msg);
	else if (ld->line > 0)
		snprintf(out, room, "%s:%d: %s", ld->file, ld->line, msg);
	else if (ld->path[0] != '\0')
		snprintf(out, room, "%s: %s: %s", ld->file, ld->path, msg);
	else
		snprintf(out, room, "%s: %s", ld->file, msg);
	return -1;
}

const char *
node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "a value";
	}
}

/* YAML 1.1's null: an empty plain scalar, ~ or null. A quoted "" is a string. */
int
node_is_null(const yaml_node_t *n)
{
	const char *v;

	if (n == NULL || n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)n->data.scalar.value;
	return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/*
 * The text of a scalar setter's value: the default or command-line text, or
 * the node's scalar. NULL (after an error) when the node is not a scalar.
 */
const char *
scalar_text(struct load *ld, const struct key *k, yaml_node_t *node, const char *text)
{
	if (node == NULL)
		return text;
	if (node->type != YAML_SCALAR_NODE) {
		load_error(ld, "expected %s, got %s", k->type->what, node_kind(node));
		return NULL;
	}
	if (node_is_null(node))
		return "";
	return (const char *)node->data.scalar.value;
}

/* Walking the document against the tables. */

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, tmp;
	size_t row[64];

	if (la >= 64 || lb >= 64)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = row[j];
			tmp = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < tmp)
				tmp = row[j] + 1;
			if (row[j - 1] + 1 < tmp)
				tmp = row[j - 1] + 1;
			row[j] = tmp;
			prev = cur;
		}
	}
	return row[lb];
}

static const struct key *
key_find(const struct key *table, const char *name)
{
	for (; table->name != NULL; table++)
		if (strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

struct seen *
seen_find(struct load *ld, const char *path)
{
	size_t i;

	for (i = 0; i < ld->nseen; i++)
		if (strcmp(ld->seen[i].path, path) == 0)
			return &ld->seen[i];
	return NULL;
}

int
seen_line(struct load *ld, const char *path)
{
	struct seen *s = seen_find(ld, path);

	return s != NULL ? s->line : 0;
}

int
seen_at(struct load *ld, const char *path)
{
	struct seen *s = seen_find(ld, path);

	if (s == NULL)
		return 0;
	ld->file = s->file;
	ld->line = s->line;
	return 1;
}

/* Set the keys of a mapping node from table; ld->path names the mapping. */
int
walk_block(struct load *ld, const struct key *table, void *base, yaml_document_t *doc,
           yaml_node_t *node)
{
	const struct key *sub, *best;
	size_t plen = strlen(ld->path), d, bestd;
	yaml_node_pair_t *pair;
	yaml_node_t *kn, *vn;
	const char *name;
	struct seen *s;
	int rc = 0;
	/* Room for the whole dotted path plus a key name: gcc's -O1 format
	 * checks (the sanitizer build) see a truncation otherwise. */
	char known[sizeof ld->path + 128];

	if (node_is_null(node))
		return 0; /* "timeouts:" with nothing under it: all defaults */
	if (node->type != YAML_MAPPING_NODE)
		return load_error(ld, "expected %s, got %s", t_block.what, node_kind(node));
	/* A bad key is reported and the walk goes on: all problems in one run. */
	for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(doc, pair->key);
		vn = yaml_document_get_node(doc, pair->value);
		ld->line = (int)kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE) {
			ld->path[plen] = '\0';
			rc = load_error(ld, "a key must be a plain name, not %s", node_kind(kn));
			continue;
		}
		name = (const char *)kn->data.scalar.value;
		snprintf(ld->path + plen, sizeof ld->path - plen, "%s%s", plen > 0 ? "." : "",
		         name);
		/* include: was applied before the walk (load_includes()). */
		if (table == root_keys && plen == 0 && strcmp(name, "include") == 0) {
			ld->path[plen] = '\0';
			continue;
		}
		if ((sub = key_find(table, name)) == NULL) {
			best = NULL;
			bestd = 3;
			known[0] = '\0';
			for (sub = table; sub->name != NULL; sub++) {
				if ((d = edit_distance(name, sub->name)) < bestd) {
					bestd = d;
					best = sub;
				}
			}
			if (best != NULL) {
				ld->path[plen] = '\0';
				snprintf(known, sizeof known, " (did you mean %s%s%s?)", ld->path,
				         plen > 0 ? "." : "", best->name);
				snprintf(ld->path + plen, sizeof ld->path - plen, "%s%s",
				         plen > 0 ? "." : "", name);
			}
			rc = load_error(ld, "unknown key%s", known);
			ld->path[plen] = '\0';
			continue;
		}
		/* Twice in one file is a mistake; a later file overriding an
		 * earlier one is what includes are for. */
		if ((s = seen_find(ld, ld->path)) != NULL && s->file == ld->file) {
			rc = load_error(ld, "duplicate key (first set on line %d)", s->line);
			ld->path[plen] = '\0';
			continue;
		}
		if (s == NULL) {
			ld->seen = xreallocarray(ld->seen, ld->nseen + 1, sizeof *ld->seen);
			s = &ld->seen[ld->nseen++];
			s->path = xstrdup(ld->path);
		}
		s->file = ld->file;
		s->line = ld->line;
		s->order = ++ld->order;
		/* Scalars are reported on their own line (a value may follow later). */
		if (vn->type == YAML_SCALAR_NODE)
			ld->line = (int)vn->start_mark.line + 1;
		if (sub->type->set(ld, sub, base, doc, vn, NULL) == -1)
			rc = -1;
		ld->path[plen] = '\0';
	}
	ld->path[plen] = '\0';
	return rc;
}

/* Apply every default of table (recursively) to base. */
int
set_defaults(struct load *ld, const struct key *table, void *base)
{
	size_t plen = strlen(ld->path);

	for (; table->name != NULL; table++) {
		snprintf(ld->path + plen, sizeof ld->path - plen, "%s%s", plen > 0 ? "." : "",
		         table->name);
		if (table->block != NULL) {
			if (set_defaults(ld, table->block, base) == -1)
				return -1;
		} else if (table->def != NULL) {
			if (table->type->set(ld, table, base, NULL, NULL, table->def) == -1)
				return -1;
		}
	}
	ld->path[plen] = '\0';
	return 0;
}

/*
 * libyaml 0.2.5 cannot read a plain scalar that starts with ':' inside a
 * flow sequence, so "allow: [127.0.0.0/8, ::1]" (the form the project's
 * own documentation uses) fails, and so does "listen: [::1]:8000". When
 * the parser stops on such a ':', quote the address token there and try
 * again; anything else is left to the parser's own error. Returns 1 when
 * text was changed.
 */
static int
repair_flow_colon(char **text, size_t *len, const yaml_parser_t *p)
{
	static const char addrchars[] = "0123456789abcdefABCDEF:./%";
	char *s = *text, *t, *out;
	size_t line = 0, col = 0, i, start, end, n;

	if (p->error != YAML_PARSER_ERROR || p->problem == NULL ||
	    strcmp(p->problem, "did not find expected node content") != 0)
		return 0;
	/* Find the byte at the problem's line and column (columns count characters). */
	for (i = 0; i < *len && line < p->problem_mark.line; i++)
		if (s[i] == '\n')
			line++;
	for (; i < *len && col < p->problem_mark.column && s[i] != '\n'; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			col++;
	while (i < *len && ((unsigned char)s[i] & 0xc0) == 0x80)
		i++;
	if (i >= *len || s[i] != ':')
		return 0;
	start = i;
	if (i > 0 && s[i - 1] == '[') {
		/* [::1]:8000 written bare: the whole bracketed address is one value. */
		t = s + i;
		n = strspn(t, addrchars);
		if (t[n] == ']' && t[n + 1] == ':' && isdigit((unsigned char)t[n + 2])) {
			start = i - 1;
			end = i + n + 2 + strspn(t + n + 2, "0123456789");
			goto quote;
		}
	}
	end = start + strspn(s + start, addrchars);
quote:
	if (end < *len && strchr(",]} \t\r\n#", s[end]) == NULL)
		return 0;
	out = xmalloc(*len + 3);
	memcpy(out, s, start);
	out[start] = '"';
	memcpy(out + start + 1, s + start, end - start);
	out[end + 1] = '"';
	memcpy(out + end + 2, s + end, *len - end);
	out[*len + 2] = '\0';
	free(s);
	*text = out;
	*len += 2;
	return 1;
}

/* Report libyaml's error with the line it happened on. */
static void
yaml_error(struct load *ld, const yaml_parser_t *p, const char *text, size_t len)
{
	size_t i;

	ld->path[0] = '\0';
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark. */
		ld->line = 1;
		for (i = 0; i < p->problem_offset && i < len; i++)
			if (text[i] == '\n')
				ld->line++;
		load_error(ld, "YAML: %s", p->problem != NULL ? p->problem : "cannot read");
		return;
	}
	ld->line = (int)p->problem_mark.line + 1;
	if (p->context != NULL)
		load_error(ld, "YAML syntax: %s (%s started on line %d)",
		           p->problem != NULL ? p->problem : "error", p->context,
		           (int)p->context_mark.line + 1);
	else
		load_error(ld, "YAML syntax: %s", p->problem != NULL ? p->problem : "error");
}

/*
 * libyaml slows to a crawl (quadratic time) on deeply nested flow
 * collections; no configuration needs more than a few levels, so refuse
 * before parsing. Brackets inside quoted strings count too: harmless at
 * this depth.
 */
static int
check_nesting(struct load *ld, const char *text)
{
	const char *p;
	int depth = 0, line = 1;

	for (p = text; *p != '\0'; p++) {
		if (*p == '\n')
			line++;
		else if (*p == '#' && (p == text || isspace((unsigned char)p[-1]))) {
			while (p[1] != '\0' && p[1] != '\n')
				p++;
		} else if (*p == '[' || *p == '{') {
			if (++depth > MAX_DEPTH) {
				ld->line = line;
				ld->path[0] = '\0';
				return load_error(ld, "YAML: nested more than %d levels deep",
				                  MAX_DEPTH);
			}
		} else if ((*p == ']' || *p == '}') && depth > 0)
			depth--;
	}
	return 0;
}

static int
parse_yaml(struct load *ld, const char *text, yaml_document_t *doc)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	char *copy = xstrdup(text);
	size_t len = strlen(copy);
	int tries, ok, rc = -1;

	if (check_nesting(ld, copy) == -1) {
		free(copy);
		return -1;
	}

	for (tries = 0;; tries++) {
		yaml_parser_initialize(&parser);
		yaml_parser_set_input_string(&parser, (const unsigned char *)copy, len);
		if ((ok = yaml_parser_load(&parser, doc)))
			break;
		if (tries >= MAX_REPAIRS || !repair_flow_colon(&copy, &len, &parser))
			break;
		yaml_parser_delete(&parser);
	}
	if (!ok) {
		yaml_error(ld, &parser, copy, len);
		goto out;
	}
	/* One document only: a second one would be silently ignored. */
	if (yaml_document_get_root_node(doc) != NULL) {
		if (!yaml_parser_load(&parser, &extra)) {
			yaml_document_delete(doc);
			yaml_error(ld, &parser, copy, len);
			goto out;
		}
		if (yaml_document_get_root_node(&extra) != NULL) {
			ld->line = (int)extra.start_mark.line + 1;
			yaml_document_delete(&extra);
			yaml_document_delete(doc);
			load_error(ld,
			           "a second YAML document: the file holds one mapping of keys");
			goto out;
		}
		yaml_document_delete(&extra);
	}
	rc = 0;
out:
	yaml_parser_delete(&parser);
	free(copy);
	ld->path[0] = '\0';
	return rc;
}

/* Apply the command line over the file. */
static int
apply_cli(struct load *ld, const struct config_cli *cli)
{
	const struct key *k;

	ld->file = "command line";
	ld->line = 0;
	if (cli->function_name != NULL) {
		snprintf(ld->path, sizeof ld->path, "-function-name");
		k = key_find(root_keys, "function_name");
		if (k->type->set(ld, k, ld->cfg, NULL, NULL, cli->function_name) == -1)
			return -1;
	}
	if (cli->address != NULL) {
		snprintf(ld->path, sizeof ld->path, "-address");
		k = key_find(root_keys, "listen");
		if (*cli->address == '\0')
			return load_error(ld, "an address is required");
		if (k->type->set(ld, k, ld->cfg, NULL, NULL, cli->address) == -1)
			return -1;
	}
	ld->path[0] = '\0';
	return 0;
}

static void
load_free(struct load *ld)
{
	size_t i;

	for (i = 0; i < ld->nseen; i++)
		free(ld->seen[i].path);
	free(ld->seen);
	for (i = 0; i < ld->nfiles; i++)
		free(ld->files[i]);
	free(ld->files);
	free(ld);
}

/*
 * Read a configuration file whole. Returns the text (caller frees), or NULL
 * with err set; *missing is set when it does not exist.
 */
static char *
read_file(const char *path, int *missing, char *err, size_t errlen)
{
	FILE *f;
	char *text;
	size_t n;

	*missing = 0;
	if ((f = fopen(path, "r")) == NULL) {
		*missing = errno == ENOENT;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	text = xmalloc(MAX_FILE_SIZE + 1);
	n = fread(text, 1, MAX_FILE_SIZE + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	if (n > MAX_FILE_SIZE) {
		snprintf(err, errlen, "%s: larger than %d bytes: not a configuration file", path,
		         MAX_FILE_SIZE);
		free(text);
		return NULL;
	}
	if (memchr(text, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte: not a configuration file", path);
		free(text);
		return NULL;
	}
	text[n] = '\0';
	return text;
}

/*
 * ${VAR} and ${VAR:-default} in a scalar value, from the environment; $${
 * is a literal ${. An unset variable without a default is an error that
 * names it (empty counts as unset for :-, as in the shell).
 */
static int
substitute_scalar(struct load *ld, yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value, *p, *end, *colon, *val;
	char name[128], *out;
	size_t len = 0, cap, nlen;

	if (strchr(s, '$') == NULL)
		return 0;
	cap = strlen(s) + 1;
	out = xmalloc(cap);
#define PUT(src, cnt)                                                                              \
	do {                                                                                       \
		while (len + (cnt) + 1 > cap)                                                      \
			out = xrealloc(out, cap *= 2);                                             \
		memcpy(out + len, (src), (cnt));                                                   \
		len += (cnt);                                                                      \
	} while (0)
	for (p = s; *p != '\0';) {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			PUT("${", 2);
			p += 3;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			PUT(p, 1);
			p++;
			continue;
		}
		if ((end = strchr(p + 2, '}')) == NULL) {
			free(out);
			return load_error(ld, "\"${\" without a closing \"}\" (write $${ for a "
			                      "literal ${)");
		}
		colon = memchr(p + 2, ':', (size_t)(end - p - 2));
		nlen = (size_t)((colon != NULL ? colon : end) - (p + 2));
		if (nlen == 0 || nlen >= sizeof name ||
		    (!isalpha((unsigned char)p[2]) && p[2] != '_') ||
		    strspn(p + 2,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
		        nlen ||
		    (colon != NULL && colon[1] != '-')) {
			free(out);
			return load_error(ld, "\"%.*s\": expected ${NAME} or ${NAME:-default}",
			                  (int)(end - p + 1), p);
		}
		memcpy(name, p + 2, nlen);
		name[nlen] = '\0';
		val = getenv(name);
		if (colon != NULL && (val == NULL || *val == '\0'))
			PUT(colon + 2, (size_t)(end - colon - 2));
		else if (val == NULL) {
			free(out);
			return load_error(ld,
			                  "${%s}: the environment variable %s is not set (give a "
			                  "default with ${%s:-default})",
			                  name, name, name);
		} else
			PUT(val, strlen(val));
		p = end + 1;
	}
#undef PUT
	out[len] = '\0';
	free(n->data.scalar.value);
	n->data.scalar.value = (yaml_char_t *)out;
	n->data.scalar.length = len;
	return 0;
}

/* Substitute in every scalar value under node (keys are left alone). */
static int
substitute(struct load *ld, yaml_document_t *doc, yaml_node_t *node, int depth)
{
	size_t plen = strlen(ld->path);
	yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	yaml_node_t *kn;

	if (depth > MAX_DEPTH)
		return 0;
	switch (node->type) {
	case YAML_SCALAR_NODE:
		ld->line = (int)node->start_mark.line + 1;
		return substitute_scalar(ld, node);
	case YAML_SEQUENCE_NODE:
		for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
			if (substitute(ld, doc, yaml_document_get_node(doc, *it), depth + 1) == -1)
				return -1;
		return 0;
	case YAML_MAPPING_NODE:
		for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top;
		     pair++) {
			kn = yaml_document_get_node(doc, pair->key);
			if (kn->type == YAML_SCALAR_NODE)
				snprintf(ld->path + plen, sizeof ld->path - plen, "%s%s",
				         plen > 0 ? "." : "", (const char *)kn->data.scalar.value);
			if (substitute(ld, doc, yaml_document_get_node(doc, pair->value),
			               depth + 1) == -1)
				return -1;
			ld->path[plen] = '\0';
		}
		return 0;
	default:
		return 0;
	}
}

static int load_file(struct load *ld, const char *path);

/* One include: item, a file or a glob, relative to the including file's directory. */
static int
include_item(struct load *ld, const char *item)
{
	char pattern[PATH_MAX], *slash;
	const char *file = ld->file;
	int line = ld->line, rc;
	glob_t g;
	size_t i;

	if (*item == '/')
		snprintf(pattern, sizeof pattern, "%s", item);
	else if ((slash = strrchr(file, '/')) != NULL)
		snprintf(pattern, sizeof pattern, "%.*s/%s", (int)(slash - file), file, item);
	else
		snprintf(pattern, sizeof pattern, "%s", item);
	memset(&g, 0, sizeof g);
	rc = glob(pattern, GLOB_ERR, NULL, &g);
	if (rc == GLOB_NOMATCH) {
		globfree(&g);
		/* An empty /etc/ssm-sign-proxy.d/ is fine; a named file that
		 * is not there is a mistake. */
		if (strpbrk(item, "*?[") != NULL)
			return 0;
		return load_error(ld, "\"%s\": no such file", pattern);
	}
	if (rc != 0) {
		globfree(&g);
		return load_error(ld, "\"%s\": cannot read the directory", pattern);
	}
	/* glob() sorts (no GLOB_NOSORT): files apply in name order. */
	for (i = 0; i < g.gl_pathc; i++) {
		if (load_file(ld, g.gl_pathv[i]) == -1) {
			globfree(&g);
			return -1;
		}
		ld->file = file;
		ld->line = line;
		snprintf(ld->path, sizeof ld->path, "include");
	}
	globfree(&g);
	return 0;
}

/* The include: key of a file's root mapping, applied before the file's own keys. */
static int
load_includes(struct load *ld, yaml_document_t *doc, yaml_node_t *root)
{
	yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	yaml_node_t *kn, *vn, *n;

	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(doc, pair->key);
		if (kn->type != YAML_SCALAR_NODE ||
		    strcmp((const char *)kn->data.scalar.value, "include") != 0)
			continue;
		vn = yaml_document_get_node(doc, pair->value);
		snprintf(ld->path, sizeof ld->path, "include");
		ld->line = (int)vn->start_mark.line + 1;
		if (node_is_null(vn))
			continue;
		if (vn->type == YAML_SCALAR_NODE) {
			if (include_item(ld, (const char *)vn->data.scalar.value) == -1)
				return -1;
			continue;
		}
		if (vn->type != YAML_SEQUENCE_NODE)
			return load_error(ld, "expected a file, a glob or a list of them, got %s",
			                  node_kind(vn));
		for (it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
			n = yaml_document_get_node(doc, *it);
			ld->line = (int)n->start_mark.line + 1;
			if (n->type != YAML_SCALAR_NODE || node_is_null(n))
				return load_error(ld,
				                  "expected a file or a glob in the list, got %s",
				                  node_kind(n));
			if (include_item(ld, (const char *)n->data.scalar.value) == -1)
				return -1;
		}
	}
	ld->path[0] = '\0';
	return 0;
}

/*
 * Apply one file's text: substitution, then its includes in order, then
 * its own keys, so that later files win over earlier ones and the
 * including file over all it includes.
 */
static int
load_doc(struct load *ld, const char *text)
{
	yaml_document_t doc;
	yaml_node_t *root;
	int rc = 0;

	if (parse_yaml(ld, text, &doc) == -1)
		return -1;
	root = yaml_document_get_root_node(&doc);
	if (root != NULL && !node_is_null(root)) {
		if (root->type != YAML_MAPPING_NODE) {
			ld->line = (int)root->start_mark.line + 1;
			load_error(ld, "expected a mapping of keys (key: value), got %s",
			           node_kind(root));
			rc = -1;
		} else if (substitute(ld, &doc, root, 0) == -1 ||
		           load_includes(ld, &doc, root) == -1)
			rc = -1;
		else {
			ld->path[0] = '\0';
			rc = walk_block(ld, root_keys, ld->cfg, &doc, root);
		}
	}
	yaml_document_delete(&doc);
	return rc;
}

static int
load_file(struct load *ld, const char *path)
{
	char *text, err[512];
	int missing, rc;

	if (ld->depth >= MAX_INCLUDE_DEPTH)
		return load_error(ld, "\"%s\": includes nested more than %d deep (a loop?)", path,
		                  MAX_INCLUDE_DEPTH);
	if ((text = read_file(path, &missing, err, sizeof err)) == NULL)
		return load_error(ld, "%s", err);
	ld->files = xreallocarray(ld->files, ld->nfiles + 1, sizeof *ld->files);
	ld->files[ld->nfiles] = xstrdup(path);
	ld->file = ld->files[ld->nfiles++];
	ld->line = 0;
	ld->path[0] = '\0';
	ld->depth++;
	rc = load_doc(ld, text);
	ld->depth--;
	free(text);
	return rc;
}

/* system: check the files and users the configuration names (config_check.c). */
static struct config *
load_text(const char *text, const char *name, const char *path, const struct config_cli *cli,
          int system, char *err, size_t errlen)
{
	struct load *ld;
	struct config *cfg;
	int rc = 0;

	ld = xcalloc(1, sizeof *ld);
	cfg = xcalloc(1, sizeof *cfg);
	kvlist_init(&cfg->local_function.environment);
	ld->cfg = cfg;
	ld->err = err;
	ld->errlen = errlen;
	ld->file = "default";
	if (set_defaults(ld, root_keys, cfg) == -1)
		goto fail;
	cfg->path = path != NULL ? xstrdup(path) : NULL;

	/* On after a problem: every one is reported, not only the first. */
	if (text != NULL) {
		ld->file = name;
		if (load_doc(ld, text) == -1)
			rc = -1;
	}
	if (cli != NULL && apply_cli(ld, cli) == -1)
		rc = -1;
	ld->file = name != NULL ? name : "command line";
	if (check_config(ld, cli) == -1)
		rc = -1;
	if (system && check_system(ld, cli) == -1)
		rc = -1;
	if (rc == -1 || ld->nerrors > 0)
		goto fail;
	load_free(ld);
	return cfg;
fail:
	load_free(ld);
	config_free(cfg);
	return NULL;
}

const char *
config_default_path(void)
{
#ifdef SYSCONFDIR
	return SYSCONFDIR "/ssm-sign-proxy.yaml";
#else
	return "/etc/ssm-sign-proxy.yaml";
#endif
}

struct config *
config_load_string(const char *text, const char *name, const struct config_cli *cli, char *err,
                   size_t errlen)
{
	return load_text(text, name != NULL ? name : "(string)", NULL, cli, 0, err, errlen);
}

struct config *
config_load(const struct config_cli *cli, char *err, size_t errlen)
{
	const char *path = cli->config_path != NULL ? cli->config_path : config_default_path();
	struct config *cfg;
	char *text;
	int missing;

	if ((text = read_file(path, &missing, err, errlen)) == NULL) {
		/* The Go tool's flags alone are a complete configuration. */
		if (missing && !cli->config_path_given &&
		    (cli->function_name != NULL || cli->address != NULL))
			return load_text(NULL, path, NULL, cli, 1, err, errlen);
		return NULL;
	}
	cfg = load_text(text, path, path, cli, 1, err, errlen);
	free(text);
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->function_name);
	free(cfg->function_region);
	free(cfg->region);
	free(cfg->egress_proxy);
	free(cfg->listen);
	free(cfg->allow);
	free(cfg->user);
	free(cfg->pid_file);
	free(cfg->access_log);
	free(cfg->log);
	free(cfg->admin.listen);
	free(cfg->admin.socket);
	free(cfg->admin.allow);
	metrics_hosts_free(cfg);
	cache_hosts_free(cfg->cache.hosts, cfg->cache.nhosts);
	free(cfg->local_function.command);
	kvlist_free(&cfg->local_function.environment);
	for (i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg);
}
