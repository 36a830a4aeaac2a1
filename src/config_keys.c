/*
 * config_keys.c: the key tables (name, type, where the value lands,
 * default, bounds, documentation), the setters of each type, and the
 * checks across keys that run once the file and the command line are in.
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
#include "config_int.h"
#include "log.h"
#include "xmalloc.h"

void
config_warn(struct config *cfg, const char *fmt, ...)
{
	va_list ap;

	cfg->warnings = xreallocarray(cfg->warnings, cfg->nwarnings + 1, sizeof *cfg->warnings);
	va_start(ap, fmt);
	xvasprintf(&cfg->warnings[cfg->nwarnings++], fmt, ap);
	va_end(ap);
}

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

int
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

/* log: where the daemon's own log goes. */
static int
set_log_dest(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
             yaml_node_t *node, const char *text)
{
	char **field = FIELD(base, k, char *);
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (*v == '\0')
		return load_error(ld, "a value is required: stderr, syslog or a file path");
	if (strcmp(v, "-") == 0)
		v = "stderr";
	if (strcmp(v, "syslog") != 0 && strcmp(v, "stderr") != 0 && *v != '/')
		return load_error(ld, "\"%s\" is not stderr, syslog or an absolute path", v);
	free(*field);
	*field = xstrdup(v);
	return 0;
}

static int
set_format(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
           yaml_node_t *node, const char *text)
{
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (strcasecmp(v, "text") == 0)
		*FIELD(base, k, int) = CONFIG_FORMAT_TEXT;
	else if (strcasecmp(v, "json") == 0)
		*FIELD(base, k, int) = CONFIG_FORMAT_JSON;
	else
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	return 0;
}

/* A file mode in octal: "0660", "660". */
static int
set_mode(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
         const char *text)
{
	const char *v;
	char *end;
	long n;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	errno = 0;
	n = strtol(v, &end, 8);
	if (*v == '\0' || *end != '\0' || errno != 0 || strspn(v, "01234567") != strlen(v) ||
	    n < 0 || n > 0777)
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	*FIELD(base, k, int) = (int)n;
	return 0;
}

static int
host_item(struct load *ld, const char *item, void *arg)
{
	struct config *cfg = arg;
	char *h, *p;
	size_t i;

	h = xstrdup(item);
	for (p = h; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	for (i = 0; i < cfg->admin.nmetrics_hosts; i++)
		if (strcmp(cfg->admin.metrics_hosts[i], h) == 0) {
			free(h);
			return load_error(ld, "\"%s\" is listed twice", item);
		}
	/* metrics.c keeps counters for this many hosts (the series stay bounded). */
	if (cfg->admin.nmetrics_hosts >= CONFIG_METRICS_HOSTS_MAX) {
		free(h);
		return load_error(ld, "at most %d hosts", CONFIG_METRICS_HOSTS_MAX);
	}
	cfg->admin.metrics_hosts =
	    xreallocarray(cfg->admin.metrics_hosts, cfg->admin.nmetrics_hosts + 1, sizeof(char *));
	cfg->admin.metrics_hosts[cfg->admin.nmetrics_hosts++] = h;
	return 0;
}

void
metrics_hosts_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->admin.nmetrics_hosts; i++)
		free(cfg->admin.metrics_hosts[i]);
	free(cfg->admin.metrics_hosts);
	cfg->admin.metrics_hosts = NULL;
	cfg->admin.nmetrics_hosts = 0;
}

static int valid_host(const char *s);

static int
set_metrics_hosts(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                  yaml_node_t *node, const char *text)
{
	struct config *cfg = base;
	size_t i;

	metrics_hosts_free(cfg);
	if (node == NULL && text == NULL)
		return 0;
	if (node != NULL && node_is_null(node))
		return 0;
	if (each_item(ld, k, doc, node, text, host_item, cfg) == -1)
		return -1;
	for (i = 0; i < cfg->admin.nmetrics_hosts; i++)
		if (!valid_host(cfg->admin.metrics_hosts[i]))
			return load_error(ld, "\"%s\" is not a host name (or host:port)",
			                  cfg->admin.metrics_hosts[i]);
	return 0;
}

