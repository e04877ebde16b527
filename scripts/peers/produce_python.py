"""Encodes the interop event set with the Python CloudEvents SDK's Kafka bindings.

    produce_python.py EVENTS_JSONL OUT_DIR

Writes OUT_DIR/from-python-core-{binary,structured}.jsonl (cloudevents.core.bindings.kafka)
and OUT_DIR/from-python-v1-{binary,structured}.jsonl (legacy cloudevents.v1.kafka), one line
per event: {"name": id, "message": M} or {"name": id, "error": text} when the SDK raises.

Each event is built by the SDK's own JSON reader (core: JSONFormat.read, v1: conversion.from_json).
The Kafka key is left to the SDK: both default key mappers use the `partitionkey` extension.
Both SDKs stamp datetime.now() as `time` on an event without one; the event classes from
pinned.py stamp a fixed instant instead (2000-01-01T00:00:00Z), so the output is deterministic.
"""

import json
import sys
from pathlib import Path

from cloudevents.core.bindings import kafka as core_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1 import conversion as v1_conversion
from cloudevents.v1 import kafka as v1_kafka

from interchange import dumps, error_text, message
from pinned import V1Event, core_event


def core_encode(line, to_mode):
    event = JSONFormat().read(core_event, line)
    m = to_mode(event, JSONFormat())
    return message(m.key, m.headers.items(), m.value)


def v1_encode(line, to_mode):
    m = to_mode(v1_conversion.from_json(V1Event, line))
    return message(m.key, m.headers.items(), m.value)


PRODUCERS = {
    "python-core-binary": lambda line: core_encode(line, core_kafka.to_binary),
    "python-core-structured": lambda line: core_encode(line, core_kafka.to_structured),
    "python-v1-binary": lambda line: v1_encode(line, v1_kafka.to_binary),
    "python-v1-structured": lambda line: v1_encode(line, v1_kafka.to_structured),
}


def event_id(line):
    return json.loads(line)["id"]


def main(events_path, out_dir):
    lines = [l for l in Path(events_path).read_text("utf-8").splitlines() if l.strip()]
    for name, produce in PRODUCERS.items():
        with open(Path(out_dir) / f"from-{name}.jsonl", "w", encoding="utf-8") as out:
            for line in lines:
                try:
                    row = {"name": event_id(line), "message": produce(line)}
                except Exception as exc:  # the gap is the fixture
                    row = {"name": event_id(line), "error": error_text(exc)}
                out.write(dumps(row) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
