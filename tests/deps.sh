#!/usr/bin/env bash
# The Debian packages that building ssm-sign-proxy and running its demo
# need; installs the missing ones with apt-get (as root, or through sudo)
# and says which. Exits 0 when everything is there.
#
#   ./tests/deps.sh            install what is missing
#   ./tests/deps.sh --check    only list what is missing (exit 1 if any)
set -euo pipefail

PKGS="build-essential autoconf automake libtool pkg-config
      libevent-dev libcurl4-openssl-dev libyaml-dev libjansson-dev libmbedtls-dev libexpat1-dev
      python3 openssl curl ca-certificates"

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
