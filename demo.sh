#!/usr/bin/env bash
# demo.sh: ssm-sign-proxy working end to end on this machine, without AWS.
#
# Installs the build dependencies if missing (tests/deps.sh), builds
# (tests/build.sh), starts an HTTPS origin with a throwaway test CA, writes
# a parameters file with a token for api.example.test, starts the daemon
# running the function (lambda/bootstrap) locally, and sends requests
# through it with curl: the origin shows the header the function injected,
# and a host without parameters gets 407. Exit 0 when all of it worked.
#
#   ./demo.sh           run the demo and clean up
#   ./demo.sh --keep    leave the daemon running and print how to use it
#   ./demo.sh --stop    stop what a --keep run left running
#
# Environment: SSP_DEMO_NO_BUILD=1 skips installing and building (uses the
# build in SSP_DEMO_BUILDDIR, default _build); SSP_DEMO_DIR is where the
# demo keeps its files (default _build/demo).
set -euo pipefail
top=$(cd "$(dirname "$0")" && pwd)
cd "$top"

keep=0
stop_only=0
for arg in "$@"; do
	case "$arg" in
	--keep) keep=1 ;;
	--stop) stop_only=1 ;;
	--no-build) SSP_DEMO_NO_BUILD=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

builddir=${SSP_DEMO_BUILDDIR:-$top/_build}
dir=${SSP_DEMO_DIR:-$builddir/demo}
token_host=api.example.test
other_host=other.example.test
token="token demo-$(date +%s)-not-a-real-secret"

say() { printf 'demo: %s\n' "$*"; }
fail() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

# Stop a process whose pid is in a file, if it is still running.
stop_pidfile() {
	local f=$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f" 2>/dev/null || true)
	rm -f "$f"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
	stop_pidfile "$dir/daemon.pid"
	stop_pidfile "$dir/origin.pid"
}

if [ "$stop_only" = 1 ]; then
	stop_all
	rm -rf "$dir"
	say "stopped"
	exit 0
fi

# 1. Dependencies and build.
if [ "${SSP_DEMO_NO_BUILD:-0}" != 1 ]; then
	./tests/deps.sh || fail "could not install the build dependencies (see above)"
	say "building (autoreconf, configure, make in _build)"
	builddir=$(./tests/build.sh) || fail "the build failed (see above)"
	dir=${SSP_DEMO_DIR:-$builddir/demo}
fi
daemon=$builddir/src/ssm-sign-proxy
bootstrap=$builddir/lambda/bootstrap
[ -x "$daemon" ] || fail "$daemon is not built"
[ -x "$bootstrap" ] || fail "$bootstrap is not built"
for tool in curl python3 openssl; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (./tests/deps.sh installs it)"
done

# Idempotent: whatever an earlier run (--keep, or one interrupted) left
# running goes first.
stop_all
rm -rf "$dir"
mkdir -p "$dir"

