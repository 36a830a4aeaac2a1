"""-t as a safe gate (issue 11): what a configuration needs from the machine
is checked (pid file directory, access log, CA bundle, the local function's
command, the parameters file its environment names), and every problem is
reported, one "FILE:LINE: KEY: message" line each, in one run.

Only -t runs here: nothing is bound or started.
"""

import os
import stat

import harness
from test_config_cli import no_sanitizer_report, run


class ConfigCheck(harness.TestCase):
    def conf(self, text, name="c.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, path, rc, env=None):
        e = harness.clean_env()
        e.update(env or {})
        code, out, err = run("-t", "-c", path, env=e)
        no_sanitizer_report(self, out + err)
        self.assertEqual(code, rc, "exit status (stdout %r, stderr %r)" % (out, err))
        return out, err

    def problems(self, err):
        return [l[len("ssm-sign-proxy: "):] for l in err.splitlines()
                if l.startswith("ssm-sign-proxy: ") and "warning:" not in l]

    def test_all_problems_in_one_run(self):
        """Key errors, cross-key checks and machine checks, all reported, in
        file order within each kind, each with file, line and key."""
        path = self.conf(
            "function_name: f\n"                       # 1
            "pid_file: /nonexistent/run/x.pid\n"      # 2
            "bogus: 1\n"                              # 3
            "timeouts:\n"                             # 4
            "  invoke: 1\n"                           # 5
            "  connect: 5\n"                          # 6
            "  client_body: abc\n"                    # 7
            "workers: 0\n"                            # 8
            "access_log: /nonexistent/log/a.log\n"    # 9
        )
        out, err = self.check(path, rc=1)
        self.assertEqual(out, "")
        got = self.problems(err)
        want = [
            (3, "bogus", "unknown key"),
            (7, "timeouts.client_body", "expected a duration"),
            (8, "workers", ""),
            (6, "timeouts.connect", "must not exceed timeouts.invoke"),
            (2, "pid_file", "directory /nonexistent/run"),
            (9, "access_log", "directory /nonexistent/log"),
        ]
        self.assertEqual(len(got), len(want), err)
        for line, (n, key, text) in zip(got, want):
            self.assertTrue(line.startswith("%s:%d: %s: " % (path, n, key)), line)
            self.assertIn(text, line)

    def test_pid_file_directory_not_writable(self):
        d = os.path.join(self.tmp, "ro")
        os.mkdir(d)
        os.chmod(d, 0o555)
        path = self.conf("function_name: f\npid_file: %s/x.pid\n" % d)
        if os.geteuid() == 0:
            # root writes anywhere: a file where the directory should be.
            open(os.path.join(self.tmp, "file"), "w").close()
            path = self.conf("function_name: f\npid_file: %s/file/x.pid\n" % self.tmp)
            _, err = self.check(path, rc=1)
            self.assertIn("%s:2: pid_file: %s/file is not a directory" % (path, self.tmp), err)
        else:
            _, err = self.check(path, rc=1)
            self.assertIn("%s:2: pid_file: directory %s is not writable" % (path, d), err)

    def test_good_files_pass(self):
        run_dir = os.path.join(self.tmp, "run")
        os.mkdir(run_dir)
        log = os.path.join(self.tmp, "access.log")
        open(log, "w").close()
        path = self.conf("function_name: f\npid_file: %s/x.pid\naccess_log: %s\n"
                         % (run_dir, log))
        out, _ = self.check(path, rc=0)
        self.assertIn("ok", out)
        # -t creates nothing.
        self.assertEqual(os.listdir(run_dir), [])

    def test_access_log_is_a_directory(self):
        path = self.conf("function_name: f\naccess_log: %s\n" % self.tmp)
        _, err = self.check(path, rc=1)
        self.assertIn("%s:2: access_log: %s is a directory" % (path, self.tmp), err)

    def test_ca_bundle_unreadable(self):
        path = self.conf("function_name: f\n")
        missing = os.path.join(self.tmp, "no-ca.pem")
        _, err = self.check(path, rc=1, env={"AWS_CA_BUNDLE": missing})
        self.assertIn("environment: AWS_CA_BUNDLE: %s: cannot read" % missing, err)
        ca = os.path.join(self.tmp, "ca.pem")
        open(ca, "w").close()
        self.check(path, rc=0, env={"AWS_CA_BUNDLE": ca})

    def test_local_function_command(self):
        missing = os.path.join(self.tmp, "missing-fn")
        path = self.conf("local_function:\n  command: %s\n" % missing)
        _, err = self.check(path, rc=1)
        self.assertIn("%s:2: local_function.command: %s: No such file or directory"
                      % (path, missing), err)
        noexec = os.path.join(self.tmp, "noexec-fn")
        with open(noexec, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(noexec, 0o644)
        path = self.conf("local_function:\n  command: %s\n" % noexec)
        _, err = self.check(path, rc=1)
        self.assertIn("%s:2: local_function.command: %s is not executable" % (path, noexec),
                      err)
        path = self.conf("local_function:\n  command: %s\n" % self.tmp)
        _, err = self.check(path, rc=1)
        self.assertIn("is not a regular file", err)
        os.chmod(noexec, 0o755)
        path = self.conf("local_function:\n  command: %s\n" % noexec)
        self.check(path, rc=0)

    def test_parameters_file_mode(self):
        fn = os.path.join(self.tmp, "fn")
        with open(fn, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(fn, 0o755)
        params = os.path.join(self.tmp, "params.json")
        with open(params, "w") as f:
            f.write("{}")
        os.chmod(params, 0o644)
        path = self.conf("local_function:\n  command: %s\n  environment:\n"
                         "    SSM_SIGN_PROXY_PARAMETERS_FILE: %s\n" % (fn, params))
        _, err = self.check(path, rc=1)
        self.assertIn("local_function.environment.SSM_SIGN_PROXY_PARAMETERS_FILE: %s has mode "
                      "0644" % params, err)
        os.chmod(params, stat.S_IRUSR | stat.S_IWUSR)
        self.check(path, rc=0)
        os.unlink(params)
        _, err = self.check(path, rc=1)
        self.assertIn("%s: No such file or directory" % params, err)

    def test_unknown_user(self):
        path = self.conf("function_name: f\nuser: no-such-user-h11\n")
        _, err = self.check(path, rc=1)
        self.assertIn('%s:2: user: no such user "no-such-user-h11"' % path, err)

    def test_bad_listen_address_with_others(self):
        path = self.conf("function_name: f\nlisten: 127.0.0.1:99999\nworkers: many\n")
        _, err = self.check(path, rc=1)
        got = self.problems(err)
        self.assertEqual(len(got), 2, err)
        self.assertTrue(got[0].startswith("%s:2: listen: " % path), got)
        self.assertTrue(got[1].startswith("%s:3: workers: " % path), got)


if __name__ == "__main__":
    harness.main()
