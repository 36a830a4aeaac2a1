/*
 * version.c: -V. The daemon's version and, for bug reports and fleet
 * inventories, the version of every library it was built against and the
 * one it runs with (a distribution update changes the second, not the
 * first), with libcurl's TLS backend.
 */
#include <stdio.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <mbedtls/version.h>
#include <yaml.h>

#include "version.h"

void
version_print(FILE *f)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	char mbed[32] = "";

	fprintf(f, "ssm-sign-proxy %s\n", VERSION);
	fprintf(f, "  libevent %s (built with %s)\n", event_get_version(), LIBEVENT_VERSION);
	fprintf(f, "  libcurl %s, TLS %s (built with %s)\n", cv->version,
	        cv->ssl_version != NULL ? cv->ssl_version : "none", LIBCURL_VERSION);
#if JANSSON_VERSION_HEX >= 0x020d00
	fprintf(f, "  jansson %s (built with %s)\n", jansson_version_str(), JANSSON_VERSION);
#else
	fprintf(f, "  jansson %s (built with %s)\n", JANSSON_VERSION, JANSSON_VERSION);
#endif
	fprintf(f, "  libyaml %s (built with %s)\n", yaml_get_version_string(), YAML_BUILT_VERSION);
#if defined(MBEDTLS_VERSION_C)
	mbedtls_version_get_string(mbed);
#else
	snprintf(mbed, sizeof mbed, "%s", MBEDTLS_VERSION_STRING);
#endif
	fprintf(f, "  mbedTLS %s (built with %s)\n", mbed, MBEDTLS_VERSION_STRING);
}
