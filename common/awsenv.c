/*
 * awsenv.c: where AWS lives, resolved from the environment the way the AWS
 * SDKs do it (endpoint overrides, CA bundle, region, instance metadata), and
 * the libcurl defaults every AWS call here uses.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "awsenv.h"
#include "clock.h"
#include "xmalloc.h"

/* Seconds the result of probing the known CA bundle locations is kept. */
#define AWSENV_CA_PROBE_TTL 60.0

/* getenv() that treats an empty variable as unset, as the SDKs do. */
static const char *
awsenv_get(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static char *
awsenv_strip_slash(char *url)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
	return url;
}

char *
awsenv_endpoint(const char *service, const char *region)
{
	char *var, *p, *url;
	const char *v;

	/* AWS_ENDPOINT_URL_<SERVICE ID>: upper case, '-' and ' ' as '_'. */
	xasprintf(&var, "AWS_ENDPOINT_URL_%s", service);
	for (p = var; *p != '\0'; p++) {
		if (*p == '-' || *p == ' ')
			*p = '_';
		else
			*p = (char)toupper((unsigned char)*p);
	}
	v = awsenv_get(var);
	free(var);
	if (v == NULL)
		v = awsenv_get("AWS_ENDPOINT_URL");
	if (v != NULL)
		return awsenv_strip_slash(xstrdup(v));
	xasprintf(&url, "https://%s.%s.amazonaws.com", service,
	          region != NULL && *region != '\0' ? region : "us-east-1");
	return url;
}

const char *
awsenv_ca_bundle(void)
{
	/* Amazon Linux, Debian/Ubuntu, SUSE, Alpine/macOS-style. */
	static const char *const known[] = {
	    "/etc/pki/tls/certs/ca-bundle.crt",
	    "/etc/ssl/certs/ca-certificates.crt",
	    "/etc/ssl/ca-bundle.pem",
	    "/etc/ssl/cert.pem",
	};
	/* The probe of the known locations is remembered for a while: the
	 * daemon sets up a curl handle per invocation, and two access() calls
	 * each time showed in its profile. A bundle installed later is still
	 * found within a minute. */
	static const char *probed;
	static double probed_at = -1;
	/* The library (lib/) calls this from many threads. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	const char *v, *found;
	double now;
	size_t i;

	/* An explicit setting wins even when the file is missing: curl then
	 * fails loudly instead of trusting a bundle the operator did not pick. */
	if ((v = awsenv_get("AWS_CA_BUNDLE")) != NULL)
		return v;
	if ((v = awsenv_get("SSL_CERT_FILE")) != NULL)
		return v;
	now = clock_mono();
	pthread_mutex_lock(&lock);
	if (probed_at < 0 || now - probed_at >= AWSENV_CA_PROBE_TTL) {
		probed = NULL;
		for (i = 0; i < sizeof known / sizeof known[0]; i++)
			if (access(known[i], R_OK) == 0) {
				probed = known[i];
				break;
			}
		probed_at = now;
	}
	found = probed;
	pthread_mutex_unlock(&lock);
	return found;
}

const char *
awsenv_region_from_env(void)
{
	const char *v;

	if ((v = awsenv_get("AWS_REGION")) != NULL)
		return v;
	return awsenv_get("AWS_DEFAULT_REGION");
}

/*
 * arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE... -> REGION. The region
 * must be present (IAM ARNs have none) and look like one: [a-z0-9-].
 */
int
awsenv_region_from_arn(const char *arn, char *buf, size_t len)
{
	const char *f[5], *p = arn;
	size_t i, n;

	if (arn == NULL || strncmp(arn, "arn:", 4) != 0)
		return -1;
	/* f[i] is the start of field i (0 = "arn"); each must end in ':'. */
	f[0] = p;
	for (i = 1; i < 5; i++) {
		p = strchr(p, ':');
		if (p == NULL)
			return -1;
		f[i] = ++p;
	}
	if (strchr(f[4], ':') == NULL)
		return -1; /* no resource after the account */
	if (f[2] - f[1] < 2 || f[3] - f[2] < 2)
		return -1; /* empty partition or service */
	n = (size_t)(f[4] - f[3] - 1);
	if (n == 0 || n >= len)
		return -1;
	for (i = 0; i < n; i++)
		if (!(f[3][i] >= 'a' && f[3][i] <= 'z') && !(f[3][i] >= '0' && f[3][i] <= '9') &&
		    f[3][i] != '-')
			return -1;
	memcpy(buf, f[3], n);
	buf[n] = '\0';
	return 0;
}

void
awsenv_curl_setup(CURL *curl, const char *egress_proxy)
{
	const char *ca;

	/* "" means no proxy at all, whatever http_proxy/https_proxy say: the
	 * fleet may point those at this very daemon. */
	curl_easy_setopt(curl, CURLOPT_PROXY,
	                 egress_proxy != NULL && *egress_proxy != '\0' ? egress_proxy : "");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if ((ca = awsenv_ca_bundle()) != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
}

int
awsenv_imds_disabled(void)
{
	const char *v = getenv("AWS_EC2_METADATA_DISABLED");

	return v != NULL && strcasecmp(v, "true") == 0;
}

char *
awsenv_imds_endpoint(void)
{
	const char *v = awsenv_get("AWS_EC2_METADATA_SERVICE_ENDPOINT");

	return awsenv_strip_slash(xstrdup(v != NULL ? v : "http://169.254.169.254"));
}
