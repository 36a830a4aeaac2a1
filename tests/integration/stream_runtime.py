"""A Lambda custom runtime in Python that answers in response streaming mode
over raw sockets, for local function mode's tests: the event's path picks
how the answer is written, so that the Runtime API emulator's reading of
streaming posts (src/rtstream.c) meets every shape a runtime may send.

    /plain/N        prelude, then N bytes ("abc..." repeated) in 1000-byte chunks
    /onebyte        the whole post (head included) written one byte at a time
    /ext            chunk extensions, Expect: 100-continue, lower-case names
    /newconn        the post on a new connection
    /error          some bytes, then error trailers
    /die            some bytes, then the process exits mid-stream
    /pause          a first chunk, then waits for the file LF_GO to exist
    /classic        a buffered ALB answer (no streaming)

Every body byte is produced, so the tests check the bodies exactly.
"""

RUNTIME = r'''#!%(python)s
import base64, json, os, socket, sys, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
port = int(port)
P = "/2018-06-01/runtime"

def connect():
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_response(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit("runtime API closed")
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(buf) < n:
        buf += s.recv(65536)
    return status, hdrs, buf[:n], buf[n:]

def body_bytes(n):
    return (b"abcdefghijklmnopqrstuvwxyz" * (n // 26 + 1))[:n]

def chunk(data, ext=b""):
    return b"%%x%%s\r\n%%s\r\n" %% (len(data), ext, data)

sock = connect()
buf = b""
while True:
    sock.sendall(b"GET " + P.encode() + b"/invocation/next HTTP/1.1\r\nHost: rt\r\n\r\n")
    status, hdrs, event, buf = read_response(sock, buf)
    rid = hdrs["lambda-runtime-aws-request-id"]
    path = json.loads(event)["path"]
    prelude = json.dumps({"statusCode": 200, "headers": {"Content-Type": "text/plain",
                          "X-Path": path}}).encode() + b"\0" * 8
    head = ("POST %%s/invocation/%%s/response HTTP/1.1\r\nHost: rt\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Content-Type: application/vnd.awslambda.http-integration-response\r\n"
            "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
            %% (P, rid)).encode()
    if path == "/classic":
        body = json.dumps({"statusCode": 203, "body": "classic answer"}).encode()
        sock.sendall(("POST %%s/invocation/%%s/response HTTP/1.1\r\nHost: rt\r\n"
                      "Content-Length: %%d\r\n\r\n" %% (P, rid, len(body))).encode() + body)
        status, _, _, buf = read_response(sock, buf)
        continue
    if path.startswith("/plain/") or path == "/newconn":
        n = int(path.split("/")[2]) if path.startswith("/plain/") else 5000
        data = body_bytes(n)
        s = connect() if path == "/newconn" else sock
        s.sendall(head + b"\r\n" + chunk(prelude))
        for i in range(0, n, 1000):
            s.sendall(chunk(data[i:i + 1000]))
        s.sendall(b"0\r\n\r\n")
        if s is sock:
            status, _, _, buf = read_response(sock, buf)
        else:
            read_response(s, b"")
            s.close()
        continue
    if path == "/onebyte":
        msg = head + b"\r\n" + chunk(prelude + b"one byte at a time") + b"0\r\n\r\n"
        for i in range(len(msg)):
            sock.sendall(msg[i:i + 1])
            time.sleep(0.001)
        status, _, _, buf = read_response(sock, buf)
        continue
    if path == "/ext":
        h = head.replace(b"Lambda-Runtime-Function-Response-Mode", b"lambda-runtime-function-response-mode")
        sock.sendall(h + b"Expect: 100-continue\r\n\r\n")
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        cont, _, buf = buf.partition(b"\r\n\r\n")
        assert cont.startswith(b"HTTP/1.1 100"), cont
        sock.sendall(chunk(prelude, b";a=b") + chunk(b"with extensions", b";x") + b"0;end\r\n\r\n")
        status, _, _, buf = read_response(sock, buf)
        continue
    if path == "/error":
        err = base64.b64encode(json.dumps({"errorMessage": "it broke midway",
                                           "errorType": "Test.Midway"}).encode())
        sock.sendall(head + b"\r\n" + chunk(prelude) + chunk(b"partial") +
                     b"0\r\nLambda-Runtime-Function-Error-Type: Test.Midway\r\n"
                     b"Lambda-Runtime-Function-Error-Body: " + err + b"\r\n\r\n")
        status, _, _, buf = read_response(sock, buf)
        continue
    if path == "/die":
        sock.sendall(head + b"\r\n" + chunk(prelude) + chunk(b"partial"))
        time.sleep(0.2)
        os._exit(0)
    if path == "/pause":
        go = os.environ["LF_GO"]
        sock.sendall(head + b"\r\n" + chunk(prelude) + chunk(b"first"))
        while not os.path.exists(go):
            time.sleep(0.01)
        sock.sendall(chunk(b" second") + b"0\r\n\r\n")
        status, _, _, buf = read_response(sock, buf)
        continue
'''


def write(tc):
    """Write the runtime into tc's scratch directory; returns its path."""
    import sys
    return tc.write_runtime(RUNTIME % {"python": sys.executable}, "stream_runtime.py")


def body_bytes(n):
    return (b"abcdefghijklmnopqrstuvwxyz" * (n // 26 + 1))[:n]
