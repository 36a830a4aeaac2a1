/*
 * config.c: the daemon's configuration. Every key is declared once, in the
 * tables below (nginx style): its name, its type, where its value lands,
 * its default (written as it would be in the file, and parsed by the same
 * code as the file), its bounds and a one-line description. Loading walks
 * the YAML document (libyaml's document API, which keeps the line of every
 * node) against the tables, so that every key is typed, defaulted and
 * validated the same way and an unknown key is an error that names it.
 *
 * Errors are values: "FILE:LINE: KEY: message", KEY a dotted path.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
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
#include "log.h"
#include "xmalloc.h"

#define PLACEHOLDER "XXXXXXXX"
#define MAX_FILE_SIZE (1024 * 1024)
#define MAX_REPAIRS 64
#define MAX_DEPTH 32

struct key;

/* Where a value is being set from, for messages. */
struct load {
	const char *file; /* file name, or "command line" */
	int line;         /* 0: no line (defaults, command line) */
	char path[512];   /* dotted key being set (host names can be long) */
	char *err;
	size_t errlen;
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

static int load_error(struct load *, const char *, ...) __attribute__((format(printf, 2, 3)));
static int walk_block(struct load *, const struct key *table, void *base, yaml_document_t *,
                      yaml_node_t *);
static int set_defaults(struct load *, const struct key *table, void *base);

static int
load_error(struct load *ld, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ld->line > 0 && ld->path[0] != '\0')
		snprintf(ld->err, ld->errlen, "%s:%d: %s: %s", ld->file, ld->line, ld->path, msg);
	else if (ld->line > 0)
		snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->file, ld->line, msg);
	else if (ld->path[0] != '\0')
		snprintf(ld->err, ld->errlen, "%s: %s: %s", ld->file, ld->path, msg);
	else
		snprintf(ld->err, ld->errlen, "%s: %s", ld->file, msg);
	return -1;
}

