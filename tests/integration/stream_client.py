"""A client that reads a streamed response through the daemon as it comes:
the head, then a chunked (HTTP/1.1) or close-delimited (HTTP/1.0) body
hashed piece by piece, noting when the first body byte arrived, whether the
response ended properly (the chunked terminator, or the close of a
close-delimited one) and how much came. It can read slowly, to test flow
control."""

import hashlib
import socket
import time


class Streamed:
    def __init__(self):
        self.status = None
        self.headers = []
        self.version = None
        self.length = 0
        self.sha256 = None
        self.body = b""          # kept only when keep=True
        self.complete = False    # the chunked terminator (or the close of a 1.0 body) came
        self.sent_at = None
        self.head_at = None
        self.first_byte_at = None
        self.end_at = None
        self.error = None        # why reading stopped early

    def header(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    @property
    def ttfb(self):
        """Seconds from the request to the first body byte (None without one)."""
        if self.first_byte_at is None:
            return None
        return self.first_byte_at - self.sent_at


def fetch(host, port, url, version="1.1", method="GET", keep=False, timeout=30.0, rcvbuf=None,
          read_size=65536, pause=0.0, on_first_byte=None, extra_headers=()):
    """Send one proxy request (absolute-form url) and read the answer as it
    streams. pause: seconds to sleep after each read of read_size bytes (a
    slow reader); rcvbuf: SO_RCVBUF to set before connecting."""
    out = Streamed()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((host, port))
    hostname = url.split("/")[2]
    req = "%s %s HTTP/%s\r\nHost: %s\r\n" % (method, url, version, hostname)
    for k, v in extra_headers:
        req += "%s: %s\r\n" % (k, v)
    req += "\r\n"
    buf = b""
    sha = hashlib.sha256()
    kept = []

    def fill():
        nonlocal buf
        data = sock.recv(read_size)
        if pause:
            time.sleep(pause)
        if not data:
            return False
        buf += data
        return True

    def body(data):
        if not data:
            return
        if out.first_byte_at is None:
            out.first_byte_at = time.monotonic()
            if on_first_byte is not None:
                on_first_byte()
        out.length += len(data)
        sha.update(data)
        if keep:
            kept.append(data)

    try:
        out.sent_at = time.monotonic()
        sock.sendall(req.encode("latin-1"))
        while b"\r\n\r\n" not in buf:
            if not fill():
                raise EOFError("closed before the response head")
        head, _, buf = buf.partition(b"\r\n\r\n")
        out.head_at = time.monotonic()
        lines = head.decode("latin-1").split("\r\n")
        out.version, status = lines[0].split(" ")[:2]
        out.status = int(status)
        for line in lines[1:]:
            k, _, v = line.partition(":")
            out.headers.append((k.strip(), v.strip()))
        te = ",".join(out.header("Transfer-Encoding")).lower()
        cl = out.header("Content-Length")
        if method == "HEAD" or out.status in (204, 304):
            out.complete = True
        elif "chunked" in te:
            while True:
                while b"\r\n" not in buf:
                    if not fill():
                        raise EOFError("closed inside a chunk size line")
                line, _, buf = buf.partition(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while b"\r\n" not in buf:
                        if not fill():
                            raise EOFError("closed inside the trailers")
                    out.complete = True
                    break
                while size > 0:
                    if not buf and not fill():
                        raise EOFError("closed inside a chunk")
                    take = buf[:size]
                    body(take)
                    size -= len(take)
                    buf = buf[len(take):]
                while len(buf) < 2:
                    if not fill():
                        raise EOFError("closed after a chunk")
                buf = buf[2:]
        elif cl:
            n = int(cl[0])
            while n > 0:
                if not buf and not fill():
                    raise EOFError("closed %d bytes short of Content-Length" % n)
                take = buf[:n]
                body(take)
                n -= len(take)
                buf = buf[len(take):]
            out.complete = True
        else:
            body(buf)
            buf = b""
            while fill():
                body(buf)
                buf = b""
            out.complete = True
    except (EOFError, ConnectionResetError, socket.timeout) as e:
        out.error = "%s: %s" % (type(e).__name__, e)
    finally:
        out.end_at = time.monotonic()
        sock.close()
    out.sha256 = sha.hexdigest()
    out.body = b"".join(kept)
    return out


def rss_kb(pid):
    """The resident set of a process, kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pattern(total, piece=65536):
    """(generator of deterministic non-repeating pieces, their sha256) for
    a body of total bytes, computed without holding it."""
    sha = hashlib.sha256()
    n = 0
    i = 0
    while n < total:
        block = (hashlib.sha256(b"%d" % i).digest() * (piece // 32 + 1))[:min(piece, total - n)]
        sha.update(block)
        n += len(block)
        i += 1
    digest = sha.hexdigest()

    def gen():
        m = 0
        j = 0
        while m < total:
            block = (hashlib.sha256(b"%d" % j).digest() * (piece // 32 + 1))[:min(piece, total - m)]
            m += len(block)
            j += 1
            yield block
    return gen, digest


def sanitized(pid):
    """Does the process run under AddressSanitizer? Its allocator keeps
    freed memory in a quarantine, so resident-memory bounds only hold for
    the plain build."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def assert_flat(tc, pid, grew_kb, limit_kb, what):
    """Fail when the process grew by limit_kb or more (plain builds)."""
    if sanitized(pid):
        print("%s: +%d kB under AddressSanitizer (its quarantine holds freed memory: "
              "bound checked in the plain build only)" % (what, grew_kb))
        return
    tc.assertLess(grew_kb, limit_kb, "%s: resident memory grew by %d kB" % (what, grew_kb))
