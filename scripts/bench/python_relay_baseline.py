#!/usr/bin/env python3
"""python-outbox-core 0.1.0's own relay: the baseline of scripts/bench/relay-throughput.

    python_relay_baseline.py once    DB_URL (--brokers HOST:PORT --topic T | --to stdout) [--batch-size N]
    python_relay_baseline.py loop    DB_URL --brokers HOST:PORT --topic T [--poll-interval S] [--batch-size N]
    python_relay_baseline.py writer  DB_URL RATE SECONDS     # rows at RATE a second, for latency
    python_relay_baseline.py produce BROKERS TOPIC RATE SECONDS   # the broker's own latency

once: `OutboxPublisherBase.publish_batch(batch_size)` in a loop until nothing is pending, each
batch in one transaction (the repository's `mark_published` runs in it), then exits: what
`outbox-ce relay run --once` does. The repository is the plain one of
scripts/relay/python_outbox_core_repository.py on the same table; the publisher is a real
Kafka client, confluent-kafka (librdkafka), idempotent with acks=all, that waits for the
broker's acknowledgement of each message before `publish()` returns, since
`OutboxPublisherBase` marks an event published as soon as `publish()` returns. The message
is what python-outbox-core's publisher sends: value = `to_message()` as JSON, key = the
partition key. `--to stdout` writes the same JSON, one line an event.
Prints `{"rows": N, "seconds": S}` on stderr at the end.

loop: the same, forever, sleeping the poll interval (python-outbox-core's default 5 s,
`OutboxConfig` minimum 1 s) when a batch finds nothing: python-outbox-core has no LISTEN.

writer: inserts rows at RATE a second for SECONDS, one transaction a row, and prints
`{"event_id": ..., "committed": unix seconds}` per row once it has committed: the start of
the commit-to-acknowledgement latency the benchmark measures against `published_at`.

produce: no database: confluent-kafka produces messages at RATE a second for SECONDS on 100
keys, with the relay's producer settings (idempotent, acks=all, linger.ms=0, Nagle off), and
prints the produce-to-acknowledgement latency in milliseconds, `P50 P99 N`: what the broker
and the client alone cost, the floor under the relay's latency on the same machine.
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from confluent_kafka import KafkaException, Producer
from python_outbox_core import IEventPublisher, OutboxPublisherBase
from python_outbox_core.publisher import OutboxErrorHandler, OutboxMetrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relay"))
from python_outbox_core_repository import PostgresOutboxRepository, dumps  # noqa: E402


class Quiet:
    """A structlog-shaped logger that drops everything: logging is not what is measured."""

    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


class KafkaPublisher(IEventPublisher):
    def __init__(self, brokers, topic):
        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": brokers,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
            }
        )

    async def publish(self, message):
        failure = []

        def delivered(err, _msg):
            if err is not None:
                failure.append(err)

        key = message.get("partition_key") or message["aggregate_id"]
        self.producer.produce(self.topic, key=key, value=dumps(message), on_delivery=delivered)
        while self.producer.flush(30) > 0:
            pass
        if failure:
            raise KafkaException(failure[0])


class StdoutPublisher(IEventPublisher):
    def __init__(self):
        self.out = sys.stdout

    async def publish(self, message):
        self.out.write(dumps(message) + "\n")


class Relay(OutboxPublisherBase):
    def __init__(self, conn, publisher, batch_size, poll_interval):
        super().__init__(
            PostgresOutboxRepository(conn),
            publisher,
            OutboxErrorHandler(logger=Quiet()),
            OutboxMetrics(logger=Quiet()),
        )
        self.conn = conn
        self.batch_size = batch_size
        self.poll_interval = poll_interval

    async def batch(self):
        async with self.conn.transaction():
            return await self.publish_batch(self.batch_size)

    async def once(self):
        total = 0
        while True:
            published = await self.batch()
            total += published
            if published == 0:
                return total

    async def schedule_publishing(self):
        while True:
            if await self.batch() == 0:
                await asyncio.sleep(self.poll_interval)


def publisher_of(args):
    if args.to == "stdout":
        return StdoutPublisher()
    if not (args.brokers and args.topic):
        sys.exit("python_relay_baseline: give --brokers and --topic, or --to stdout")
    return KafkaPublisher(args.brokers, args.topic)


async def run(args):
    async with await psycopg.AsyncConnection.connect(args.db) as conn:
        relay = Relay(conn, publisher_of(args), args.batch_size, args.poll_interval)
        start = time.perf_counter()
        if args.command == "once":
            rows = await relay.once()
            sys.stdout.flush()
            seconds = time.perf_counter() - start
            print(json.dumps({"rows": rows, "seconds": seconds}), file=sys.stderr)
        else:
            await relay.schedule_publishing()


async def writer(args):
    interval = 1.0 / args.rate
    async with await psycopg.AsyncConnection.connect(args.db, autocommit=True) as conn:
        start = time.perf_counter()
        for n in range(int(args.rate * args.seconds)):
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event_id = str(uuid.uuid4())
            await conn.execute(
                "insert into outbox_events (event_id, event_type, aggregate_id, source, "
                "occurred_at, payload) values (%s, 'com.example.order.placed', %s, "
                "'order-service', %s, %s::json)",
                (event_id, f"order-{n % 100}", datetime.now(timezone.utc), dumps({"n": n})),
            )
            print(json.dumps({"event_id": event_id, "committed": time.time()}))


def produce(args):
    brokers = args.db  # the first positional argument
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": 0,
            "linger.ms": 0,
            "socket.nagle.disable": True,
        }
    )
    latencies = []

    def delivered_at(sent):
        def delivered(err, _msg):
            if err is None:
                latencies.append(time.perf_counter() - sent)

        return delivered

    # The topic's metadata and the producer id first, as the relay has them before it starts.
    producer.produce(args.topic, key=b"warm-up", value=b"{}")
    producer.flush(30)
    interval = 1.0 / args.rate
    total = int(args.rate * args.seconds)
    start = time.perf_counter()
    for n in range(total):
        due = start + n * interval
        while (delay := due - time.perf_counter()) > 0:
            producer.poll(min(delay, 0.001))
        value = dumps({"n": n}).encode()
        producer.produce(
            args.topic, key=f"order-{n % 100}", value=value, on_delivery=delivered_at(time.perf_counter())
        )
        producer.poll(0)
    while producer.flush(30) > 0:
        pass
    lat = sorted(x * 1000 for x in latencies)
    if len(lat) != total:
        sys.exit(f"python_relay_baseline: {len(lat)} of {total} messages acknowledged")
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(f"{pick(0.5):.1f} {pick(0.99):.1f} {len(lat)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["once", "loop", "writer", "produce"])
    parser.add_argument("db")
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--brokers")
    parser.add_argument("--topic")
    parser.add_argument("--to")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()
    if args.command == "produce":
        args.topic = args.rest[0]
        args.rate, args.seconds = float(args.rest[1]), float(args.rest[2])
        produce(args)
    elif args.command == "writer":
        args.rate, args.seconds = float(args.rest[0]), float(args.rest[1])
        asyncio.run(writer(args))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
