#!/usr/bin/env python3
"""What `outbox-ce encode --mode binary` and `outbox-ce decode` do, written with the Python
CloudEvents SDK 2.2.0 (`cloudevents.core`, Kafka binding): the baseline of the CLI
throughput comparison.

    python_baseline.py encode OUTBOX_JSONL > messages.jsonl
    python_baseline.py decode MESSAGES_JSONL > outbox.jsonl

encode: each line is an outbox event in python-outbox-core's to_message() layout; it becomes a
`CloudEvent` with the crate's canonical mapping (id, type, source, time, aggregateid,
dataversion, correlationid, causationid, partitionkey, the domain members as `data`) and
`kafka.to_binary` makes the message, written as one interchange JSON line
({"key": K, "headers": [[name, V], ...], "value": V}).

decode: each line is an interchange message; `kafka.from_binary` reads it and the event is
written back in the to_message() layout.

Run it with the peers' venv: target/peers/venv/bin/python (scripts/peers/setup).
"""

import json
import sys
from datetime import datetime
from pathlib import Path

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

# The interchange JSON helpers the peer scripts share.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
from interchange import dumps, from_bytes, to_bytes  # noqa: E402

METADATA = {
    "event_id",
    "event_type",
    "aggregate_id",
    "occurred_at",
    "source",
    "data_version",
    "correlation_id",
    "causation_id",
    "partition_key",
}


def encode(line: str, fmt: JSONFormat) -> str:
    outbox = json.loads(line)
    attributes = {
        "specversion": "1.0",
        "id": outbox["event_id"],
        "source": outbox["source"],
        "type": outbox["event_type"],
        "datacontenttype": "application/json",
        "time": datetime.fromisoformat(outbox["occurred_at"]),
        "aggregateid": outbox["aggregate_id"],
        "dataversion": outbox.get("data_version") or "1.0",
        "partitionkey": outbox.get("partition_key") or outbox["aggregate_id"],
    }
    for member, extension in (("correlation_id", "correlationid"), ("causation_id", "causationid")):
        if outbox.get(member) is not None:
            attributes[extension] = outbox[member]
    data = {k: v for k, v in outbox.items() if k not in METADATA}
    message = to_binary(CloudEvent(attributes, data), fmt)
    return dumps(
        {
            "key": from_bytes(message.key),
            "headers": [[name, from_bytes(value)] for name, value in message.headers.items()],
            "value": from_bytes(message.value),
        }
    )


def decode(line: str, fmt: JSONFormat) -> str:
    record = json.loads(line)
    message = KafkaMessage(
        headers={name: to_bytes(value) for name, value in record["headers"]},
        key=to_bytes(record.get("key")),
        value=to_bytes(record.get("value")),
    )
    event = from_binary(message, fmt, CloudEvent)
    attributes = event.get_attributes()
    outbox = {
        "event_id": attributes["id"],
        "event_type": attributes["type"],
        "aggregate_id": attributes["aggregateid"],
        "occurred_at": attributes["time"].isoformat(),
        "source": attributes["source"],
        "data_version": attributes.get("dataversion", "1.0"),
        "correlation_id": attributes.get("correlationid"),
        "causation_id": attributes.get("causationid"),
    }
    outbox.update(event.get_data() or {})
    key = attributes.get("partitionkey")
    if key is not None and key != outbox["aggregate_id"]:
        outbox["partition_key"] = key
    return dumps(outbox)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("encode", "decode"):
        sys.exit(__doc__)
    convert = encode if sys.argv[1] == "encode" else decode
    fmt = JSONFormat()
    count = 0
    with open(sys.argv[2], encoding="utf-8") as lines:
        out = sys.stdout
        for line in lines:
            if line.strip():
                out.write(convert(line, fmt))
                out.write("\n")
                count += 1
    print(f"{sys.argv[1]}: {count} out", file=sys.stderr)


if __name__ == "__main__":
    main()
