#!/usr/bin/env python3
"""The installed library as its users get it: `make install DESTDIR=...`,
then a program built out of tree with nothing but
`pkg-config --cflags --libs ssm-sign-proxy` against that copy (the header,
the .pc file, the .so symlinks), run against the stand-in Lambda with the
installed library (not the build tree's); and what else is installed
(ssp-curl, the man pages)."""

import json
import os
import shutil
import subprocess
import tempfile

import harness
import standin_lambda as sl

PROGRAM = r"""
#include <stdio.h>
#include <ssm-sign-proxy.h>

int
main(int argc, char **argv)
{
	char err[256];
	ssp_options *o;
	ssp_client *c;
	ssp_request *req;
	ssp_response *resp;
	ssp_error *e;
	const char *body;
	size_t len;

	if (argc < 2 || ssp_global_init() != 0)
		return 2;
	o = ssp_options_new();
	ssp_options_set_function(o, "signer");
	c = ssp_client_new(o, err, sizeof err);
	ssp_options_free(o);
	if (c == NULL)
		return 2;
	req = ssp_request_new("GET", argv[1]);
	if (ssp_roundtrip(c, req, &resp, &e) != 0) {
		fprintf(stderr, "%d %s\n", ssp_error_status(e), ssp_error_message(e));
		return 1;
	}
	body = ssp_response_body(resp, &len);
	printf("%d %s %.*s\n", ssp_response_status(resp), ssp_version(), (int)len, body);
	ssp_response_free(resp);
	ssp_request_free(req);
	ssp_client_free(c);
	ssp_global_cleanup();
	return 0;
}
"""


class InstallTest(harness.TestCase):

    def test_out_of_tree_program_with_pkg_config(self):
        if shutil.which("pkg-config") is None or shutil.which("cc") is None:
            self.skipTest("pkg-config or cc missing")
        dest = tempfile.mkdtemp(prefix="ssp-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        # Wherever configure's prefix put them: found under DESTDIR.
        subprocess.run(["make", "-C", os.path.join(harness.BUILDDIR, "lib"), "install",
                        "DESTDIR=" + dest], check=True, capture_output=True)
        found = {}
        for d, _, files in os.walk(dest):
            for name in files + [x for x in os.listdir(d) if os.path.islink(os.path.join(d, x))]:
                found.setdefault(name, os.path.join(d, name))
        for name in ("ssm-sign-proxy.h", "ssm-sign-proxy.pc", "libssm-sign-proxy.so",
                     "libssm-sign-proxy.so.0"):
            self.assertIn(name, found, "make install did not install " + name)
        self.assertTrue(os.path.islink(found["libssm-sign-proxy.so"]))
        self.assertNotIn("libsspcore.a", found, "the convenience library was installed")
        pc = found["ssm-sign-proxy.pc"]
        libdir = os.path.dirname(found["libssm-sign-proxy.so.0"])
        incdir = os.path.dirname(found["ssm-sign-proxy.h"])

        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc),
                   PKG_CONFIG_SYSROOT_DIR=dest)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ssm-sign-proxy"], env=env,
                               check=True, capture_output=True, text=True).stdout.split()
        self.assertIn("-lssm-sign-proxy", flags)
        self.assertIn("-I" + incdir, flags)
        work = tempfile.mkdtemp(prefix="ssp-user-")
        self.addCleanup(shutil.rmtree, work, True)
        src = os.path.join(work, "user.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        exe = os.path.join(work, "user")
        # Only the public header's directory: no -I into our tree.
        subprocess.run(["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-o", exe,
                        src] + flags, check=True, capture_output=True)
        # The header is C++-clean too (extern "C", no C-only constructs).
        if shutil.which("g++") is not None:
            cxx = os.path.join(work, "user.cc")
            with open(cxx, "w") as f:
                f.write("#include <ssm-sign-proxy.h>\nint main() { return ssp_global_init(); }\n")
            subprocess.run(["g++", "-Wall", "-Werror", "-fsyntax-only", cxx] + flags, check=True,
                           capture_output=True)

        with sl.StandinLambda() as lam:
            env = harness.clean_env({
                "AWS_ENDPOINT_URL_LAMBDA": lam.url, "AWS_ACCESS_KEY_ID": sl.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": sl.SECRET_KEY, "AWS_REGION": "us-east-1",
                "LD_LIBRARY_PATH": libdir})
            # Sanitizer builds: the runtime must come first; not a user's case.
            if "-fsanitize" in subprocess.run(["sh", "-c", "grep -h '^SAN_CFLAGS =' " +
                                               os.path.join(harness.BUILDDIR, "Makefile")],
                                              capture_output=True, text=True).stdout:
                self.skipTest("the installed copy is a sanitizer build")
            ldd = subprocess.run(["ldd", exe], env=env, capture_output=True, text=True).stdout
            self.assertIn(libdir + "/libssm-sign-proxy.so.0", ldd,
                          "the program does not use the installed library")
            p = subprocess.run([exe, "http://api.example.test/installed"], env=env,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            status, version, body = p.stdout.split(" ", 2)
            self.assertEqual(status, "200")
            self.assertEqual(json.loads(body)["path"], "/installed")
            self.assertEqual(lam.signature_failures, [])


if __name__ == "__main__":
    harness.main()
