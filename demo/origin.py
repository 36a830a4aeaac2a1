"""The demo's HTTPS origin: the test suite's TLS origin (a throwaway test CA
of its own, tests/integration/tls_origin.py) answering every request with
what it received, so that the demo can show the header the function
injected.

    python3 demo/origin.py INFO_FILE

Writes {"port": N, "ca_file": PATH, "pid": PID} to INFO_FILE once it
listens, then serves until SIGTERM or SIGINT (the CA's files are removed
when it exits).
"""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import tls_origin  # noqa: E402


def received(req):
    lines = ["%s %s (TLS, SNI %s)" % (req.method, req.target, req.tls_sni)]
    lines += ["%s: %s" % (k, v) for k, v in req.headers]
    return tls_origin.Response(200, headers=[("Content-Type", "text/plain; charset=utf-8")],
                               body="\n".join(lines) + "\n")


def main():
    info = sys.argv[1]
    # Blocked before the server's threads start (they inherit the mask), so
    # that sigwait() below gets them at once.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    origin = tls_origin.Origin()
    origin.handler = received
    tmp = info + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": origin.port, "ca_file": origin.ca.ca_file, "pid": os.getpid()}, f)
    os.rename(tmp, info)
    signal.sigwait(stop)
    origin.close()


if __name__ == "__main__":
    main()
