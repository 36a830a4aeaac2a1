/*
 * config.h: the daemon's configuration (/etc/ssm-sign-proxy.yaml) and its
 * command-line overrides. Every key is declared once in the table in
 * config.c (name, type, default, check, documentation); this struct is where
 * the values land. Durations are seconds (fractions allowed), sizes bytes.
 */
#ifndef SSP_CONFIG_H
#define SSP_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "kvlist.h"

/*
 * Where the file is read from without -c: $(sysconfdir)/ssm-sign-proxy.yaml,
 * that is /etc/ssm-sign-proxy.yaml for the Debian package (configure
 * --sysconfdir=/etc) and /usr/local/etc/ssm-sign-proxy.yaml for a plain
 * source build. A function so that every caller sees the daemon's value.
 */
const char *config_default_path(void);
#define CONFIG_DEFAULT_PATH (config_default_path())

struct config_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[80]; /* as written: "127.0.0.1:8000", "[::1]:8000", ":8000" */
	int dualstack; /* ":8000": [::] taking IPv4 too (IPV6_V6ONLY off), as Go
	                * does; 0.0.0.0 on a host without IPv6 */
};

struct config_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int prefix;
};

enum { CONFIG_FORMAT_TEXT = 0, CONFIG_FORMAT_JSON = 1 };

/* admin.metrics_hosts: at most this many hosts get a label of their own. */
#define CONFIG_METRICS_HOSTS_MAX 32

struct config_cache_host {
	char *host;     /* lower case, "host" or "host:port" */
	double ttl;     /* resolved: a host given as a mapping without ttl gets cache.ttl */
	int private_ok; /* store Cache-Control: private */
	int cookies_ok; /* store responses with Set-Cookie */
};

/* invoke_mode: how the function is called (doc/configuration.md). */
enum config_invoke_mode {
	CONFIG_INVOKE_BUFFERED = 0, /* Invoke: the whole answer at once (6 MB) */
	CONFIG_INVOKE_STREAM,       /* InvokeWithResponseStream: passed on as it comes */
};

struct config {
	char *path; /* file it came from, or NULL */

	char *function_name;   /* name, name:alias, partial or full ARN; NULL = unconfigured */
	char *function_region; /* the region of a full ARN (it wins over region); else NULL */
	char *region;          /* the region key; NULL when absent */
	char *egress_proxy;    /* proxy for the daemon's own AWS calls; NULL = none */

	struct config_listen *listen;
	size_t nlisten;
	struct config_cidr *allow;
	size_t nallow;

	int workers;      /* resolved: "auto" becomes the CPU count */
	char *user;       /* run workers as; NULL = stay as started */
	char *pid_file;   /* NULL = none */
	int log_level;    /* enum log_level */
	char *log;        /* the daemon's own log: "stderr", "syslog" or a file path */
	int log_format;   /* CONFIG_FORMAT_TEXT or CONFIG_FORMAT_JSON */
	char *access_log; /* path, "syslog", "-" (stderr, the default) or "off" */
	int access_log_format;
	int forwarded_for;
	int invoke_mode; /* enum config_invoke_mode */

	struct {
		double client_header;
		double client_body;
		double keepalive;
		double invoke;   /* whole budget for one request, retries included */
		double connect;  /* TCP/TLS connect to the Lambda endpoint */
		double shutdown; /* grace for in-flight requests on stop/reload */
		double send;     /* a client reading a response, between two writes */
		double linger;   /* reading and dropping after a final answer */
		double start;    /* new workers must be ready within this (reload, upgrade) */
		/* invoke_mode stream: silence that cuts a started stream */
		double stream_idle;
	} timeouts;

	struct {
		size_t max_body;
		size_t max_header;
		int max_headers;     /* header fields per request */
		int max_connections; /* per worker */
		int max_inflight;    /* invocations per worker */
		/* invoke_mode stream: what waits for a slow client */
		size_t stream_buffer;
	} limits;