cleanup() {
	local rc=$?
	if [ "$keep" = 1 ] && [ "$rc" -eq 0 ]; then
		return
	fi
	stop_all
	if [ "$rc" -eq 0 ]; then
		rm -rf "$dir"
	else
		echo "demo: the logs are in $dir (daemon.log, origin.log)" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port, wait_port PORT PIDFILE
. "$top/tests/ports.sh"

# 2. The HTTPS origin (the "real API"), with a test CA of its own.
say "starting an HTTPS origin for $token_host and $other_host (test CA, 127.0.0.1)"
setsid python3 demo/origin.py "$dir/origin.json" </dev/null >"$dir/origin.log" 2>&1 &
echo $! >"$dir/origin.pid"
for i in $(seq 100); do
	[ -f "$dir/origin.json" ] && break
	kill -0 "$(cat "$dir/origin.pid")" 2>/dev/null || break
	sleep 0.1
done
[ -f "$dir/origin.json" ] || fail "the origin did not start: $(tail -n 5 "$dir/origin.log")"
read -r origin_port ca_file < <(python3 -c 'import json, sys
i = json.load(open(sys.argv[1]))
print(i["port"], i["ca_file"])' "$dir/origin.json")

# 3. The parameters file: what Parameter Store would hold (mode 0600: the
# function refuses a file others can read).
(
	umask 077
	cat >"$dir/parameters.yaml" <<EOF
# Parameter Store, as a file (SSM_SIGN_PROXY_PARAMETERS_FILE).
"/$token_host/headers/Authorization": "$token"
EOF
)
say "parameters file $dir/parameters.yaml (mode 0600): a token for $token_host only"

# 4. The daemon, running the function locally.
port=$(free_port)
connect_to="$token_host:443:127.0.0.1:$origin_port,$other_host:443:127.0.0.1:$origin_port"
cat >"$dir/ssm-sign-proxy.yaml" <<EOF
# The demo's configuration (see doc/local-mode.md).
listen: 127.0.0.1:$port
workers: 1
log_level: info
pid_file: $dir/daemon.pid
# The function runs as you: the demo's files are yours, and private. (Started
# as root without user:, it would run as an unprivileged default user.)
user: $(id -un)
local_function:
  command: $bootstrap
  concurrency: 2
  timeout: 10
  environment:
    SSM_SIGN_PROXY_PARAMETERS_FILE: $dir/parameters.yaml
    SSM_SIGN_PROXY_CONNECT_TO: "$connect_to"
    AWS_CA_BUNDLE: $ca_file
EOF
"$daemon" -t -c "$dir/ssm-sign-proxy.yaml" >"$dir/check.log" 2>&1 ||
	fail "configuration check: $(cat "$dir/check.log")"
say "starting the daemon on 127.0.0.1:$port with the function run locally ($bootstrap)"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_EC2_METADATA_DISABLED=true \
	setsid "$daemon" -c "$dir/ssm-sign-proxy.yaml" </dev/null >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
echo "$daemon_pid" >"$dir/daemon.pid"
wait_port "$port" "$dir/daemon.pid" ||
	fail "the daemon did not start: $(tail -n 20 "$dir/daemon.log")"

# 5. Requests through it, as an application would send them.
proxy_curl() {
	env -u no_proxy -u NO_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
		http_proxy="http://127.0.0.1:$port" \
		curl -sS --max-time 20 -o "$2" -w '%{http_code}' "$1"
}

echo
say "\$ http_proxy=http://127.0.0.1:$port curl http://$token_host/user/repos"
status1=$(proxy_curl "http://$token_host/user/repos" "$dir/out1") || status1=000
echo "HTTP $status1; the origin received:"
sed 's/^/    /' "$dir/out1"
echo
say "\$ http_proxy=http://127.0.0.1:$port curl http://$other_host/anything"
status2=$(proxy_curl "http://$other_host/anything" "$dir/out2") || status2=000
echo "HTTP $status2:"
sed 's/^/    /' "$dir/out2"
echo

ok=1
say "summary:"
if [ "$status1" = 200 ] && grep -qxF "Authorization: $token" "$dir/out1"; then
	echo "  ok    $token_host: 200, the function added the Authorization header from the parameters file"
else
	echo "  FAIL  $token_host: expected 200 with the injected Authorization header, got HTTP $status1"
	ok=0
fi
if [ "$status2" = 407 ]; then
	echo "  ok    $other_host: 407, no parameters for this host"
else
	echo "  FAIL  $other_host: expected 407, got HTTP $status2"
	ok=0
fi
if [ "$ok" != 1 ]; then
	echo "demo: the daemon's log (last lines):" >&2
	tail -n 30 "$dir/daemon.log" >&2
	fail "see the summary above"
fi

if [ "$keep" = 1 ]; then
	trap - EXIT
	cat <<EOF

demo: everything worked. The daemon keeps running (pid $daemon_pid; log $dir/daemon.log).
Try it:
    http_proxy=http://127.0.0.1:$port curl http://$token_host/any/path
Add tokens for other hosts (api.example.test, hooks.example.test, other.example.test
reach the demo origin) by editing $dir/parameters.yaml; the function re-reads it.
Stop everything with:
    ./demo.sh --stop
EOF
	if [ -n "${SSP_DEMO_DIR:-}" ]; then
		echo "    (with SSP_DEMO_DIR=$SSP_DEMO_DIR set, as for this run)"
	fi
	exit 0
fi
say "everything worked (run ./demo.sh --keep to keep the daemon running for your own requests)"
