/*
 * test_config.c: the configuration: defaults, every value type, every kind
 * of error with its FILE:LINE: KEY prefix, command-line overrides, the allow
 * list, and that the shipped file and the man page cover every key.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static char err[1024];

static struct config *
load(const char *text)
{
	err[0] = '\0';
	return config_load_string(text, "t.yaml", NULL, err, sizeof err);
}

/* The text must fail with an error starting with want. */
static void
fails(const char *text, const char *want, const char *what)
{
	struct config *cfg = load(text);

	if (!tap_ok(cfg == NULL && strncmp(err, want, strlen(want)) == 0, "error: %s", what))
		tap_diag("got \"%s\", want a prefix \"%s\"", cfg != NULL ? "(loaded)" : err, want);
	config_free(cfg);
}

/* The error must also contain sub (the helpful part of the message). */
static void
fails_with(const char *text, const char *want, const char *sub, const char *what)
{
	struct config *cfg = load(text);

	if (!tap_ok(cfg == NULL && strncmp(err, want, strlen(want)) == 0 &&
	                strstr(err, sub) != NULL,
	            "error: %s", what))
		tap_diag("got \"%s\", want \"%s...%s...\"", cfg != NULL ? "(loaded)" : err, want,
		         sub);
	config_free(cfg);
}

static int
near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}

static const char *
addr_text(const struct config_listen *l, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (l->addr.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(buf, len, "%s:%d", host, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		snprintf(buf, len, "[%s]:%d", host, ntohs(sin6->sin6_port));
	}
	return buf;
}

static int
allowed(const struct config *cfg, const char *ip)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return config_allowed(cfg, (struct sockaddr *)&sin);
	}
	if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		return config_allowed(cfg, (struct sockaddr *)&sin6);
	}
	return -1;
}

static void
test_defaults(void)
{
	struct config *cfg = load("");
	char buf[80];

	if (!tap_ok(cfg != NULL, "an empty file loads (all defaults)")) {
		tap_diag("%s", err);
		return;
	}
	tap_ok(cfg->function_name == NULL && cfg->region == NULL && cfg->egress_proxy == NULL &&
	           cfg->user == NULL && cfg->pid_file == NULL,
	       "default: optional strings unset");
	tap_ok(cfg->nlisten == 1 &&
	           strcmp(addr_text(&cfg->listen[0], buf, sizeof buf), "127.0.0.1:8000") == 0 &&
	           strcmp(cfg->listen[0].text, "127.0.0.1:8000") == 0,
	       "default: listen 127.0.0.1:8000");
	tap_ok(cfg->nallow == 2 && cfg->allow[0].family == AF_INET && cfg->allow[0].prefix == 8 &&
	           cfg->allow[1].family == AF_INET6 && cfg->allow[1].prefix == 128,
	       "default: allow 127.0.0.0/8 and ::1");
	tap_ok(cfg->workers == 2, "default: workers 2");
	tap_ok(cfg->log_level == 2, "default: log_level info");
	tap_is_str(cfg->access_log, "-", "default: access_log - (stderr)");
	tap_ok(cfg->forwarded_for == 1, "default: forwarded_for true");
	tap_ok(near(cfg->timeouts.client_header, 10) && near(cfg->timeouts.client_body, 30) &&
	           near(cfg->timeouts.keepalive, 60) && near(cfg->timeouts.invoke, 30) &&
	           near(cfg->timeouts.connect, 5) && near(cfg->timeouts.shutdown, 30),
	       "default: timeouts 10/30/60/30/5/30");
	tap_ok(cfg->limits.max_body == 6291456 && cfg->limits.max_header == 65536 &&
	           cfg->limits.max_connections == 1024 && cfg->limits.max_inflight == 256,
	       "default: limits 6M/64K/1024/256");
	tap_ok(cfg->retry.attempts == 3 && near(cfg->retry.base, 0.1) && near(cfg->retry.cap, 2) &&
	           near(cfg->retry.respawn, 0.5) && near(cfg->retry.respawn_cap, 30),
	       "default: retry 3/0.1/2/0.5/30");
	tap_ok(near(cfg->credentials.refresh_ahead, 300) && near(cfg->credentials.retry, 1) &&
	           near(cfg->credentials.retry_cap, 60) && near(cfg->credentials.timeout, 1) &&
	           cfg->credentials.imds_attempts == 2,
	       "default: credentials 300/1/60/1/2");
	tap_ok(near(cfg->cache.ttl, 0) && near(cfg->cache.negative_ttl, 10) &&
	           near(cfg->cache.lock_timeout, 5) && cfg->cache.max_size == 64 * 1024 * 1024 &&
	           cfg->cache.nhosts == 0,
	       "default: cache 0/10/5/64M, no hosts");
	tap_ok(cfg->local_function.command == NULL && cfg->local_function.environment.n == 0 &&
	           cfg->local_function.concurrency == 2 && near(cfg->local_function.timeout, 30),
	       "default: local_function off, concurrency 2, timeout 30");
	tap_ok(cfg->nwarnings == 1 && strstr(cfg->warnings[0], "function_name") != NULL,
	       "no function_name: a warning naming the key");
	config_free(cfg);

	cfg = load("# only a comment\n");
	tap_ok(cfg != NULL && cfg->workers == 2, "a file of comments loads");
	config_free(cfg);
	cfg = load("timeouts:\nlimits:\n");
	tap_ok(cfg != NULL && near(cfg->timeouts.invoke, 30), "an empty block keeps its defaults");
	config_free(cfg);
}

