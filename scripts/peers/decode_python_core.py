"""Decodes interchange Kafka messages (stdin, one per line) with cloudevents.core.bindings.kafka.

Prints one line per input line: {"ok": event as CloudEvents JSON} or {"error": "Class: text"}.
The mode is the SDK's choice (kafka.from_kafka: any ce_ header means binary). Headers are
handed over as the SDK's dict, so a repeated header keeps its last value; key and values are
bytes, as a Kafka client gives them. `time` is the SDK's datetime rendered with isoformat()
(the SDK keeps no raw string). Missing `time`/`id` are stamped with pinned values (pinned.py).
"""

from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat

from interchange import decode_lines, render, to_bytes
from pinned import core_event


def decode(m):
    message = kafka.KafkaMessage(
        headers={name: to_bytes(v) for name, v in m["headers"]},
        key=to_bytes(m.get("key")),
        value=to_bytes(m.get("value")),
    )
    event = kafka.from_kafka(message, JSONFormat(), core_event)
    return render(event.get_attributes(), event.get_data(), event.get_datacontenttype())


decode_lines(decode)
