"""Decodes interchange Kafka messages (stdin, one per line) with the legacy cloudevents.v1.kafka.

Prints one line per input line: {"ok": event as CloudEvents JSON} or {"error": "Class: text"}.
The SDK does not detect the mode, so: a content-type starting with application/cloudevents
(any case) means structured; else any ce_ header means binary; else structured. In binary mode
the data unmarshaller follows the content-type: JSON (or none) -> json.loads (the SDK's default),
text/* -> UTF-8 str, other -> the bytes as they are. Headers are handed over as the SDK's dict,
so a repeated header keeps its last value; key and values are bytes, as a Kafka client gives
them. `time` is the SDK's own raw string. Missing `time`/`id` are stamped with pinned values
(pinned.py).
"""

import json

from cloudevents.v1 import kafka

from interchange import decode_lines, is_json_type, render, to_bytes
from pinned import V1Event


def unmarshaller(content_type):
    if is_json_type(content_type):
        return json.loads
    if content_type.lower().startswith("text/"):
        return lambda body: body.decode("utf-8")
    return lambda body: body


def decode(m):
    headers = {name: to_bytes(v) for name, v in m["headers"]}
    message = kafka.KafkaMessage(headers, to_bytes(m.get("key")), to_bytes(m.get("value")))
    content_type = next(
        (v.decode("utf-8") for k, v in headers.items() if k.lower() == "content-type"), None
    )
    structured = content_type is not None and content_type.lower().startswith(
        "application/cloudevents"
    )
    if structured or not any(k.lower().startswith("ce_") for k in headers):
        event = kafka.from_structured(message, V1Event)
    else:
        event = kafka.from_binary(message, V1Event, unmarshaller(content_type))
    attributes = dict(event.get_attributes())
    return render(attributes, event.get_data(), attributes.get("datacontenttype"))


decode_lines(decode)
