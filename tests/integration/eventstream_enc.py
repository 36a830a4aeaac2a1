"""A tiny encoder of AWS's event stream (application/vnd.amazon.eventstream)
for the stand-in Lambda and the decoder's tests. botocore ships only the
decoder (EventStreamBuffer); test_eventstream_botocore.py checks every frame
this module makes against it, so the reference stays AWS's code."""

import struct
import uuid as uuidlib
import zlib

TRUE, FALSE, BYTE, INT16, INT32, INT64, BYTES, STRING, TIMESTAMP, UUID = range(10)


def header(name, vtype, value=None):
    """One header: name, value type, value (bytes/str/int/uuid)."""
    n = name.encode()
    out = struct.pack("!B", len(n)) + n + struct.pack("!B", vtype)
    if vtype in (TRUE, FALSE):
        return out
    if vtype == BYTE:
        return out + struct.pack("!b", value)
    if vtype == INT16:
        return out + struct.pack("!h", value)
    if vtype == INT32:
        return out + struct.pack("!i", value)
    if vtype in (INT64, TIMESTAMP):
        return out + struct.pack("!q", value)
    if vtype in (BYTES, STRING):
        v = value.encode() if isinstance(value, str) else value
        return out + struct.pack("!H", len(v)) + v
    if vtype == UUID:
        return out + (value.bytes if isinstance(value, uuidlib.UUID) else value)
    raise ValueError(vtype)


def message(headers=b"", payload=b""):
    """A whole message around encoded headers (bytes, or a list of header()
    results) and a payload."""
    if isinstance(headers, (list, tuple)):
        headers = b"".join(headers)
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type, payload=b"", content_type="application/octet-stream"):
    return message([header(":event-type", STRING, event_type),
                    header(":content-type", STRING, content_type),
                    header(":message-type", STRING, "event")], payload)


def payload_chunk(data):
    return event("PayloadChunk", data)


def invoke_complete(error_code=None, error_details=None, log_result=None):
    import json
    body = {}
    if error_code is not None:
        body["ErrorCode"] = error_code
    if error_details is not None:
        body["ErrorDetails"] = error_details
    if log_result is not None:
        body["LogResult"] = log_result
    return event("InvokeComplete", json.dumps(body).encode(), "application/json")


def exception(exc_type, message_text):
    import json
    return message([header(":exception-type", STRING, exc_type),
                    header(":content-type", STRING, "application/json"),
                    header(":message-type", STRING, "exception")],
                   json.dumps({"message": message_text}).encode())
