#!/bin/sh
# mkzip.sh: build the Lambda deployment package (called by `make zip`).
#
#   mkzip.sh BOOTSTRAP OUTPUT.zip [VERSION]
#
# BOOTSTRAP is the function linked with rpath $ORIGIN/lib (bootstrap-zip).
# The zip holds it as `bootstrap` (stripped) at the root, every shared
# library it needs under lib/ except the ones provided by the
# provided.al2023 runtime itself (glibc's libraries and libgcc_s), and
# MANIFEST.txt naming the Debian package and version of every bundled
# library. The build fails when anything in the zip needs a glibc symbol
# version newer than AL2023's (2.34), naming the file and the symbol,
# because such a zip would fail to start in Lambda while working here.
#
# Environment: SSP_ZIP_MAX_GLIBC (default 2.34), STRIP, OBJDUMP, ZIPCMD,
# SOURCE_DATE_EPOCH (the build date written to the manifest). Not ZIP: zip(1)
# reads $ZIP and $ZIPOPT as default options.
set -eu

die() {
	echo "mkzip: $*" >&2
	exit 1
}

[ $# -ge 2 ] || die "usage: mkzip.sh BOOTSTRAP OUTPUT.zip [VERSION]"
bin=$1
out=$2
version=${3:-unknown}
max_glibc=${SSP_ZIP_MAX_GLIBC:-2.34}
STRIP=${STRIP:-strip}
OBJDUMP=${OBJDUMP:-objdump}
ZIPCMD=${ZIPCMD:-zip}
unset ZIP ZIPOPT

[ -x "$bin" ] || die "$bin: not found or not executable"
for tool in ldd "$STRIP" "$OBJDUMP" "$ZIPCMD"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install binutils zip libc-bin)"
done

# Libraries the Lambda runtime provides: glibc's own and libgcc_s. Bundling
# glibc would pair our libc with AL2023's dynamic loader (which is fixed by
# the kernel's choice of PT_INTERP), and that cannot work.
is_runtime_lib() {
	case "$1" in
	linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | \
		librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*.so.* | \
		libmvec.so.* | libBrokenLocale.so.* | libgcc_s.so.*)
		return 0 ;;
	esac
	return 1
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/ssp-zip.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM
mkdir "$stage/lib"

# A sanitizer build needs its runtime preloaded first and reports to a
# terminal: it is a test build, not something to deploy.
deps=$(ldd "$bin") || die "ldd $bin failed"
if printf '%s\n' "$deps" | grep -qE 'lib(asan|ubsan|tsan|lsan)\.so'; then
	die "$bin is a sanitizer build (configure --enable-sanitizers); build the zip from a normal build"
fi
if printf '%s\n' "$deps" | grep -q 'not found'; then
	die "$bin: missing shared libraries: $(printf '%s\n' "$deps" | grep 'not found' | tr -s ' \t' ' ')"
fi
# ldd prints "name => /path (addr)" or "/path (addr)" (the loader) or
# "name (addr)" (the vDSO).
printf '%s\n' "$deps" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' >"$stage/deps"

cp "$bin" "$stage/bootstrap"
"$STRIP" --strip-all "$stage/bootstrap"
chmod 0755 "$stage/bootstrap"

bundled=""
runtime=""
while read -r name path; do
	if is_runtime_lib "$name"; then
		runtime="$runtime $name"
		continue
	fi
	# Copy the file the soname points to, under the soname: the loader looks
	# for the soname, and zip would store a symlink as a symlink.
	cp -L "$path" "$stage/lib/$name"
	chmod 0644 "$stage/lib/$name"
	bundled="$bundled $name=$path"
done <"$stage/deps"

