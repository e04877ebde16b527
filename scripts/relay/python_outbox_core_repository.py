"""A concrete python-outbox-core 0.1.0 `IOutboxRepository` on the relay's PostgreSQL table.

    repository = PostgresOutboxRepository(conn)      # a psycopg AsyncConnection
    async with conn.transaction():
        await repository.add_event(event)            # the caller's transaction: no commit here

It is the table `outbox-ce relay init` creates (default `outbox_events`): the IOutboxEvent
metadata in their columns, `get_partition_key()` in `partition_key` when it is not the
aggregate id, and the rest of `to_message()` (the domain fields) in `payload`, as JSON text.
A naive `occurred_at` (python-outbox-core's own README uses `datetime.utcnow()`) is stored
as UTC, as the relay reads such times.

`get_unpublished` gives back IOutboxEvent instances: the subclass registered for the row's
`event_type` (`register`), else `StoredEvent`, which keeps the domain fields as they were
stored and whose `to_message()` writes them back after the metadata (with `partition_key`
when the row has one, which is then its `get_partition_key()`).

Used by scripts/relay/python_outbox_core_writer.py (the interop test's writer) and by
scripts/bench/python_relay_baseline.py (the benchmark's Python relay).
"""

import json
from datetime import timezone
from uuid import UUID

from pydantic import ConfigDict
from python_outbox_core import IOutboxEvent, IOutboxRepository

# to_message() members that have columns of their own; the rest is the payload.
METADATA = (
    "event_id",
    "event_type",
    "aggregate_id",
    "occurred_at",
    "source",
    "data_version",
    "correlation_id",
    "causation_id",
    "partition_key",
)

COLUMNS = (
    "event_id, event_type, aggregate_id, occurred_at, source, data_version, "
    "correlation_id, causation_id, partition_key, payload"
)


class StoredEvent(IOutboxEvent):
    """A row whose event type has no registered class: the domain fields ride along."""

    model_config = ConfigDict(extra="allow")

    def to_message(self):
        return self.model_dump(mode="json")

    def get_partition_key(self):
        return (self.model_extra or {}).get("partition_key") or self.aggregate_id


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def as_utc(moment):
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class PostgresOutboxRepository(IOutboxRepository):
    def __init__(self, conn, table="outbox_events"):
        self.conn = conn
        self.table = table
        self.classes = {}

    def register(self, event_type, cls):
        """Rows of `event_type` come back from get_unpublished as `cls`."""
        self.classes[event_type] = cls

    @staticmethod
    def row_of(event):
        """The column values of `event`, in COLUMNS order."""
        message = event.to_message()
        payload = {k: v for k, v in message.items() if k not in METADATA}
        key = event.get_partition_key()
        return (
            str(event.event_id),
            event.event_type,
            event.aggregate_id,
            as_utc(event.occurred_at),
            event.source,
            event.data_version,
            None if event.correlation_id is None else str(event.correlation_id),
            None if event.causation_id is None else str(event.causation_id),
            None if key == event.aggregate_id else key,
            dumps(payload),
        )

    async def add_event(self, event):
        await self.conn.execute(
            f"insert into {self.table} ({COLUMNS}) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json)",
            self.row_of(event),
        )

    async def get_unpublished(self, limit=100, offset=0):
        cursor = await self.conn.execute(
            f"select event_id, event_type, aggregate_id, occurred_at, source, data_version, "
            f"correlation_id, causation_id, partition_key, payload::text from {self.table} "
            "where published_at is null and failed_at is null "
            "order by occurred_at, seq limit %s offset %s",
            (limit, offset),
        )
        events = []
        for row in await cursor.fetchall():
            fields = dict(
                event_id=row[0],
                event_type=row[1],
                aggregate_id=row[2],
                occurred_at=row[3],
                source=row[4],
                data_version=row[5],
                correlation_id=row[6],
                causation_id=row[7],
            )
            cls = self.classes.get(row[1], StoredEvent)
            if cls is StoredEvent and row[8] is not None:
                fields["partition_key"] = row[8]
            fields.update(json.loads(row[9]))
            events.append(cls.model_validate(fields))
        return events

    async def mark_published(self, event_id: UUID):
        await self.conn.execute(
            f"update {self.table} set published_at = now() "
            "where event_id = %s",
            (str(event_id),),
        )

    async def count_unpublished(self):
        cursor = await self.conn.execute(
            f"select count(*) from {self.table} where published_at is null and failed_at is null"
        )
        return (await cursor.fetchone())[0]

    async def mark_failed(self, event_id: UUID, error_message: str):
        await self.conn.execute(
            f"update {self.table} set failed_at = now(), last_error = %s, "
            "attempts = attempts + 1 where event_id = %s",
            (error_message, str(event_id)),
        )
