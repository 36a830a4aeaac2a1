#!/usr/bin/env bash
# Build the Debian packages from a clean export of the current commit (as
# a package builder would from a clean checkout), then run lintian.
#
#   tests/package/build-deb.sh OUTDIR      .deb files end up in OUTDIR
#
# DEB_BUILD_OPTIONS is passed through (CI uses nocheck: it has already run
# the suite). Needs: dpkg-dev, debhelper, lintian and the Build-Depends.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-deb.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d /tmp/ssp-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/ssm-sign-proxy"
# The committed tree only: what a clean checkout has.
git -C "$top" archive --format=tar HEAD | tar -x -C "$work/ssm-sign-proxy"

cd "$work/ssm-sign-proxy"
echo "build-deb: dpkg-buildpackage (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-})"
dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || {
	tail -n 80 "$work/build.log"
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
}
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
ls -l "$out"/*.deb

echo "build-deb: lintian"
# Errors and warnings fail; overrides live in debian/*.lintian-overrides.
lintian --fail-on error,warning --tag-display-limit 0 "$out"/*.changes
echo "build-deb: lintian clean"

if command -v systemd-analyze >/dev/null 2>&1; then
	echo "build-deb: systemd-analyze verify"
	unit="$work/unit/ssm-sign-proxy.service"
	mkdir -p "$work/unit"
	cp debian/ssm-sign-proxy.service "$unit"
	# verify needs the binaries the unit names to exist: check against the
	# package's own files, unpacked.
	dpkg-deb -x "$out"/ssm-sign-proxy_*.deb "$work/root"
	sed -i "s#/usr/sbin/ssm-sign-proxy#$work/root/usr/sbin/ssm-sign-proxy#g" "$unit"
	SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$unit" 2>&1 | tee "$work/verify.log"
	if grep -v -e 'Failed to connect' -e 'not running as PID 1' "$work/verify.log" | grep -qi -e error -e warn -e 'is not'; then
		echo "build-deb: systemd-analyze verify reported problems" >&2
		exit 1
	fi
fi
