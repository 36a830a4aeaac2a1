/*
 * awsenv.h: where AWS lives, as every SDK resolves it: endpoint overrides
 * (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL), the CA bundle
 * (AWS_CA_BUNDLE, SSL_CERT_FILE, the distributions' known locations), the
 * region from the environment or an ARN, and libcurl defaults for AWS calls
 * (never through http_proxy: the fleet may point it at this very daemon).
 */
#ifndef SSP_AWSENV_H
#define SSP_AWSENV_H

#include <stddef.h>
#include <curl/curl.h>

/* Base URL without trailing slash for service ("lambda", "ssm", "sts") in
 * region: the override (AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL) or
 * https://{service}.{region}.amazonaws.com (region NULL: us-east-1). Caller frees. */
char *awsenv_endpoint(const char *service, const char *region);
/* The CA bundle path to use (AWS_CA_BUNDLE, SSL_CERT_FILE, then the first
 * readable of the distributions' bundles), or NULL to use libcurl's
 * compiled-in default. Points into the environment or static storage. */
const char *awsenv_ca_bundle(void);
/* AWS_REGION, then AWS_DEFAULT_REGION; NULL when neither is set. */
const char *awsenv_region_from_env(void);
/* The region of an ARN ("arn:aws:lambda:REGION:ACCOUNT:function:NAME"); 0 on
 * success, -1 when arn is not an ARN with a region or buf (len) is too small. */
int awsenv_region_from_arn(const char *arn, char *buf, size_t len);
/* Apply defaults to an easy handle for an AWS call: no proxy unless
 * egress_proxy is given, the CA bundle, no signals. */
void awsenv_curl_setup(CURL *, const char *egress_proxy);
/* AWS_EC2_METADATA_DISABLED=true? */
int awsenv_imds_disabled(void);
/* IMDS base URL without trailing slash. Caller frees. */
char *awsenv_imds_endpoint(void);

#endif
