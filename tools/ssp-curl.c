/*
 * ssp-curl: one HTTP call through the ssm-sign-proxy Lambda function, with
 * curl's option names (see ssp-curl.1). A user of libssm-sign-proxy's
 * blocking call like any other: nothing here knows about Lambda.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ssm-sign-proxy.h"

/* Exit statuses, curl's where curl has one. */
#define EXIT_USAGE 2
#define EXIT_BAD_URL 3
#define EXIT_NO_RESPONSE 7
#define EXIT_READ 26
#define EXIT_HTTP_ERROR 22
#define EXIT_TIMEOUT 28

static const char usage[] =
    "usage: ssp-curl [--function NAME] [-X METHOD] [-H 'Name: value']...\n"
    "                [-d DATA | --data-binary @FILE] [-i] [-s] [-S] [-f] [-v]\n"
    "                [--region REGION] [--endpoint URL] [--max-time SECONDS] URL\n";

/* The body of -d/--data-binary: "@FILE" (binary: "-" is stdin) or the text. */
static char *
read_data(const char *arg, size_t *len)
{
	FILE *f;
	char *buf = NULL, *p;
	size_t cap = 0, n = 0, r;

	if (arg[0] != '@') {
		*len = strlen(arg);
		return strdup(arg);
	}
	f = strcmp(arg + 1, "-") == 0 ? stdin : fopen(arg + 1, "rb");
	if (f == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((p = realloc(buf, cap)) == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = p;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

static void
log_stderr(enum ssp_log_level level, const char *msg, void *arg)
{
	fprintf(stderr, "* %s\n", msg);
}

int
main(int argc, char **argv)
{
	enum {
		OPT_FUNCTION = 256,
		OPT_DATA_BINARY,
		OPT_REGION,
		OPT_ENDPOINT,
		OPT_MAX_TIME,
	};
	static const struct option longopts[] = {
	    {"function", required_argument, NULL, OPT_FUNCTION},
	    {"request", required_argument, NULL, 'X'},
	    {"header", required_argument, NULL, 'H'},
	    {"data", required_argument, NULL, 'd'},
	    {"data-binary", required_argument, NULL, OPT_DATA_BINARY},
	    {"include", no_argument, NULL, 'i'},
	    {"silent", no_argument, NULL, 's'},
	    {"show-error", no_argument, NULL, 'S'},
	    {"fail", no_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"region", required_argument, NULL, OPT_REGION},
	    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
	    {"max-time", required_argument, NULL, OPT_MAX_TIME},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *function = getenv("SSM_SIGN_PROXY_FUNCTION"), *method = NULL;
	const char *region = NULL, *endpoint = NULL, *name, *value;
	char **headers = NULL, *data = NULL, err[512], *end;
	size_t nheaders = 0, data_len = 0, i, len;
	int c, include = 0, silent = 0, show_error = 0, fail = 0, verbose = 0, form = 0, status;
	int rc = 0;
	double max_time = 0;
	ssp_options *o;
	ssp_client *client;
	ssp_request *req;
	ssp_response *resp = NULL;
	ssp_error *e = NULL;
	const void *body;

	while ((c = getopt_long(argc, argv, "X:H:d:isSfvh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_FUNCTION:
			function = optarg;
			break;
		case 'X':
			method = optarg;
			break;
		case 'H':
			headers = realloc(headers, (nheaders + 1) * sizeof *headers);
			if (headers == NULL)
				return EXIT_FAILURE;
			headers[nheaders++] = optarg;
			break;
		case 'd':
		case OPT_DATA_BINARY:
			free(data);
			data = read_data(optarg, &data_len);
			if (data == NULL) {
				fprintf(stderr, "ssp-curl: cannot read %s: %s\n", optarg + 1,
				        strerror(errno));
				return EXIT_READ;
			}
			form = c == 'd';
			break;
		case 'i':
			include = 1;
			break;
		case 's':
			silent = 1;
			break;
		case 'S':
			show_error = 1;
			break;
		case 'f':
			fail = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case OPT_REGION:
			region = optarg;
			break;
		case OPT_ENDPOINT:
			endpoint = optarg;
			break;
		case OPT_MAX_TIME:
			max_time = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(max_time > 0)) {
				fprintf(stderr, "ssp-curl: --max-time wants seconds > 0\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (function == NULL || *function == '\0') {
		fprintf(stderr, "ssp-curl: no function: give --function NAME or set "
		                "SSM_SIGN_PROXY_FUNCTION\n");
		return EXIT_USAGE;
	}
	if (method == NULL)
		method = data != NULL ? "POST" : "GET";

	if (ssp_global_init() != 0) {
		fprintf(stderr, "ssp-curl: cannot initialise libcurl\n");
		return EXIT_FAILURE;
	}
	o = ssp_options_new();
	ssp_options_set_function(o, function);
	if (region != NULL)
		ssp_options_set_region(o, region);
	if (endpoint != NULL && ssp_options_set_endpoint(o, endpoint) != 0) {
		fprintf(stderr, "ssp-curl: --endpoint wants an http:// or https:// URL\n");
		return EXIT_USAGE;
	}
	if (max_time > 0)
		ssp_options_set_timeouts(o, max_time < 5 ? max_time : 5, max_time);
	if (verbose)
		ssp_options_set_log(o, SSP_LOG_DEBUG, log_stderr, NULL);
	client = ssp_client_new(o, err, sizeof err);
	ssp_options_free(o);
	if (client == NULL) {
		fprintf(stderr, "ssp-curl: %s\n", err);
		return EXIT_USAGE;
	}

	req = ssp_request_new(method, argv[optind]);
	if (req == NULL) {
		fprintf(stderr, "ssp-curl: invalid method or URL\n");
		return EXIT_USAGE;
	}
	for (i = 0; i < nheaders; i++) {
		char *h = headers[i], *colon = strchr(h, ':');

		if (colon == NULL || colon == h) {
			fprintf(stderr, "ssp-curl: -H wants 'Name: value', not '%s'\n", h);
			return EXIT_USAGE;
		}
		*colon = '\0';
		for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
			;
		if (ssp_request_add_header(req, h, value) != 0) {
			fprintf(stderr, "ssp-curl: invalid header '%s'\n", h);
			return EXIT_USAGE;
		}
		*colon = ':';
	}
	if (data != NULL) {
		int has_type = 0;

		for (i = 0; i < nheaders; i++)
			if (strncasecmp(headers[i], "Content-Type:", 13) == 0)
				has_type = 1;
		/* curl's -d default. */
		if (form && !has_type)
			ssp_request_add_header(req, "Content-Type",
			                       "application/x-www-form-urlencoded");
		ssp_request_set_body(req, data, data_len);
	}

	if (ssp_roundtrip(client, req, &resp, &e) != 0) {
		if (!silent || show_error)
			fprintf(stderr, "ssp-curl: (%d) %s\n", ssp_error_status(e),
			        ssp_error_message(e));
		switch (ssp_error_kind(e)) {
		case SSP_ERR_INVALID:
			rc = EXIT_BAD_URL;
			break;
		case SSP_ERR_TIMEOUT:
			rc = EXIT_TIMEOUT;
			break;
		default:
			rc = EXIT_NO_RESPONSE;
			break;
		}
		ssp_error_free(e);
		goto out;
	}
	status = ssp_response_status(resp);
	if (fail && status >= 400) {
		if (!silent || show_error)
			fprintf(stderr, "ssp-curl: The requested URL returned error: %d\n", status);
		rc = EXIT_HTTP_ERROR;
		goto out;
	}
	if (include) {
		printf("HTTP/1.1 %d\r\n", status);
		for (i = 0; ssp_response_header(resp, i, &name, &value) == 0; i++)
			printf("%s: %s\r\n", name, value);
		printf("\r\n");
	}
	body = ssp_response_body(resp, &len);
	if (len > 0 && fwrite(body, 1, len, stdout) != len)
		rc = 23; /* curl's write error */
	if (fflush(stdout) != 0)
		rc = 23;
out:
	ssp_response_free(resp);
	ssp_request_free(req);
	ssp_client_free(client);
	ssp_global_cleanup();
	free(data);
	free(headers);
	return rc;
}
