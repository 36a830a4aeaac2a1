"""The daemon's command line: -t (exit codes and messages), -V, -h, the
original Go tool's flags in all their spellings, and usage errors (exit 2).

Only -t runs here, so no port is bound: every address below is checked,
never listened on.
"""

import os
import re
import subprocess
import unittest

import harness

PLACEHOLDER_CONF = os.path.join(harness.SRCDIR, "conf", "ssm-sign-proxy.yaml")


def run(*args, env=None, timeout=10):
    p = subprocess.run([harness.DAEMON] + list(args), env=env or harness.clean_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def no_sanitizer_report(tc, out):
    bad = [l for l in out.splitlines() if any(m in l for m in harness.SANITIZER_MARKERS)]
    tc.assertEqual(bad, [], "sanitizer report")


class ConfigCli(harness.TestCase):
    def setUp(self):
        super().setUp()
        if not os.access(harness.DAEMON, os.X_OK):
            self.fail("daemon not built: %s" % harness.DAEMON)

    def conf(self, text, name="c.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, *args, rc):
        code, out, err = run(*args)
        no_sanitizer_report(self, out + err)
        self.assertEqual(code, rc, "exit status of %s (stdout %r, stderr %r)" % (args, out, err))
        return out, err

    def default_path(self):
        out, _ = self.check("-h", rc=0)
        m = re.search(r"default (/\S+\.yaml)", out)
        self.assertIsNotNone(m, "-h names the default file: %r" % out)
        return m.group(1)

    # -V and -h

    def test_version(self):
        for flag in ("-V", "--version"):
            out, err = self.check(flag, rc=0)
            self.assertRegex(out, r"^ssm-sign-proxy \d+\.\d+\.\d+\S*\n")
            # Each library: the version running and the one built against.
            for lib in ("libevent", "libcurl", "jansson", "libyaml", "mbedTLS"):
                self.assertRegex(out, r"\n  %s \d+\.\d+\S*.* \(built with \d+\.\d+\S*\)\n"
                                 % lib)
            self.assertRegex(out, r"libcurl .*, TLS \S+")
            self.assertEqual(err, "")

    def test_help(self):
        for flag in ("-h", "--help", "-help"):
            out, err = self.check(flag, rc=0)
            self.assertIn("usage: ssm-sign-proxy", out)
            for opt in ("-c FILE", "-t", "-V", "-function-name", "-address"):
                self.assertIn(opt, out)

    # usage errors: exit 2, the usage on stderr

    def test_unknown_flag(self):
        out, err = self.check("-bogus", rc=2)
        self.assertIn("-bogus", err)
        self.assertIn("usage:", err)
        self.assertEqual(out, "")

    def test_flag_without_value(self):
        for flag in ("-c", "-address", "--function-name"):
            _, err = self.check(flag, rc=2)
            self.assertIn(flag.lstrip("-"), err)

    def test_stray_argument(self):
        _, err = self.check("-t", "extra", rc=2)
        self.assertIn("extra", err)

    # -t

    def test_valid_file(self):
        path = self.conf("function_name: my-function\nlisten: 127.0.0.1:%d\n" % harness.free_port())
        out, err = self.check("-t", "-c", path, rc=0)
        self.assertNotIn("warning", err)

    def test_shipped_file_warns_placeholder(self):
        _, err = self.check("-t", "-c", PLACEHOLDER_CONF, rc=0)
        self.assertIn("warning", err)
        self.assertIn("function_name", err)

    def test_errors_name_file_line_key(self):
        cases = [
            ("workers: 2\ntimeouts:\n  invok: 3\n", r"c\.yaml:3: timeouts\.invok: unknown key"),
            ("listen: [1,\nworkers: 2\n", r"c\.yaml:\d+: YAML"),
            ("workers: 0\n", r"c\.yaml:1: workers: .*range"),
            ("timeouts:\n  invoke: soon\n", r"c\.yaml:2: timeouts\.invoke: expected a duration"),
            ("listen: 127.0.0.1\n", r"c\.yaml:1: listen: .*port"),
            ("allow: [10.0.0.0/40]\n", r"c\.yaml:1: allow: .*prefix"),
            ("listen: 0.0.0.0:8000\n", r"c\.yaml:1: listen: .*allow"),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                path = self.conf(text)
                out, err = self.check("-t", "-c", path, rc=1)
                self.assertRegex(err, want)
                self.assertIn(path, err)

    def test_missing_file_given(self):
        path = os.path.join(self.tmp, "absent.yaml")
        _, err = self.check("-t", "-c", path, rc=1)
        self.assertIn(path, err)
        # With the Go flags too: a file named with -c must exist.
        _, err = self.check("-t", "-c", path, "-function-name", "f", rc=1)
        self.assertIn(path, err)

    def test_missing_default_file(self):
        default = self.default_path()
        if os.path.exists(default):
            self.skipTest("%s exists on this machine" % default)
        _, err = self.check("-t", rc=1)
        self.assertIn(default, err)
        # The Go tool's flags alone are enough: the default file may be absent.
        port = harness.free_port()
        self.check("-t", "-function-name=f", "-address=localhost:%d" % port, rc=0)
        self.check("-t", "-function-name", "f", rc=0)
        self.check("-t", "-addr", "127.0.0.1:%d" % port, rc=0)

    def test_go_flag_spellings(self):
        path = self.conf("function_name: file-function\n")
        port = harness.free_port()
        for args in (["-function-name", "f", "-address", "127.0.0.1:%d" % port],
                     ["-function-name=f", "-address=127.0.0.1:%d" % port],
                     ["--function-name", "f", "--addr", "127.0.0.1:%d" % port],
                     ["--function-name=f", "--addr=127.0.0.1:%d" % port],
                     ["-addr=[::1]:%d" % port]):
            with self.subTest(args=args):
                self.check("-t", "-c", path, *args, rc=0)

    def test_flags_are_checked(self):
        path = self.conf("function_name: file-function\n")
        _, err = self.check("-t", "-c", path, "-address", "127.0.0.1", rc=1)
        self.assertIn("-address", err)
        _, err = self.check("-t", "-c", path, "-function-name=bad/name", rc=1)
        self.assertIn("-function-name", err)

    def test_all_interfaces_needs_allow(self):
        path = self.conf("function_name: f\n")
        _, err = self.check("-t", "-c", path, "-address=:8000", rc=1)
        self.assertIn("allow", err)
        path = self.conf("function_name: f\nallow: [10.0.0.0/8, 127.0.0.1]\n", "allow.yaml")
        self.check("-t", "-c", path, "-address=:8000", rc=0)

    def test_file_overridden_by_flags(self):
        # The file's function is the placeholder (a warning); the flag sets it.
        _, err = self.check("-t", "-c", PLACEHOLDER_CONF, "-function-name=f", rc=0)
        self.assertNotIn("warning", err)


if __name__ == "__main__":
    harness.main()
