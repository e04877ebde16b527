"""The interchange JSON for Kafka messages, shared by the Python peer scripts.

A message is `{"key": K, "headers": [[name, V], ...], "value": V}` where K and each V
are a JSON string when the bytes are valid UTF-8, `{"base64": "..."}` when they are not,
and `null` when absent.
"""

import base64
import json
import sys


def from_bytes(data):
    """bytes | str | None -> interchange value."""
    if data is None:
        return None
    if isinstance(data, str):
        return data
    data = bytes(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def to_bytes(value):
    """interchange value -> bytes | None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return base64.b64decode(value["base64"], validate=True)
    return value.encode("utf-8")


def message(key, headers, value):
    """An interchange message from a key, (name, bytes) pairs in order, and a value."""
    return {
        "key": from_bytes(key),
        "headers": [[name, from_bytes(v)] for name, v in headers],
        "value": from_bytes(value),
    }


def dumps(obj):
    """One compact JSON line, UTF-8 kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def error_text(exc):
    return f"{type(exc).__name__}: {exc}"


def is_json_type(content_type):
    """True for absent, */json and */*+json media types (the JSON format's rule)."""
    if content_type is None:
        return True
    media = content_type.split(";")[0].strip().lower()
    return media.endswith("/json") or media.endswith("+json")


def render(attributes, data, content_type):
    """CloudEvents JSON for what a peer decoded: attributes as the peer typed them
    (datetime -> isoformat(), bytes -> {"base64": ...}), then the data."""
    out = {}
    for name, value in attributes.items():
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, (bytes, bytearray)):
            value = {"base64": base64.b64encode(value).decode("ascii")}
        out[name] = value
    if isinstance(data, (bytes, bytearray)):
        try:
            if not is_json_type(content_type):
                raise ValueError("not a JSON content type")
            out["data"] = json.loads(bytes(data).decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError included
            out["data_base64"] = base64.b64encode(data).decode("ascii")
    elif data is not None:
        out["data"] = data
    return out


def decode_lines(decode):
    """Reads interchange messages on stdin and writes `{"ok": decode(message)}` or
    `{"error": text}` for each: one line out for every line in."""
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    for line in sys.stdin:
        try:
            row = {"ok": decode(json.loads(line))}
        except Exception as exc:  # one line out for every line in
            row = {"error": error_text(exc)}
        print(dumps(row), flush=True)
