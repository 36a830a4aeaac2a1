/*
 * test_creds.c: the credential sources that need no network (environment,
 * shared files and their INI dialect, profile region), ISO 8601
 * expirations, the container URL rules, and the chain's "nothing found"
 * message.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creds.h"
#include "tap.h"

static char dir[] = "/tmp/ssp-creds-XXXXXX";

static const char *
write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	return path;
}

static void
clear_env(void)
{
	static const char *const vars[] = {
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_SESSION_TOKEN",
	    "AWS_SECURITY_TOKEN",
	    "AWS_PROFILE",
	    "AWS_DEFAULT_PROFILE",
	    "AWS_SHARED_CREDENTIALS_FILE",
	    "AWS_CONFIG_FILE",
	    "AWS_WEB_IDENTITY_TOKEN_FILE",
	    "AWS_ROLE_ARN",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	    "AWS_REGION",
	    "AWS_DEFAULT_REGION",
	};
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void
test_env(void)
{
	struct aws_creds c;
	char err[256];

	clear_env();
	tap_ok(creds_from_env(&c, err, sizeof err) == 1, "env: not configured without variables");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	tap_ok(creds_from_env(&c, err, sizeof err) == -1, "env: key id without secret fails");
	tap_ok(strstr(err, "AWS_SECRET_ACCESS_KEY") != NULL,
	       "env: the error names the missing one");
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	tap_ok(creds_from_env(&c, err, sizeof err) == 0, "env: found");
	tap_is_str(c.access_key_id, "AKIDENV", "env: key id");
	tap_is_str(c.secret_access_key, "envsecret", "env: secret");
	tap_ok(c.session_token == NULL && c.expiration == 0, "env: no token, no expiry");
	tap_is_str(c.source, "environment", "env: source");
	creds_clear(&c);
	tap_ok(c.access_key_id == NULL, "clear empties the struct");
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	tap_ok(creds_from_env(&c, err, sizeof err) == 0, "env: with a session token");
	tap_is_str(c.session_token, "envtoken", "env: session token");
	{
		struct aws_creds d;

		memset(&d, 0, sizeof d);
		creds_copy(&d, &c);
		tap_ok(d.access_key_id != c.access_key_id &&
		           strcmp(d.session_token, "envtoken") == 0 &&
		           strcmp(d.source, "environment") == 0,
		       "copy is deep");
		creds_clear(&d);
	}
	creds_clear(&c);
	clear_env();
}

static const char credentials_file[] = "# a comment\n"
                                       "; another comment\n"
                                       "[default]\n"
                                       "aws_access_key_id = AKIDDEFAULT\n"
                                       "aws_secret_access_key=defaultsecret\n"
                                       "\n"
                                       "  [ second ]  \n"
                                       "\taws_access_key_id   =   AKIDSECOND   # inline comment\n"
                                       "AWS_Secret_Access_Key: secondsecret\n"
                                       "aws_session_token = secondtoken\n"
                                       "s3 =\n"
                                       "    max_concurrent_requests = 10\n"
                                       "region = eu-north-1\n"
                                       "[partial]\n"
                                       "aws_access_key_id = AKIDPARTIAL\n"
                                       "[profile notreally]\n"
                                       "aws_access_key_id = AKIDNOTREALLY\n"
                                       "aws_secret_access_key = x\n";

static const char config_file[] = "[default]\n"
                                  "region = eu-west-1\n"
                                  "[profile   second]\n"
                                  "region = ap-northeast-1\n"
                                  "[profile cfgonly]\n"
                                  "aws_access_key_id = AKIDCFGONLY\n"
                                  "aws_secret_access_key = cfgsecret\n"
                                  "[cfgbare]\n"
                                  "aws_access_key_id = AKIDBARE\n"
                                  "aws_secret_access_key = baresecret\n"
                                  "[profile assumer]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/x\n"
                                  "source_profile = default\n"
                                  "[profile regiononly]\n"
                                  "region = sa-east-1\n";

static void
test_profile(void)
{
	struct aws_creds c;
	char err[512], *r;
	const char *p;

	clear_env();
	p = write_file("credentials", credentials_file);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	p = write_file("config", config_file);
	setenv("AWS_CONFIG_FILE", p, 1);

	tap_ok(creds_from_profile(&c, err, sizeof err) == 0, "profile: default found");
	tap_is_str(c.access_key_id, "AKIDDEFAULT", "profile default: key id");
	tap_is_str(c.secret_access_key, "defaultsecret", "profile default: secret without spaces");
	tap_is_str(c.source, "profile default", "profile default: source");
	creds_clear(&c);
	r = creds_profile_region();
	tap_is_str(r, "eu-west-1", "profile default: region from the config file");
	free(r);

	setenv("AWS_PROFILE", "second", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == 0, "AWS_PROFILE chooses second");
	tap_is_str(c.access_key_id, "AKIDSECOND", "second: inline comment and spaces stripped");
	tap_is_str(c.secret_access_key, "secondsecret", "second: ':' separator, key case ignored");
	tap_is_str(c.session_token, "secondtoken", "second: session token");
	tap_is_str(c.source, "profile second", "second: source names the profile");
	creds_clear(&c);
	r = creds_profile_region();
	tap_is_str(r, "ap-northeast-1", "second: [profile   second] region from config wins");
	free(r);

	setenv("AWS_PROFILE", "cfgonly", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == 0,
	       "keys in the config file's [profile x]");
	tap_is_str(c.access_key_id, "AKIDCFGONLY", "cfgonly: key id");
	creds_clear(&c);

	setenv("AWS_PROFILE", "cfgbare", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == -1,
	       "config file [cfgbare] is not profile cfgbare");

	setenv("AWS_PROFILE", "notreally", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == -1,
	       "credentials file [profile x] is not profile x");

	setenv("AWS_PROFILE", "partial", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == -1, "partial keys fail");
	tap_ok(strstr(err, "aws_secret_access_key") != NULL && strstr(err, "partial") != NULL,
	       "partial: the error names the profile and the missing key (%s)", err);

	setenv("AWS_PROFILE", "assumer", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == 1, "role_arn profile: not configured");
	tap_ok(strstr(err, "not supported") != NULL, "role_arn profile: says unsupported");

	setenv("AWS_PROFILE", "regiononly", 1);
	r = creds_profile_region();
	tap_is_str(r, "sa-east-1", "region-only profile: region");
	free(r);
	tap_ok(creds_from_profile(&c, err, sizeof err) == 1, "region-only profile: no keys");

	setenv("AWS_PROFILE", "missing", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == -1, "explicit missing profile fails");
	tap_ok(strstr(err, "\"missing\"") != NULL, "missing profile named in the error");
	r = creds_profile_region();
	tap_ok(r == NULL, "missing profile: no region");
	free(r);

	unsetenv("AWS_PROFILE");
	setenv("AWS_DEFAULT_PROFILE", "second", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == 0 &&
	           strcmp(c.access_key_id, "AKIDSECOND") == 0,
	       "AWS_DEFAULT_PROFILE is honoured too");
	creds_clear(&c);
	unsetenv("AWS_DEFAULT_PROFILE");

	/* Missing files: not configured, and nothing crashes. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/ssp/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/ssp/config", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == 1, "missing files: not configured");
	tap_ok(creds_profile_region() == NULL, "missing files: no region");
	setenv("AWS_PROFILE", "second", 1);
	tap_ok(creds_from_profile(&c, err, sizeof err) == -1,
	       "missing files with AWS_PROFILE: an error");

	/* The home directory default. */
	clear_env();
	setenv("HOME", dir, 1);
	{
		char path[512];

		snprintf(path, sizeof path, "%s/.aws", dir);
		mkdir(path, 0700);
	}
	write_file(".aws/credentials", "[default]\naws_access_key_id=AKIDHOME\n"
	                               "aws_secret_access_key=homesecret\n");
	tap_ok(creds_from_profile(&c, err, sizeof err) == 0 &&
	           strcmp(c.access_key_id, "AKIDHOME") == 0,
	       "~/.aws/credentials by default");
	creds_clear(&c);

	/* Environment first in the chain. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	{
		struct creds_options o;

		creds_options_default(&o);
		tap_ok(creds_resolve(&o, &c, err, sizeof err) == 0 &&
		           strcmp(c.source, "environment") == 0,
		       "chain: environment before shared files");
		creds_clear(&c);
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
		tap_ok(creds_resolve(&o, &c, err, sizeof err) == 0 &&
		           strcmp(c.source, "profile default") == 0,
		       "chain: shared files next");
		creds_clear(&c);
	}
	unlink(write_file(".aws/credentials", ""));
	{
		char path[512];

		snprintf(path, sizeof path, "%s/.aws", dir);
		rmdir(path);
	}
	unlink(write_file("credentials", ""));
	unlink(write_file("config", ""));
	clear_env();
}

static void
test_iso8601(void)
{
	time_t t;

	tap_ok(creds_parse_iso8601("2026-11-29T12:00:00Z", &t) == 0 && t == 1795953600,
	       "ISO 8601: Z");
	tap_ok(creds_parse_iso8601("2026-11-29T12:00:00.123Z", &t) == 0 && t == 1795953600,
	       "ISO 8601: fractions");
	tap_ok(creds_parse_iso8601("2026-11-29T14:00:00+02:00", &t) == 0 && t == 1795953600,
	       "ISO 8601: +02:00");
	tap_ok(creds_parse_iso8601("2026-11-29T07:00:00-0500", &t) == 0 && t == 1795953600,
	       "ISO 8601: -0500");
	tap_ok(creds_parse_iso8601("1970-01-01T00:00:00Z", &t) == 0 && t == 0, "ISO 8601: epoch");
	tap_ok(creds_parse_iso8601("2024-02-29T00:00:00Z", &t) == 0 && t == 1709164800,
	       "ISO 8601: leap day");
	tap_ok(creds_parse_iso8601("2026-11-29T12:00:00", &t) == -1, "ISO 8601: no zone refused");
	tap_ok(creds_parse_iso8601("2026-13-29T12:00:00Z", &t) == -1, "ISO 8601: month 13 refused");
	tap_ok(creds_parse_iso8601("2026-11-29 x", &t) == -1, "ISO 8601: garbage refused");
	tap_ok(creds_parse_iso8601("2026-11-29T12:00:00Zjunk", &t) == -1,
	       "ISO 8601: trailing junk refused");
	tap_ok(creds_parse_iso8601("", &t) == -1, "ISO 8601: empty refused");
}

static void
test_container_url(void)
{
	static const struct {
		const char *full;
		int ok;
	} cases[] = {
	    {"https://creds.example.com/v1", 1},
	    {"http://127.0.0.1:9000/creds", 1},
	    {"http://127.5.6.7/creds", 1},
	    {"http://localhost:80/creds", 1},
	    {"http://[::1]:8080/creds", 1},
	    {"http://169.254.170.2/v2/credentials/x", 1},
	    {"http://169.254.170.23/v1/credentials", 1},
	    {"http://[fd00:ec2::23]/v1/credentials", 1},
	    {"http://10.0.0.1/creds", 0},
	    {"http://169.254.169.254/latest", 0},
	    {"http://example.com/creds", 0},
	    {"ftp://127.0.0.1/creds", 0},
	    {"not a url", 0},
	};
	char err[512], *url;
	size_t i;
	int rc;

	clear_env();
	tap_ok(creds_container_url(&url, err, sizeof err) == 1 && url == NULL,
	       "container: not configured");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", cases[i].full, 1);
		rc = creds_container_url(&url, err, sizeof err);
		tap_ok(cases[i].ok ? rc == 0 && strcmp(url, cases[i].full) == 0 : rc == -1,
		       "container FULL_URI %s %s", cases[i].full,
		       cases[i].ok ? "allowed" : "refused");
		free(url);
	}
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds", 1);
	creds_container_url(&url, err, sizeof err);
	tap_ok(strstr(err, "https") != NULL && strstr(err, "10.0.0.1") != NULL,
	       "container: the refusal says why (%s)", err);
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
	rc = creds_container_url(&url, err, sizeof err);
	tap_ok(rc == 0 && strcmp(url, "http://169.254.170.2/v2/credentials/abc") == 0,
	       "container: RELATIVE_URI at 169.254.170.2, before FULL_URI");
	free(url);
	clear_env();
}

static void
test_nothing_found(void)
{
	struct creds_options o;
	struct aws_creds c;
	char err[2048];

	clear_env();
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/ssp/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/ssp/config", 1);
	creds_options_default(&o);
	tap_ok(creds_resolve(&o, &c, err, sizeof err) == -1, "chain: nothing found");
	tap_ok(strncmp(err,
	               "no AWS credentials found: tried environment, shared files, web identity, "
	               "container, instance metadata",
	               strlen("no AWS credentials found: tried environment, shared files, web "
	                      "identity, container, instance metadata")) == 0,
	       "chain: the message lists what was tried");
	tap_ok(strstr(err, "AWS_EC2_METADATA_DISABLED") != NULL, "chain: with short reasons (%s)",
	       err);

	/* A configured source that fails stops the chain with its own error. */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/ssp/token", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
	tap_ok(creds_resolve(&o, &c, err, sizeof err) == -1 &&
	           strstr(err, "web identity") != NULL && strstr(err, "/nonexistent/ssp/token"),
	       "chain: a broken web identity setup is reported as such (%s)", err);
	clear_env();
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		tap_skip_all("cannot create a temporary directory");
	test_env();
	test_profile();
	test_iso8601();
	test_container_url();
	test_nothing_found();
	rmdir(dir);
	return tap_done();
}
