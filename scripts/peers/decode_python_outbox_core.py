"""Reads interchange Kafka messages (stdin, one per line) as a python-outbox-core consumer does.

python-outbox-core has no CloudEvents reader of its own: a consumer of CloudEventsFormatter
output parses the structured-mode value with json.loads, picks the IOutboxEvent subclass by
`type` and validates `data` (the to_message() dict) with it. The classes are those of
python_outbox_core_fixtures.py. Prints one line per input line:
    {"ok": {"event": event.to_message(), "partition_key": event.get_partition_key(),
            "cloudevent": CloudEventsFormatter(source).format(event)}}
with `source` the message's own, so the last member is what the formatter itself writes for
the event that was read; or {"error": "Class: text"}.
"""

import json

from python_outbox_core import CloudEventsFormatter

from interchange import decode_lines, to_bytes
from python_outbox_core_fixtures import EVENTS

CLASSES = {event.event_type: type(event) for event in EVENTS}


def decode(m):
    cloudevent = json.loads(to_bytes(m["value"]))
    event = CLASSES[cloudevent["type"]].model_validate(cloudevent["data"])
    return {
        "event": event.to_message(),
        "partition_key": event.get_partition_key(),
        "cloudevent": CloudEventsFormatter(source=cloudevent["source"]).format(event),
    }


decode_lines(decode)