	struct {
		int attempts;   /* invoke attempts in all, first included */
		double base;    /* first back-off, seconds */
		double cap;     /* largest back-off, seconds */
		double respawn; /* first worker respawn back-off, seconds */
		double respawn_cap;
	} retry;

	struct {
		double refresh_ahead; /* refresh temporary credentials this long before expiry */
		double retry;         /* first back-off after a failed refresh */
		double retry_cap;
		double timeout; /* per credential HTTP call */
		int imds_attempts;
	} credentials;

	struct {
		double ttl;
		double negative_ttl;
		double lock_timeout;
		size_t max_size;
		struct config_cache_host *hosts;
		size_t nhosts;
	} cache;

	struct {
		char *command;             /* NULL = invoke AWS Lambda */
		struct kvlist environment; /* in file order, names unique */
		int concurrency;
		double timeout;
	} local_function;

	struct {
		struct config_listen *listen; /* NULL = no admin listener */
		char *socket;                 /* or a unix socket path; NULL = none */
		int socket_mode;              /* its permission bits */
		struct config_cidr *allow;
		size_t nallow;
		char **metrics_hosts; /* host names allowed as metric labels */
		size_t nmetrics_hosts;
		double ready_margin;   /* credentials valid at least this long to be ready */
		int ready_invocations; /* the last N invocations ... */
		double ready_window;   /* ... within this many seconds, all failed: not ready */
	} admin;

	/*
	 * Things worth telling the operator that do not stop the daemon (for
	 * example function_name still the placeholder): -t prints them, the
	 * daemon logs them at start. Owned by the config.
	 */
	char **warnings;
	size_t nwarnings;
};

/* Overrides from the command line (the original Go tool's flags). */
struct config_cli {
	const char *config_path;   /* -c; NULL = config_default_path() */
	int config_path_given;     /* -c was used: a missing file is always an error */
	const char *function_name; /* -function-name */
	const char *address;       /* -address / -addr */
	int test_only;             /* -t */
	int dump;                  /* -T: print the effective configuration */
};

/*
 * Parse argv. Returns 0 to go on, 1 when it printed help or the version and
 * the program should exit 0, -1 on a usage error (message in err).
 */
int config_parse_args(int argc, char **argv, struct config_cli *, char *err, size_t errlen);
void config_usage(FILE *);

/*
 * Load the file named by cli (or the default), apply cli overrides and
 * validate. Returns NULL with err set to "FILE:LINE: KEY: message" on error
 * (KEY a dotted path such as timeouts.invoke; "command line: -address: ..."
 * for a bad flag value). Never prints, never exits. The caller owns the
 * result and frees it with config_free().
 */
struct config *config_load(const struct config_cli *, char *err, size_t errlen);
/*
 * The same from a string (tests, and anything that has the text already);
 * name stands for the file name in messages. cli may be NULL.
 */
struct config *config_load_string(const char *text, const char *name, const struct config_cli *,
                                  char *err, size_t errlen);
void config_free(struct config *);
/*
 * Write the effective configuration as YAML: every key, defaults included,
 * in table order, in a form config_load() reads back to the same
 * configuration (and that this function prints identically again).
 */
void config_dump(const struct config *, FILE *);
/* Does the admin allow list admit addr? Unix-socket peers always pass. */
int config_admin_allowed(const struct config *, const struct sockaddr *addr);
/*
 * Does addr (a client address) match the allow list? A v4-mapped IPv6
 * address (::ffff:a.b.c.d) is matched as the IPv4 address it carries.
 */
int config_allowed(const struct config *, const struct sockaddr *addr);
/* Is this a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
int config_is_loopback(const struct sockaddr *addr);

/*
 * The key table, for documentation and its tests: fn is called for every key
 * in table order with its dotted name, its type, its default as written in
 * the file (NULL when it has none) and its one-line description.
 */
typedef void (*config_key_cb)(const char *name, const char *type, const char *def, const char *doc,
                              void *arg);
void config_keys(config_key_cb fn, void *arg);

#endif
