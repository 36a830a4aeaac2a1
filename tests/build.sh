#!/usr/bin/env bash
# The build step shared by tests/run.sh and demo.sh: autoreconf when needed,
# configure once, make, in a build directory of its own (_build, or
# _build-san with --sanitizers). Prints the build directory's path.
#
#   ./tests/build.sh                 build in _build
#   ./tests/build.sh --sanitizers    build in _build-san (ASan + UBSan)
#   ./tests/build.sh --tsan          build in _build-tsan (ThreadSanitizer)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

builddir=_build
confargs=()
cflags="-O2 -g"
if [ "${1:-}" = "--sanitizers" ]; then
	builddir=_build-san
	confargs+=(--enable-sanitizers)
	# As .ci/run builds it: gcc's format and bounds warnings differ at -O1.
	cflags="-O1 -g"
elif [ "${1:-}" = "--tsan" ]; then
	builddir=_build-tsan
	confargs+=(--enable-sanitizers=thread)
	cflags="-O1 -g"
fi

# autoreconf's chatter ("installing 'build-aux/...'") only when it fails.
if ! { [ -x configure ] && [ configure -nt configure.ac ]; }; then
	if ! out=$(autoreconf -fi 2>&1); then
		printf '%s\n' "$out" >&2
		exit 1
	fi
fi
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ] || [ ../configure -nt config.status ]; then
	../configure -q "${confargs[@]}" CFLAGS="${CFLAGS:-$cflags}" >&2
fi
# ARFLAGS: binutils warns about automake's default "cru" (u is ignored).
make -j"$(nproc)" ARFLAGS=cr >/dev/null
pwd
