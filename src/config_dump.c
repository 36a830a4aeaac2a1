/*
 * config_dump.c: -T, the effective configuration written back as YAML.
 * Every key of the tables is printed, defaults included, in table order,
 * with the printer of its type; includes and ${VAR} substitution are
 * already resolved in the struct, so the output stands alone. Strings are
 * double-quoted (and "${" written "$${") so that reading the output back
 * gives the same struct, and printing that gives the same text.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "log.h"

/* A YAML double-quoted scalar that config.c's substitution leaves alone. */
static void
put_quoted(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)(s != NULL ? s : ""); *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else if (*p == '$' && p[1] == '{')
			fputs("$$", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void
print_string(FILE *f, const struct key *k, const void *base, int indent)
{
	put_quoted(f, *FIELD(base, k, char *const));
	fputc('\n', f);
}

void
print_bool(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%s\n", *FIELD(base, k, const int) ? "true" : "false");
}

void
print_int(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%d\n", *FIELD(base, k, const int));
}

void
print_duration(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%.15g\n", *FIELD(base, k, const double));
}

void
print_size(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%zu\n", *FIELD(base, k, const size_t));
}

void
print_log_level(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%s\n", log_level_name((enum log_level) * FIELD(base, k, const int)));
}

void
print_format(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%s\n", *FIELD(base, k, const int) == CONFIG_FORMAT_JSON ? "json" : "text");
}

void
print_invoke_mode(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "%s\n",
	        *FIELD(base, k, const int) == CONFIG_INVOKE_STREAM ? "stream" : "buffered");
}

void
print_mode(FILE *f, const struct key *k, const void *base, int indent)
{
	fprintf(f, "\"0%03o\"\n", (unsigned)*FIELD(base, k, const int));
}

static void
put_cidrs(FILE *f, const struct config_cidr *v, size_t n)
{
	char addr[INET6_ADDRSTRLEN], item[INET6_ADDRSTRLEN + 8];
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++) {
		inet_ntop(v[i].family, v[i].addr, addr, sizeof addr);
		snprintf(item, sizeof item, "%s/%d", addr, v[i].prefix);
		fputs(i > 0 ? ", " : "", f);
		put_quoted(f, item);
	}
	fputs("]\n", f);
}

void
print_listen(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct config *cfg = base;
	size_t i;

	fputc('[', f);
	for (i = 0; i < cfg->nlisten; i++) {
		fputs(i > 0 ? ", " : "", f);
		put_quoted(f, cfg->listen[i].text);
	}
	fputs("]\n", f);
}

void
print_allow(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct config *cfg = base;

	put_cidrs(f, cfg->allow, cfg->nallow);
}

void
print_admin_listen(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct config *cfg = base;

	if (cfg->admin.socket != NULL)
		put_quoted(f, cfg->admin.socket);
	else
		put_quoted(f, cfg->admin.listen != NULL ? cfg->admin.listen->text : "off");
	fputc('\n', f);
}

void
print_admin_allow(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct config *cfg = base;

	put_cidrs(f, cfg->admin.allow, cfg->admin.nallow);
}

void
print_metrics_hosts(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct config *cfg = base;
	size_t i;

	fputc('[', f);
	for (i = 0; i < cfg->admin.nmetrics_hosts; i++) {
		fputs(i > 0 ? ", " : "", f);
		put_quoted(f, cfg->admin.metrics_hosts[i]);
	}
	fputs("]\n", f);
}

void
print_env(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct kvlist *env = FIELD(base, k, const struct kvlist);
	size_t i;

	if (env->n == 0) {
		fputs(" {}\n", f);
		return;
	}
	fputc('\n', f);
	for (i = 0; i < env->n; i++) {
		fprintf(f, "%*s%s: ", indent + 2, "", env->v[i].name);
		put_quoted(f, env->v[i].value);
		fputc('\n', f);
	}
}

static void
dump_table(FILE *f, const struct key *table, const void *base, int indent)
{
	for (; table->name != NULL; table++) {
		fprintf(f, "%*s%s:", indent, "", table->name);
		if (table->block != NULL) {
			fputc('\n', f);
			dump_table(f, table->block, base, indent + 2);
		} else {
			/* Maps start on the next line (print_env, print_cache_hosts
			 * write their own " {}" when empty). */
			if (table->type->print != print_env &&
			    table->type->print != print_cache_hosts)
				fputc(' ', f);
			table->type->print(f, table, base, indent);
		}
	}
}

void
print_cache_hosts(FILE *f, const struct key *k, const void *base, int indent)
{
	const struct config *cfg = base;
	size_t i;

	if (cfg->cache.nhosts == 0) {
		fputs(" {}\n", f);
		return;
	}
	fputc('\n', f);
	for (i = 0; i < cfg->cache.nhosts; i++) {
		fprintf(f, "%*s", indent + 2, "");
		put_quoted(f, cfg->cache.hosts[i].host);
		fputs(":\n", f);
		dump_table(f, cache_host_keys, &cfg->cache.hosts[i], indent + 4);
	}
}

void
config_dump(const struct config *cfg, FILE *f)
{
	fputs("# the effective configuration (ssm-sign-proxy -T): includes resolved,\n"
	      "# ${VAR} substituted, every default written out\n",
	      f);
	dump_table(f, root_keys, cfg, 0);
}
