#!/usr/bin/env bash
# bench/library.sh: what one blocking libssm-sign-proxy call costs on a
# kept-alive connection, next to the bare HTTP exchange.
#
# The backend is nginx answering the Lambda Invoke path instantly with a
# fixed ALB response (as in bench/run.sh). Measured, each in one process:
#  - N sequential ssp_roundtrip() calls on one client
#    (tests/unit/libssp_driver bench: build the event, sign, libcurl,
#    decode the response), CPU and wall time per call;
#  - curl(1) POSTing the same event N times over one kept-alive
#    connection, for reference (a tool: it does more per request than a
#    library call, so the library's whole cost bounds what it adds).
#
#   make check (builds the driver), then: bench/library.sh [N]
#   BUILD=_build-other bench/library.sh 20000
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/_build}
N=${1:-10000}
DRIVER=$BUILD/tests/unit/libssp_driver

for tool in nginx curl python3; do
	command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
	command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found" >&2; exit 1; }
done
[ -x "$DRIVER" ] || { echo "bench: no $DRIVER (run make check in $BUILD)" >&2; exit 1; }

work=$(mktemp -d /tmp/ssp-libbench.XXXXXX)
cleanup() {
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
	sleep 0.2
	rm -rf "$work"
}
trap cleanup EXIT
. "$top/tests/ports.sh"
port=$(free_port)
alb='{"statusCode":200,"statusDescription":"200 OK","headers":{"content-type":"text/plain"},"body":"hello","isBase64Encoded":false}'
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root root;"
mkdir -p "$work/tmp"
cat >"$work/nginx.conf" <<NGINX
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/tmp/body;
	proxy_temp_path $work/tmp/proxy;
	fastcgi_temp_path $work/tmp/fastcgi;
	uwsgi_temp_path $work/tmp/uwsgi;
	scgi_temp_path $work/tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$port;
		location / {
			default_type application/json;
			return 200 '$alb';
		}
	}
}
NGINX
nginx -p "$work" -c "$work/nginx.conf"
wait_port "$port"

url=http://api.example.test/bench
lib=$(env -i PATH="$PATH" AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
	AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY AWS_REGION=us-east-1 \
	AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" \
	SSP_TEST_FUNCTION=bench-function "$DRIVER" bench "$N" "$url")

# The same event curl sends: what the library sent for this request.
python3 - "$url" >"$work/event.json" <<'PY'
import json, sys
print(json.dumps({"requestContext": {"instance": {"hostname": "h", "instance_id": ""},
                  "elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:local:000000000000:targetgroup/ssm-sign-proxy/0000000000000000"}},
                  "httpMethod": "GET", "path": "/bench", "queryStringParameters": {},
                  "multiValueQueryStringParameters": {}, "headers": {"host": "api.example.test"},
                  "multiValueHeaders": {"host": ["api.example.test"]}, "body": "",
                  "isBase64Encoded": False}, separators=(",", ":")))
PY
invoke="http://127.0.0.1:$port/2015-03-31/functions/bench-function/invocations"
python3 - "$lib" "$N" "$invoke" "$work/event.json" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, resource, subprocess, sys, time
lib = json.loads(sys.argv[1])
n, invoke, event, load = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
# curl keeps the connection alive across the URLs of one command line: in
# batches of 1000 (command lines have limits).
batches = (n + 999) // 1000
t0 = time.monotonic()
for _ in range(batches):
    subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Content-Type: application/json",
                    "--data-binary", "@" + event] + [invoke] * 1000, check=True,
                   stdout=subprocess.DEVNULL)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
calls = batches * 1000
curl_cpu = (ru.ru_utime + ru.ru_stime) * 1e6 / calls
print("load average: %s; one kept-alive connection, instant nginx backend" % load)
print("ssp_roundtrip(), %d calls: %6.1f us CPU per call, %6.1f us wall per call (%d failed)"
      % (lib["calls"], lib["cpu_us_per_call"], lib["wall_us_per_call"], lib["failed"]))
print("curl, the bare POST, %d:  %6.1f us CPU per call, %6.1f us wall per call"
      % (calls, curl_cpu, wall * 1e6 / calls))
# curl(1) does more per request than the library (it is a tool), so the
# difference is no measure of the library's overhead: the library's whole
# call, HTTP exchange included, is the upper bound of what it adds.
print("ssp_roundtrip() costs %.1f us of CPU per call, HTTP exchange included; curl(1) %.1f us"
      % (lib["cpu_us_per_call"], curl_cpu))
PY
