/*
 * creds.h: AWS credentials and the provider chain, in the order the AWS SDKs
 * resolve them: environment, shared credentials/config files (AWS_PROFILE),
 * web identity (STS AssumeRoleWithWebIdentity), container (ECS/EKS), EC2
 * instance metadata v2. Every network call here is blocking with short,
 * configurable timeouts and ignores http_proxy/https_proxy: the daemon runs
 * it in its credentials agent process, the function at start-up.
 *
 * No function here logs; errors are returned in caller buffers and never
 * contain a secret.
 */
#ifndef SSP_CREDS_H
#define SSP_CREDS_H

#include <stddef.h>
#include <time.h>

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

struct creds_options {
	double connect_timeout; /* seconds, per HTTP call */
	double timeout;         /* seconds, per HTTP call */
	int imds_attempts;      /* attempts per IMDS call */
	const char *egress_proxy; /* proxy URL for AWS calls, or NULL for none */
};
void creds_options_default(struct creds_options *);

/*
 * Resolve the chain. Returns 0 and fills out on success. Returns -1 when no
 * source produced credentials; err then says what was tried and why each
 * failed (no secrets).
 */
int creds_resolve(const struct creds_options *, struct aws_creds *out, char *err, size_t errlen);

/* Single sources (0 found, 1 not configured, -1 configured but failed). */
int creds_from_env(struct aws_creds *out, char *err, size_t errlen);
int creds_from_profile(struct aws_creds *out, char *err, size_t errlen);

/* The active profile's region (AWS_CONFIG_FILE / AWS_PROFILE), or NULL. Caller frees. */
char *creds_profile_region(void);

#endif
