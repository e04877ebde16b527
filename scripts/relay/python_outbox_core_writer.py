"""Writes outbox rows with python-outbox-core 0.1.0 itself, for the relay's interop test.

    python_outbox_core_writer.py DB_URL [COPIES]

The events are the IOutboxEvent subclasses of scripts/peers/python_outbox_core_fixtures.py
(naive and aware times, a +02:00 offset, a big integer, non-ASCII text, correlation and
causation ids, a get_partition_key() override). Each fixture event is written COPIES times
(default 3): the first as it is, each further copy with its own event id and a later
occurred_at, so that every key holds several events in order. They go in through
`PostgresOutboxRepository.add_event` (scripts/relay/python_outbox_core_repository.py), all in
one transaction the writer commits, as a service writes its outbox.

Prints, in insertion order, one line per event written:
    {"event": event.to_message(), "partition_key": event.get_partition_key()}
Run it with the peers' venv (scripts/peers/setup): target/peers/venv/bin/python.
"""

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import psycopg

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parent / "peers"))
from python_outbox_core_fixtures import EVENTS  # noqa: E402
from python_outbox_core_repository import PostgresOutboxRepository  # noqa: E402


def copies_of(event, n):
    yield event
    for i in range(1, n):
        suffix = int(str(event.event_id)[-12:], 16) + 0x1000 * i
        yield event.model_copy(
            update={
                "event_id": UUID(str(event.event_id)[:-12] + f"{suffix:012x}"),
                "occurred_at": event.occurred_at + timedelta(seconds=i),
            }
        )


async def main(url, copies=3):
    events = [e for event in EVENTS for e in copies_of(event, int(copies))]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        repository = PostgresOutboxRepository(conn)
        async with conn.transaction():
            for event in events:
                await repository.add_event(event)
        assert await repository.count_unpublished() >= len(events)
    for event in events:
        row = {"event": event.to_message(), "partition_key": event.get_partition_key()}
        print(json.dumps(row, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
