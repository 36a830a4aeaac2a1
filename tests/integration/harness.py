"""Shared fixtures for the integration tests (pgbouncer-style: real processes
on loopback, one test file per concern).

Environment (set by tests/Makefile.am, or by hand when running one file):
  SSP_DAEMON     the daemon binary        SSP_BOOTSTRAP  the function binary
  SSP_SRCDIR     the source tree          SSP_BUILDDIR   the build tree
  SSP_SHARED     ../shared (test vectors, ALB samples); may be absent

Run one file by hand:  cd tests && make check TESTS=integration/test_x.py
or:  SSP_DAEMON=... python3 tests/integration/test_x.py -v

A test file calls harness.main(): it runs unittest, prints a closing
"N passed, N failed, N skipped" line and exits 0, 1, or 77 when every test
was skipped (automake then reports SKIP, never PASS).
"""

import http.server
import os
import shutil
import signal
import signal as _signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SRCDIR = os.environ.get("SSP_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("SSP_BUILDDIR", SRCDIR)
DAEMON = os.environ.get("SSP_DAEMON", os.path.join(BUILDDIR, "src", "ssm-sign-proxy"))
BOOTSTRAP = os.environ.get("SSP_BOOTSTRAP", os.path.join(BUILDDIR, "lambda", "bootstrap"))
SHARED = os.environ.get("SSP_SHARED", os.path.join(SRCDIR, "..", "shared"))

# Sanitizer settings for every process a test starts: any report is a failure.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=23:log_exitcode=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=23",
    "LSAN_OPTIONS": "exitcode=23",
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


def copy_daemon(dst):
    """Copy the daemon's executable to dst, to run it from there (a binary
    upgrade test renames files over it). A libtool build leaves a wrapper
    script at DAEMON (the daemon links libssm-sign-proxy.so), which only
    works where it is: copy the real program from .libs instead. Returns
    the environment it needs to find the library of the build."""
    with open(DAEMON, "rb") as f:
        head = f.read(4096)
    real = os.path.join(os.path.dirname(DAEMON), ".libs", os.path.basename(DAEMON))
    if head.startswith(b"#!") and b"libtool" in head and os.path.exists(real):
        shutil.copy2(real, dst)
        return {"LD_LIBRARY_PATH": os.path.join(BUILDDIR, "lib", ".libs")}
    shutil.copy2(DAEMON, dst)
    return {}


def shared_path(*parts):
    """Path under ../shared, or skip the calling test visibly when absent."""
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        raise unittest.SkipTest("../shared is absent (%s): shared test data unavailable" % p)
    return p


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind to 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until something accepts on host:port; fail if proc dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with %s before listening on %s:%d"
                                 % (proc.returncode, host, port))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("nothing listening on %s:%d after %.1fs" % (host, port, timeout))


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def clean_env(extra=None):
    """A minimal environment for a child: no proxies, no AWS settings from the
    developer's shell, sanitizer options on."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(SANITIZER_ENV)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if extra:
        env.update(extra)
    return env


# Scratch directories made by this run: removed by main() when every test
# passed, kept (their logs) when something failed.
_SCRATCH = []


def _scratch_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _SCRATCH.append(d)
    return d


def proc_stat(pid):
    """(state, ppid, comm) of pid from /proc/PID/stat, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        return fields[0], int(fields[1]), comm
    except (OSError, ValueError, IndexError):
        return None


def alive(pid):
    """Is pid a live process (not a zombie)?"""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def proc_children(ppid, zombies=False):
    """[(pid, comm)] of the live (not zombie) children of ppid; with
    zombies=True, of its zombie children."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st is not None and st[1] == ppid and (st[0] == "Z") == zombies:
            out.append((int(d), st[2]))
    return out


def workers_of(pid):
    """The daemon's live worker processes (children named ssp-worker)."""
    return sorted(p for p, comm in proc_children(pid) if comm == "ssp-worker")


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server for stand-ins on loopback: daemon threads,
    quiet on client errors, and TCP_NODELAY on every accepted socket (a
    head and a body written separately otherwise wait 40 ms for Nagle and
    the client's delayed ACK)."""
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


class Proc:
    """A child process whose stderr goes to a file, checked for sanitizer
    reports when it is stopped."""

    def __init__(self, argv, env=None, cwd=None, name=None, logdir=None):
        self.argv = list(argv)
        self.name = name or os.path.basename(argv[0])
        self.logdir = logdir or _scratch_dir("ssp-log-")
        # A name of its own even for two processes started in the same
        # millisecond: a shared file would lose one's output (and its
        # sanitizer reports).
        fd, self.log_path = tempfile.mkstemp(prefix="%s-%d-" % (self.name, int(time.time() * 1000) % 10**8),
                                             suffix=".log", dir=self.logdir)
        self.log = os.fdopen(fd, "wb")
        self.p = subprocess.Popen(self.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                  stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.p.pid

    def poll(self):
        return self.p.poll()

    @property
    def returncode(self):
        return self.p.returncode

    def output(self):
        # stop() closes the log; reading it afterwards (sanitizer checks) is fine.
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def wait(self, timeout=10.0):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=_signal.SIGTERM, timeout=10.0):
        """Stop gracefully; kill the whole group if it does not go. Returns
        the exit code (None if it had to be killed)."""
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
                self.log.close()
                return None
        # Children of the group (workers) must be gone too.
        try:
            os.killpg(self.p.pid, 0)
            time.sleep(0.2)
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()
        return self.p.returncode

    def sanitizer_reports(self):
        out = self.output()
        return [line for line in out.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


class TestCase(unittest.TestCase):
    """Base class: tracks processes and temp dirs and cleans them up; fails a
    test whose processes printed a sanitizer report."""

    def setUp(self):
        self._procs = []
        self.tmp = _scratch_dir("ssp-test-")

    def start(self, argv, **kw):
        kw.setdefault("logdir", self.tmp)
        p = Proc(argv, **kw)
        self._procs.append(p)
        return p

    def tearDown(self):
        reports = []
        for p in reversed(self._procs):
            p.stop()
            reports += ["%s: %s" % (p.name, r) for r in p.sanitizer_reports()]
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports[:20]))


class _Result(unittest.TextTestResult):
    pass


def main():
    """Run the calling module's tests; exit 0/1, or 77 when all skipped."""
    verbosity = 2
    loader = unittest.TestLoader()
    module = sys.modules["__main__"]
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        suite = loader.loadTestsFromNames(sys.argv[1:], module)
    else:
        suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout, resultclass=_Result)
    result = runner.run(suite)
    # Count tests, not reports: one test can fail in several subTests
    # (each a report of the same test), and a setUpClass error is a report
    # for no test at all.
    def test_id(t):
        return getattr(t, "test_case", t).id()
    bad = {test_id(t) for t, _ in result.failures + result.errors}
    bad |= {test_id(t) for t in result.unexpectedSuccesses}
    failed = len(bad)
    skipped = len({test_id(t) for t, _ in result.skipped} - bad)
    passed = max(result.testsRun - failed - skipped, 0)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.stdout.flush()
    if not failed:
        for d in _SCRATCH:
            shutil.rmtree(d, ignore_errors=True)
    if failed:
        sys.exit(1)
    if result.testsRun > 0 and skipped == result.testsRun:
        sys.exit(77)
    if result.testsRun == 0:
        print("no tests ran")
        sys.exit(1)
    sys.exit(0)