static void
test_values(void)
{
	struct config *cfg;
	char buf[80];

	cfg = load("function_name: my-func\n"
	           "region: eu-west-1\n"
	           "workers: 4\n"
	           "user: root\n"
	           "pid_file: /run/ssp.pid\n"
	           "log_level: debug\n"
	           "access_log: /var/log/ssp/access.log\n"
	           "forwarded_for: no\n"
	           "egress_proxy: http://proxy.example.com:3128\n"
	           "timeouts:\n"
	           "  client_header: 1.5\n"
	           "  client_body: 500ms\n"
	           "  keepalive: 0\n"
	           "  invoke: 2m\n"
	           "  connect: 2s\n"
	           "  shutdown: 1h\n"
	           "limits:\n"
	           "  max_body: 1048576\n"
	           "  max_header: 8K\n"
	           "  max_connections: 10\n"
	           "  max_inflight: 5\n"
	           "retry: {attempts: 1, base: 10ms, cap: 20ms, respawn: 0.05, respawn_cap: 1}\n"
	           "credentials: {refresh_ahead: 0, retry: 0.2, retry_cap: 0.4, timeout: 0.5,"
	           " imds_attempts: 1}\n");
	if (!tap_ok(cfg != NULL, "a file setting every scalar key loads")) {
		tap_diag("%s", err);
		return;
	}
	tap_is_str(cfg->function_name, "my-func", "function_name kept");
	tap_ok(cfg->function_region == NULL, "no region from a bare name");
	tap_is_str(cfg->region, "eu-west-1", "region kept");
	tap_ok(cfg->workers == 4, "workers 4");
	tap_is_str(cfg->user, "root", "user kept");
	tap_is_str(cfg->pid_file, "/run/ssp.pid", "pid_file kept");
	tap_ok(cfg->log_level == 3, "log_level debug");
	tap_is_str(cfg->access_log, "/var/log/ssp/access.log", "access_log path kept");
	tap_ok(cfg->forwarded_for == 0, "forwarded_for: no is false");
	tap_is_str(cfg->egress_proxy, "http://proxy.example.com:3128", "egress_proxy kept");
	tap_ok(near(cfg->timeouts.client_header, 1.5), "duration: 1.5 is seconds");
	tap_ok(near(cfg->timeouts.client_body, 0.5), "duration: 500ms");
	tap_ok(near(cfg->timeouts.keepalive, 0), "duration: keepalive 0 allowed");
	tap_ok(near(cfg->timeouts.invoke, 120), "duration: 2m");
	tap_ok(near(cfg->timeouts.connect, 2), "duration: 2s");
	tap_ok(near(cfg->timeouts.shutdown, 3600), "duration: 1h");
	tap_ok(cfg->limits.max_body == 1048576, "size: plain bytes");
	tap_ok(cfg->limits.max_header == 8192, "size: 8K is 8192");
	tap_ok(cfg->limits.max_connections == 10 && cfg->limits.max_inflight == 5, "limits ints");
	tap_ok(cfg->retry.attempts == 1 && near(cfg->retry.base, 0.01) &&
	           near(cfg->retry.cap, 0.02) && near(cfg->retry.respawn, 0.05) &&
	           near(cfg->retry.respawn_cap, 1),
	       "retry block in flow style");
	tap_ok(near(cfg->credentials.refresh_ahead, 0) && near(cfg->credentials.retry, 0.2) &&
	           near(cfg->credentials.retry_cap, 0.4) && near(cfg->credentials.timeout, 0.5) &&
	           cfg->credentials.imds_attempts == 1,
	       "credentials block");
	tap_ok(cfg->nwarnings == 0, "a configured function: no warning");
	config_free(cfg);

	cfg = load("workers: auto\n");
	tap_ok(cfg != NULL && cfg->workers >= 1 &&
	           cfg->workers == (int)sysconf(_SC_NPROCESSORS_ONLN),
	       "workers: auto is the CPU count");
	config_free(cfg);

	cfg = load("forwarded_for: off\nlog_level: WARN\naccess_log: syslog\n");
	tap_ok(cfg != NULL && cfg->forwarded_for == 0 && cfg->log_level == 1 &&
	           strcmp(cfg->access_log, "syslog") == 0,
	       "bool off, log level case-insensitive, access_log syslog");
	config_free(cfg);
	cfg = load("forwarded_for: yes\naccess_log: off\n");
	tap_ok(cfg != NULL && cfg->forwarded_for == 1 && strcmp(cfg->access_log, "off") == 0,
	       "bool yes, access_log off");
	config_free(cfg);
	cfg = load("limits:\n  max_body: 2M\ncache:\n  max_size: 1G\n");
	tap_ok(cfg != NULL && cfg->limits.max_body == 2097152 &&
	           cfg->cache.max_size == 1073741824UL,
	       "size: M and G are powers of 1024");
	config_free(cfg);

	/* Addresses. */
	cfg = load("listen: :8000\nallow: 10.0.0.0/8\n");
	tap_ok(cfg != NULL && cfg->nlisten == 1 && cfg->listen[0].dualstack &&
	           strcmp(addr_text(&cfg->listen[0], buf, sizeof buf), "[::]:8000") == 0,
	       "listen :8000 is every interface, both families ([::], dual-stack)");
	config_free(cfg);
	cfg = load("listen: \"[::1]:8000\"\n");
	tap_ok(cfg != NULL && cfg->nlisten == 1 &&
	           strcmp(addr_text(&cfg->listen[0], buf, sizeof buf), "[::1]:8000") == 0,
	       "listen \"[::1]:8000\"");
	config_free(cfg);
	cfg = load("listen: [::1]:8000\n");
	tap_ok(cfg != NULL && cfg->nlisten == 1 &&
	           strcmp(addr_text(&cfg->listen[0], buf, sizeof buf), "[::1]:8000") == 0 &&
	           strcmp(cfg->listen[0].text, "[::1]:8000") == 0,
	       "listen [::1]:8000 unquoted (libyaml cannot parse it alone)");
	config_free(cfg);
	cfg = load("listen: localhost:9000\n");
	tap_ok(cfg != NULL &&
	           strcmp(addr_text(&cfg->listen[0], buf, sizeof buf), "127.0.0.1:9000") == 0,
	       "listen localhost:9000 is loopback");
	config_free(cfg);
	cfg = load("listen:\n  - 127.0.0.1:8000\n  - \"[::1]:8000\"\n");
	tap_ok(cfg != NULL && cfg->nlisten == 2, "listen as a list");
	config_free(cfg);
	cfg = load("allow: [127.0.0.0/8, ::1]\nlisten: [127.0.0.1:1, \"[::1]:2\"]\n");
	tap_ok(cfg != NULL && cfg->nallow == 2 && cfg->nlisten == 2,
	       "the issue's form: allow: [127.0.0.0/8, ::1] (libyaml needs help with ::1)");
	if (cfg == NULL)
		tap_diag("%s", err);
	config_free(cfg);

	/* Function names. */
	cfg =
	    load("function_name: arn:aws:lambda:ap-northeast-1:123456789012:function:Proxy:live\n");
	tap_ok(cfg != NULL && cfg->function_region != NULL &&
	           strcmp(cfg->function_region, "ap-northeast-1") == 0,
	       "full ARN: its region is kept");
	config_free(cfg);
	cfg = load("function_name: 123456789012:function:Proxy\n");
	tap_ok(cfg != NULL && cfg->function_name != NULL && cfg->function_region == NULL,
	       "partial ARN accepted");
	config_free(cfg);
	cfg = load("function_name: Proxy:$LATEST\n");
	tap_ok(cfg != NULL && cfg->function_name != NULL, "name:$LATEST accepted");
	config_free(cfg);
	cfg = load("function_name: ssm-sign-proxy-Proxy-XXXXXXXX\n");
	tap_ok(cfg != NULL && cfg->function_name == NULL && cfg->nwarnings == 1,
	       "the placeholder means not configured, with a warning");
	config_free(cfg);
	cfg = load("function_name: \"\"\n");
	tap_ok(cfg != NULL && cfg->function_name == NULL, "an empty function_name: not configured");
	config_free(cfg);
	cfg = load("local_function:\n  command: /bin/true\n");
	tap_ok(cfg != NULL && cfg->nwarnings == 0, "a local function needs no function_name");
	config_free(cfg);

	/* Cache and local function blocks. */
	cfg = load("cache:\n"
	           "  ttl: 30\n"
	           "  negative_ttl: 1\n"
	           "  lock_timeout: 0.5\n"
	           "  max_size: 1M\n"
	           "  hosts:\n"
	           "    API.GitHub.com: 60\n"
	           "    status.example.com: {ttl: 5, private: true, cookies: yes}\n"
	           "    other.example.com: {private: true}\n"
	           "local_function:\n"
	           "  command: /usr/lib/ssm-sign-proxy/bootstrap\n"
	           "  environment:\n"
	           "    SSM_SIGN_PROXY_PARAMETERS_FILE: /etc/ssm-sign-proxy/parameters.yaml\n"
	           "    NUMBER: 42\n"
	           "  concurrency: 4\n"
	           "  timeout: 3\n");
	if (tap_ok(cfg != NULL && cfg->cache.nhosts == 3, "cache and local_function blocks load")) {
		tap_ok(near(cfg->cache.ttl, 30) && near(cfg->cache.negative_ttl, 1) &&
		           near(cfg->cache.lock_timeout, 0.5) && cfg->cache.max_size == 1048576,
		       "cache scalars");
		tap_ok(strcmp(cfg->cache.hosts[0].host, "api.github.com") == 0 &&
		           near(cfg->cache.hosts[0].ttl, 60) && !cfg->cache.hosts[0].private_ok &&
		           !cfg->cache.hosts[0].cookies_ok,
		       "host: TTL short form, lower-cased");
		tap_ok(near(cfg->cache.hosts[1].ttl, 5) && cfg->cache.hosts[1].private_ok &&
		           cfg->cache.hosts[1].cookies_ok,
		       "host: {ttl, private, cookies}");
		tap_ok(near(cfg->cache.hosts[2].ttl, 30) && cfg->cache.hosts[2].private_ok,
		       "host mapping without ttl inherits cache.ttl");
		tap_is_str(cfg->local_function.command, "/usr/lib/ssm-sign-proxy/bootstrap",
		           "local_function.command");
		tap_ok(cfg->local_function.environment.n == 2 &&
		           strcmp(kvlist_get_exact(&cfg->local_function.environment, "NUMBER"),
		                  "42") == 0,
		       "local_function.environment in order, numbers as text");
		tap_ok(cfg->local_function.concurrency == 4 && near(cfg->local_function.timeout, 3),
		       "local_function.concurrency and timeout");
	} else
		tap_diag("%s", err);
	config_free(cfg);
}

