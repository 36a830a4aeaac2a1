#!/usr/bin/env bash
# The Debian packages that building ssm-sign-proxy, running its tests and
# its demo need; installs the missing ones with apt-get (as root, or
# through sudo) and says which. Exits 0 when everything is there.
#
#   ./tests/deps.sh            install what is missing
#   ./tests/deps.sh --check    only list what is missing (exit 1 if any)
set -euo pipefail

# nginx is the reference of test_frontdoor.py's differential run, started
# there unprivileged on loopback with a prefix of its own.
PKGS="build-essential autoconf automake libtool pkg-config
      libevent-dev libcurl4-openssl-dev libyaml-dev libjansson-dev libmbedtls-dev libexpat1-dev zlib1g-dev
      python3 openssl curl ca-certificates zip unzip binutils
      prometheus nginx"

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: not a Debian system (no dpkg/apt-get): install the equivalents of" >&2
	echo "deps:   $(echo $PKGS)" >&2
	echo "deps: and run again" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# The integration tests' Python side: requests (clients through the proxy)
# and botocore (the independent SigV4 check). Debian's packages when the
# python3 on PATH lacks them (moto, when absent, makes its tests skip).
# With no python3 at all (a minimal image), Debian's python3 is about to be
# installed and needs them just as much.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import botocore, requests' >/dev/null 2>&1; then
	missing="$missing python3-botocore python3-requests"
fi
if [ -z "$missing" ]; then
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "deps: missing:$missing"
	exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "deps: these packages are missing:$missing" >&2
	echo "deps: run as root: apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing the build dependencies:$missing${sudo:+ (with sudo)}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing
