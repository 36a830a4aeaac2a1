/*
 * creds.c: the AWS credentials provider chain (environment, shared files,
 * web identity, container, instance metadata) and the small parsers it
 * needs: the SDKs' INI dialect, ISO 8601 expirations, STS's XML answer
 * (libexpat) and the JSON answers of the container and IMDS endpoints
 * (jansson). Nothing here logs; nothing puts a secret into an error.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <expat.h>
#include <jansson.h>

#include "awsenv.h"
#include "creds.h"
#include "imds.h"
#include "kvlist.h"
#include "xmalloc.h"

/* Largest answer accepted from a credentials endpoint, and largest token file. */
#define CREDS_HTTP_MAX (1024 * 1024)
#define CREDS_FILE_MAX (64 * 1024)
/* The ECS agent's fixed address for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
#define CREDS_ECS_BASE "http://169.254.170.2"

void
creds_options_default(struct creds_options *o)
{
	memset(o, 0, sizeof *o);
	o->connect_timeout = 1.0;
	o->timeout = 2.0;
	o->imds_attempts = 3;
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Trim ASCII whitespace at both ends, in place. */
static char *
str_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Read a small file whole (token files). Returns the trimmed contents
 * (caller frees with xfree_secret) or NULL with err.
 */
static char *
read_small_file(const char *path, const char *what, char *err, size_t errlen)
{
	FILE *f;
	char *buf, *t, *out;
	size_t n;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(CREDS_FILE_MAX + 1);
	n = fread(buf, 1, CREDS_FILE_MAX + 1, f);
	if (ferror(f) || n > CREDS_FILE_MAX) {
		snprintf(err, errlen, "cannot read %s %s: %s", what, path,
		         ferror(f) ? "read error" : "larger than 64 KiB");
		fclose(f);
		explicit_bzero(buf, CREDS_FILE_MAX + 1);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	t = str_trim(buf);
	if (*t == '\0') {
		snprintf(err, errlen, "%s %s is empty", what, path);
		free(buf);
		return NULL;
	}
	out = xstrdup(t);
	explicit_bzero(buf, n);
	free(buf);
	return out;
}

/* ---------------------------------------------------------------------- */
/* ISO 8601 */

int
creds_parse_iso8601(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	const char *p;
	time_t t;

	if (s == NULL)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	p = s + n;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	n = 0;
	if (sscanf(p, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
		return -1;
	p += n;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 ||
	    mi < 0 || sec < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;

		n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5)
			p += 6;
		else if (sscanf(p + 1, "%2d%2d%n", &oh, &om, &n) == 2 && n == 4)
			p += 5;
		else
			return -1;
		if (oh > 23 || om > 59 || oh < 0 || om < 0)
			return -1;
		/* 12:00+02:00 is 10:00Z. */
		t -= sign * (oh * 3600 + om * 60);
	} else {
		return -1; /* a time without a zone is ambiguous: refuse it */
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		return -1;
	*out = t;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* HTTP */

struct http_buf {
	char *p;
	size_t n;
	int overflow;
};

static size_t
http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_buf *b = ud;
	size_t len = size * nmemb;

	if (b->n + len > CREDS_HTTP_MAX) {
		b->overflow = 1;
		return 0; /* aborts the transfer */
	}
	b->p = xrealloc(b->p, b->n + len + 1);
	memcpy(b->p + b->n, ptr, len);
	b->n += len;
	b->p[b->n] = '\0';
	return len;
}

int
creds_http_call(const struct creds_options *o, const char *method, const char *url,
                struct curl_slist *headers, const char *body, int via_proxy, long *status,
                char **resp, char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE];
	struct http_buf b = {NULL, 0, 0};
	CURL *h;
	CURLcode rc;
	long ct, to;

	*resp = NULL;
	*status = 0;
	if ((h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot create a curl handle");
		return -1;
	}
	awsenv_curl_setup(h, via_proxy ? o->egress_proxy : NULL);
	if (!via_proxy || o->egress_proxy == NULL)
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	ebuf[0] = '\0';
	ct = (long)((o->connect_timeout > 0 ? o->connect_timeout : 1.0) * 1000);
	to = (long)((o->timeout > 0 ? o->timeout : 2.0) * 1000);
	if (ct > to)
		ct = to;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ct);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (headers != NULL)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body != NULL ? strlen(body) : 0));
		if (strcmp(method, "PUT") == 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (b.overflow)
			snprintf(err, errlen, "answer larger than 1 MiB");
		else
			snprintf(err, errlen, "%s",
			         ebuf[0] != '\0' ? ebuf : curl_easy_strerror(rc));
		curl_easy_cleanup(h);
		if (b.p != NULL) {
			explicit_bzero(b.p, b.n);
			free(b.p);
		}
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	*resp = b.p != NULL ? b.p : xstrdup("");
	return 0;
}

