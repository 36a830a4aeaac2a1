#!/usr/bin/env bash
# bench/run.sh: requests/s and latency percentiles through ssm-sign-proxy,
# beside nginx proxying to the same backend, on this machine, in one run.
#
# The backend is nginx itself answering instantly: for the daemon it plays
# the Lambda Invoke endpoint (AWS_ENDPOINT_URL_LAMBDA points at it; it
# returns a fixed ALB response and checks no signature), for the nginx
# proxy it is the origin. wrk (Debian package wrk) sends absolute-form
# proxy requests (GET http://api.example.test/bench) to both proxies with
# the same threads, connections and duration. See bench/README.md.
#
#   bench/run.sh                      build dir _build (./tests/run.sh makes it)
#   DAEMON=path/to/ssm-sign-proxy DURATION=20 ROUNDS=5 CONNECTIONS=128 bench/run.sh
#   MODE=cache WORKERS=1 bench/run.sh  cache hits: the daemon's response cache
#                                     against nginx's proxy_cache (the front
#                                     door alone: no function, no upstream)
#
# The two proxies are measured in alternation, ROUNDS times each, and the
# median round of each is reported: load from elsewhere on the machine then
# hits both alike instead of whichever ran while it lasted.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
DAEMON=${DAEMON:-$top/_build/src/ssm-sign-proxy}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
MODE=${MODE:-proxy}
IDLE=${IDLE:-0}
maxconn=4096
if [ "$IDLE" -gt 0 ]; then
	# The idle connections, the client's and the worker's descriptors.
	ulimit -n $((IDLE * 2 + 4096)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	maxconn=$((IDLE + 4096))
fi
case "$MODE" in proxy | cache) ;; *) echo "bench: MODE is proxy or cache" >&2; exit 1 ;; esac

for tool in nginx wrk curl python3; do
	command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
	command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (apt-get install nginx wrk curl)" >&2; exit 1; }
done
[ -x "$DAEMON" ] || { echo "bench: no daemon at $DAEMON (run ./tests/run.sh first, or set DAEMON)" >&2; exit 1; }

work=$(mktemp -d /tmp/ssp-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
	sleep 0.2
	rm -rf "$work"
}
trap cleanup EXIT

# free_port, wait_port PORT
. "$top/tests/ports.sh"

backend_port=$(free_port)
nginx_proxy_port=$(free_port)
daemon_port=$(free_port)

# The fixed ALB response the "function" returns (and, as its body, what the
# nginx origin returns): the two proxies relay the same 5 bytes.
alb='{"statusCode":200,"statusDescription":"200 OK","headers":{"content-type":"text/plain"},"body":"hello","isBase64Encoded":false}'

user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root root;"
mkdir -p "$work/tmp"
# MODE=cache: nginx answers from its proxy_cache (one entry, fresh for the
# whole run), as the daemon answers from its own cache.
cache_http="" cache_loc=""
if [ "$MODE" = cache ]; then
	cache_http="proxy_cache_path $work/cache keys_zone=bench:1m;"
	cache_loc="proxy_cache bench; proxy_cache_valid 200 1h; add_header X-Cache-Status \$upstream_cache_status;"
fi
cat >"$work/nginx.conf" <<EOF
$user_line
worker_processes $WORKERS;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon on;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/tmp/body;
	proxy_temp_path $work/tmp/proxy;
	fastcgi_temp_path $work/tmp/fastcgi;
	uwsgi_temp_path $work/tmp/uwsgi;
	scgi_temp_path $work/tmp/scgi;
	keepalive_requests 1000000;
	$cache_http
	upstream backend {
		server 127.0.0.1:$backend_port;
		keepalive 256;
	}
	# The instant backend: Lambda Invoke for the daemon (POST
	# /2015-03-31/functions/NAME/invocations), origin for the nginx proxy.
	server {
		listen 127.0.0.1:$backend_port;
		location /2015-03-31/ {
			default_type application/json;
			return 200 '$alb';
		}
		location / {
			default_type text/plain;
			return 200 'hello';
		}
	}
	# nginx as the reference proxy: absolute-form requests, upstream
	# keep-alive, to the same backend.
	server {
		listen 127.0.0.1:$nginx_proxy_port;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			$cache_loc
		}
	}
}
EOF
nginx -p "$work" -c "$work/nginx.conf"
wait_port "$backend_port"
wait_port "$nginx_proxy_port"

cat >"$work/daemon.yaml" <<EOF
function_name: bench-function
listen: 127.0.0.1:$daemon_port
workers: $WORKERS
region: us-east-1
log_level: warn
access_log: "off"
limits:
  max_inflight: 4096
  max_connections: $maxconn
EOF
if [ "$MODE" = cache ]; then
	printf 'cache:\n  ttl: 3600\n' >>"$work/daemon.yaml"
