/*
 * creds.h: AWS credentials and the provider chain, in the order the AWS SDKs
 * resolve them: environment, shared credentials/config files (AWS_PROFILE),
 * web identity (STS AssumeRoleWithWebIdentity), container (ECS/EKS), EC2
 * instance metadata v2. Every network call here is blocking with short,
 * configurable timeouts and ignores http_proxy/https_proxy: the daemon runs
 * it in its credentials agent process, the function at start-up.
 *
 * No function here logs; errors are returned in caller buffers and never
 * contain a secret (secret key, session token, web identity token,
 * container authorization token).
 */
#ifndef SSP_CREDS_H
#define SSP_CREDS_H

#include <stddef.h>
#include <time.h>

struct curl_slist;
struct imds;

struct aws_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL when there is none */
	time_t expiration;   /* 0 when they do not expire */
	char source[48];     /* "environment", "profile default", "web-identity", ... */
};

/* Zero the secrets and free the strings; the struct may be reused. */
void creds_clear(struct aws_creds *);
/* Deep copy; dst must be clear. */
void creds_copy(struct aws_creds *dst, const struct aws_creds *src);
/* Fill out (overwritten, not freed) with copies; token NULL or "" means
 * none. For the providers. */
void creds_fill(struct aws_creds *out, const char *id, const char *secret, const char *token,
                time_t expiration, const char *source);

struct creds_options {
	double connect_timeout;   /* seconds, per HTTP call */
	double timeout;           /* seconds, per HTTP call */
	int imds_attempts;        /* attempts per IMDS (and container) call */
	const char *egress_proxy; /* proxy URL for STS calls, or NULL for none;
	                           * link-local IMDS/container calls never use it */
	const char *region;       /* region for the STS endpoint; NULL = global endpoint */
	struct imds *imds;        /* IMDS session to reuse (token cache), or NULL */
};
void creds_options_default(struct creds_options *);

/*
 * Resolve the chain. Returns 0 and fills out on success. Returns -1 when no
 * source produced credentials; err then says what was tried and why each
 * failed (no secrets): "no AWS credentials found: tried environment, shared
 * files, web identity, container, instance metadata (...)". A source that is
 * configured but fails (web identity with STS refusing, say) stops the chain
 * with that source's error, as the SDKs do, rather than silently falling
 * through to another identity.
 */
int creds_resolve(const struct creds_options *, struct aws_creds *out, char *err, size_t errlen);

/*
 * Single sources: 0 found (out filled), 1 not configured (err says why, for
 * the chain's summary), -1 configured but failed (err says why).
 */
int creds_from_env(struct aws_creds *out, char *err, size_t errlen);
int creds_from_profile(struct aws_creds *out, char *err, size_t errlen);
int creds_from_web_identity(const struct creds_options *, struct aws_creds *out, char *err,
                            size_t errlen);
int creds_from_container(const struct creds_options *, struct aws_creds *out, char *err,
                         size_t errlen);
/* IMDS: also 1 when AWS_EC2_METADATA_DISABLED=true or no role is attached. */
int creds_from_imds(const struct creds_options *, struct aws_creds *out, char *err, size_t errlen);

/* The active profile's region (AWS_CONFIG_FILE / AWS_PROFILE), or NULL. Caller frees. */
char *creds_profile_region(void);
/* The active profile's name (AWS_PROFILE, AWS_DEFAULT_PROFILE, "default"). */
const char *creds_profile_name(void);

/*
 * The container credentials URL from AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * (at http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or
 * http to a loopback or ECS/EKS agent address only). 0 with *url (caller
 * frees), 1 when neither is set, -1 when refused (err says why).
 */
int creds_container_url(char **url, char *err, size_t errlen);

/* ISO 8601 UTC time ("2026-11-29T12:00:00Z", fractions and +hh:mm allowed). 0 or -1. */
int creds_parse_iso8601(const char *, time_t *);

/*
 * One blocking HTTP call for the credential sources (and imds.c): awsenv
 * defaults (no http_proxy; egress_proxy only when via_proxy), the options'
 * timeouts, no redirects, at most 1 MiB of answer. method is "GET", "PUT" or
 * "POST" (body sent for PUT/POST, may be NULL). Returns 0 with *status and
 * *resp (NUL-terminated, caller frees) when an HTTP answer came, -1 with err
 * on a transport failure.
 */
int creds_http_call(const struct creds_options *, const char *method, const char *url,
                    struct curl_slist *headers, const char *body, int via_proxy, long *status,
                    char **resp, char *err, size_t errlen);

#endif
