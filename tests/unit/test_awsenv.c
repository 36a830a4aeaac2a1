/*
 * test_awsenv.c: endpoint overrides, CA bundle, region, IMDS settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "awsenv.h"
#include "tap.h"

static void
clear_env(void)
{
	static const char *const vars[] = {
	    "AWS_ENDPOINT_URL",
	    "AWS_ENDPOINT_URL_LAMBDA",
	    "AWS_ENDPOINT_URL_SSM",
	    "AWS_ENDPOINT_URL_STS",
	    "AWS_CA_BUNDLE",
	    "SSL_CERT_FILE",
	    "AWS_REGION",
	    "AWS_DEFAULT_REGION",
	    "AWS_EC2_METADATA_DISABLED",
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	};
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
}

static void
is_endpoint(const char *service, const char *region, const char *want, const char *what)
{
	char *got = awsenv_endpoint(service, region);

	tap_is_str(got, want, "%s", what);
	free(got);
}

static void
test_endpoint(void)
{
	clear_env();
	is_endpoint("lambda", "eu-west-1", "https://lambda.eu-west-1.amazonaws.com", "default");
	is_endpoint("ssm", NULL, "https://ssm.us-east-1.amazonaws.com", "default region");
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
	is_endpoint("ssm", "eu-west-1", "http://127.0.0.1:4566",
	            "AWS_ENDPOINT_URL, slash stripped");
	setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9001//", 1);
	is_endpoint("lambda", "eu-west-1", "http://127.0.0.1:9001", "AWS_ENDPOINT_URL_LAMBDA wins");
	is_endpoint("sts", "eu-west-1", "http://127.0.0.1:4566", "other services use the global");
	setenv("AWS_ENDPOINT_URL_STS", "https://sts.local", 1);
	is_endpoint("sts", "eu-west-1", "https://sts.local", "AWS_ENDPOINT_URL_STS");
	setenv("AWS_ENDPOINT_URL_SSM", "", 1);
	is_endpoint("ssm", "eu-west-1", "http://127.0.0.1:4566", "empty override is unset");
	clear_env();
}

static void
test_ca_bundle(void)
{
	static const char *const known[] = {
	    "/etc/pki/tls/certs/ca-bundle.crt",
	    "/etc/ssl/certs/ca-certificates.crt",
	    "/etc/ssl/ca-bundle.pem",
	    "/etc/ssl/cert.pem",
	};
	const char *want = NULL;
	size_t i;

	clear_env();
	for (i = 0; i < sizeof known / sizeof known[0] && want == NULL; i++)
		if (access(known[i], R_OK) == 0)
			want = known[i];
	tap_is_str(awsenv_ca_bundle(), want, "first existing known bundle (%s)",
	           want ? want : "none here");
	setenv("SSL_CERT_FILE", "/tmp/ssl.pem", 1);
	tap_is_str(awsenv_ca_bundle(), "/tmp/ssl.pem", "SSL_CERT_FILE");
	setenv("AWS_CA_BUNDLE", "/tmp/aws.pem", 1);
	tap_is_str(awsenv_ca_bundle(), "/tmp/aws.pem", "AWS_CA_BUNDLE wins");
	clear_env();
}

static void
is_arn_region(const char *arn, const char *want)
{
	char buf[32];
	int rc = awsenv_region_from_arn(arn, buf, sizeof buf);

	if (want == NULL)
		tap_ok(rc == -1, "no region in %s", arn ? arn : "(null)");
	else
		tap_ok(rc == 0 && strcmp(buf, want) == 0, "region %s from %s", want, arn);
}

static void
test_region(void)
{
	char small[4];

	clear_env();
	tap_ok(awsenv_region_from_env() == NULL, "no region in the environment");
	setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
	tap_is_str(awsenv_region_from_env(), "eu-central-1", "AWS_DEFAULT_REGION");
	setenv("AWS_REGION", "ap-south-1", 1);
	tap_is_str(awsenv_region_from_env(), "ap-south-1", "AWS_REGION wins");
	clear_env();

	is_arn_region("arn:aws:lambda:us-east-1:123456789012:function:foo", "us-east-1");
	is_arn_region("arn:aws:lambda:eu-west-3:123456789012:function:foo:prod", "eu-west-3");
	is_arn_region("arn:aws-cn:lambda:cn-north-1:123456789012:function:f", "cn-north-1");
	is_arn_region("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
	              "us-gov-west-1");
	is_arn_region("arn:aws:iam::123456789012:role/x", NULL);
	is_arn_region("arn:aws:lambda:us-east-1", NULL);
	is_arn_region("arn:aws:lambda:us-east-1:123456789012", NULL);
	is_arn_region("function:foo", NULL);
	is_arn_region("123456789012:function:foo", NULL);
	is_arn_region("arn::lambda:us-east-1:1:function:f", NULL);
	is_arn_region("arn:aws:lambda:US EAST:1:function:f", NULL);
	is_arn_region(NULL, NULL);
	tap_ok(awsenv_region_from_arn("arn:aws:lambda:us-east-1:1:function:f", small,
	                              sizeof small) == -1,
	       "too small a buffer is an error");
}

static void
test_imds(void)
{
	char *e;

	clear_env();
	tap_ok(!awsenv_imds_disabled(), "IMDS enabled by default");
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	tap_ok(awsenv_imds_disabled(), "disabled by TRUE (case-insensitive)");
	setenv("AWS_EC2_METADATA_DISABLED", "false", 1);
	tap_ok(!awsenv_imds_disabled(), "not disabled by false");
	setenv("AWS_EC2_METADATA_DISABLED", "1", 1);
	tap_ok(!awsenv_imds_disabled(), "only \"true\" disables, as the SDKs");
	e = awsenv_imds_endpoint();
	tap_is_str(e, "http://169.254.169.254", "default IMDS endpoint");
	free(e);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1234/", 1);
	e = awsenv_imds_endpoint();
	tap_is_str(e, "http://127.0.0.1:1234", "IMDS endpoint override, slash stripped");
	free(e);
	clear_env();
}

/* A listening loopback socket that never accepts; its port in *port. */
static int
listener(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(fd, 4) == -1 || getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
has_connection(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, 0) == 1;
}

/*
 * awsenv_curl_setup: an http_proxy in the environment must not be used, an
 * egress proxy given must. Two listeners, the "server" and the "proxy";
 * neither answers (the transfer times out); which one curl connected to is
 * the answer.
 */
static void
curl_try(const char *egress, int *to_server, int *to_proxy)
{
	int sfd, pfd, sport = 0, pport = 0;
	char url[64], proxy[64];
	CURL *c;

	sfd = listener(&sport);
	pfd = listener(&pport);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", sport);
	snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", pport);
	setenv("http_proxy", proxy, 1);
	setenv("HTTP_PROXY", proxy, 1);
	c = curl_easy_init();
	awsenv_curl_setup(c, egress != NULL ? proxy : NULL);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 300L);
	curl_easy_perform(c);
	curl_easy_cleanup(c);
	*to_server = has_connection(sfd);
	*to_proxy = has_connection(pfd);
	close(sfd);
	close(pfd);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
}

static void
test_curl_setup(void)
{
	int s, p;

	clear_env();
	curl_try(NULL, &s, &p);
	tap_ok(s && !p, "http_proxy from the environment is ignored (server %d, proxy %d)", s, p);
	curl_try("yes", &s, &p);
	tap_ok(!s && p, "the egress proxy is used when given (server %d, proxy %d)", s, p);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_endpoint();
	test_ca_bundle();
	test_region();
	test_imds();
	test_curl_setup();
	curl_global_cleanup();
	return tap_done();
}
