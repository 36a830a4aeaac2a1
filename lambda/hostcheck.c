/*
 * hostcheck.c: Host header validation.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "hostcheck.h"

static int
hostcheck_all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

/* Dotted-quad IPv4 without leading zeros (which some parsers read as octal). */
static int
hostcheck_ipv4(const char *s)
{
	int parts = 0, v;
	const char *p = s, *dot;
	size_t n, i;

	for (;;) {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n > 3 || !hostcheck_all_digits(p, n) || (n > 1 && p[0] == '0'))
			return 0;
		for (i = 0, v = 0; i < n; i++)
			v = v * 10 + (p[i] - '0');
		if (v > 255)
			return 0;
		parts++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return parts == 4;
}

static int
hostcheck_dns(const char *s)
{
	const char *p = s, *dot, *last = s;
	size_t n, i;

	if (strlen(s) > 253)
		return 0;
	for (;;) {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
			return 0;
		for (i = 0; i < n; i++)
			if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) ||
			      p[i] == '-'))
				return 0;
		last = p;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	/* An all-numeric last label is an address, never a top-level domain. */
	if (hostcheck_all_digits(last, strlen(last)))
		return hostcheck_ipv4(s);
	return 1;
}

int
hostcheck_parse(const char *value, struct host_target *t, char *err, size_t errlen)
{
	const char *colon;
	size_t hlen, i;
	long port = 443;

	memset(t, 0, sizeof *t);
	if (value == NULL || *value == '\0') {
		snprintf(err, errlen, "missing Host header");
		return -1;
	}
	if (value[0] == '[') {
		snprintf(err, errlen, "IPv6 literals are not supported as Host");
		return -1;
	}
	colon = strchr(value, ':');
	hlen = colon != NULL ? (size_t)(colon - value) : strlen(value);
	if (hlen == 0 || hlen >= sizeof t->host)
		goto bad;
	for (i = 0; i < hlen; i++)
		t->host[i] = (char)tolower((unsigned char)value[i]);
	t->host[hlen] = '\0';
	if (colon != NULL) {
		const char *p = colon + 1;
		size_t n = strlen(p);

		if (n == 0 || n > 5 || !hostcheck_all_digits(p, n) || p[0] == '0')
			goto bad;
		port = 0;
		for (i = 0; i < n; i++)
			port = port * 10 + (p[i] - '0');
		if (port < 1 || port > 65535)
			goto bad;
	}
	if (!hostcheck_dns(t->host))
		goto bad;
	if (port == 80 || port == 443) {
		t->port = 443;
		snprintf(t->key, sizeof t->key, "%s", t->host);
	} else {
		t->port = (int)port;
		snprintf(t->key, sizeof t->key, "%s_%ld", t->host, port);
	}
	return 0;
bad:
	snprintf(err, errlen,
	         "invalid Host header: a DNS name or an IPv4 address, with an "
	         "optional port, is required");
	return -1;
}