fi
env -i PATH="$PATH" HOME="$work" \
	AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
	AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
	AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$backend_port" \
	"$DAEMON" -c "$work/daemon.yaml" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")
wait_port "$daemon_port" || { cat "$work/daemon.log" >&2; exit 1; }

# Both proxies must answer "hello" before we time them.
for port in "$daemon_port" "$nginx_proxy_port"; do
	got=$(curl -sS --max-time 5 -x "http://127.0.0.1:$port" http://api.example.test/bench)
	if [ "$got" != "hello" ]; then
		echo "bench: proxy on port $port answered '$got', not 'hello'" >&2
		cat "$work/daemon.log" >&2
		exit 1
	fi
done
# MODE=cache: the next answer of each must be a hit.
if [ "$MODE" = cache ]; then
	for port in "$daemon_port" "$nginx_proxy_port"; do
		hdrs=$(curl -sS --max-time 5 -D - -o /dev/null -x "http://127.0.0.1:$port" http://api.example.test/bench)
		if ! printf '%s' "$hdrs" | grep -qiE '^(cache-status:.*hit|x-cache-status: *HIT)'; then
			echo "bench: proxy on port $port did not answer from its cache:" >&2
			printf '%s\n' "$hdrs" >&2
			exit 1
		fi
	done
fi

# wrk sends the absolute-form request line a proxy client sends.
cat >"$work/proxy.lua" <<'EOF'
wrk.path = "http://api.example.test/bench"
wrk.headers["Host"] = "api.example.test"
EOF

run_wrk() { # name port seconds
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"${3}s" --latency -s "$work/proxy.lua" \
		"http://127.0.0.1:$2" >"$work/wrk-$1.txt"
}
# A short warm-up for each, then the measured rounds in alternation.
# The daemon's resident memory (master and children, kB): it must not grow
# with the number of requests served.
daemon_rss() {
	local total=0 p
	for p in "$daemon_pid" $(pgrep -P "$daemon_pid"); do
		total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$total"
}
run_wrk warm "$daemon_port" 2
run_wrk warm "$nginx_proxy_port" 2
rss_before=$(daemon_rss)
for i in $(seq "$ROUNDS"); do
	run_wrk "daemon-$i" "$daemon_port" "$DURATION"
	run_wrk "nginx-$i" "$nginx_proxy_port" "$DURATION"
done
rss_after=$(daemon_rss)

# IDLE=N: N kept-alive connections that each made one request and then say
# nothing, on the first worker (WORKERS=1 puts them all on one): its
# resident memory before and after, per connection, and the time a new
# request takes meanwhile (curl's time_total, on a fresh connection).
if [ "$IDLE" -gt 0 ]; then
	worker=""
	for p in $(pgrep -P "$daemon_pid"); do
		[ "$(cat /proc/$p/comm)" = ssp-worker ] && { worker=$p; break; }
	done
	rss0=$(awk '/^VmRSS:/ {print $2}' "/proc/$worker/status")
	t0=$(curl -sS -o /dev/null -w '%{time_total}' -x "http://127.0.0.1:$daemon_port" http://api.example.test/bench)
	python3 - "$daemon_port" "$IDLE" "$work/idle.ready" <<'EOF' &
import socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
req = b"GET http://api.example.test/bench HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    got = b""
    while not got.endswith(b"hello"):
        got += s.recv(4096)
    socks.append(s)
open(ready, "w").close()
time.sleep(600)
EOF
	idle_pid=$!
	pids+=("$idle_pid")
	while [ ! -e "$work/idle.ready" ]; do
		kill -0 "$idle_pid" 2>/dev/null || { echo "bench: the idle client failed" >&2; exit 1; }
		sleep 0.2
	done
	sleep 1
	rss1=$(awk '/^VmRSS:/ {print $2}' "/proc/$worker/status")
	t1=$(curl -sS -o /dev/null -w '%{time_total}' -x "http://127.0.0.1:$daemon_port" http://api.example.test/bench)
	kill "$idle_pid" 2>/dev/null || true
	awk -v n="$IDLE" -v a="$rss0" -v b="$rss1" -v t0="$t0" -v t1="$t1" 'BEGIN {
		printf "%d idle keep-alive connections on one worker: %.1f MB -> %.1f MB resident, %.0f bytes each; a new request took %.2f ms before, %.2f ms with them open\n",
			n, a / 1024, b / 1024, (b - a) * 1024 / n, t0 * 1000, t1 * 1000 }'
fi

# PERF=1: where a worker spends its time (perf record during one more wrk
# run of PERF_SECONDS, 3 by default; the top functions by own samples).
if [ "${PERF:-0}" = 1 ]; then
	command -v perf >/dev/null 2>&1 || { echo "bench: perf not found (apt-get install linux-perf)" >&2; exit 1; }
	for p in $(pgrep -P "$daemon_pid"); do
		[ "$(cat /proc/$p/comm)" = ssp-worker ] && { pworker=$p; break; }
	done
	perf record -q -o "$work/perf.data" -p "$pworker" -- sleep "${PERF_SECONDS:-3}" 2>/dev/null &
	perf_pid=$!
	run_wrk perf "$daemon_port" "${PERF_SECONDS:-3}"
	wait "$perf_pid" || true
	echo "where worker $pworker spent its time (perf, self):"
	perf report -q -i "$work/perf.data" --no-children --sort dso,symbol 2>/dev/null | grep -v "^$" | sed "s/  *- *- *$//" | head -20
fi

# SYSCALLS=1: system calls per request in the daemon's workers (strace -c
# -f attached to them for one more wrk run of SYSCALLS_SECONDS, 3 by
# default). strace slows the daemon down; only the count per request means
# something here.
if [ "${SYSCALLS:-0}" = 1 ]; then
	command -v strace >/dev/null 2>&1 || { echo "bench: strace not found (apt-get install strace)" >&2; exit 1; }
	sargs=()
	for p in $(pgrep -P "$daemon_pid"); do
		[ "$(cat /proc/$p/comm)" = ssp-worker ] && sargs+=(-p "$p")
	done
	strace -c -f -o "$work/strace.txt" "${sargs[@]}" &
	strace_pid=$!
	sleep 1
	run_wrk strace "$daemon_port" "${SYSCALLS_SECONDS:-3}"
	kill -INT "$strace_pid"
	wait "$strace_pid" || true
	reqs=$(grep -oE '[0-9]+ requests in' "$work/wrk-strace.txt" | cut -d' ' -f1)
	calls=$(awk '$NF == "total" {print $4}' "$work/strace.txt")
	echo "system calls per request in the workers: $(awk -v c="$calls" -v r="$reqs" 'BEGIN {printf "%.1f", c / r}') ($calls calls, $reqs requests; strace -c -f)"
	awk 'NR > 2 && $1 ~ /^[0-9.]+$/ && $NF != "total" {printf "  %-16s %.2f per request\n", $NF, $4 / '"$reqs"'}' "$work/strace.txt" | sort -k2 -nr | head -8
fi

MODE="$MODE" python3 - "$work" "$ROUNDS" "$THREADS" "$CONNECTIONS" "$DURATION" "$WORKERS" "$(cut -d' ' -f1-3 /proc/loadavg)" \
	"$rss_before" "$rss_after" <<'EOF'
import re, sys

work, rounds = sys.argv[1], int(sys.argv[2])
threads, conns, dur, workers, load = sys.argv[3:8]
rss_before, rss_after = int(sys.argv[8]), int(sys.argv[9])


def parse(path):
    text = open(path).read()
    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else None
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for p in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
        out["p" + p] = float(m.group(1)) * units[m.group(2)]
    return out


def median_round(name):
    runs = [parse("%s/wrk-%s-%d.txt" % (work, name, i)) for i in range(1, rounds + 1)]
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2], runs


d, druns = median_round("daemon")
n, nruns = median_round("nginx")
print("wrk -t%s -c%s, %d rounds of %ss each in alternation, %s workers each; load average before: %s"
      % (threads, conns, rounds, dur, workers, load))
print("GET http://api.example.test/bench through each proxy%s; the median round of each:"
      % (" (cache hits)" if __import__("os").environ.get("MODE") == "cache" else ""))
print("%-16s %12s %9s %9s %9s %9s %8s" % ("", "requests/s", "p50 ms", "p75 ms", "p90 ms", "p99 ms", "non-2xx"))
for name, r, runs in (("ssm-sign-proxy", d, druns), ("nginx proxy", n, nruns)):
    print("%-16s %12.0f %9.2f %9.2f %9.2f %9.2f %8d" % (name, r["rps"], r["p50"], r["p75"], r["p90"],
                                                       r["p99"], sum(x["errors"] for x in runs)))
    print("%-16s rounds: %s requests/s" % ("", ", ".join("%.0f" % x["rps"] for x in runs)))
    errs = [x["socket_errors"] for x in runs if x["socket_errors"]]
    if errs:
        print("%-16s socket errors: %s" % ("", "; ".join(errs)))
print("ratio ssm-sign-proxy / nginx: %.2f (requests/s), %.2f (p50 latency), %.2f (p99 latency)"
      % (d["rps"] / n["rps"], d["p50"] / n["p50"], d["p99"] / n["p99"]))
total = sum(int(re.search(r"(\d+) requests in", open("%s/wrk-daemon-%d.txt" % (work, i)).read()).group(1))
            for i in range(1, rounds + 1))
print("ssm-sign-proxy resident memory (master, workers, agent): %.1f MB before the rounds, %.1f MB after "
      "%d requests" % (rss_before / 1024.0, rss_after / 1024.0, total))
if any(x["errors"] for x in druns + nruns):
    sys.exit("bench: non-2xx answers during the run (see above)")
EOF
