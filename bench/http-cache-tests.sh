#!/usr/bin/env bash
# bench/http-cache-tests.sh: run the public HTTP caching test suite (npm
# package http-cache-tests: its origin server and its command-line client)
# against ssm-sign-proxy's response cache, and score it. Not part of make
# check (it needs npm and takes a few minutes).
#
# The daemon runs as a reverse proxy (origin-form requests with a Host
# header) in local_function mode: the function is
# bench/http-cache-tests-function.py, a Lambda custom runtime that forwards
# each event to the suite's origin server over plain http. cache.ttl gives
# every host a TTL (the suite's origin is one host), so responses without
# explicit freshness are stored too: that is this cache's documented rule
# (doc/cache.md), and the suite counts it as "heuristic caching".
#
#   bench/http-cache-tests.sh                    build dir _build (./tests/run.sh makes it)
#   DAEMON=path/to/ssm-sign-proxy TTL=3600 RESULTS=out.json bench/http-cache-tests.sh
#   TEST_ID=freshness-max-age bench/http-cache-tests.sh   # one test, with its exchange
#   KEEP=1 ...                                   # keep the logs (daemon, origin, access)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
DAEMON=${DAEMON:-$top/_build/src/ssm-sign-proxy}
TTL=${TTL:-3600}
VERSION=${HCT_VERSION:-0.4.5}
TEST_ID=${TEST_ID:-}

for tool in node npm python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "http-cache-tests: $tool not found (apt-get install nodejs npm python3)" >&2; exit 1; }
done
[ -x "$DAEMON" ] || { echo "http-cache-tests: no daemon at $DAEMON (run ./tests/run.sh first, or set DAEMON)" >&2; exit 1; }

work=$(mktemp -d /tmp/ssp-hct.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# free_port, wait_port PORT
. "$top/tests/ports.sh"

# The suite, from the npm registry (cached by npm between runs).
echo "installing http-cache-tests@$VERSION ..." >&2
(cd "$work" && npm install --silent --no-audit --no-fund "http-cache-tests@$VERSION" >&2)
pkg=$work/node_modules/http-cache-tests

origin_port=$(free_port)
(cd "$pkg" && exec env npm_config_protocol=http npm_config_port="$origin_port" \
	npm_config_pidfile="$work/origin.pid" node --no-warnings server/server.mjs) \
	>"$work/origin.log" 2>&1 &
pids+=($!)
wait_port "$origin_port"

proxy_port=$(free_port)
cat >"$work/proxy.yaml" <<YAML
listen: 127.0.0.1:$proxy_port
workers: 2
log_level: warn
# The function runs from the checkout, which may be private to you.
user: $(id -un)
access_log: $work/access.log
timeouts: {invoke: 30, keepalive: 5}
local_function:
  command: $top/bench/http-cache-tests-function.py
  environment: {HCT_ORIGIN: "127.0.0.1:$origin_port"}
  concurrency: 4
  timeout: 30
cache:
  ttl: $TTL
  negative_ttl: 10
  lock_timeout: 5
  max_size: 64M
YAML
env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$work" "$DAEMON" -c "$work/proxy.yaml" \
	>"$work/daemon.log" 2>&1 &
pids+=($!)
wait_port "$proxy_port"

cd "$pkg"
if [ -n "$TEST_ID" ]; then
	npm_config_base="http://127.0.0.1:$proxy_port" npm_config_id="$TEST_ID" \
		node --no-warnings cli.mjs
	exit 0
fi
echo "running the suite against 127.0.0.1:$proxy_port (origin 127.0.0.1:$origin_port) ..." >&2
npm_config_base="http://127.0.0.1:$proxy_port" npm_config_id="" npm_package_config_id="" \
	node --no-warnings cli.mjs >"$work/results.json"
[ -n "${RESULTS:-}" ] && cp "$work/results.json" "$RESULTS"
node --no-warnings "$top/bench/http-cache-tests-summary.mjs" "$pkg" "$work/results.json"
if grep -q -E 'ERROR|AddressSanitizer|runtime error' "$work/daemon.log"; then
	echo "--- the daemon logged errors:" >&2
	grep -E 'ERROR|AddressSanitizer|runtime error|error:' "$work/daemon.log" | head -20 >&2
fi