static int
set_invoke_mode(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                yaml_node_t *node, const char *text)
{
	const char *v;

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	if (strcmp(v, "buffered") == 0)
		*FIELD(base, k, int) = CONFIG_INVOKE_BUFFERED;
	else if (strcmp(v, "stream") == 0)
		*FIELD(base, k, int) = CONFIG_INVOKE_STREAM;
	else
		return load_error(ld, "expected %s, got \"%s\"", k->type->what, v);
	return 0;
}

/* Lists of addresses: a YAML list, or one string (commas allowed). */

int
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
	/* Maps merge across included files: a later file adds and replaces
	 * names, it does not drop the others (null does). */
	for (size_t i = 0; i < out.n; i++) {
		kvlist_del_exact(env, out.v[i].name);
		kvlist_add(env, out.v[i].name, out.v[i].value);
	}
	kvlist_free(&out);
	return 0;
}

const struct key cache_host_keys[];

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

void
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
	size_t n = 0, i, j, plen = strlen(ld->path);
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
	/* Maps merge across included files: hosts from an earlier file that
	 * this one does not name stay (null drops them all). */
	for (i = 0; i < cfg->cache.nhosts; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(hosts[j].host, cfg->cache.hosts[i].host) == 0)
				break;
		if (j < n)
			continue;
		hosts = xreallocarray(hosts, n + 1, sizeof *hosts);
		hosts[n++] = cfg->cache.hosts[i];
		cfg->cache.hosts[i].host = NULL;
	}
	cache_hosts_free(cfg->cache.hosts, cfg->cache.nhosts);
	cfg->cache.hosts = hosts;
	cfg->cache.nhosts = n;
	return 0;
fail:
	cache_hosts_free(hosts, n);
	return -1;
}

/* The types. */

static const struct key_type t_string = {"string", "a string", set_string, print_string};
static const struct key_type t_path = {"path", "an absolute path", set_path, print_string};
static const struct key_type t_access_log = {
    "path|syslog|-|off", "a path, syslog, - (stderr) or off", set_access_log, print_string};
static const struct key_type t_user = {"user", "a user name", set_user, print_string};
static const struct key_type t_region = {"region", "a region name", set_region, print_string};
static const struct key_type t_proxy = {"url", "a proxy URL", set_egress_proxy, print_string};
static const struct key_type t_function = {"function", "a function name or ARN", set_function,
                                           print_string};
static const struct key_type t_bool = {"bool", "a boolean (true, false, yes, no, on, off)",
                                       set_bool, print_bool};
static const struct key_type t_int = {"int", "an integer", set_int, print_int};
static const struct key_type t_workers = {"int|auto", "an integer or auto", set_workers, print_int};
static const struct key_type t_duration = {"duration",
                                           "a duration (seconds, or a number with ms, s, m or h)",
                                           set_duration, print_duration};
static const struct key_type t_size = {"size", "a size (bytes, or a number with K, M or G)",
                                       set_size, print_size};
static const struct key_type t_invoke_mode = {"buffered|stream", "buffered or stream",
                                              set_invoke_mode, print_invoke_mode};
static const struct key_type t_log_level = {"error|warn|info|debug",
                                            "a log level (error, warn, info, debug)", set_log_level,
                                            print_log_level};
static const struct key_type t_listen = {"address list", "an address (HOST:PORT)", set_listen,
                                         print_listen};
static const struct key_type t_allow = {"cidr list", "an address or CIDR", set_allow, print_allow};
static const struct key_type t_env = {"map", "a mapping of NAME: value", set_environment,
                                      print_env};
static const struct key_type t_cache_hosts = {
    "map", "a mapping of host: TTL or host: {ttl, private, cookies}", set_cache_hosts,
    print_cache_hosts};
static int
set_block(struct load *ld, const struct key *k, void *base, yaml_document_t *doc, yaml_node_t *node,
          const char *text)
{
	return walk_block(ld, k->block, base, doc, node);
}

const struct key_type t_block = {"block", "a mapping of keys", set_block, NULL};
static const struct key_type t_log = {"stderr|syslog|path", "stderr, syslog or an absolute path",
                                      set_log_dest, print_string};
static const struct key_type t_format = {"text|json", "text or json", set_format, print_format};
static const struct key_type t_mode = {"mode", "a file mode in octal (like 0660)", set_mode,
                                       print_mode};
static const struct key_type t_admin_listen = {"address|path",
                                               "a loopback HOST:PORT or a unix socket path",
                                               set_admin_listen, print_admin_listen};