/* Free an answer that may hold secrets. */
static void
resp_free(char *resp)
{
	xfree_secret(resp);
}

/* ---------------------------------------------------------------------- */
/* Shared files */

const char *
creds_profile_name(void)
{
	const char *p = env_nonempty("AWS_PROFILE");

	if (p == NULL)
		p = env_nonempty("AWS_DEFAULT_PROFILE");
	return p != NULL ? p : "default";
}

static int
profile_explicit(void)
{
	return env_nonempty("AWS_PROFILE") != NULL || env_nonempty("AWS_DEFAULT_PROFILE") != NULL;
}

/* The path from env, or ~/.aws/<name>; "~/" in either is the home directory. Caller frees. */
static char *
shared_file_path(const char *envname, const char *name)
{
	const char *v = env_nonempty(envname), *home;
	struct passwd *pw;
	char *path;

	if (v != NULL && strncmp(v, "~/", 2) != 0)
		return xstrdup(v);
	if ((home = env_nonempty("HOME")) == NULL) {
		pw = getpwuid(getuid());
		home = pw != NULL && pw->pw_dir != NULL ? pw->pw_dir : "/";
	}
	if (v != NULL)
		xasprintf(&path, "%s/%s", home, v + 2);
	else
		xasprintf(&path, "%s/.aws/%s", home, name);
	return path;
}

/* Does a section header's inside name the profile? */
static int
ini_section_matches(char *name, const char *profile, int config_style)
{
	name = str_trim(name);
	if (!config_style)
		return strcmp(name, profile) == 0;
	/* The config file spells it "[profile NAME]", except "[default]". */
	if (strcmp(name, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]))
		return strcmp(str_trim(name + 8), profile) == 0;
	return 0;
}

/* Zero the values (they may be secrets), then free the list. */
static void
kv_free_secret(struct kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		explicit_bzero(l->v[i].value, strlen(l->v[i].value));
	kvlist_free(l);
}

/*
 * Read the profile's keys from one INI file into out (lower-case names,
 * later assignments win, sections of the same name merged). The dialect is
 * the SDKs': '#' and ';' comment lines, "key = value" or "key: value",
 * whitespace around everything, comments after a value when preceded by
 * whitespace, and indented lines after "key =" forming a nested block
 * (s3 = \n  max_concurrent_requests = 10) that is skipped.
 * Returns 1 when the section was found, 0 when not, -1 when the file cannot
 * be read (errno set; ENOENT for a missing file).
 */