static void
test_errors(void)
{
	fails("a: [1,\nb: 2\n", "t.yaml:3: YAML syntax:", "bad YAML reported with its line");
	fails("listen: 127.0.0.1:8000\n\tworkers: 2\n", "t.yaml:2: YAML", "a tab is bad YAML");
	fails("workers: 1\n---\nworkers: 2\n", "t.yaml:2: a second YAML document",
	      "a second document");
	fails("workers: 1\nregion: \xc3\x28\n", "t.yaml:2: YAML", "bad UTF-8 with its line");
	{
		/* libyaml is quadratic on deep flow nesting: refused up front. */
		static char deep[64 + 2 * 100000];
		size_t off = (size_t)snprintf(deep, sizeof deep, "workers: 1\nregion: ");

		memset(deep + off, '{', 100000);
		memset(deep + off + 100000, '}', 100000);
		deep[off + 200000] = '\0';
		fails(deep, "t.yaml:2: YAML: nested more than", "deep nesting refused");
		fails("# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
		      "workers: x\n",
		      "t.yaml:2: workers:", "brackets in comments do not count");
	}
	fails("- a\n- b\n", "t.yaml:1: expected a mapping", "the top is a list");
	fails("listen: 127.0.0.1:8000\nworker: 2\n", "t.yaml:2: worker: unknown key",
	      "unknown key named");
	fails_with("worker: 2\n", "t.yaml:1: worker: unknown key", "did you mean workers?",
	           "unknown key: a suggestion");
	fails("timeouts:\n  client_header: 1\n  invok: 3\n",
	      "t.yaml:3: timeouts.invok: unknown key", "unknown nested key with a dotted path");
	fails("cache:\n  hosts:\n    a.example: {ttl: 1, bogus: 2}\n",
	      "t.yaml:3: cache.hosts.a.example.bogus: unknown key", "unknown key in a cache host");
	fails("workers: 2\nworkers: 3\n", "t.yaml:2: workers: duplicate key", "duplicate key");
	fails_with("workers: [1]\n", "t.yaml:1: workers: expected an integer or auto", "a list",
	           "wrong type: a list for an int");
	fails("timeouts: 5\n", "t.yaml:1: timeouts: expected a mapping", "wrong type: a block");
	fails("forwarded_for: maybe\n", "t.yaml:1: forwarded_for: expected a boolean", "bad bool");
	fails("workers: 0\n", "t.yaml:1: workers: 0 is out of range", "workers 0");
	fails("workers: two\n", "t.yaml:1: workers: expected an integer", "workers not a number");
	fails("limits:\n  max_inflight: 1.5\n",
	      "t.yaml:2: limits.max_inflight: expected an integer", "int with a fraction");
	fails("timeouts:\n  invoke: 3x\n", "t.yaml:2: timeouts.invoke: expected a duration",
	      "bad duration unit");
	fails("timeouts:\n  invoke: -1\n", "t.yaml:2: timeouts.invoke:", "negative duration");
	fails("timeouts:\n  invoke: inf\n", "t.yaml:2: timeouts.invoke: expected a duration",
	      "inf is not a duration");
	fails("timeouts:\n  invoke: 0\n", "t.yaml:2: timeouts.invoke:", "zero invoke timeout");
	fails("timeouts:\n  invoke:\n", "t.yaml:2: timeouts.invoke: a value is required",
	      "a missing value");
	fails("limits:\n  max_body: 6X\n", "t.yaml:2: limits.max_body: expected a size",
	      "bad size suffix");
	fails("limits:\n  max_body: 99999999999999999999\n",
	      "t.yaml:2: limits.max_body:", "size overflow");
	fails("limits:\n  max_body: 2G\n", "t.yaml:2: limits.max_body:", "size out of range");
	fails("log_level: loud\n", "t.yaml:1: log_level: expected a log level", "bad log level");
	fails("access_log: logs/access.log\n", "t.yaml:1: access_log:", "relative access_log");
	fails("pid_file: run.pid\n", "t.yaml:1: pid_file:", "relative pid_file");
	fails("user: no-such-user-ssp\n", "t.yaml:1: user: no such user", "unknown user");
	fails("region: Europe\n", "t.yaml:1: region:", "bad region");
	fails("egress_proxy: ftp://x:21\n", "t.yaml:1: egress_proxy: unsupported scheme",
	      "bad egress_proxy scheme");
	fails("function_name: a/b\n", "t.yaml:1: function_name:", "bad function name");
	fails("function_name: arn:aws:s3:::bucket\n",
	      "t.yaml:1: function_name:", "not a Lambda ARN");
	fails("function_name: arn:aws:lambda:eu-west-1:12345:function:f\n",
	      "t.yaml:1: function_name:", "ARN with a short account");

	/* Addresses. */
	fails_with("listen: 127.0.0.1\n", "t.yaml:1: listen:", "missing port",
	           "listen without port");
	fails_with("listen: 127.0.0.1:0\n", "t.yaml:1: listen:", "1 to 65535", "port 0");
	fails_with("listen: 127.0.0.1:65536\n", "t.yaml:1: listen:", "1 to 65535", "port 65536");
	fails_with("listen: \"::1:8000\"\n", "t.yaml:1: listen:", "brackets",
	           "v6 without brackets");
	fails("listen: 999.1.1.1:80\n", "t.yaml:1: listen:", "bad IPv4 address");
	fails("listen: \"[::1:80\"\n", "t.yaml:1: listen:", "unclosed bracket");
	fails("listen:\n  - 127.0.0.1:1\n  - 127.0.0.1:x\n",
	      "t.yaml:3: listen:", "bad address in a list: the item's line");
	fails_with("listen: [127.0.0.1:1, 127.0.0.1:1]\n", "t.yaml:1: listen:", "twice",
	           "the same address twice");
	fails("listen: []\n", "t.yaml:1: listen:", "an empty listen list");
	fails_with("allow: [10.0.0.0/33]\n", "t.yaml:1: allow:", "prefix", "bad v4 prefix");
	fails_with("allow: [\"fe80::/129\"]\n", "t.yaml:1: allow:", "prefix", "bad v6 prefix");
	fails_with("allow: [10.0.0.1/8]\n", "t.yaml:1: allow:", "10.0.0.0/8", "host bits set");
	fails("allow: [banana]\n", "t.yaml:1: allow:", "not an address");
	fails("allow: []\n", "t.yaml:1: allow:", "an empty allow list");
	fails_with("listen: 0.0.0.0:8000\n", "t.yaml:1: listen:", "allow",
	           "non-loopback listen without allow");
	fails_with("workers: 2\nlisten: :8000\n", "t.yaml:2: listen: :8000", "allow",
	           ":8000 without allow");
	fails_with("listen: \"[::]:8000\"\n", "t.yaml:1: listen:", "allow", "[::] without allow");

	/* Cross-key checks. */
	fails_with("retry:\n  base: 5\n", "t.yaml:2: retry.base:", "retry.cap", "base above cap");
	fails_with("timeouts:\n  connect: 40\n", "t.yaml:2: timeouts.connect:", "timeouts.invoke",
	           "connect above invoke");

	/* Blocks. */
	fails("cache:\n  hosts: [a, b]\n", "t.yaml:2: cache.hosts: expected a mapping",
	      "hosts not a map");
	fails("cache:\n  hosts:\n    \"bad host\": 5\n",
	      "t.yaml:3: cache.hosts.bad host:", "bad host name");
	fails("cache:\n  hosts:\n    a.example: 5\n    A.example: 6\n",
	      "t.yaml:4: cache.hosts.a.example:", "a host twice (case-insensitively)");
	fails("cache:\n  hosts:\n    a.example: {ttl: soon}\n",
	      "t.yaml:3: cache.hosts.a.example.ttl:", "bad host ttl");
	fails("cache:\n  max_size: 1K\n", "t.yaml:2: cache.max_size:", "cache too small");
	fails("local_function:\n  environment:\n    1BAD: x\n",
	      "t.yaml:3: local_function.environment:", "bad environment name");
	fails("local_function:\n  environment:\n    A: [1]\n",
	      "t.yaml:3: local_function.environment:", "environment value not a string");
	fails("local_function:\n  concurrency: 0\n",
	      "t.yaml:2: local_function.concurrency:", "concurrency 0");
}

/* Many keys before allow: the bookkeeping of keys seen has no fixed bound. */
static void
test_many_hosts(void)
{
	static char text[400 * 64];
	struct config *cfg;
	size_t off = 0;
	int i;

	off += (size_t)snprintf(text + off, sizeof text - off, "cache:\n  hosts:\n");
	for (i = 0; i < 400; i++)
		off += (size_t)snprintf(text + off, sizeof text - off,
		                        "    h%d.example.com: {ttl: %d, private: true}\n", i, i);
	snprintf(text + off, sizeof text - off, "listen: :8000\nallow: 10.0.0.0/8\n");
	cfg = load(text);
	tap_ok(cfg != NULL && cfg->cache.nhosts == 400 && near(cfg->cache.hosts[399].ttl, 399),
	       "400 cache hosts, then allow: still seen");
	if (cfg == NULL)
		tap_diag("%s", err);
	config_free(cfg);
}

static void
test_allow(void)
{
	struct config *cfg;

	cfg = load("");
	tap_ok(allowed(cfg, "127.0.0.1") == 1 && allowed(cfg, "127.9.8.7") == 1 &&
	           allowed(cfg, "::1") == 1,
	       "default allow: loopback v4 and v6");
	tap_ok(allowed(cfg, "10.0.0.1") == 0 && allowed(cfg, "::2") == 0,
	       "default allow: others refused");
	tap_ok(allowed(cfg, "::ffff:127.0.0.1") == 1 && allowed(cfg, "::ffff:10.0.0.1") == 0,
	       "default allow: v4-mapped loopback matches 127.0.0.0/8");
	config_free(cfg);

	cfg = load("listen: :8000\n"
	           "allow:\n  - 10.1.0.0/16\n  - 192.0.2.7\n  - 2001:db8::/32\n"
	           "  - ::ffff:198.51.100.0/120\n");
	if (!tap_ok(cfg != NULL, "non-loopback listen with an allow list loads")) {
		tap_diag("%s", err);
		return;
	}
	tap_ok(allowed(cfg, "10.1.2.3") == 1 && allowed(cfg, "10.2.0.1") == 0, "v4 CIDR /16");
	tap_ok(allowed(cfg, "192.0.2.7") == 1 && allowed(cfg, "192.0.2.8") == 0,
	       "a bare v4 address is /32");
	tap_ok(allowed(cfg, "2001:db8:1::5") == 1 && allowed(cfg, "2001:db9::1") == 0,
	       "v6 CIDR /32");
	tap_ok(allowed(cfg, "::ffff:10.1.200.1") == 1 && allowed(cfg, "::ffff:10.3.0.1") == 0,
	       "v4-mapped client matches a v4 CIDR");
	tap_ok(allowed(cfg, "198.51.100.9") == 1, "a v4-mapped CIDR matches plain v4 clients");
	tap_ok(allowed(cfg, "127.0.0.1") == 0, "an explicit allow list replaces the default");
	config_free(cfg);

	cfg = load("allow: 0.0.0.0/0\n");
	tap_ok(cfg != NULL && allowed(cfg, "203.0.113.1") == 1 && allowed(cfg, "::1") == 0,
	       "0.0.0.0/0 is every v4 client, no v6 one");
	config_free(cfg);
}

