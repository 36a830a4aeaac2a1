#!/usr/bin/env python3
"""The deployment zip (`make -C lambda zip`): what it holds, that nothing in
it needs a glibc newer than AL2023's 2.34, that the build refuses one that
does, and that its bootstrap runs from an empty directory with the bundled
libraries."""

import os
import re
import stat
import subprocess
import zipfile

import harness
import lambda_case
from lambda_case import HOST

LAMBDA_BUILD = os.path.join(harness.BUILDDIR, "lambda")
ZIP = os.path.join(LAMBDA_BUILD, "ssm-sign-proxy-function.zip")
MKZIP = os.path.join(harness.SRCDIR, "lambda", "mkzip.sh")
RUNTIME_LIBS = re.compile(r"^(linux-vdso|ld-linux[^/]*|libc|libm|libpthread|libdl|librt|libresolv|libutil|"
                          r"libanl|libnss_[a-z]+|libmvec|libgcc_s)\.so")

_built = None


def _make_env():
    # We may run under `make check`: do not inherit its jobserver.
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def build_zip():
    """Build the zip once per run; skip visibly when this build cannot."""
    global _built
    if _built is None:
        r = subprocess.run(["make", "-C", LAMBDA_BUILD, "zip"], env=_make_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
        _built = (r.returncode, r.stdout.decode("utf-8", "replace"))
        for line in _built[1].splitlines():
            if line.startswith("mkzip:"):
                print(line)
    rc, out = _built
    if rc != 0 and "sanitizer build" in out:
        raise harness.unittest.SkipTest("sanitizer build: the zip is built from a normal build only")
    if rc != 0:
        raise AssertionError("make -C lambda zip failed:\n" + out[-3000:])
    return ZIP


def glibc_needs(path):
    """(version tuple, symbol) of every GLIBC_x.y symbol version path needs."""
    out = subprocess.run(["objdump", "-T", path], stdout=subprocess.PIPE, check=True).stdout.decode()
    needs = []
    for line in out.splitlines():
        if "*UND*" not in line:
            continue
        m = re.search(r"GLIBC_([0-9][0-9.]*)", line)
        if m:
            needs.append((tuple(int(x) for x in m.group(1).split(".")), line.split()[-1]))
    return needs


class TestZipContents(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.zip = build_zip()

    def test_layout_and_modes(self):
        with zipfile.ZipFile(self.zip) as z:
            names = z.namelist()
            info = {i.filename: i for i in z.infolist()}
        size = os.path.getsize(self.zip)
        print("zip: %d bytes, %d entries" % (size, len(names)))
        self.assertIn("bootstrap", names)
        self.assertIn("MANIFEST.txt", names)
        mode = info["bootstrap"].external_attr >> 16
        self.assertTrue(stat.S_ISREG(mode) and mode & 0o111, "bootstrap is not stored executable: %o" % mode)
        libs = [n[4:] for n in names if n.startswith("lib/")]
        self.assertIn("libcurl.so.4", libs)
        self.assertTrue(any(n.startswith("libjansson.so") for n in libs), libs)
        self.assertTrue(any(n.startswith("libmbedcrypto.so") for n in libs), libs)
        for n in libs:
            self.assertIsNone(RUNTIME_LIBS.match(n), "%s is the runtime's, not to be bundled" % n)
        for n in names:
            self.assertTrue(n in ("bootstrap", "MANIFEST.txt") or n.startswith("lib/"), "unexpected %s" % n)
            self.assertFalse(stat.S_ISLNK(info[n].external_attr >> 16), "%s stored as a symlink" % n)
        self.assertLess(size, 20 * 1024 * 1024)

    def test_manifest_names_every_bundled_library(self):
        with zipfile.ZipFile(self.zip) as z:
            manifest = z.read("MANIFEST.txt").decode()
            libs = [n for n in z.namelist() if n.startswith("lib/")]
        self.assertRegex(manifest, r"built: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        lines = {l.split()[0]: l.split() for l in manifest.splitlines() if l.startswith("lib/")}
        self.assertEqual(sorted(lines), sorted(libs))
        dpkg = subprocess.run(["sh", "-c", "command -v dpkg-query"], stdout=subprocess.PIPE).returncode == 0
        for name, fields in lines.items():
            self.assertEqual(len(fields), 5, fields)
            if dpkg:
                self.assertNotEqual(fields[1], "unknown", "no Debian package found for %s" % name)
                self.assertRegex(fields[2], r"^[0-9]", "no version for %s" % name)
        self.assertRegex(manifest, r"lib/libcurl\.so\.4 libcurl4[^ ]* \S+ curl ")

    def test_rpath_and_stripped(self):
        d = self.tmp
        with zipfile.ZipFile(self.zip) as z:
            z.extract("bootstrap", d)
        out = subprocess.run(["readelf", "-d", os.path.join(d, "bootstrap")], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertRegex(out, r"\(RPATH\)\s+Library rpath: \[\$ORIGIN/lib\]")
        secs = subprocess.run(["readelf", "-S", os.path.join(d, "bootstrap")], stdout=subprocess.PIPE,
                              check=True).stdout.decode()
        self.assertNotIn(".symtab", secs, "bootstrap in the zip is not stripped")
        # The build tree's bootstrap (tests, Debian package) has no rpath.
        out = subprocess.run(["readelf", "-d", harness.BOOTSTRAP], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertNotIn("$ORIGIN", out)

    def test_nothing_needs_glibc_newer_than_2_34(self):
        d = self.tmp
        with zipfile.ZipFile(self.zip) as z:
            z.extractall(d)
        checked = 0
        for root, _, files in os.walk(d):
            for f in files:
                if f == "MANIFEST.txt":
                    continue
                p = os.path.join(root, f)
                for ver, sym in glibc_needs(p):
                    self.assertLessEqual(ver, (2, 34), "%s needs %s@GLIBC_%s" % (f, sym, ".".join(map(str, ver))))
                checked += 1
        self.assertGreater(checked, 3)

    def test_build_fails_naming_a_symbol_newer_than_allowed(self):
        out = os.path.join(self.tmp, "x.zip")
        r = subprocess.run(["sh", MKZIP, os.path.join(LAMBDA_BUILD, "bootstrap-zip"), out],
                           env=dict(_make_env(), SSP_ZIP_MAX_GLIBC="2.2.5"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        text = r.stdout.decode("utf-8", "replace")
        self.assertNotEqual(r.returncode, 0, text)
        self.assertRegex(text, r"bootstrap: GLIBC_2\.\d+ \w+")
        self.assertFalse(os.path.exists(out))


class TestZipRuns(lambda_case.FunctionTestCase):
    def test_unpacked_bootstrap_serves_an_invocation(self):
        zpath = build_zip()
        task = os.path.join(self.tmp, "task")
        os.mkdir(task)
        with zipfile.ZipFile(zpath) as z:
            z.extractall(task)
        # zipfile does not restore modes.
        with zipfile.ZipFile(zpath) as z:
            for i in z.infolist():
                os.chmod(os.path.join(task, i.filename), (i.external_attr >> 16) & 0o777)
        self.params(HOST, {"headers/X-Api-Key": "zip-secret-1"})
        # Lambda puts the system's library directories first in
        # LD_LIBRARY_PATH (/lib64:/usr/lib64:...:/var/task/lib); the zip's
        # DT_RPATH is searched before it, so the bundled copies still win.
        # The same here with Debian's directories.
        env = self.function_env(extra={"LAMBDA_TASK_ROOT": task,
                                       "LD_LIBRARY_PATH": "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:"
                                                          + os.path.join(task, "lib")})
        self.start_function(env=env, argv=[os.path.join(task, "bootstrap")], cwd=task)
        resp = self.invoke(self.event())
        self.assertStatus(resp, 200)
        self.assertEqual(self.origin.requests[-1].header("X-Api-Key"), ["zip-secret-1"])
        # The bundled libraries are the ones loaded, not the system's.
        with open("/proc/%d/maps" % self.fn.pid) as f:
            maps = f.read()
        loaded = {line.split()[-1] for line in maps.splitlines() if ".so" in line.split()[-1]}
        curl = [p for p in loaded if os.path.basename(p).startswith("libcurl.so")]
        self.assertEqual(curl, [os.path.join(task, "lib", "libcurl.so.4")], loaded)
        outside = [p for p in loaded if not p.startswith(task + "/")
                   and not RUNTIME_LIBS.match(os.path.basename(p))]
        self.assertEqual(outside, [], "libraries loaded from outside the zip")


if __name__ == "__main__":
    harness.main()