static int
ini_read_profile(const char *path, const char *profile, int config_style, struct kvlist *out)
{
	FILE *f;
	char *line = NULL, *s, *eq, *key, *val, *c;
	size_t cap = 0;
	ssize_t len;
	int in = 0, found = 0, nested = 0;

	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while ((len = getline(&line, &cap, f)) != -1) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (nested && len > 0 && isspace((unsigned char)line[0]) && *str_trim(line) != '\0')
			continue;
		nested = 0;
		s = str_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if ((c = strchr(s, ']')) == NULL) {
				in = 0;
				continue;
			}
			*c = '\0';
			in = ini_section_matches(s + 1, profile, config_style);
			found |= in;
			continue;
		}
		if (!in)
			continue;
		eq = strpbrk(s, "=:");
		if (eq == NULL)
			continue;
		*eq = '\0';
		key = str_trim(s);
		val = eq + 1;
		for (c = val; *c != '\0'; c++) {
			if ((*c == '#' || *c == ';') && c > val && isspace((unsigned char)c[-1])) {
				*c = '\0';
				break;
			}
		}
		val = str_trim(val);
		if (*val == '\0') {
			nested = 1;
			continue;
		}
		for (c = key; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		kvlist_set(out, key, val);
	}
	if (line != NULL) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(f);
	return found;
}

/* Both files' sections for the profile; *found says whether either had it. */
static void
profile_load(struct kvlist *cred, struct kvlist *conf, char **cpath, char **fpath, int *found,
             int *cerr, int *ferr)
{
	const char *profile = creds_profile_name();
	int r;

	*cpath = shared_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	*fpath = shared_file_path("AWS_CONFIG_FILE", "config");
	*found = 0;
	*cerr = *ferr = 0;
	r = ini_read_profile(*cpath, profile, 0, cred);
	if (r < 0)
		*cerr = errno;
	else
		*found |= r;
	r = ini_read_profile(*fpath, profile, 1, conf);
	if (r < 0)
		*ferr = errno;
	else
		*found |= r;
}

static const char *
profile_get(const struct kvlist *cred, const struct kvlist *conf, const char *key)
{
	const char *v = kvlist_get(cred, key);

	return v != NULL ? v : kvlist_get(conf, key);
}

int
creds_from_profile(struct aws_creds *out, char *err, size_t errlen)
{
	struct kvlist cred = KVLIST_INIT, conf = KVLIST_INIT;
	const char *profile = creds_profile_name(), *id, *secret, *token;
	char *cpath, *fpath, source[48];
	int found, cerr, ferr, rc;

	profile_load(&cred, &conf, &cpath, &fpath, &found, &cerr, &ferr);
	if ((cerr != 0 && cerr != ENOENT) || (ferr != 0 && ferr != ENOENT)) {
		snprintf(err, errlen, "cannot read %s: %s",
		         cerr != 0 && cerr != ENOENT ? cpath : fpath,
		         strerror(cerr != 0 && cerr != ENOENT ? cerr : ferr));
		rc = -1;
		goto out;
	}
	if (!found) {
		if (cerr == ENOENT && ferr == ENOENT) {
			snprintf(err, errlen, "no %s or %s", cpath, fpath);
			/* Naming a profile that exists nowhere is a mistake worth stopping for. */
			rc = profile_explicit() ? -1 : 1;
			if (rc < 0)
				snprintf(err, errlen,
				         "profile \"%s\" (AWS_PROFILE) not found: no %s or %s",
				         profile, cpath, fpath);
		} else if (profile_explicit()) {
			snprintf(err, errlen, "profile \"%s\" (AWS_PROFILE) not found in %s or %s",
			         profile, cpath, fpath);
			rc = -1;
		} else {
			snprintf(err, errlen, "no profile \"%s\"", profile);
			rc = 1;
		}
		goto out;
	}
	id = profile_get(&cred, &conf, "aws_access_key_id");
	secret = profile_get(&cred, &conf, "aws_secret_access_key");
	token = profile_get(&cred, &conf, "aws_session_token");
	if (token == NULL)
		token = profile_get(&cred, &conf, "aws_security_token");
	if (id == NULL && secret == NULL) {
		if (profile_get(&cred, &conf, "role_arn") != NULL ||
		    profile_get(&cred, &conf, "credential_process") != NULL ||
		    profile_get(&cred, &conf, "sso_session") != NULL ||
		    profile_get(&cred, &conf, "sso_start_url") != NULL)
			snprintf(
			    err, errlen,
			    "profile \"%s\" uses role_arn, credential_process or SSO, which are "
			    "not supported (only static keys)",
			    profile);
		else
			snprintf(err, errlen, "profile \"%s\" has no aws_access_key_id", profile);
		rc = 1;
		goto out;
	}
	if (id == NULL || secret == NULL) {
		snprintf(err, errlen, "profile \"%s\" has %s but no %s", profile,
		         id != NULL ? "aws_access_key_id" : "aws_secret_access_key",
		         id != NULL ? "aws_secret_access_key" : "aws_access_key_id");
		rc = -1;
		goto out;
	}
	snprintf(source, sizeof source, "profile %s", profile);
	creds_fill(out, id, secret, token, 0, source);
	rc = 0;
out:
	kv_free_secret(&cred);
	kv_free_secret(&conf);
	free(cpath);
	free(fpath);
	return rc;
}