static void
test_cli(void)
{
	struct config_cli cli;
	struct config *cfg;
	char buf[80];
	char *argv1[] = {"ssp", "-c",       "/x.yaml",     "-t", "-function-name",
	                 "f1",  "-address", "127.0.0.1:1", NULL};
	char *argv2[] = {"ssp", "--function-name=f2", "--addr", "[::1]:2", "-c=/y.yaml", NULL};
	char *argv3[] = {"ssp", "-function-name=f3", "--address=:3", "-c/z.yaml", NULL};
	char *argv4[] = {"ssp", "-bogus", NULL};
	char *argv5[] = {"ssp", "-address", NULL};
	char *argv6[] = {"ssp", "extra", NULL};
	char *argv7[] = {"ssp", "-t=1", NULL};
	char *argv8[] = {"ssp", "-addr=127.0.0.1:4", NULL};

	tap_ok(config_parse_args(8, argv1, &cli, err, sizeof err) == 0 && cli.test_only &&
	           cli.config_path_given && strcmp(cli.config_path, "/x.yaml") == 0 &&
	           strcmp(cli.function_name, "f1") == 0 && strcmp(cli.address, "127.0.0.1:1") == 0,
	       "args: -c FILE -t -function-name NAME -address ADDR");
	tap_ok(config_parse_args(5, argv2, &cli, err, sizeof err) == 0 && !cli.test_only &&
	           strcmp(cli.function_name, "f2") == 0 && strcmp(cli.address, "[::1]:2") == 0 &&
	           strcmp(cli.config_path, "/y.yaml") == 0,
	       "args: --flag=value, --addr value, -c=FILE");
	tap_ok(config_parse_args(4, argv3, &cli, err, sizeof err) == 0 &&
	           strcmp(cli.function_name, "f3") == 0 && strcmp(cli.address, ":3") == 0 &&
	           strcmp(cli.config_path, "/z.yaml") == 0,
	       "args: -flag=value, -cFILE");
	tap_ok(config_parse_args(2, argv4, &cli, err, sizeof err) == -1 &&
	           strstr(err, "-bogus") != NULL,
	       "args: unknown flag named");
	tap_ok(config_parse_args(2, argv5, &cli, err, sizeof err) == -1 &&
	           strstr(err, "address") != NULL,
	       "args: a flag without its value");
	tap_ok(config_parse_args(2, argv6, &cli, err, sizeof err) == -1, "args: a stray argument");
	tap_ok(config_parse_args(2, argv7, &cli, err, sizeof err) == -1, "args: -t takes no value");
	tap_ok(config_parse_args(2, argv8, &cli, err, sizeof err) == 0 &&
	           strcmp(cli.address, "127.0.0.1:4") == 0,
	       "args: -addr=ADDR");

	/* Overrides. */
	memset(&cli, 0, sizeof cli);
	cli.function_name = "cli-func";
	cli.address = "127.0.0.2:9999";
	cfg = config_load_string("function_name: file-func\nlisten: [127.0.0.1:1, 127.0.0.1:2]\n",
	                         "t.yaml", &cli, err, sizeof err);
	tap_ok(cfg != NULL && strcmp(cfg->function_name, "cli-func") == 0 && cfg->nlisten == 1 &&
	           strcmp(addr_text(&cfg->listen[0], buf, sizeof buf), "127.0.0.2:9999") == 0,
	       "command line overrides function_name and listen");
	config_free(cfg);

	memset(&cli, 0, sizeof cli);
	cli.address = ":8000";
	cfg = config_load_string("", "t.yaml", &cli, err, sizeof err);
	tap_ok(cfg == NULL && strncmp(err, "command line: -address:", 23) == 0 &&
	           strstr(err, "allow") != NULL,
	       "-address=:8000 without allow: error naming -address");
	config_free(cfg);
	cfg = config_load_string("allow: [10.0.0.0/8]\n", "t.yaml", &cli, err, sizeof err);
	tap_ok(cfg != NULL && cfg->listen[0].addr.ss_family == AF_INET6 && cfg->listen[0].dualstack,
	       "-address=:8000 with allow: dual-stack, like Go");
	config_free(cfg);
	cli.address = "nonsense";
	cfg = config_load_string("", "t.yaml", &cli, err, sizeof err);
	tap_ok(cfg == NULL && strncmp(err, "command line: -address: \"nonsense\"", 34) == 0,
	       "bad -address: error naming the flag");
	config_free(cfg);
	memset(&cli, 0, sizeof cli);
	cli.function_name = "bad/name";
	cfg = config_load_string("", "t.yaml", &cli, err, sizeof err);
	tap_ok(cfg == NULL && strncmp(err, "command line: -function-name:", 29) == 0,
	       "bad -function-name: error naming the flag");
	config_free(cfg);

	/* A missing file. */
	memset(&cli, 0, sizeof cli);
	cli.config_path = "/nonexistent/ssm-sign-proxy.yaml";
	cli.function_name = "f";
	cfg = config_load(&cli, err, sizeof err);
	tap_ok(cfg != NULL && cfg->path == NULL && strcmp(cfg->function_name, "f") == 0,
	       "missing default file with -function-name: defaults apply");
	config_free(cfg);
	cli.config_path_given = 1;
	cfg = config_load(&cli, err, sizeof err);
	tap_ok(cfg == NULL && strstr(err, "/nonexistent/ssm-sign-proxy.yaml") != NULL,
	       "missing file given with -c: error naming it");
	config_free(cfg);
	cli.config_path_given = 0;
	cli.function_name = NULL;
	cfg = config_load(&cli, err, sizeof err);
	tap_ok(cfg == NULL && strstr(err, "/nonexistent/ssm-sign-proxy.yaml") != NULL,
	       "missing default file without flags: error naming it");
	config_free(cfg);
}