static void config_warn(struct config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
config_warn(struct config *cfg, const char *fmt, ...)
{
	va_list ap;

	cfg->warnings = xreallocarray(cfg->warnings, cfg->nwarnings + 1, sizeof *cfg->warnings);
	va_start(ap, fmt);
	xvasprintf(&cfg->warnings[cfg->nwarnings++], fmt, ap);
	va_end(ap);
}

static const char *
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
static int
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
static const char *
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

#define FIELD(base, k, type) ((type *)(void *)((char *)(base) + (k)->off))

/* Format a number of seconds or bytes for a message without noise. */
static const char *
fmt_num(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	return buf;
}

/* Strings. */

static int
set_string(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
           yaml_node_t *node, const char *text)
{
	char **field = FIELD(base, k, char *);
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	free(*field);
	*field = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

static int
set_path(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
         const char *text)
{
	char **field = FIELD(base, k, char *);
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (*v != '\0' && *v != '/')
		return load_error(ld, "\"%s\" is not an absolute path", v);
	free(*field);
	*field = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

static int
set_access_log(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
               yaml_node_t *node, const char *text)
{
	char **field = FIELD(base, k, char *);
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (*v == '\0')
		return load_error(ld, "a value is required: a path, syslog, - (stderr) or off");
	if (strcmp(v, "syslog") != 0 && strcmp(v, "off") != 0 && strcmp(v, "-") != 0 &&
	    strcmp(v, "stderr") != 0 && *v != '/')
		return load_error(ld, "\"%s\" is not an absolute path, syslog, - (stderr) or off",
		                  v);
	free(*field);
	*field = xstrdup(v);
	return 0;
}

static int
set_user(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
         const char *text)
{
	char **field = FIELD(base, k, char *);
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	/* Checked now so that -t catches it, not a worker after the fork. */
	if (*v != '\0' && getpwnam(v) == NULL)
		return load_error(ld, "no such user \"%s\"", v);
	free(*field);
	*field = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

static int
valid_region(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 4 || n > 32 || strchr(s, '-') == NULL || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int
set_region(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
           yaml_node_t *node, const char *text)
{
	char **field = FIELD(base, k, char *);
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (*v != '\0' && !valid_region(v))
		return load_error(ld, "\"%s\" is not a region name (like eu-west-1)", v);
	free(*field);
	*field = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

static int
set_egress_proxy(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                 yaml_node_t *node, const char *text)
{
	static const char *const schemes[] = {"http://",    "https://",  "socks4://",
	                                      "socks4a://", "socks5://", "socks5h://"};
	char **field = FIELD(base, k, char *);
	const char *v, *p;
	size_t i;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	for (p = v; *p != '\0'; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return load_error(ld, "a proxy URL contains no spaces");
	if ((p = strstr(v, "://")) != NULL) {
		for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
			if (strncasecmp(v, schemes[i], strlen(schemes[i])) == 0)
				break;
		if (i == sizeof schemes / sizeof schemes[0])
			return load_error(ld,
			                  "unsupported scheme in \"%s\" (http, https, socks4, "
			                  "socks4a, socks5, socks5h)",
			                  v);
		if (p[3] == '\0')
			return load_error(ld, "\"%s\" has no host", v);
	}
	free(*field);
	*field = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

/* Function names: the forms Lambda's Invoke accepts. */

static int
valid_fn_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static int
valid_qualifier(const char *s, size_t n)
{
	size_t i;

	if (n == 7 && strncmp(s, "$LATEST", 7) == 0)
		return 1;
	if (n == 0 || n > 128)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/*
 * Check a function name. Sets *region (allocated) for a full ARN. Returns
 * NULL when valid, else why not.
 */
static const char *
check_function_name(const char *v, char **region)
{
	char *parts[8];
	char *copy, *p;
	size_t n = 0, name_at;
	const char *why = NULL;

	*region = NULL;
	if (strlen(v) > 170)
		return "too long for a function name or ARN";
	copy = xstrdup(v);
	for (p = copy; n < 8;) {
		parts[n++] = p;
		if ((p = strchr(p, ':')) == NULL)
			break;
		*p++ = '\0';
	}
	if (p != NULL && n == 8) {
		why = "too many ':' for a function name or ARN";
		goto out;
	}
	if (strcmp(parts[0], "arn") == 0) {
		/* arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] */
		if (n < 7 || n > 8 || strncmp(parts[1], "aws", 3) != 0 ||
		    strcmp(parts[2], "lambda") != 0 || strcmp(parts[5], "function") != 0) {
			why = "a function ARN looks like "
			      "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:ALIAS]";
			goto out;
		}
		if (!valid_region(parts[3])) {
			why = "the ARN's region is not a region name";
			goto out;
		}
		if (strlen(parts[4]) != 12 || strspn(parts[4], "0123456789") != 12) {
			why = "the ARN's account is not 12 digits";
			goto out;
		}
		*region = xstrdup(parts[3]);
		name_at = 6;
	} else if (n >= 3 && strcmp(parts[1], "function") == 0) {
		/* ACCOUNT:function:NAME[:QUALIFIER] */
		if (n > 4 || strlen(parts[0]) != 12 || strspn(parts[0], "0123456789") != 12) {
			why = "a partial ARN looks like ACCOUNT:function:NAME[:ALIAS]";
			goto out;
		}
		name_at = 2;
	} else {
		/* NAME[:QUALIFIER] */
		if (n > 2) {
			why = "expected NAME, NAME:ALIAS, ACCOUNT:function:NAME or a function ARN";
			goto out;
		}
		name_at = 0;
	}
	if (!valid_fn_name(parts[name_at], strlen(parts[name_at]))) {
		why = "a function name is 1 to 64 letters, digits, '-' or '_'";
		goto out;
	}
	if (name_at + 1 < n && !valid_qualifier(parts[name_at + 1], strlen(parts[name_at + 1]))) {
		why = "a qualifier is a version, an alias or $LATEST";
		goto out;
	}
out:
	if (why != NULL) {
		free(*region);
		*region = NULL;
	}
	free(copy);
	return why;
}

static int
set_function(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
             yaml_node_t *node, const char *text)
{
	char **field = FIELD(base, k, char *);
	struct config *cfg = ld->cfg;
	const char *v, *why;
	char *region;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	/* Empty or the shipped placeholder: not configured (503 until it is). */
	if (*v == '\0' || strstr(v, PLACEHOLDER) != NULL) {
		free(*field);
		*field = NULL;
		free(cfg->function_region);
		cfg->function_region = NULL;
		return 0;
	}
	if ((why = check_function_name(v, &region)) != NULL)
		return load_error(ld, "\"%s\": %s", v, why);
	free(*field);
	*field = xstrdup(v);
	free(cfg->function_region);
	cfg->function_region = region;
	return 0;
}

/* Booleans, integers, durations, sizes. */

static int
parse_bool(const char *v)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	size_t i;

	for (i = 0; i < 3; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

static int
set_bool(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
         const char *text)
{
	const char *v;
	int b;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if ((b = parse_bool(v)) == -1)
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	*FIELD(base, k, int) = b;
	return 0;
}

static int
parse_int(const char *v, long long *out)
{
	char *end;

	if (*v == '\0' || isspace((unsigned char)*v))
		return -1;
	errno = 0;
	*out = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

static int
check_int(struct load *ld, const struct key *k, const char *v, long long *n)
{
	if (*v == '\0')
		return load_error(ld, "a value is required: %s", k->type->what);
	if (parse_int(v, n) == -1)
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	if (*n < (long long)k->min || *n > (long long)k->max)
		return load_error(ld, "%lld is out of range (%lld to %lld)", *n, (long long)k->min,
		                  (long long)k->max);
	return 0;
}

static int
set_int(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
        const char *text)
{
	const char *v;
	long long n;

	if ((v = scalar_text(ld, k, node, text)) == NULL || check_int(ld, k, v, &n) == -1)
		return -1;
	*FIELD(base, k, int) = (int)n;
	return 0;
}

static int
set_workers(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
            yaml_node_t *node, const char *text)
{
	const char *v;
	long long n;
	long cpus;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (strcasecmp(v, "auto") == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		if (cpus < 1)
			cpus = 1;
		if (cpus > (long)k->max)
			cpus = (long)k->max;
		*FIELD(base, k, int) = (int)cpus;
		return 0;
	}
	if (check_int(ld, k, v, &n) == -1)
		return -1;
	*FIELD(base, k, int) = (int)n;
	return 0;
}

/* "1.5", "1.5s", "500ms", "2m", "1h": seconds. -1 when malformed. */
static int
parse_duration(const char *v, double *out)
{
	const char *p = v;
	char *end;
	double n;

	/* Digits and at most one dot: strtod alone would take "inf" or "0x1p3". */
	if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
		return -1;
	while (isdigit((unsigned char)*p) || *p == '.')
		p++;
	errno = 0;
	n = strtod(v, &end);
	if (errno != 0 || end != p || !isfinite(n))
		return -1;
	while (*p == ' ')
		p++;
	if (*p == '\0' || strcmp(p, "s") == 0)
		;
	else if (strcmp(p, "ms") == 0)
		n /= 1000;
	else if (strcmp(p, "m") == 0)
		n *= 60;
	else if (strcmp(p, "h") == 0)
		n *= 3600;
	else
		return -1;
	*out = n;
	return 0;
}

static int
set_duration(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
             yaml_node_t *node, const char *text)
{
	char b1[32], b2[32], b3[32];
	const char *v;
	double d;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (*v == '\0')
		return load_error(ld, "a value is required: %s", k->type->what);
	if (*v == '-')
		return load_error(ld, "\"%s\": a duration cannot be negative", v);
	if (parse_duration(v, &d) == -1)
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	if (d < k->min || d > k->max)
		return load_error(ld, "%s seconds is out of range (%s to %s seconds)",
		                  fmt_num(d, b1, sizeof b1), fmt_num(k->min, b2, sizeof b2),
		                  fmt_num(k->max, b3, sizeof b3));
	*FIELD(base, k, double) = d;
	return 0;
}

/* "65536", "64K", "6M", "1G" (powers of 1024): bytes. -1 when malformed. */
static int
parse_size(const char *v, unsigned long long *out)
{
	unsigned long long n, mult = 1;
	char *end;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	while (*end == ' ')
		end++;
	if (*end != '\0') {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			mult = 1024ULL;
			break;
		case 'M':
			mult = 1024ULL * 1024;
			break;
		case 'G':
			mult = 1024ULL * 1024 * 1024;
			break;
		default:
			return -1;
		}
		end++;
		/* "64KB", "64KiB" are common enough to accept. */
		if (strcasecmp(end, "b") == 0 || strcasecmp(end, "ib") == 0)
			end += strlen(end);
		if (*end != '\0')
			return -1;
	}
	if (n > ULLONG_MAX / mult)
		return -1;
	*out = n * mult;
	return 0;
}

static int
set_size(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
         const char *text)
{
	unsigned long long n;
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (*v == '\0')
		return load_error(ld, "a value is required: %s", k->type->what);
	if (parse_size(v, &n) == -1)
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	if ((double)n < k->min || (double)n > k->max)
		return load_error(ld, "%llu bytes is out of range (%.0f to %.0f bytes)", n, k->min,
		                  k->max);
	*FIELD(base, k, size_t) = (size_t)n;
	return 0;
}

static int
set_log_level(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
              yaml_node_t *node, const char *text)
{
	const char *v;
	int l;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if ((l = log_level_parse(v)) == -1)
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	*FIELD(base, k, int) = l;
	return 0;
}

/* Lists of addresses: a YAML list, or one string (commas allowed). */

typedef int (*item_fn)(struct load *, const char *item, void *arg);

static int
each_item(struct load *ld, const struct key *k, yaml_document_t *doc, yaml_node_t *node,
          const char *text, item_fn fn, void *arg)
{
	yaml_node_item_t *it;
	yaml_node_t *n;
	char *copy, *p, *tok;
	int line = ld->line, rc = 0;

	if (node != NULL && node->type == YAML_SEQUENCE_NODE) {
		for (it = node->data.sequence.items.start; it < node->data.sequence.items.top;
		     it++) {
			n = yaml_document_get_node(doc, *it);
			ld->line = (int)n->start_mark.line + 1;
			if (n->type != YAML_SCALAR_NODE || node_is_null(n))
				return load_error(ld, "expected %s in the list, got %s",
				                  k->type->what, node_kind(n));
			if (fn(ld, (const char *)n->data.scalar.value, arg) == -1)
				return -1;
		}
		ld->line = line;
		return 0;
	}
	if (node != NULL && node->type != YAML_SCALAR_NODE)
		return load_error(ld, "expected %s or a list of them, got %s", k->type->what,
		                  node_kind(node));
	copy = xstrdup(node != NULL ? (const char *)node->data.scalar.value : text);
	for (p = copy; (tok = strsep(&p, ", \t")) != NULL;) {
		if (*tok == '\0')
			continue;
		if ((rc = fn(ld, tok, arg)) == -1)
			break;
	}
	free(copy);
	return rc;
}

struct listen_list {
	struct config_listen *v;
	size_t n;
};

static int
port_parse(const char *s, int *port)
{
	long long n;

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s) || parse_int(s, &n) == -1 || n < 1 ||
	    n > 65535)
		return -1;
	*port = (int)n;
	return 0;
}

/*
 * "127.0.0.1:8000", "[::1]:8000", "localhost:8000", ":8000" or "*:8000"
 * (all interfaces, 0.0.0.0 as Go does), "host.name:8000" (resolved now).
 * Returns NULL or why not.
 */
static const char *
listen_parse(const char *v, struct config_listen *l, char *why, size_t whylen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
	struct addrinfo hints, *res, *ai, *pick;
	char host[256];
	const char *colon, *end;
	size_t hlen;
	int port, rc;

	memset(l, 0, sizeof *l);
	if (strlen(v) >= sizeof l->text)
		return "too long for an address";
	snprintf(l->text, sizeof l->text, "%s", v);
	if (*v == '[') {
		if ((end = strchr(v, ']')) == NULL)
			return "missing ']' after an IPv6 address";
		if (end[1] != ':')
			return "missing port: write [ADDRESS]:PORT, like [::1]:8000";
		hlen = (size_t)(end - v - 1);
		if (hlen == 0 || hlen >= sizeof host)
			return "bad IPv6 address";
		memcpy(host, v + 1, hlen);
		host[hlen] = '\0';
		colon = end + 1;
	} else {
		if ((colon = strrchr(v, ':')) == NULL)
			return "missing port: write HOST:PORT, like 127.0.0.1:8000, or :PORT for "
			       "all interfaces";
		if (memchr(v, ':', (size_t)(colon - v)) != NULL)
			return "an IPv6 address needs brackets: [::1]:8000";
		hlen = (size_t)(colon - v);
		if (hlen >= sizeof host)
			return "host name too long";
		memcpy(host, v, hlen);
		host[hlen] = '\0';
	}
	if (port_parse(colon + 1, &port) == -1)
		return "the port must be a number from 1 to 65535";

	if (*v != '[' && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons((uint16_t)port);
		l->addrlen = sizeof *sin;
		return NULL;
	}
	if (strcasecmp(host, "localhost") == 0) {
		/* Loopback whatever /etc/hosts says, as Go's listener does. */
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)port);
		l->addrlen = sizeof *sin;
		return NULL;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = *v == '[' ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if (*v == '[')
		hints.ai_flags |= AI_NUMERICHOST;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		snprintf(why, whylen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
		return why;
	}
	/* The first IPv4 address, else the first one: Go's choice too. */
	pick = res;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	if (pick->ai_addrlen > sizeof l->addr) {
		freeaddrinfo(res);
		return "address too long";
	}
	memcpy(&l->addr, pick->ai_addr, pick->ai_addrlen);
	l->addrlen = pick->ai_addrlen;
	freeaddrinfo(res);
	return NULL;
}

static int
same_sockaddr(const struct config_listen *a, const struct config_listen *b)
{
	return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static int
listen_item(struct load *ld, const char *item, void *arg)
{
	struct listen_list *ll = arg;
	struct config_listen l;
	const char *why;
	char buf[300];
	size_t i;

	if ((why = listen_parse(item, &l, buf, sizeof buf)) != NULL)
		return load_error(ld, "\"%s\": %s", item, why);
	for (i = 0; i < ll->n; i++)
		if (same_sockaddr(&ll->v[i], &l))
			return load_error(ld, "\"%s\" is listed twice", item);
	ll->v = xreallocarray(ll->v, ll->n + 1, sizeof *ll->v);
	ll->v[ll->n++] = l;
	return 0;
}

static int
set_listen(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
           yaml_node_t *node, const char *text)
{
	struct config *cfg = base;
	struct listen_list ll = {NULL, 0};

	if (each_item(ld, k, doc, node, text, listen_item, &ll) == -1) {
		free(ll.v);
		return -1;
	}
	if (ll.n == 0)
		return load_error(ld, "at least one address is required");
	free(cfg->listen);
	cfg->listen = ll.v;
	cfg->nlisten = ll.n;
	return 0;
}

struct cidr_list {
	struct config_cidr *v;
	size_t n;
};

/* "10.0.0.0/8", "192.0.2.7", "fe80::/10", "::1". Returns NULL or why not. */
static const char *
cidr_parse(const char *v, struct config_cidr *c, char *why, size_t whylen)
{
	char addr[INET6_ADDRSTRLEN + 1], shown[INET6_ADDRSTRLEN];
	const char *slash;
	long long prefix;
	int bits, i, fix = 0;
	size_t alen;

	memset(c, 0, sizeof *c);
	slash = strchr(v, '/');
	alen = slash != NULL ? (size_t)(slash - v) : strlen(v);
	if (alen == 0 || alen >= sizeof addr)
		return "not an address or CIDR (like 10.0.0.0/8 or fe80::/10)";
	memcpy(addr, v, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		bits = 128;
	} else
		return "not an address or CIDR (like 10.0.0.0/8 or fe80::/10)";
	if (slash == NULL)
		prefix = bits;
	else if (slash[1] == '\0' || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
	         parse_int(slash + 1, &prefix) == -1 || prefix > bits) {
		snprintf(why, whylen, "the prefix length must be a number from 0 to %d", bits);
		return why;
	}
	c->prefix = (int)prefix;
	/* Bits set past the prefix are a typo more often than not: say so. */
	for (i = 0; i < bits / 8; i++) {
		int keep = c->prefix - i * 8;
		unsigned char mask = keep >= 8   ? 0xff
		                     : keep <= 0 ? 0
		                                 : (unsigned char)(0xff << (8 - keep));

		if (c->addr[i] & ~mask)
			fix = 1;
		c->addr[i] &= mask;
	}
	if (fix) {
		inet_ntop(c->family, c->addr, shown, sizeof shown);
		snprintf(why, whylen, "host bits are set past the prefix: did you mean %s/%d?",
		         shown, c->prefix);
		return why;
	}
	/* ::ffff:a.b.c.d/N (N >= 96) is the IPv4 network a.b.c.d/(N-96). */
	if (c->family == AF_INET6 && c->prefix >= 96 &&
	    IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(void *)c->addr)) {
		c->family = AF_INET;
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->prefix -= 96;
	}
	return NULL;
}

static int
cidr_item(struct load *ld, const char *item, void *arg)
{
	struct cidr_list *cl = arg;
	struct config_cidr c;
	const char *why;
	char buf[200];

	if ((why = cidr_parse(item, &c, buf, sizeof buf)) != NULL)
		return load_error(ld, "\"%s\": %s", item, why);
	cl->v = xreallocarray(cl->v, cl->n + 1, sizeof *cl->v);
	cl->v[cl->n++] = c;
	return 0;
}

static int
set_allow(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
          const char *text)
{
	struct config *cfg = base;
	struct cidr_list cl = {NULL, 0};

	if (each_item(ld, k, doc, node, text, cidr_item, &cl) == -1) {
		free(cl.v);
		return -1;
	}
	if (cl.n == 0)
		return load_error(ld, "an empty list would refuse every client");
	free(cfg->allow);
	cfg->allow = cl.v;
	cfg->nallow = cl.n;
	return 0;
}

/* Maps. */

static int
valid_env_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

static int
set_environment(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                yaml_node_t *node, const char *text)
{
	struct kvlist *env = FIELD(base, k, struct kvlist);
	struct kvlist out = KVLIST_INIT;
	yaml_node_pair_t *pair;
	yaml_node_t *kn, *vn;
	const char *name, *value;
	int line = ld->line;

	if (node == NULL) {
		/* The default is an empty map; there is no text form. */
		kvlist_free(env);
		kvlist_init(env);
		return 0;
	}
	if (node_is_null(node)) {
		kvlist_free(env);
		kvlist_init(env);
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE)
		return load_error(ld, "expected %s, got %s", k->type->what, node_kind(node));
	for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(doc, pair->key);
		vn = yaml_document_get_node(doc, pair->value);
		ld->line = (int)kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE ||
		    !valid_env_name(name = (const char *)kn->data.scalar.value)) {
			kvlist_free(&out);
			return load_error(ld, "an environment variable name is letters, digits and "
			                      "'_', not starting with a digit");
		}
		if (kvlist_get_exact(&out, name) != NULL) {
			kvlist_free(&out);
			return load_error(ld, "%s is set twice", name);
		}
		if (vn->type != YAML_SCALAR_NODE) {
			kvlist_free(&out);
			return load_error(ld, "%s: expected a string, got %s", name, node_kind(vn));
		}
		value = node_is_null(vn) ? "" : (const char *)vn->data.scalar.value;
		kvlist_add(&out, name, value);
	}
	ld->line = line;
	kvlist_free(env);
	*env = out;
	return 0;
}

static const struct key cache_host_keys[];

static int
valid_host(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s), i;
	int port;

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
			return 0;
	return colon == NULL || port_parse(colon + 1, &port) == 0;
}

static void
cache_hosts_free(struct config_cache_host *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(h[i].host);
	free(h);
}

static int
set_cache_hosts(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                yaml_node_t *node, const char *text)
{
	struct config *cfg = base;
	struct config_cache_host *hosts = NULL, *h;
	size_t n = 0, i, plen = strlen(ld->path);
	yaml_node_pair_t *pair;
	yaml_node_t *kn, *vn;
	char *name, *p;
	int line = ld->line;

	if (node == NULL || node_is_null(node)) {
		cache_hosts_free(cfg->cache.hosts, cfg->cache.nhosts);
		cfg->cache.hosts = NULL;
		cfg->cache.nhosts = 0;
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE)
		return load_error(ld, "expected %s, got %s", k->type->what, node_kind(node));
	for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(doc, pair->key);
		vn = yaml_document_get_node(doc, pair->value);
		ld->line = (int)kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE || node_is_null(kn)) {
			load_error(ld, "a host name is expected as the key");
			goto fail;
		}
		name = xstrdup((const char *)kn->data.scalar.value);
		for (p = name; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(ld->path + plen, sizeof ld->path - plen, ".%s", name);
		if (!valid_host(name)) {
			free(name);
			load_error(ld, "not a host name (or host:port)");
			goto fail;
		}
		for (i = 0; i < n; i++)
			if (strcmp(hosts[i].host, name) == 0)
				break;
		if (i < n) {
			free(name);
			load_error(ld, "the host is listed twice");
			goto fail;
		}
		hosts = xreallocarray(hosts, n + 1, sizeof *hosts);
		h = &hosts[n++];
		memset(h, 0, sizeof *h);
		h->host = name;
		if (set_defaults(ld, cache_host_keys, h) == -1)
			goto fail;
		h->ttl = -1; /* inherit cache.ttl unless given */
		if (vn->type == YAML_MAPPING_NODE) {
			if (walk_block(ld, cache_host_keys, h, doc, vn) == -1)
				goto fail;
		} else {
			/* host: TTL, the short form. */
			ld->line = (int)vn->start_mark.line + 1;
			if (cache_host_keys[0].type->set(ld, &cache_host_keys[0], h, doc, vn,
			                                 NULL) == -1)
				goto fail;
		}
		ld->path[plen] = '\0';
	}
	ld->line = line;
	cache_hosts_free(cfg->cache.hosts, cfg->cache.nhosts);
	cfg->cache.hosts = hosts;
	cfg->cache.nhosts = n;
	return 0;
fail:
	cache_hosts_free(hosts, n);
	return -1;
}

/* The types. */

static const struct key_type t_string = {"string", "a string", set_string};
static const struct key_type t_path = {"path", "an absolute path", set_path};
static const struct key_type t_access_log = {"path|syslog|-|off",
                                             "a path, syslog, - (stderr) or off", set_access_log};
static const struct key_type t_user = {"user", "a user name", set_user};
static const struct key_type t_region = {"region", "a region name", set_region};
static const struct key_type t_proxy = {"url", "a proxy URL", set_egress_proxy};
static const struct key_type t_function = {"function", "a function name or ARN", set_function};
static const struct key_type t_bool = {"bool", "a boolean (true, false, yes, no, on, off)",
                                       set_bool};
static const struct key_type t_int = {"int", "an integer", set_int};
static const struct key_type t_workers = {"int|auto", "an integer or auto", set_workers};
static const struct key_type t_duration = {
    "duration", "a duration (seconds, or a number with ms, s, m or h)", set_duration};
static const struct key_type t_size = {"size", "a size (bytes, or a number with K, M or G)",
                                       set_size};
static const struct key_type t_log_level = {
    "error|warn|info|debug", "a log level (error, warn, info, debug)", set_log_level};
static const struct key_type t_listen = {"address list", "an address (HOST:PORT)", set_listen};
static const struct key_type t_allow = {"cidr list", "an address or CIDR", set_allow};
static const struct key_type t_env = {"map", "a mapping of NAME: value", set_environment};
static const struct key_type t_cache_hosts = {
    "map", "a mapping of host: TTL or host: {ttl, private, cookies}", set_cache_hosts};
static int
set_block(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
          const char *text)
{
	return walk_block(ld, k->block, base, doc, node);
}

static const struct key_type t_block = {"block", "a mapping of keys", set_block};

/* The tables. Offsets are from struct config, except in cache_host_keys. */

#define OFF(f) offsetof(struct config, f)
#define DAY 86400.0
#define YEAR (365 * DAY)
#define MS 0.001

static const struct key timeouts_keys[] = {
    {"client_header", &t_duration, OFF(timeouts.client_header), "10", MS, DAY, NULL,
     "time a client has to send the request line and headers"},
    {"client_body", &t_duration, OFF(timeouts.client_body), "30", MS, DAY, NULL,
     "time a client has to send the request body"},
    {"keepalive", &t_duration, OFF(timeouts.keepalive), "60", 0, DAY, NULL,
     "idle time before a kept-alive client connection is closed; 0 disables keep-alive"},
    {"invoke", &t_duration, OFF(timeouts.invoke), "30", MS, DAY, NULL,
     "budget for one Lambda invocation, retries included; past it the client gets 504"},
    {"connect", &t_duration, OFF(timeouts.connect), "5", MS, DAY, NULL,
     "TCP and TLS connect to the Lambda endpoint"},
    {"shutdown", &t_duration, OFF(timeouts.shutdown), "30", 0, DAY, NULL,
     "grace for in-flight requests on stop or reload"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key limits_keys[] = {
    {"max_body", &t_size, OFF(limits.max_body), "6M", 1, 1024.0 * 1024 * 1024, NULL,
     "largest request body accepted (larger: 413); Lambda's own limit is 6 MB"},
    {"max_header", &t_size, OFF(limits.max_header), "64K", 1024, 1024.0 * 1024, NULL,
     "largest request line plus headers accepted"},
    {"max_connections", &t_int, OFF(limits.max_connections), "1024", 1, 1000000, NULL,
     "client connections per worker"},
    {"max_inflight", &t_int, OFF(limits.max_inflight), "256", 1, 1000000, NULL,
     "invocations in flight per worker; more waiting requests get 503 at once"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key retry_keys[] = {
    {"attempts", &t_int, OFF(retry.attempts), "3", 1, 10, NULL,
     "invoke attempts in all, the first included (throttling, retryable errors)"},
    {"base", &t_duration, OFF(retry.base), "0.1", MS, 3600, NULL,
     "first back-off between attempts (exponential, with jitter)"},
    {"cap", &t_duration, OFF(retry.cap), "2", MS, 3600, NULL, "largest back-off between attempts"},
    {"respawn", &t_duration, OFF(retry.respawn), "0.5", MS, 3600, NULL,
     "first delay before replacing a worker that died"},
    {"respawn_cap", &t_duration, OFF(retry.respawn_cap), "30", MS, DAY, NULL,
     "largest delay before replacing a worker that keeps dying"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key credentials_keys[] = {
    {"refresh_ahead", &t_duration, OFF(credentials.refresh_ahead), "300", 0, 12 * 3600.0, NULL,
     "refresh temporary credentials this long before they expire"},
    {"retry", &t_duration, OFF(credentials.retry), "1", MS, 3600, NULL,
     "first back-off after a failed refresh"},
    {"retry_cap", &t_duration, OFF(credentials.retry_cap), "60", MS, DAY, NULL,
     "largest back-off after failed refreshes"},
    {"timeout", &t_duration, OFF(credentials.timeout), "1", MS, 3600, NULL,
     "timeout of one call to a credential source (instance metadata, ECS, STS)"},
    {"imds_attempts", &t_int, OFF(credentials.imds_attempts), "2", 1, 10, NULL,
     "attempts per instance metadata call"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

#define HOFF(f) offsetof(struct config_cache_host, f)

static const struct key cache_host_keys[] = {
    /* ttl first: the short form "host: TTL" sets it. */
    {"ttl", &t_duration, HOFF(ttl), NULL, 0, YEAR, NULL, "this host's TTL (default: cache.ttl)"},
    {"private", &t_bool, HOFF(private_ok), "false", 0, 0, NULL,
     "store responses marked Cache-Control: private"},
    {"cookies", &t_bool, HOFF(cookies_ok), "false", 0, 0, NULL, "store responses that set cookies"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key cache_keys[] = {
    {"ttl", &t_duration, OFF(cache.ttl), "0", 0, YEAR, NULL,
     "default TTL for every host; 0 = no caching"},
    {"negative_ttl", &t_duration, OFF(cache.negative_ttl), "10", 0, YEAR, NULL,
     "how long a 407 (no parameters for the host) is cached, for every host"},
    {"lock_timeout", &t_duration, OFF(cache.lock_timeout), "5", 0, 3600, NULL,
     "how long concurrent misses wait for the one invocation before going themselves"},
    {"max_size", &t_size, OFF(cache.max_size), "64M", 64 * 1024.0, 64 * 1024.0 * 1024 * 1024, NULL,
     "memory bound of the whole cache"},
    {"hosts", &t_cache_hosts, 0, NULL, 0, 0, NULL, "per host: TTL, or {ttl, private, cookies}"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key local_function_keys[] = {
    {"command", &t_string, OFF(local_function.command), NULL, 0, 0, NULL,
     "a Lambda custom runtime to run locally instead of invoking AWS Lambda"},
    {"environment", &t_env, OFF(local_function.environment), NULL, 0, 0, NULL,
     "extra environment for the function (it gets nothing else from the daemon)"},
    {"concurrency", &t_int, OFF(local_function.concurrency), "2", 1, 256, NULL,
     "function processes per worker"},
    {"timeout", &t_duration, OFF(local_function.timeout), "30", MS, DAY, NULL,
     "time limit of one invocation, as Lambda's function timeout"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key root_keys[] = {
    {"function_name", &t_function, OFF(function_name), NULL, 0, 0, NULL,
     "Lambda function: NAME, NAME:ALIAS, ACCOUNT:function:NAME or a function ARN"},
    {"listen", &t_listen, 0, "127.0.0.1:8000", 0, 0, NULL,
     "address or list of addresses to listen on; :PORT = all interfaces"},
    {"allow", &t_allow, 0, "127.0.0.0/8, ::1", 0, 0, NULL,
     "clients allowed to use the proxy (addresses or CIDRs); others get 403"},
    {"workers", &t_workers, OFF(workers), "2", 1, 256, NULL,
     "worker processes, or auto (one per CPU)"},
    {"region", &t_region, OFF(region), NULL, 0, 0, NULL,
     "AWS region (else AWS_REGION, AWS_DEFAULT_REGION, instance metadata)"},
    {"egress_proxy", &t_proxy, OFF(egress_proxy), NULL, 0, 0, NULL,
     "proxy for the daemon's own AWS calls (proxy environment variables are ignored)"},
    {"user", &t_user, OFF(user), NULL, 0, 0, NULL,
     "run the workers as this user (the master binds first)"},
    {"pid_file", &t_path, OFF(pid_file), NULL, 0, 0, NULL, "write the master's pid here"},
    {"log_level", &t_log_level, OFF(log_level), "info", 0, 0, NULL, "error, warn, info or debug"},
    {"access_log", &t_access_log, OFF(access_log), "-", 0, 0, NULL,
     "one line per request: a file path, syslog, - (stderr) or off"},
    {"forwarded_for", &t_bool, OFF(forwarded_for), "true", 0, 0, NULL,
     "append the client address to X-Forwarded-For"},
    {"timeouts", &t_block, 0, NULL, 0, 0, timeouts_keys, "time limits, in seconds"},
    {"limits", &t_block, 0, NULL, 0, 0, limits_keys, "sizes and counts"},
    {"retry", &t_block, 0, NULL, 0, 0, retry_keys, "invoke retries and worker respawns"},
    {"credentials", &t_block, 0, NULL, 0, 0, credentials_keys,
     "refreshing the host's AWS credentials"},
    {"cache", &t_block, 0, NULL, 0, 0, cache_keys,
     "per-host response cache shared by all workers (doc/cache.md)"},
    {"local_function", &t_block, 0, NULL, 0, 0, local_function_keys,
     "run a Lambda function locally instead of invoking AWS Lambda"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

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

static struct seen *
seen_find(struct load *ld, const char *path)
{
	size_t i;

	for (i = 0; i < ld->nseen; i++)
		if (strcmp(ld->seen[i].path, path) == 0)
			return &ld->seen[i];
	return NULL;
}

static int
seen_line(struct load *ld, const char *path)
{
	struct seen *s = seen_find(ld, path);

	return s != NULL ? s->line : 0;
}

/* Set the keys of a mapping node from table; ld->path names the mapping. */
static int
walk_block(struct load *ld, const struct key *table, void *base, yaml_document_t *doc,
           yaml_node_t *node)
{
	const struct key *sub, *best;
	size_t plen = strlen(ld->path), d, bestd;
	yaml_node_pair_t *pair;
	yaml_node_t *kn, *vn;
	const char *name;
	struct seen *s;
	/* Room for the whole dotted path plus a key name: gcc's -O1 format
	 * checks (the sanitizer build) see a truncation otherwise. */
	char known[sizeof ld->path + 128];

	if (node_is_null(node))
		return 0; /* "timeouts:" with nothing under it: all defaults */
	if (node->type != YAML_MAPPING_NODE)
		return load_error(ld, "expected %s, got %s", t_block.what, node_kind(node));
	for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(doc, pair->key);
		vn = yaml_document_get_node(doc, pair->value);
		ld->line = (int)kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE) {
			ld->path[plen] = '\0';
			return load_error(ld, "a key must be a plain name, not %s", node_kind(kn));
		}
		name = (const char *)kn->data.scalar.value;
		snprintf(ld->path + plen, sizeof ld->path - plen, "%s%s", plen > 0 ? "." : "",
		         name);
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
			return load_error(ld, "unknown key%s", known);
		}
		if ((s = seen_find(ld, ld->path)) != NULL)
			return load_error(ld, "duplicate key (first set on line %d)", s->line);
		ld->seen = xreallocarray(ld->seen, ld->nseen + 1, sizeof *ld->seen);
		s = &ld->seen[ld->nseen++];
		s->path = xstrdup(ld->path);
		s->line = ld->line;
		/* Scalars are reported on their own line (a value may follow later). */
		if (vn->type == YAML_SCALAR_NODE)
			ld->line = (int)vn->start_mark.line + 1;
		if (sub->type->set(ld, sub, base, doc, vn, NULL) == -1)
			return -1;
		ld->path[plen] = '\0';
	}
	ld->path[plen] = '\0';
	return 0;
}

/* Apply every default of table (recursively) to base. */
static int
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

/* Cross-key checks, after the file and the command line. */
static int
check_pair(struct load *ld, const char *lo_name, double lo, const char *hi_name, double hi)
{
	char b1[32], b2[32];
	int l1, l2;

	if (lo <= hi)
		return 0;
	l1 = seen_line(ld, lo_name);
	l2 = seen_line(ld, hi_name);
	ld->line = l1 > l2 ? l1 : l2;
	snprintf(ld->path, sizeof ld->path, "%s", l1 >= l2 ? lo_name : hi_name);
	return load_error(ld, "%s (%s) must not exceed %s (%s)", lo_name,
	                  fmt_num(lo, b1, sizeof b1), hi_name, fmt_num(hi, b2, sizeof b2));
}

static int
check_config(struct load *ld, const struct config_cli *cli)
{
	struct config *cfg = ld->cfg;
	size_t i;

	if (check_pair(ld, "timeouts.connect", cfg->timeouts.connect, "timeouts.invoke",
	               cfg->timeouts.invoke) == -1 ||
	    check_pair(ld, "retry.base", cfg->retry.base, "retry.cap", cfg->retry.cap) == -1 ||
	    check_pair(ld, "retry.respawn", cfg->retry.respawn, "retry.respawn_cap",
	               cfg->retry.respawn_cap) == -1 ||
	    check_pair(ld, "credentials.retry", cfg->credentials.retry, "credentials.retry_cap",
	               cfg->credentials.retry_cap) == -1)
		return -1;

	/*
	 * Whoever reaches the proxy gets the fleet's API tokens: listening
	 * beyond loopback needs an allow list written on purpose.
	 */
	if (seen_find(ld, "allow") == NULL) {
		for (i = 0; i < cfg->nlisten; i++) {
			if (config_is_loopback((struct sockaddr *)&cfg->listen[i].addr))
				continue;
			if (cli != NULL && cli->address != NULL) {
				ld->file = "command line";
				ld->line = 0;
				snprintf(ld->path, sizeof ld->path, "-address");
			} else {
				ld->line = seen_line(ld, "listen");
				snprintf(ld->path, sizeof ld->path, "listen");
			}
			return load_error(ld,
			                  "%s is not a loopback address and there is no allow "
			                  "list: anyone who can reach it would get the fleet's "
			                  "API tokens; set allow: to the clients that may use "
			                  "the proxy",
			                  cfg->listen[i].text);
		}
	}

	for (i = 0; i < cfg->cache.nhosts; i++)
		if (cfg->cache.hosts[i].ttl < 0)
			cfg->cache.hosts[i].ttl = cfg->cache.ttl;

	if (cfg->function_name == NULL && cfg->local_function.command == NULL)
		config_warn(cfg, "function_name is not configured (empty or the XXXXXXXX "
		                 "placeholder): requests will get 503 until it is set");
	return 0;
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
	free(ld);
}

static struct config *
load_text(const char *text, const char *name, const char *path, const struct config_cli *cli,
          char *err, size_t errlen)
{
	struct load *ld;
	struct config *cfg;
	yaml_document_t doc;
	yaml_node_t *root;
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

	if (text != NULL) {
		ld->file = name;
		if (parse_yaml(ld, text, &doc) == -1)
			goto fail;
		root = yaml_document_get_root_node(&doc);
		if (root != NULL && !node_is_null(root)) {
			if (root->type != YAML_MAPPING_NODE) {
				ld->line = (int)root->start_mark.line + 1;
				load_error(ld, "expected a mapping of keys (key: value), got %s",
				           node_kind(root));
				rc = -1;
			} else
				rc = walk_block(ld, root_keys, cfg, &doc, root);
		}
		yaml_document_delete(&doc);
		if (rc == -1)
			goto fail;
	}
	if (cli != NULL && apply_cli(ld, cli) == -1)
		goto fail;
	ld->file = name != NULL ? name : "command line";
	if (check_config(ld, cli) == -1)
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
	return load_text(text, name != NULL ? name : "(string)", NULL, cli, err, errlen);
}

struct config *
config_load(const struct config_cli *cli, char *err, size_t errlen)
{
	const char *path = cli->config_path != NULL ? cli->config_path : config_default_path();
	struct config *cfg;
	FILE *f;
	char *text;
	size_t n;

	if ((f = fopen(path, "r")) == NULL) {
		/* The Go tool's flags alone are a complete configuration. */
		if (errno == ENOENT && !cli->config_path_given &&
		    (cli->function_name != NULL || cli->address != NULL))
			return load_text(NULL, path, NULL, cli, err, errlen);
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
	cfg = load_text(text, path, path, cli, err, errlen);
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
	cache_hosts_free(cfg->cache.hosts, cfg->cache.nhosts);
	free(cfg->local_function.command);
	kvlist_free(&cfg->local_function.environment);
	for (i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg);
}

/* Addresses. */

static int
prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

int
config_allowed(const struct config *cfg, const struct sockaddr *addr)
{
	const unsigned char *a;
	int family;
	size_t i;

	if (addr->sa_family == AF_INET) {
		family = AF_INET;
		a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)addr)
		        ->sin_addr;
	} else if (addr->sa_family == AF_INET6) {
		const struct in6_addr *in6 =
		    &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			family = AF_INET;
			a = in6->s6_addr + 12;
		} else {
			family = AF_INET6;
			a = in6->s6_addr;
		}
	} else
		return 0;
	for (i = 0; i < cfg->nallow; i++)
		if (cfg->allow[i].family == family &&
		    prefix_match(a, cfg->allow[i].addr, cfg->allow[i].prefix))
			return 1;
	return 0;
}

int
config_is_loopback(const struct sockaddr *addr)
{
	const struct in6_addr *in6;

	if (addr->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)addr)->sin_addr.s_addr) >>
		        24) == 127;
	if (addr->sa_family != AF_INET6)
		return 0;
	in6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
	if (IN6_IS_ADDR_LOOPBACK(in6))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127;
}

/* The key table, for documentation. */

static void
keys_walk(const struct key *table, const char *prefix, config_key_cb fn, void *arg)
{
	char name[160];

	for (; table->name != NULL; table++) {
		snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", table->name);
		if (table->block != NULL)
			keys_walk(table->block, name, fn, arg);
		else
			fn(name, table->type->name, table->def, table->doc, arg);
	}
}

void
config_keys(config_key_cb fn, void *arg)
{
	keys_walk(root_keys, "", fn, arg);
}

/* The command line. */

void
config_usage(FILE *f)
{
	fprintf(f,
	        "usage: ssm-sign-proxy [-c FILE] [-t] [-V] [-h] [-function-name NAME] "
	        "[-address ADDR]\n"
	        "  -c FILE              configuration file (default %s)\n"
	        "  -t                   check the configuration and exit: 0 valid, 1 not\n"
	        "  -V                   print the version and exit\n"
	        "  -h                   print this help and exit\n"
	        "  -function-name NAME  Lambda function to invoke (overrides function_name)\n"
	        "  -address ADDR        listen on ADDR, like 127.0.0.1:8000 or :8000 for all\n"
	        "                       interfaces (overrides listen); -addr is the same\n"
	        "Options may also be written -name=VALUE, --name VALUE or --name=VALUE.\n"
	        "Exit status: 0 success, 1 configuration or run-time error, 2 usage error.\n",
	        config_default_path());
}

int
config_parse_args(int argc, char **argv, struct config_cli *cli, char *err, size_t errlen)
{
	const char *arg, *name, *eq, *value;
	char flag[64];
	size_t nlen;
	int i;

	memset(cli, 0, sizeof *cli);
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			if (i + 1 < argc) {
				snprintf(err, errlen, "unexpected argument: %s", argv[i + 1]);
				return -1;
			}
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			snprintf(err, errlen, "unexpected argument: %s", arg);
			return -1;
		}
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (nlen == 0 || nlen >= sizeof flag) {
			snprintf(err, errlen, "unknown option: %s", arg);
			return -1;
		}
		memcpy(flag, name, nlen);
		flag[nlen] = '\0';
		value = eq != NULL ? eq + 1 : NULL;

		/* -cFILE, as getopt would take it. */
		if (arg[1] == 'c' && arg[2] != '\0' && arg[2] != '=' &&
		    strcmp(flag, "config") != 0) {
			cli->config_path = arg + 2;
			cli->config_path_given = 1;
			continue;
		}
		if (strcmp(flag, "t") == 0 || strcmp(flag, "V") == 0 || strcmp(flag, "h") == 0 ||
		    strcmp(flag, "help") == 0 || strcmp(flag, "version") == 0) {
			if (value != NULL) {
				snprintf(err, errlen, "option -%s takes no value", flag);
				return -1;
			}
			if (flag[0] == 't') {
				cli->test_only = 1;
				continue;
			}
			if (flag[0] == 'V' || flag[0] == 'v') {
				printf("ssm-sign-proxy %s\n", VERSION);
				return 1;
			}
			config_usage(stdout);
			return 1;
		}
		if (strcmp(flag, "c") != 0 && strcmp(flag, "config") != 0 &&
		    strcmp(flag, "function-name") != 0 && strcmp(flag, "address") != 0 &&
		    strcmp(flag, "addr") != 0) {
			snprintf(err, errlen, "unknown option: %s", arg);
			return -1;
		}
		if (value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option -%s needs a value", flag);
				return -1;
			}
			value = argv[++i];
		}
		if (flag[0] == 'c') {
			cli->config_path = value;
			cli->config_path_given = 1;
		} else if (flag[0] == 'f')
			cli->function_name = value;
		else
			cli->address = value;
	}
	return 0;
}