char *
creds_profile_region(void)
{
	struct kvlist cred = KVLIST_INIT, conf = KVLIST_INIT;
	char *cpath, *fpath, *region = NULL;
	const char *v;
	int found, cerr, ferr;

	profile_load(&cred, &conf, &cpath, &fpath, &found, &cerr, &ferr);
	/* The config file is where region belongs; the SDKs also accept it in credentials. */
	if ((v = kvlist_get(&conf, "region")) == NULL)
		v = kvlist_get(&cred, "region");
	if (v != NULL && *v != '\0')
		region = xstrdup(v);
	kv_free_secret(&cred);
	kv_free_secret(&conf);
	free(cpath);
	free(fpath);
	return region;
}

/* ---------------------------------------------------------------------- */
/* JSON answers (container, IMDS) */

/*
 * Take AccessKeyId, SecretAccessKey, Token and Expiration from a JSON answer.
 * 0 or -1 with err naming what is missing.
 */
static int
creds_from_json(const char *body, const char *source, struct aws_creds *out, char *err,
                size_t errlen)
{
	json_t *j, *code;
	json_error_t jerr;
	const char *id, *secret, *token, *exp;
	time_t expiration = 0;

	if ((j = json_loads(body, 0, &jerr)) == NULL || !json_is_object(j)) {
		snprintf(err, errlen, "answer is not a JSON object");
		json_decref(j);
		return -1;
	}
	code = json_object_get(j, "Code");
	if (code != NULL && json_is_string(code) &&
	    strcmp(json_string_value(code), "Success") != 0) {
		const char *msg = json_string_value(json_object_get(j, "Message"));

		snprintf(err, errlen, "answer Code is \"%.64s\"%s%.200s", json_string_value(code),
		         msg != NULL ? ": " : "", msg != NULL ? msg : "");
		json_decref(j);
		return -1;
	}
	id = json_string_value(json_object_get(j, "AccessKeyId"));
	secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	token = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (id == NULL || *id == '\0' || secret == NULL || *secret == '\0') {
		snprintf(err, errlen, "answer lacks AccessKeyId or SecretAccessKey");
		json_decref(j);
		return -1;
	}
	if (exp != NULL && creds_parse_iso8601(exp, &expiration) != 0) {
		snprintf(err, errlen, "answer has an unreadable Expiration \"%.40s\"", exp);
		json_decref(j);
		return -1;
	}
	creds_fill(out, id, secret, token, expiration, source);
	json_decref(j);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Web identity (STS AssumeRoleWithWebIdentity, XML answer) */

enum sts_field { STS_NONE, STS_KEY, STS_SECRET, STS_TOKEN, STS_EXP, STS_CODE, STS_MESSAGE, STS_N };

struct sts_parse {
	int depth;
	int in_creds; /* inside <Credentials> */
	int in_error; /* inside <Error> */
	enum sts_field cur;
	char *v[STS_N];
	size_t n[STS_N];
	int toolong;
};

/* Element names may carry a namespace prefix ("ns:Credentials"): compare the local part. */
static const char *
xml_local(const char *name)
{
	const char *c = strrchr(name, ':');

	return c != NULL ? c + 1 : name;
}

static void XMLCALL
sts_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct sts_parse *p = ud;
	const char *l = xml_local(name);

	p->depth++;
	p->cur = STS_NONE;
	if (strcmp(l, "Credentials") == 0)
		p->in_creds = p->depth;
	else if (strcmp(l, "Error") == 0)
		p->in_error = p->depth;
	else if (p->in_creds && strcmp(l, "AccessKeyId") == 0)
		p->cur = STS_KEY;
	else if (p->in_creds && strcmp(l, "SecretAccessKey") == 0)
		p->cur = STS_SECRET;
	else if (p->in_creds && strcmp(l, "SessionToken") == 0)
		p->cur = STS_TOKEN;
	else if (p->in_creds && strcmp(l, "Expiration") == 0)
		p->cur = STS_EXP;
	else if (p->in_error && strcmp(l, "Code") == 0)
		p->cur = STS_CODE;
	else if (p->in_error && strcmp(l, "Message") == 0)
		p->cur = STS_MESSAGE;
	if (p->cur != STS_NONE && p->v[p->cur] != NULL) {
		/* A repeated element: keep the last one. */
		explicit_bzero(p->v[p->cur], p->n[p->cur]);
		p->v[p->cur][0] = '\0';
		p->n[p->cur] = 0;
	}
}