static const struct key_type t_admin_allow = {"cidr list", "an address or CIDR", set_admin_allow,
                                              print_admin_allow};
static const struct key_type t_hosts = {"host list", "a host name", set_metrics_hosts,
                                        print_metrics_hosts};

/* The tables. Offsets are from struct config, except in cache_host_keys. */

#define OFF(f) offsetof(struct config, f)
#define DAY 86400.0
#define YEAR (365 * DAY)
#define MS 0.001

static const struct key timeouts_keys[] = {
    {"client_header", &t_duration, OFF(timeouts.client_header), "10", MS, DAY, NULL,
     "time a client has to send the request line and headers: one deadline from the start "
     "of the request, then 408"},
    {"client_body", &t_duration, OFF(timeouts.client_body), "30", MS, DAY, NULL,
     "longest pause between two reads of the request body, then 408"},
    {"keepalive", &t_duration, OFF(timeouts.keepalive), "60", 0, DAY, NULL,
     "idle time before a kept-alive client connection is closed; 0 disables keep-alive"},
    {"invoke", &t_duration, OFF(timeouts.invoke), "30", MS, DAY, NULL,
     "budget for one Lambda invocation, retries included; past it the client gets 504"},
    {"connect", &t_duration, OFF(timeouts.connect), "5", MS, DAY, NULL,
     "TCP and TLS connect to the Lambda endpoint"},
    {"shutdown", &t_duration, OFF(timeouts.shutdown), "30", 0, DAY, NULL,
     "grace for in-flight requests on stop or reload"},
    {"stream_idle", &t_duration, OFF(timeouts.stream_idle), "30", MS, DAY, NULL,
     "invoke_mode stream: a response stream that brings no byte this long is cut short"},
    {"linger", &t_duration, OFF(timeouts.linger), "2", 0, 3600, NULL,
     "after a final answer, how long what a client still sends is read and dropped before "
     "the close (so that its kernel does not reset the connection before the answer is read)"},
    {"send", &t_duration, OFF(timeouts.send), "60", MS, DAY, NULL,
     "time a client may take to read a response (between two writes); past it the connection "
     "is closed"},
    {"start", &t_duration, OFF(timeouts.start), "10", MS, DAY, NULL,
     "time new workers (and their local function processes) have to be ready on a reload or "
     "an upgrade; past it the new ones are stopped and the running ones go on"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct key limits_keys[] = {
    {"max_body", &t_size, OFF(limits.max_body), "6M", 1, 1024.0 * 1024 * 1024, NULL,
     "largest request body accepted (larger: 413); Lambda's own limit is 6 MB"},
    {"max_header", &t_size, OFF(limits.max_header), "64K", 1024, 1024.0 * 1024, NULL,
     "largest request line plus headers accepted (larger: 431, or 414 for the request line)"},
    {"max_headers", &t_int, OFF(limits.max_headers), "100", 1, 10000, NULL,
     "header fields in one request (more: 431)"},
    {"max_connections", &t_int, OFF(limits.max_connections), "1024", 1, 1000000, NULL,
     "client connections per worker"},
    {"max_inflight", &t_int, OFF(limits.max_inflight), "256", 1, 1000000, NULL,
     "invocations in flight per worker; more waiting requests get 503 at once"},
    {"stream_buffer", &t_size, OFF(limits.stream_buffer), "256K", 16 * 1024.0, 1024.0 * 1024 * 1024,
     NULL, "invoke_mode stream: bytes held for a slow client before the stream is paused"},
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

const struct key cache_host_keys[] = {
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

static const struct key admin_keys[] = {
    {"listen", &t_admin_listen, 0, NULL, 0, 0, NULL,
     "off, a loopback HOST:PORT, or a unix socket path; served by the master"},
    {"socket_mode", &t_mode, OFF(admin.socket_mode), "0660", 0, 0, NULL,
     "permissions of the unix socket"},
    {"allow", &t_admin_allow, 0, "127.0.0.0/8, ::1", 0, 0, NULL,
     "clients allowed on the admin listener (a unix socket relies on its mode)"},
    {"metrics_hosts", &t_hosts, 0, NULL, 0, 0, NULL,
     "hosts that get their own label in /metrics (others count as \"other\")"},
    {"ready_margin", &t_duration, OFF(admin.ready_margin), "60", 0, DAY, NULL,
     "/readyz: the credentials must stay valid at least this long"},
    {"ready_invocations", &t_int, OFF(admin.ready_invocations), "10", 1, 1000, NULL,
     "/readyz: not ready when this many last invocations all failed ..."},
    {"ready_window", &t_duration, OFF(admin.ready_window), "60", 1, DAY, NULL,
     "... within this many seconds"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

const struct key root_keys[] = {
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
    {"log", &t_log, OFF(log), "stderr", 0, 0, NULL,
     "the daemon's own log: stderr, syslog, or a file (reopened on SIGUSR1)"},
    {"log_format", &t_format, OFF(log_format), "text", 0, 0, NULL,
     "text, or json (one object per line)"},
    {"access_log", &t_access_log, OFF(access_log), "-", 0, 0, NULL,
     "one line per request: a file path, syslog, - (stderr) or off"},
    {"access_log_format", &t_format, OFF(access_log_format), "text", 0, 0, NULL,
     "text, or json (one object per line)"},
    {"forwarded_for", &t_bool, OFF(forwarded_for), "true", 0, 0, NULL,
     "append the client address to X-Forwarded-For"},
    {"invoke_mode", &t_invoke_mode, OFF(invoke_mode), "buffered", 0, 0, NULL,
     "buffered (Invoke, 6 MB, retries) or stream (InvokeWithResponseStream, 200 MB, "
     "first bytes early)"},
    {"timeouts", &t_block, 0, NULL, 0, 0, timeouts_keys, "time limits, in seconds"},
    {"limits", &t_block, 0, NULL, 0, 0, limits_keys, "sizes and counts"},
    {"retry", &t_block, 0, NULL, 0, 0, retry_keys, "invoke retries and worker respawns"},
    {"credentials", &t_block, 0, NULL, 0, 0, credentials_keys,
     "refreshing the host's AWS credentials"},
    {"cache", &t_block, 0, NULL, 0, 0, cache_keys,
     "per-host response cache shared by all workers (doc/cache.md)"},
    {"local_function", &t_block, 0, NULL, 0, 0, local_function_keys,
     "run a Lambda function locally instead of invoking AWS Lambda"},
    {"admin", &t_block, 0, NULL, 0, 0, admin_keys,
     "the admin listener: /metrics, /healthz, /readyz (doc/operations.md)"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* Cross-key checks, after the file and the command line. */
static int
check_pair(struct load *ld, const char *lo_name, double lo, const char *hi_name, double hi)
{
	char b1[32], b2[32];
	struct seen *s1, *s2;
	const char *which;

	if (lo <= hi)
		return 0;
	/* Blame the one set last (in the last file read, or lower down). */
	s1 = seen_find(ld, lo_name);
	s2 = seen_find(ld, hi_name);
	which = s2 == NULL || (s1 != NULL && s1->order > s2->order) ? lo_name : hi_name;
	if (!seen_at(ld, which))
		ld->line = 0;
	snprintf(ld->path, sizeof ld->path, "%s", which);
	return load_error(ld, "%s (%s) must not exceed %s (%s)", lo_name,
	                  fmt_num(lo, b1, sizeof b1), hi_name, fmt_num(hi, b2, sizeof b2));
}

int
check_config(struct load *ld, const struct config_cli *cli)
{
	struct config *cfg = ld->cfg;
	size_t i;
	int rc = 0;

	/* Each check reports and the next one runs: all problems in one go. */
	rc |= check_pair(ld, "timeouts.connect", cfg->timeouts.connect, "timeouts.invoke",
	                 cfg->timeouts.invoke);
	rc |= check_pair(ld, "retry.base", cfg->retry.base, "retry.cap", cfg->retry.cap);
	rc |= check_pair(ld, "retry.respawn", cfg->retry.respawn, "retry.respawn_cap",
	                 cfg->retry.respawn_cap);
	rc |= check_pair(ld, "credentials.retry", cfg->credentials.retry, "credentials.retry_cap",
	                 cfg->credentials.retry_cap);

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
				if (!seen_at(ld, "listen"))
					ld->line = 0;
				snprintf(ld->path, sizeof ld->path, "listen");
			}
			rc = load_error(ld,
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
	return rc != 0 ? -1 : 0;
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
