/*
 * config_addr.c: listen addresses (HOST:PORT, [V6]:PORT, unix sockets) and
 * the allow list (addresses and CIDR blocks), parsed for the key tables and
 * matched against clients at accept.
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

struct listen_list {
	struct config_listen *v;
	size_t n;
};

int
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
		/* Every interface, both families, like Go's ":8000". */
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)port);
		l->addrlen = sizeof *sin6;
		l->dualstack = 1;
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
	return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
	       a->dualstack == b->dualstack;
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

int
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

int
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

/*
 * admin.listen: off (empty), a loopback HOST:PORT, or the absolute path of
 * a unix socket. The admin listener tells anyone who reaches it how the
 * fleet's tokens are used, so it never listens beyond loopback.
 */
int
set_admin_listen(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                 yaml_node_t *node, const char *text)
{
	struct config *cfg = base;
	struct config_listen l;
	const char *v, *why;
	char buf[300];

	if ((v = scalar_text(ld, k, node, text)) == NULL)
		return -1;
	free(cfg->admin.listen);
	cfg->admin.listen = NULL;
	free(cfg->admin.socket);
	cfg->admin.socket = NULL;
	if (*v == '\0' || strcmp(v, "off") == 0)
		return 0;
	if (*v == '/') {
		if (strlen(v) >= 108)
			return load_error(ld, "\"%s\": too long for a unix socket path", v);
		cfg->admin.socket = xstrdup(v);
		return 0;
	}
	if ((why = listen_parse(v, &l, buf, sizeof buf)) != NULL)
		return load_error(ld, "\"%s\": %s", v, why);
	if (!config_is_loopback((struct sockaddr *)&l.addr))
		return load_error(ld,
		                  "\"%s\" is not a loopback address: the admin listener only "
		                  "listens on loopback or a unix socket",
		                  v);
	cfg->admin.listen = xmalloc(sizeof *cfg->admin.listen);
	*cfg->admin.listen = l;
	return 0;
}

int
set_admin_allow(struct load *ld, const struct key *k, void *base, yaml_document_t *doc,
                yaml_node_t *node, const char *text)
{
	struct config *cfg = base;
	struct cidr_list cl = {NULL, 0};

	if (each_item(ld, k, doc, node, text, cidr_item, &cl) == -1) {
		free(cl.v);
		return -1;
	}
	if (cl.n == 0)
		return load_error(ld, "an empty list would refuse every client");
	free(cfg->admin.allow);
	cfg->admin.allow = cl.v;
	cfg->admin.nallow = cl.n;
	return 0;
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

static int
acl_match(const struct config_cidr *allow, size_t nallow, const struct sockaddr *addr)
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
	for (i = 0; i < nallow; i++)
		if (allow[i].family == family && prefix_match(a, allow[i].addr, allow[i].prefix))
			return 1;
	return 0;
}

int
config_allowed(const struct config *cfg, const struct sockaddr *addr)
{
	return acl_match(cfg->allow, cfg->nallow, addr);
}

int
config_admin_allowed(const struct config *cfg, const struct sockaddr *addr)
{
	if (addr->sa_family == AF_UNIX)
		return 1; /* the socket's mode is the access control */
	return acl_match(cfg->admin.allow, cfg->admin.nallow, addr);
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