static void XMLCALL
sts_end(void *ud, const XML_Char *name)
{
	struct sts_parse *p = ud;

	if (p->in_creds == p->depth)
		p->in_creds = 0;
	if (p->in_error == p->depth)
		p->in_error = 0;
	p->depth--;
	p->cur = STS_NONE;
}

static void XMLCALL
sts_text(void *ud, const XML_Char *s, int len)
{
	struct sts_parse *p = ud;
	size_t n;

	if (p->cur == STS_NONE || len <= 0)
		return;
	n = p->n[p->cur];
	if (n + (size_t)len > 16384) {
		p->toolong = 1;
		return;
	}
	p->v[p->cur] = xrealloc(p->v[p->cur], n + (size_t)len + 1);
	memcpy(p->v[p->cur] + n, s, (size_t)len);
	p->n[p->cur] = n + (size_t)len;
	p->v[p->cur][p->n[p->cur]] = '\0';
}

static void
sts_parse_free(struct sts_parse *p)
{
	int i;

	for (i = 0; i < STS_N; i++) {
		if (p->v[i] != NULL) {
			explicit_bzero(p->v[i], p->n[i]);
			free(p->v[i]);
		}
	}
}

/* Parse the answer; 0 when it was well-formed XML. */
static int
sts_parse_xml(const char *body, struct sts_parse *p)
{
	XML_Parser x;
	int ok;

	memset(p, 0, sizeof *p);
	if ((x = XML_ParserCreate("UTF-8")) == NULL)
		return -1;
	XML_SetUserData(x, p);
	XML_SetElementHandler(x, sts_start, sts_end);
	XML_SetCharacterDataHandler(x, sts_text);
	ok = XML_Parse(x, body, (int)strlen(body), 1) == XML_STATUS_OK;
	XML_ParserFree(x);
	return ok && !p->toolong ? 0 : -1;
}

/* The STS endpoint: the override or the regional one, else the global one. Caller frees. */
static char *
sts_endpoint(const char *region)
{
	char *u;

	if (region != NULL && *region != '\0')
		return awsenv_endpoint("sts", region);
	/*
	 * No region: an override (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL) still
	 * applies; otherwise the global endpoint, as the SDKs used to default.
	 */
	u = awsenv_endpoint("sts", "us-east-1");
	if (u != NULL && strcmp(u, "https://sts.us-east-1.amazonaws.com") == 0) {
		free(u);
		u = xstrdup("https://sts.amazonaws.com");
	}
	return u;
}