# No file may need a glibc symbol version newer than the runtime's.
newer=""
for f in "$stage/bootstrap" "$stage"/lib/*; do
	[ -f "$f" ] || continue
	# objdump -T: "... *UND* ... (GLIBC_2.34) __libc_start_main" (the
	# parentheses mark a hidden version; both forms name the version).
	bad=$("$OBJDUMP" -T "$f" | awk -v max="$max_glibc" '
		function newer(v, m,   a, b, na, nb, i, x, y) {
			na = split(v, a, "."); nb = split(m, b, ".")
			for (i = 1; i <= (na > nb ? na : nb); i++) {
				x = (i <= na) ? a[i] + 0 : 0; y = (i <= nb) ? b[i] + 0 : 0
				if (x != y) return x > y
			}
			return 0
		}
		/\*UND\*/ && /GLIBC_/ {
			if (match($0, /GLIBC_PRIVATE/)) { print "GLIBC_PRIVATE " $NF; next }
			if (match($0, /GLIBC_[0-9][0-9.]*/)) {
				v = substr($0, RSTART + 6, RLENGTH - 6)
				if (newer(v, max)) print "GLIBC_" v " " $NF
			}
		}')
	if [ -n "$bad" ]; then
		newer="$newer$(printf '%s\n' "$bad" | sed "s|^|  ${f#"$stage"/}: |")
"
	fi
done
if [ -n "$newer" ]; then
	printf 'mkzip: these symbols need a glibc newer than %s (provided.al2023 has 2.34):\n%s' \
		"$max_glibc" "$newer" >&2
	exit 1
fi

# Which Debian package each library file belongs to. With merged /usr the
# loader's path (/lib/...) and dpkg's record (/usr/lib/...) may differ, and
# the soname is usually a symlink to the versioned file: ask dpkg once about
# every spelling (each dpkg-query reads the whole database).
candidates() {
	real=$(readlink -f "$1")
	for p in "$1" "$real"; do
		printf '%s\n%s\n%s\n' "$p" "/usr$p" "${p#/usr}"
	done
}
: >"$stage/owners"
: >"$stage/versions"
if command -v dpkg-query >/dev/null 2>&1; then
	for nb in $bundled; do
		candidates "${nb#*=}"
	done | sort -u >"$stage/cands"
	# "pkg:arch[, other]: /path"; paths dpkg does not know are reported on
	# stderr and make the exit status 1, which is expected here.
	xargs dpkg-query -S <"$stage/cands" 2>/dev/null | grep -v '^diversion' >"$stage/owners" || true
	sed 's/: .*//; s/,.*//' "$stage/owners" | sort -u |
		xargs -r dpkg-query -W -f='${binary:Package} ${Version} ${source:Package}\n' \
			>"$stage/versions" 2>/dev/null || true
fi
pkg_of() {
	for c in $(candidates "$1"); do
		r=$(awk -v s=": $c" 'substr($0, length($0) - length(s) + 1) == s {
			sub(/: .*/, ""); sub(/,.*/, ""); print; exit }' "$stage/owners")
		if [ -n "$r" ]; then
			printf '%s\n' "$r"
			return 0
		fi
	done
	return 1
}

date_epoch=${SOURCE_DATE_EPOCH:-$(date +%s)}
{
	echo "ssm-sign-proxy Lambda function $version (provided.al2023, x86_64)"
	echo "built: $(date -u -d "@$date_epoch" '+%Y-%m-%dT%H:%M:%SZ') on $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -sr)"
	echo "bootstrap: rpath \$ORIGIN/lib, needs glibc <= $max_glibc"
	echo
	echo "Bundled libraries (lib/): file, Debian package, version, source package, sha256"
	for nb in $bundled; do
		name=${nb%%=*}
		path=${nb#*=}
		if pkg=$(pkg_of "$path"); then
			info=$(awk -v p="$pkg" '$1 == p { print; exit }' "$stage/versions")
			[ -n "$info" ] || info="$pkg unknown unknown"
		else
			info="unknown unknown unknown"
		fi
		sum=$(sha256sum "$stage/lib/$name" | cut -d' ' -f1)
		echo "lib/$name $info $sum"
	done
	echo
	echo "Provided by the Lambda runtime (not bundled):$runtime"
	echo
	echo "To rebuild after a security fix of a bundled library: apt-get upgrade, make lambda-zip,"
	echo "redeploy (doc/lambda-deploy.md)."
} >"$stage/MANIFEST.txt"

case "$out" in
/*) abs_out=$out ;;
*) abs_out=$(pwd)/$out ;;
esac
rm -f "$abs_out"
# -X: no extra attributes (uid/gid, times beyond the basic one); the unix
# mode is kept, so bootstrap stays executable.
(cd "$stage" && "$ZIPCMD" -9 -X -q "$abs_out" bootstrap MANIFEST.txt lib/*) || die "zip failed"
[ -s "$abs_out" ] || die "zip did not write $abs_out"

size=$(wc -c <"$abs_out" | tr -d ' ')
count=$(printf '%s\n' $bundled | grep -c . || true)
echo "mkzip: $out: $size bytes ($((size / 1024)) KiB), bootstrap + $count libraries + MANIFEST.txt"
