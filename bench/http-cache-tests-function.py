#!/usr/bin/env python3
"""A Lambda custom runtime (Runtime API client) for bench/http-cache-tests.sh:
it turns every ALB event the daemon hands it into a plain-http request to
the origin named by HCT_ORIGIN (host:port, the http-cache-tests server) and
returns the origin's answer as an ALB response (every header value, the
body base64-encoded). The daemon in front of it, in local_function mode,
is then an HTTP reverse proxy with its response cache: what the suite tests.
"""

import base64
import http.client
import json
import os
import sys

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
ORIGIN = os.environ["HCT_ORIGIN"]
HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
       "upgrade", "content-length", "host"}


def forward(event):
    path = event.get("path") or "/"
    mq = event.get("multiValueQueryStringParameters") or {}
    parts = []
    for k, vs in mq.items():
        for v in vs:
            parts.append(k + "=" + v if v != "" else k)
    if parts:
        path += "?" + "&".join(parts)
    body = event.get("body") or ""
    body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    conn = http.client.HTTPConnection(ORIGIN, timeout=30)
    conn.putrequest(event["httpMethod"], path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", ORIGIN)
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if name.lower() in HOP:
            continue
        for v in values:
            conn.putheader(name, v)
    if body or event["httpMethod"] in ("POST", "PUT", "PATCH"):
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    headers = {}
    for name, value in r.getheaders():
        # Connection stays: the daemon removes it with the headers it names.
        if name.lower() in HOP and name.lower() != "connection":
            continue
        headers.setdefault(name.lower(), []).append(value)
    conn.close()
    return {"statusCode": r.status, "statusDescription": "%d %s" % (r.status, r.reason),
            "multiValueHeaders": headers, "body": base64.b64encode(data).decode("ascii"),
            "isBase64Encoded": True}


def main():
    rt = http.client.HTTPConnection(API)
    while True:
        rt.request("GET", "/2018-06-01/runtime/invocation/next")
        r = rt.getresponse()
        event = json.loads(r.read())
        rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
        try:
            out = json.dumps(forward(event)).encode("utf-8")
            rt.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, out)
        except Exception as e:  # reported to the daemon as a function error
            err = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}).encode()
            rt.request("POST", "/2018-06-01/runtime/invocation/%s/error" % rid, err)
            print("forward failed: %r" % e, file=sys.stderr, flush=True)
        rt.getresponse().read()


if __name__ == "__main__":
    main()