/* Append "&name=escaped(value)" to *body. */
static void
form_add(char **body, const char *name, const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0), *nb;

	xasprintf(&nb, "%s%s%s=%s", *body != NULL ? *body : "", *body != NULL ? "&" : "", name,
	          e != NULL ? e : "");
	if (e != NULL) {
		explicit_bzero(e, strlen(e));
		curl_free(e);
	}
	xfree_secret(*body);
	*body = nb;
}

int
creds_from_web_identity(const struct creds_options *o, struct aws_creds *out, char *err,
                        size_t errlen)
{
	const char *file = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = env_nonempty("AWS_ROLE_ARN");
	const char *session = env_nonempty("AWS_ROLE_SESSION_NAME");
	char *token, *body = NULL, *url, *resp, sname[64], e2[256];
	struct curl_slist *h = NULL;
	struct sts_parse p;
	time_t exp = 0;
	long status;
	int rc;

	if (file == NULL || role == NULL) {
		if (file == NULL && role == NULL)
			snprintf(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE not set");
		else
			snprintf(err, errlen, "%s set without %s",
			         file != NULL ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
			         file != NULL ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
		return 1;
	}
	if ((token = read_small_file(file, "web identity token file", err, errlen)) == NULL)
		return -1;
	if (session == NULL) {
		snprintf(sname, sizeof sname, "ssm-sign-proxy-%lld", (long long)time(NULL));
		session = sname;
	}
	form_add(&body, "Action", "AssumeRoleWithWebIdentity");
	form_add(&body, "Version", "2011-06-15");
	form_add(&body, "RoleArn", role);
	form_add(&body, "RoleSessionName", session);
	form_add(&body, "WebIdentityToken", token);
	xfree_secret(token);

	if ((url = sts_endpoint(o->region)) == NULL) {
		snprintf(err, errlen, "no STS endpoint");
		xfree_secret(body);
		return -1;
	}
	h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
	h = curl_slist_append(h, "Accept: text/xml");
	rc = creds_http_call(o, "POST", url, h, body, 1, &status, &resp, e2, sizeof e2);
	curl_slist_free_all(h);
	xfree_secret(body);
	if (rc != 0) {
		snprintf(err, errlen, "STS %s: %s", url, e2);
		free(url);
		return -1;
	}
	if (sts_parse_xml(resp, &p) != 0) {
		snprintf(err, errlen, "STS %s: HTTP %ld with an unreadable answer", url, status);
		rc = -1;
	} else if (status != 200) {
		snprintf(err, errlen, "STS %s: HTTP %ld: %.64s%s%.256s", url, status,
		         p.v[STS_CODE] != NULL ? p.v[STS_CODE] : "error",
		         p.v[STS_MESSAGE] != NULL ? ": " : "",
		         p.v[STS_MESSAGE] != NULL ? p.v[STS_MESSAGE] : "");
		rc = -1;
	} else if (p.v[STS_KEY] == NULL || p.v[STS_SECRET] == NULL || p.v[STS_TOKEN] == NULL) {
		snprintf(err, errlen, "STS %s: answer lacks Credentials", url);
		rc = -1;
	} else if (p.v[STS_EXP] != NULL && creds_parse_iso8601(p.v[STS_EXP], &exp) != 0) {
		snprintf(err, errlen, "STS %s: unreadable Expiration \"%.40s\"", url, p.v[STS_EXP]);
		rc = -1;
	} else {
		creds_fill(out, str_trim(p.v[STS_KEY]), str_trim(p.v[STS_SECRET]),
		           str_trim(p.v[STS_TOKEN]), exp, "web-identity");
		rc = 0;
	}
	sts_parse_free(&p);
	resp_free(resp);
	free(url);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Container (ECS, EKS Pod Identity) */

/* May plain http go to this host? Loopback and the ECS/EKS agent addresses only. */
static int
container_host_allowed(const char *host)
{
	char h[128];
	size_t n = strlen(host);
	struct in_addr a4;
	struct in6_addr a6, want;

	if (n >= sizeof h)
		return 0;
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
	} else {
		memcpy(h, host, n + 1);
	}
	if (strcasecmp(h, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, h, &a4) == 1) {
		uint32_t v = ntohl(a4.s_addr);

		return (v >> 24) == 127 || v == 0xa9feaa02 /* 169.254.170.2 */ ||
		       v == 0xa9feaa17 /* 169.254.170.23 */;
	}
	if (inet_pton(AF_INET6, h, &a6) == 1) {
		if (memcmp(&a6, &in6addr_loopback, sizeof a6) == 0)
			return 1;
		inet_pton(AF_INET6, "fd00:ec2::23", &want);
		return memcmp(&a6, &want, sizeof a6) == 0;
	}
	return 0;
}

int
creds_container_url(char **url, char *err, size_t errlen)
{
	const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	int rc = -1;

	*url = NULL;
	if (rel != NULL) {
		xasprintf(url, "%s%s%s", CREDS_ECS_BASE, rel[0] == '/' ? "" : "/", rel);
		return 0;
	}
	if (full == NULL) {
		snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set");
		return 1;
	}
	if ((u = curl_url()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, full, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL");
	} else if (strcasecmp(scheme, "https") == 0 ||
	           (strcasecmp(scheme, "http") == 0 && container_host_allowed(host))) {
		*url = xstrdup(full);
		rc = 0;
	} else {
		snprintf(err, errlen,
		         "AWS_CONTAINER_CREDENTIALS_FULL_URI refused: it must be https, or http to "
		         "a loopback address or the ECS/EKS agent (169.254.170.2, 169.254.170.23, "
		         "fd00:ec2::23), not %.16s://%.80s",
		         scheme, host);
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* The Authorization value, from the file (re-read each time: it rotates) or the variable. */
static int
container_auth(char **auth, char *err, size_t errlen)
{
	const char *file = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");

	*auth = NULL;
	if (file != NULL) {
		if ((*auth = read_small_file(file, "container authorization token file", err,
		                             errlen)) == NULL)
			return -1;
	} else if (tok != NULL) {
		*auth = xstrdup(tok);
	} else {
		return 0;
	}
	if (strpbrk(*auth, "\r\n") != NULL) {
		snprintf(err, errlen, "the container authorization token contains a line break");
		xfree_secret(*auth);
		*auth = NULL;
		return -1;
	}
	return 0;
}

int
creds_from_container(const struct creds_options *o, struct aws_creds *out, char *err, size_t errlen)
{
	char *url, *auth, *hdr = NULL, *resp = NULL, e2[256];
	struct curl_slist *h = NULL;
	long status = 0;
	int rc, attempt, attempts = o->imds_attempts > 0 ? o->imds_attempts : 1;

	if ((rc = creds_container_url(&url, err, errlen)) != 0)
		return rc;
	if (container_auth(&auth, err, errlen) != 0) {
		free(url);
		return -1;
	}
	h = curl_slist_append(h, "Accept: application/json");
	if (auth != NULL) {
		xasprintf(&hdr, "Authorization: %s", auth);
		h = curl_slist_append(h, hdr);
		xfree_secret(hdr);
		xfree_secret(auth);
	}
	for (attempt = 0; attempt < attempts; attempt++) {
		rc = creds_http_call(o, "GET", url, h, NULL, 0, &status, &resp, e2, sizeof e2);
		/* Retry what may pass: transport failures, throttling and 5xx. */
		if (rc == 0 && status != 429 && status < 500)
			break;
		if (rc == 0 && attempt + 1 < attempts) {
			resp_free(resp);
			resp = NULL;
		}
		if (attempt + 1 < attempts)
			usleep(50000 * (attempt + 1));
	}
	curl_slist_free_all(h);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", url, e2);
		free(url);
		return -1;
	}
	if (status != 200) {
		snprintf(err, errlen, "%s: HTTP %ld", url, status);
		rc = -1;
	} else if (creds_from_json(resp, "container", out, e2, sizeof e2) != 0) {
		snprintf(err, errlen, "%s: %s", url, e2);
		rc = -1;
	}
	resp_free(resp);
	free(url);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Instance metadata */

#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

int
creds_from_imds(const struct creds_options *o, struct aws_creds *out, char *err, size_t errlen)
{
	struct imds local, *s = o->imds;
	char *body = NULL, *role, *nl, *path = NULL, e2[256];
	int rc;

	if (awsenv_imds_disabled()) {
		snprintf(err, errlen, "disabled by AWS_EC2_METADATA_DISABLED");
		return 1;
	}
	if (s == NULL) {
		imds_init(&local);
		s = &local;
	}
	rc = imds_get(s, o, IMDS_CREDS_PATH, &body, e2, sizeof e2);
	if (rc == 1) {
		snprintf(err, errlen, "no IAM role attached to the instance");
		goto out;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", e2);
		goto out;
	}
	role = str_trim(body);
	if ((nl = strchr(role, '\n')) != NULL)
		*nl = '\0';
	role = str_trim(role);
	if (*role == '\0' || strchr(role, '/') != NULL) {
		snprintf(err, errlen,
		         *role == '\0' ? "no IAM role attached to the instance"
		                       : "unexpected role name from %s",
		         IMDS_CREDS_PATH);
		rc = *role == '\0' ? 1 : -1;
		goto out;
	}
	xasprintf(&path, "%s%s", IMDS_CREDS_PATH, role);
	free(body);
	body = NULL;
	rc = imds_get(s, o, path, &body, e2, sizeof e2);
	if (rc != 0) {
		/* The role vanished between the two calls, or the service failed. */
		snprintf(err, errlen, "%s: %s", path, rc == 1 ? "not found" : e2);
		rc = -1;
		goto out;
	}
	if (creds_from_json(body, "instance-metadata", out, e2, sizeof e2) != 0) {
		snprintf(err, errlen, "%s: %s", path, e2);
		rc = -1;
	}
out:
	if (body != NULL)
		resp_free(body);
	free(path);
	if (s == &local)
		imds_free(&local);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* The chain */

int
creds_resolve(const struct creds_options *o, struct aws_creds *out, char *err, size_t errlen)
{
	static const char *const names[] = {"environment", "shared files", "web identity",
	                                    "container", "instance metadata"};
	char why[5][560], e[512];
	size_t i, off;
	int rc = 1;

	memset(out, 0, sizeof *out);
	for (i = 0; i < 5; i++) {
		e[0] = '\0';
		switch (i) {
		case 0:
			rc = creds_from_env(out, e, sizeof e);
			break;
		case 1:
			rc = creds_from_profile(out, e, sizeof e);
			break;
		case 2:
			rc = creds_from_web_identity(o, out, e, sizeof e);
			break;
		case 3:
			rc = creds_from_container(o, out, e, sizeof e);
			break;
		case 4:
			rc = creds_from_imds(o, out, e, sizeof e);
			break;
		}
		if (rc == 0)
			return 0;
		if (rc < 0 && i < 4) {
			/* Configured but failing: say so rather than pick another identity. */
			snprintf(err, errlen, "AWS credentials from %s failed: %s", names[i], e);
			return -1;
		}
		snprintf(why[i], sizeof why[i], "%s: %s", names[i], e);
	}
	off = (size_t)snprintf(err, errlen,
	                       "no AWS credentials found: tried environment, shared files, web "
	                       "identity, container, instance metadata (");
	for (i = 0; i < 5 && off < errlen; i++)
		off += (size_t)snprintf(err + off, errlen - off, "%s%s", i ? "; " : "", why[i]);
	if (off < errlen)
		snprintf(err + off, errlen - off, ")");
	return -1;
}
