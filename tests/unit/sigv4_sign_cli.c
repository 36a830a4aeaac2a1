/*
 * sigv4_sign_cli.c: sign one request with the project's signer and print
 * what to send, so that tests/integration/test_sigv4_botocore.py can compare
 * it with botocore's SigV4Auth (our independent reference).
 *
 *   sigv4_sign_cli METHOD PATH QUERY REGION SERVICE EPOCH [Name:Value ...] < body
 *
 * PATH is the wire path (already percent-encoded), QUERY the raw query ("" for
 * none). Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN. Prints the Authorization value, then X-Amz-Date, one a
 * line; the canonical request goes to stderr for diagnosis.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "sigv4.h"
#include "xmalloc.h"

int
main(int argc, char **argv)
{
	struct aws_creds creds;
	struct sigv4_input in;
	struct sigv4_output out;
	struct kvlist h = KVLIST_INIT;
	char err[256], *body = NULL, *colon;
	size_t len = 0, cap = 0, n;
	int i;

	if (argc < 7) {
		fprintf(stderr,
		        "usage: %s METHOD PATH QUERY REGION SERVICE EPOCH "
		        "[Name:Value ...] < body\n",
		        argv[0]);
		return 2;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			body = xrealloc(body, cap);
		}
		n = fread(body + len, 1, cap - len, stdin);
		if (n == 0)
			break;
		len += n;
	}
	for (i = 7; i < argc; i++) {
		colon = strchr(argv[i], ':');
		if (colon == NULL) {
			fprintf(stderr, "bad header %s\n", argv[i]);
			free(body);
			kvlist_free(&h);
			return 2;
		}
		kvlist_addn(&h, argv[i], (size_t)(colon - argv[i]), colon + 1, strlen(colon + 1));
	}

	memset(&creds, 0, sizeof creds);
	creds.access_key_id = getenv("AWS_ACCESS_KEY_ID");
	creds.secret_access_key = getenv("AWS_SECRET_ACCESS_KEY");
	creds.session_token = getenv("AWS_SESSION_TOKEN");
	memset(&in, 0, sizeof in);
	in.method = argv[1];
	in.path = argv[2];
	in.query = *argv[3] != '\0' ? argv[3] : NULL;
	in.region = argv[4];
	in.service = argv[5];
	in.when = (time_t)strtoll(argv[6], NULL, 10);
	in.headers = &h;
	in.body = body;
	in.body_len = len;
	in.normalize = 1;
	if (sigv4_sign(&creds, &in, &out, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		free(body);
		kvlist_free(&h);
		return 1;
	}
	printf("%s\n%s\n", out.authorization, out.amz_date);
	fprintf(stderr, "%s\n", out.canonical_request);
	sigv4_output_free(&out);
	free(body);
	kvlist_free(&h);
	return 0;
}
