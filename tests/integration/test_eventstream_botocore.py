#!/usr/bin/env python3
"""The event stream decoder (common/eventstream.c, through
tests/unit/eventstream_cli) against AWS's own decoder, botocore's
EventStreamBuffer: every frame is first decoded by botocore (so the frames
are what AWS's code accepts, and what it reads in them is the reference),
then by ours, fed whole, byte by byte and in odd pieces. Corrupted frames
(bad CRCs, a truncated prelude or message, lengths that cannot be, an
oversized message) must be errors, never a crash or a message."""

import json
import os
import struct
import subprocess
import unittest
import uuid
import zlib

import harness
import eventstream_enc as es

try:
    from botocore import eventstream as bes
except ImportError:  # pragma: no cover - the test box has botocore
    bes = None

CLI = os.path.join(harness.BUILDDIR, "tests", "unit", "eventstream_cli")


def botocore_decode(data):
    buf = bes.EventStreamBuffer()
    buf.add_data(data)
    return list(buf)


ALL_TYPES = [
    es.header("t", es.TRUE),
    es.header("f", es.FALSE),
    es.header("b", es.BYTE, -7),
    es.header("s", es.INT16, -12345),
    es.header("i", es.INT32, 2000000000),
    es.header("l", es.INT64, -(2 ** 62)),
    es.header("ba", es.BYTES, b"\x00\x01\xfe\xff"),
    es.header("str", es.STRING, "h\u00e9llo"),
    es.header("ts", es.TIMESTAMP, 1764500000123),
    es.header("u", es.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678")),
]


class EventStreamBotocore(harness.TestCase):
    def setUp(self):
        super().setUp()
        if bes is None:
            self.skipTest("botocore is not installed")
        if not os.access(CLI, os.X_OK):
            self.fail("%s not built (make check builds it)" % CLI)

    def ours(self, data, piece, max_message=0, ok=True):
        p = subprocess.run([CLI, str(piece), str(max_message)], input=data,
                           capture_output=True, timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        self.assertFalse([l for l in err.splitlines()
                          if any(m in l for m in harness.SANITIZER_MARKERS)], err)
        if ok:
            self.assertEqual(p.returncode, 0, err)
            return [json.loads(l) for l in p.stdout.decode().splitlines()]
        self.assertEqual(p.returncode, 2, "decoded a bad frame: %r" % p.stdout[:200])
        self.assertIn("event stream:", err)
        return err

    def same(self, data):
        """Decode with botocore, then with ours in several piece sizes, and
        compare the headers and payloads."""
        ref = botocore_decode(data)
        for piece in (len(data) or 1, 1, 7, 13, 4096):
            got = self.ours(data, piece)
            self.assertEqual(len(got), len(ref), "piece %d" % piece)
            for g, r in zip(got, ref):
                self.assertEqual(bytes.fromhex(g["payload"]), r.payload)
                hs = {}
                for h in g["headers"]:
                    v = h["value"]
                    if h["type"] in (es.BYTES, es.UUID):
                        v = bytes.fromhex(v)
                    elif h["type"] in (es.TRUE, es.FALSE):
                        v = bool(v)
                    hs[h["name"]] = v
                self.assertEqual(hs, r.headers)

    def test_every_header_type(self):
        self.same(es.message(ALL_TYPES, b"payload bytes"))

    def test_empty_message(self):
        # botocore's own test vector for an empty message.
        data = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2\x48\xeb\x7d\x98\xc8\xff"
        self.assertEqual(es.message(), data)
        self.same(data)

    def test_lambda_stream(self):
        data = (es.payload_chunk(b'{"statusCode":200}' + b"\0" * 8) +
                es.payload_chunk(os.urandom(100000)) + es.payload_chunk(b"") +
                es.invoke_complete(error_code="Unhandled", error_details="boom",
                                   log_result="bG9n") +
                es.exception("ServiceException", "bad"))
        self.same(data)

    def test_large_payload(self):
        self.same(es.message([es.header(":event-type", es.STRING, "PayloadChunk")],
                             os.urandom(3 * 1024 * 1024)))

    def corrupt(self, data, botocore_error=True, max_message=0):
        if botocore_error:
            with self.assertRaises(bes.ParserError):
                botocore_decode(data)
                raise AssertionError("botocore accepted it")  # pragma: no cover
        for piece in (len(data) or 1, 1, 5):
            err = self.ours(data, piece, max_message, ok=False)
        return err

    def test_bad_prelude_crc(self):
        m = bytearray(es.payload_chunk(b"abc"))
        m[9] ^= 0x01
        self.assertIn("prelude CRC", self.corrupt(bytes(m)))

    def test_bad_message_crc(self):
        m = bytearray(es.payload_chunk(b"abc"))
        m[-1] ^= 0x80
        self.assertIn("message CRC", self.corrupt(bytes(m)))

    def test_bad_payload_byte(self):
        m = bytearray(es.payload_chunk(b"abcdef"))
        m[-6] ^= 0x20
        self.assertIn("message CRC", self.corrupt(bytes(m)))

    def test_second_message_bad(self):
        m = bytearray(es.payload_chunk(b"abc") + es.payload_chunk(b"def"))
        m[-2] ^= 1
        self.assertIn("message CRC", self.corrupt(bytes(m)))

    def test_truncated(self):
        m = es.payload_chunk(b"abcdef")
        for cut in (1, 5, 11, 12, 20, len(m) - 1):
            # botocore's buffer just waits for more: ours says at the end.
            self.assertEqual(botocore_decode(m[:cut]), [])
            self.assertIn("truncated", self.corrupt(m[:cut], botocore_error=False))

    def prelude(self, total, hlen):
        p = struct.pack("!II", total, hlen)
        return p + struct.pack("!I", zlib.crc32(p))

    def test_impossible_lengths(self):
        # Total shorter than a prelude + CRC.
        self.assertIn("shorter", self.corrupt(self.prelude(8, 0) + b"\0" * 8,
                                              botocore_error=False))
        # Headers longer than the message.
        self.assertIn("headers length", self.corrupt(self.prelude(20, 10) + b"\0" * 8,
                                                     botocore_error=False))
        # Headers longer than AWS's limit (128 KiB).
        self.assertIn("headers longer", self.corrupt(self.prelude(0x7fffffff, 200000),
                                                     botocore_error=True))

    def test_oversized_message(self):
        # A 4 GiB message: refused at the prelude, nothing allocated.
        self.assertIn("longer than the limit",
                      self.corrupt(self.prelude(0xffffffff, 0), botocore_error=True))
        # Over a caller's limit.
        m = es.payload_chunk(b"x" * 1000)
        self.ours(m, 4096, max_message=len(m))
        self.assertIn("longer than the limit",
                      self.corrupt(m, botocore_error=False, max_message=len(m) - 1))

    def test_header_overruns(self):
        good = es.header("name", es.STRING, "value")
        cases = [
            good[:-2],                                     # string cut short
            es.header("n", es.INT64, 1)[:-3],              # int64 cut short
            es.header("n", es.UUID, b"u" * 16)[:-1],       # uuid cut short
            b"\x09abc",                                    # name past the end
            b"\x01n\x0a",                                  # unknown type 10
            b"\x00",                                       # empty name
        ]
        for h in cases:
            with self.subTest(h=h):
                self.corrupt(es.message(h, b"p"), botocore_error=False)


if __name__ == "__main__":
    harness.main()