/* Read a file of the source tree, or NULL. */
static char *
slurp(const char *rel)
{
	const char *src = getenv("SSP_SRCDIR");
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof path, "%s/%s", src != NULL ? src : "..", rel);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

struct doc_check {
	const char *text;
	int missing;
};

/* The shipped file shows every key commented out with its default: "#name: default". */
static void
check_shipped(const char *name, const char *type, const char *def, const char *doc, void *arg)
{
	struct doc_check *dc = arg;
	const char *leaf = strrchr(name, '.') != NULL ? strrchr(name, '.') + 1 : name;
	char want[200];

	if (def == NULL || strcmp(name, "allow") == 0)
		snprintf(want, sizeof want, "#%s:", leaf);
	else
		snprintf(want, sizeof want, "#%s: %s\n", leaf, def);
	if (strcmp(name, "function_name") == 0 || strcmp(name, "listen") == 0)
		snprintf(want, sizeof want, "\n%s: ", leaf);
	if (strstr(dc->text, want) == NULL) {
		tap_diag("conf/ssm-sign-proxy.yaml lacks \"%s\"", want);
		dc->missing++;
	}
}

/* configuration.md's table has a row for every key. */
static void
check_md(const char *name, const char *type, const char *def, const char *doc, void *arg)
{
	struct doc_check *dc = arg;
	char want[200];

	snprintf(want, sizeof want, "\n| `%s` |", name);
	if (strstr(dc->text, want) == NULL) {
		tap_diag("doc/configuration.md lacks a row \"%s\"", want + 1);
		dc->missing++;
	}
}

