#!/usr/bin/env bash
# The test command the README gives: install the build and test
# dependencies when missing (tests/deps.sh), configure, build and run the whole
# suite in a build directory of its own (_build, or _build-san with
# --sanitizers), so that it works from a clean checkout.
#
#   ./tests/run.sh                 build + make check
#   ./tests/run.sh --sanitizers    the same under ASan + UBSan
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

./tests/deps.sh
builddir=$(./tests/build.sh "$@")
cd "$builddir"
status=0
make -j"$(nproc)" check || status=$?

# One closing line for every reader: N passed, N failed, N skipped.
pass=$(sed -n 's/^# PASS: *//p' tests/test-suite.log | head -1)
fail=$(sed -n 's/^# FAIL: *//p' tests/test-suite.log | head -1)
xpass=$(sed -n 's/^# XPASS: *//p' tests/test-suite.log | head -1)
errs=$(sed -n 's/^# ERROR: *//p' tests/test-suite.log | head -1)
skip=$(sed -n 's/^# SKIP: *//p' tests/test-suite.log | head -1)
if [ "$status" -ne 0 ]; then
	for f in $(grep -l -E '^(FAIL|ERROR)' tests/*/*.log 2>/dev/null | head -5); do
		echo "===== $f"; tail -n 60 "$f"
	done
fi
echo "${pass:-0} passed, $(( ${fail:-0} + ${xpass:-0} + ${errs:-0} )) failed, ${skip:-0} skipped"
exit "$status"
