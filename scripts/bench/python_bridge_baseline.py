#!/usr/bin/env python3
"""The Python bridge: the baseline of scripts/bench/bridge-throughput.

    python_bridge_baseline.py bridge BROKERS FROM_TOPIC TO_TOPIC GROUP DEAD_TOPIC IDLE_SECONDS
    python_bridge_baseline.py fill   BROKERS TOPIC COUNT

bridge: what `outbox-ce bridge --mode binary --dead-letter-topic DEAD --idle-exit IDLE` does,
with a real Kafka client (confluent-kafka, librdkafka) and the Python CloudEvents SDK
(`cloudevents` 2.2.0, `cloudevents.core.bindings.kafka`): consume FROM_TOPIC in GROUP; a
CloudEvent in either mode is read with `kafka.from_kafka`, a python-outbox-core publisher
message (value = the to_message() object) is mapped to a CloudEvent (id = event_id, type =
event_type, time = occurred_at, the aggregateid, dataversion, correlationid, causationid and
partitionkey extensions, data = the payload members); each is written in binary mode with
`kafka.to_binary`, the key kept (else the partition key), the other headers carried along.
A message that fails goes to DEAD_TOPIC with its key, headers and value and the error headers.
At least once, as the Rust bridge: offsets are committed synchronously after every batch of up
to 1,000 messages once the producer has flushed (every output acknowledged). Exits after
IDLE_SECONDS without a message. Prints {"messages": N, "seconds": S} on stderr, S from the
first message read to the last commit.

fill: COUNT messages on TOPIC's partitions in turn, cycling through the peers' messages
(fixtures/interop/from-*.jsonl: the Python and JavaScript SDKs in both modes) and
python-outbox-core's publisher messages (fixtures/python-outbox-core/events.jsonl).
"""

import base64
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from confluent_kafka import Consumer, Producer

ROOT = Path(__file__).resolve().parents[2]
FORMAT = JSONFormat()
OUTBOX_FIELDS = ("event_id", "event_type", "aggregate_id", "occurred_at", "source",
                 "data_version", "correlation_id", "causation_id", "partition_key")


def from_outbox_json(value):
    message = json.loads(value)
    if not isinstance(message, dict):
        raise ValueError("not a to_message() object")
    attributes = {
        "id": message["event_id"],
        "source": message["source"],
        "type": message["event_type"],
        "specversion": "1.0",
        "time": datetime.fromisoformat(message["occurred_at"]),
        "datacontenttype": "application/json",
        "aggregateid": message["aggregate_id"],
        "dataversion": message.get("data_version") or "1.0",
        "partitionkey": message.get("partition_key") or message["aggregate_id"],
    }
    for name in ("correlation_id", "causation_id"):
        if message.get(name):
            attributes[name.replace("_", "")] = message[name]
    data = {k: v for k, v in message.items() if k not in OUTBOX_FIELDS}
    return CloudEvent(attributes, data)


def convert(m):
    headers = m.headers() or []
    is_ce = any(n.startswith("ce_") for n, _ in headers) or any(
        n.lower() == "content-type" and (v or b"").lower().startswith(b"application/cloudevents")
        for n, v in headers)
    if is_ce:
        event = kafka.from_kafka(
            kafka.KafkaMessage(headers={n: v for n, v in headers}, key=m.key(), value=m.value()),
            FORMAT, CloudEvent)
    else:
        event = from_outbox_json(m.value())
    out = kafka.to_binary(event, FORMAT)
    key = m.key() if m.key() is not None else out.key
    carried = [(n, v) for n, v in headers if not n.startswith("ce_") and n.lower() != "content-type"]
    return key, list(out.headers.items()) + carried, out.value


def bridge(brokers, from_topic, to_topic, group, dead_topic, idle):
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5, "partitioner": "murmur2"})
    consumer.subscribe([from_topic])
    count, first, last_seen = 0, None, time.time()
    while True:
        batch = consumer.consume(num_messages=1000, timeout=0.2)
        batch = [m for m in batch if not m.error()]
        if not batch:
            if first is not None and time.time() - last_seen > idle:
                break
            continue
        if first is None:
            first = time.time()
        last_seen = time.time()
        for m in batch:
            try:
                key, headers, value = convert(m)
                topic = to_topic
            except Exception as exc:  # noqa: BLE001 - every failure is a dead letter
                key, value, topic = m.key(), m.value(), dead_topic
                headers = list(m.headers() or []) + [
                    ("outbox-error", f"{type(exc).__name__}: {exc}".encode()),
                    ("outbox-source-topic", m.topic().encode()),
                    ("outbox-source-partition", str(m.partition()).encode()),
                    ("outbox-source-offset", str(m.offset()).encode()),
                ]
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
            count += 1
        producer.flush()
        consumer.commit(asynchronous=False)
        done = time.time()
    consumer.close()
    print(json.dumps({"messages": count, "seconds": round(done - first, 3)}), file=sys.stderr)


def corpus():
    out = []
    for line in (ROOT / "fixtures/python-outbox-core/events.jsonl").read_text().splitlines():
        key = json.loads(line)["aggregate_id"].encode()
        out.append((key, [], line.encode()))
    for path in sorted((ROOT / "fixtures/interop").glob("from-*.jsonl")):
        for line in path.read_text().splitlines():
            message = json.loads(line).get("message")
            if message is None:
                continue
            out.append((raw(message.get("key")),
                        [(n, raw(v)) for n, v in message["headers"]],
                        raw(message.get("value"))))
    return out


def raw(v):
    if v is None:
        return None
    if isinstance(v, dict):
        return base64.b64decode(v["base64"])
    return v.encode()


def fill(brokers, topic, count):
    messages = corpus()
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 20})
    for i in range(count):
        key, headers, value = messages[i % len(messages)]
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, partition=i % 3)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush()


if __name__ == "__main__":
    if sys.argv[1] == "bridge":
        bridge(*sys.argv[2:7], float(sys.argv[7]))
    else:
        fill(sys.argv[2], sys.argv[3], int(sys.argv[4]))