/* The man page has an entry for every key, with its dotted name. */
static void
check_man(const char *name, const char *type, const char *def, const char *doc, void *arg)
{
	struct doc_check *dc = arg;
	char want[200];

	snprintf(want, sizeof want, "\n.B %s\n", name);
	if (strstr(dc->text, want) == NULL) {
		tap_diag("doc/ssm-sign-proxy.yaml.5 lacks an entry \".B %s\"", name);
		dc->missing++;
	}
}

static void
test_shipped(void)
{
	struct config_cli cli;
	struct config *cfg;
	struct doc_check dc;
	const char *src = getenv("SSP_SRCDIR");
	char path[1024];

	snprintf(path, sizeof path, "%s/conf/ssm-sign-proxy.yaml", src != NULL ? src : "..");
	memset(&cli, 0, sizeof cli);
	cli.config_path = path;
	cli.config_path_given = 1;
	cfg = config_load(&cli, err, sizeof err);
	if (!tap_ok(cfg != NULL, "the shipped conf/ssm-sign-proxy.yaml loads"))
		tap_diag("%s", err);
	tap_ok(cfg != NULL && cfg->function_name == NULL && cfg->nwarnings == 1 &&
	           strcmp(cfg->listen[0].text, "127.0.0.1:8000") == 0,
	       "shipped file: placeholder function (warning), listen 127.0.0.1:8000");
	config_free(cfg);

	dc.text = slurp("conf/ssm-sign-proxy.yaml");
	dc.missing = 0;
	if (dc.text != NULL)
		config_keys(check_shipped, &dc);
	tap_ok(dc.text != NULL && dc.missing == 0, "shipped file shows every key with its default");
	free((char *)dc.text);

	dc.text = slurp("doc/ssm-sign-proxy.yaml.5");
	dc.missing = 0;
	if (dc.text != NULL)
		config_keys(check_man, &dc);
	tap_ok(dc.text != NULL && dc.missing == 0, "ssm-sign-proxy.yaml(5) documents every key");
	free((char *)dc.text);

	dc.text = slurp("doc/configuration.md");
	dc.missing = 0;
	if (dc.text != NULL)
		config_keys(check_md, &dc);
	tap_ok(dc.text != NULL && dc.missing == 0, "doc/configuration.md lists every key");
	free((char *)dc.text);
}

int
main(void)
{
	test_defaults();
	test_values();
	test_errors();
	test_many_hosts();
	test_allow();
	test_cli();
	test_shipped();
	return tap_done();
}
