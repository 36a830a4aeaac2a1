"""Composable configuration: include: (files and globs, merge order, the
including file winning), ${VAR} / ${VAR:-default} substitution, -T printing
the effective configuration (which -t accepts and -T prints identically),
and errors that name the file and line a value came from.

Only -t/-T run here: nothing is bound.
"""

import os
import subprocess
import unittest

import harness


def run(*args, env=None):
    p = subprocess.run([harness.DAEMON] + list(args), env=env or harness.clean_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def dump_value(out, key):
    """The value of a top-level or dotted (block.key) key in -T's output."""
    block, _, leaf = key.rpartition(".")
    inside = block == ""
    for line in out.splitlines():
        if not line.startswith(" "):
            inside = block == "" or line == block + ":"
            if block == "" and line.startswith(leaf + ":"):
                return line.split(":", 1)[1].strip()
            continue
        if inside and block and line.startswith("  " + leaf + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in -T output" % key)


class ConfigCompose(harness.TestCase):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def dump(self, path, env=None, rc=0):
        code, out, err = run("-T", "-c", path, env=env)
        self.assertEqual(code, rc, "exit status (stdout %r, stderr %r)" % (out, err))
        for marker in harness.SANITIZER_MARKERS:
            self.assertNotIn(marker, err)
        return out, err

    def test_include_order_and_merge(self):
        self.write("conf.d/20-b.yaml", "workers: 4\ntimeouts:\n  connect: 3\n"
                   "cache:\n  hosts:\n    b.example: 7\n")
        self.write("conf.d/10-a.yaml", "workers: 3\nregion: eu-west-1\ntimeouts:\n  invoke: 9\n"
                   "cache:\n  hosts:\n    a.example: 5\n    b.example: 1\n"
                   "local_function:\n  environment:\n    A: from-a\n    B: from-a\n")
        self.write("conf.d/ignored.txt", "workers: 99\n")
        main = self.write("main.yaml", "include: conf.d/*.yaml\nregion: us-east-2\n"
                          "local_function:\n  environment:\n    B: from-main\n")
        out, _ = self.dump(main)
        self.assertEqual(dump_value(out, "workers"), "4")              # later file wins
        self.assertEqual(dump_value(out, "region"), '"us-east-2"')     # including file wins
        self.assertEqual(dump_value(out, "timeouts.invoke"), "9")      # blocks merge
        self.assertEqual(dump_value(out, "timeouts.connect"), "3")
        self.assertIn('    "a.example":\n      ttl: 5\n', out)             # maps merge
        self.assertIn('    "b.example":\n      ttl: 7\n', out)
        self.assertIn('    A: "from-a"\n', out)
        self.assertIn('    B: "from-main"\n', out)
        self.assertNotIn("include", out.split("\n", 2)[2])

    def test_include_list_and_nested(self):
        self.write("x/inner.yaml", "workers: 5\n")
        self.write("x/outer.yaml", "include: inner.yaml\nlog_level: debug\n")  # relative to x/
        main = self.write("main.yaml", "include: [x/outer.yaml, x/nothing-*.yaml]\n")
        out, _ = self.dump(main)
        self.assertEqual(dump_value(out, "workers"), "5")
        self.assertEqual(dump_value(out, "log_level"), "debug")

    def test_include_errors_name_file_and_line(self):
        inc = self.write("conf.d/10-bad.yaml", "workers: 2\ntimeouts:\n  invoke: soon\n")
        main = self.write("main.yaml", "workers: 2\ninclude:\n  - conf.d/*.yaml\n")
        _, err = self.dump(main, rc=1)
        self.assertIn("%s:3: timeouts.invoke: expected a duration" % inc, err)

        main = self.write("main2.yaml", "include: [absent.yaml]\n")
        _, err = self.dump(main, rc=1)
        self.assertIn("%s:1: include: " % main, err)
        self.assertIn("absent.yaml", err)

        # A cross-key check names the file whose value broke it.
        inc = self.write("d2/x.yaml", "\ntimeouts:\n  connect: 50\n")
        main = self.write("main3.yaml", "include: d2/x.yaml\n")
        _, err = self.dump(main, rc=1)
        self.assertIn("%s:3: timeouts.connect: " % inc, err)

        # Twice in one file is a mistake even with includes around.
        main = self.write("main4.yaml", "include: d2/*.none\nworkers: 2\nworkers: 3\n")
        _, err = self.dump(main, rc=1)
        self.assertIn("%s:3: workers: duplicate key" % main, err)

        # An include loop ends with an error, not a hang.
        loop = self.write("loop.yaml", "include: loop.yaml\n")
        _, err = self.dump(loop, rc=1)
        self.assertIn("nested more than", err)

    def test_substitution(self):
        env = harness.clean_env({"SSP_FN": "fn-from-env", "SSP_EMPTY": ""})
        main = self.write("main.yaml",
                          "function_name: ${SSP_FN}\n"
                          "region: ${SSP_UNSET_REGION:-ap-south-1}\n"
                          "log_level: ${SSP_EMPTY:-warn}\n"
                          "local_function:\n  environment:\n    X: \"a${SSP_FN}b $${LITERAL}\"\n")
        out, _ = self.dump(main, env=env)
        self.assertEqual(dump_value(out, "function_name"), '"fn-from-env"')
        self.assertEqual(dump_value(out, "region"), '"ap-south-1"')
        self.assertEqual(dump_value(out, "log_level"), "warn")
        self.assertIn('    X: "afn-from-envb $${LITERAL}"\n', out)

        main = self.write("bad.yaml", "workers: 2\ntimeouts:\n  invoke: ${SSP_NOT_SET_ANYWHERE}\n")
        _, err = self.dump(main, env=env, rc=1)
        self.assertIn("%s:3: timeouts.invoke: ${SSP_NOT_SET_ANYWHERE}" % main, err)
        self.assertIn("not set", err)

        main = self.write("bad2.yaml", "region: ${SSP_FN\n")
        _, err = self.dump(main, env=env, rc=1)
        self.assertIn("%s:1: region: " % main, err)

    def test_dump_round_trip(self):
        self.write("conf.d/a.yaml", "cache:\n  ttl: 30\n  hosts:\n    api.example.com: {ttl: 5, private: true}\n")
        main = self.write("main.yaml",
                          "include: [conf.d/*.yaml]\n"
                          "function_name: arn:aws:lambda:eu-west-1:123456789012:function:f:live\n"
                          "listen: [127.0.0.1:18001, '[::1]:18002']\n"
                          "allow: [10.0.0.0/8, ::1, 192.0.2.7]\n"
                          "workers: auto\n"
                          "access_log_format: json\nlog_format: json\n"
                          "timeouts: {invoke: 1500ms, connect: 250ms, keepalive: 0}\n"
                          "limits: {max_body: 1M}\n"
                          "admin:\n  listen: 127.0.0.1:19180\n  metrics_hosts: [API.example.com]\n"
                          "local_function:\n  environment:\n    Q: 'quote \" back \\\\ ${HOME}'\n")
        first, _ = self.dump(main)
        again = self.write("again.yaml", first)
        second, _ = self.dump(again)
        self.assertEqual(first, second)
        code, out, err = run("-t", "-c", again)
        self.assertEqual(code, 0, err)
        # Every key is written out, defaults too.
        for key in ("timeouts.shutdown", "retry.attempts", "credentials.refresh_ahead",
                    "cache.lock_timeout", "admin.ready_invocations", "log", "user"):
            dump_value(first, key)
        self.assertEqual(dump_value(first, "timeouts.invoke"), "1.5")
        self.assertEqual(dump_value(first, "admin.metrics_hosts"), '["api.example.com"]')
        self.assertEqual(dump_value(first, "allow"), '["10.0.0.0/8", "::1/128", "192.0.2.7/32"]')


if __name__ == "__main__":
    harness.main()
