"""What python-outbox-core 0.1.0's own publisher sends for the rows of an SQLite outbox table.

    python_outbox_core_sqlite_publisher.py DB [TABLE]

Prints one line per unpublished row, in seq order: json.dumps of the message its
OutboxPublisherBase.publish_batch hands to the publisher, which is event.to_message().

The repository is the plainest concrete IOutboxRepository on the table `outbox-ce relay init`
creates: each row's TEXT columns go to pydantic as they are stored (StoredEvent.model_validate,
the payload's members beside them), as python_outbox_core_repository.py does for PostgreSQL.
So `occurred_at` is the datetime pydantic reads from the stored text: naive when the text has
no offset, in the text's own offset otherwise, and to_message() writes it with isoformat().

The rows are read only: mark_published records the id and leaves the file as it is, so the
relay can read the same rows afterwards. Used by crates/outbox-ce/tests/relay_interop.rs.
"""

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog  # noqa: E402
from python_outbox_core import IOutboxRepository, OutboxPublisherBase  # noqa: E402
from python_outbox_core.publisher import IEventPublisher  # noqa: E402
from python_outbox_core_repository import StoredEvent  # noqa: E402

COLUMNS = (
    "event_id",
    "event_type",
    "aggregate_id",
    "occurred_at",
    "source",
    "data_version",
    "correlation_id",
    "causation_id",
)


class SqliteOutboxRepository(IOutboxRepository):
    def __init__(self, path, table="outbox_events"):
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.table = table
        self.published = set()

    async def add_event(self, event):
        raise NotImplementedError("read only")

    async def get_unpublished(self, limit=100, offset=0):
        names = ", ".join(f'"{c}"' for c in COLUMNS)
        rows = self.conn.execute(
            f'select {names}, "partition_key", "payload" from "{self.table}" '
            'where "published_at" is null and "failed_at" is null order by "seq" '
            "limit ? offset ?",
            (limit, offset),
        ).fetchall()
        events = []
        for row in rows:
            fields = {name: value for name, value in zip(COLUMNS, row) if value is not None}
            if row[len(COLUMNS)] is not None:
                fields["partition_key"] = row[len(COLUMNS)]
            fields.update(json.loads(row[len(COLUMNS) + 1]))
            events.append(StoredEvent.model_validate(fields))
        return [e for e in events if e.event_id not in self.published]

    async def mark_published(self, event_id):
        self.published.add(event_id)

    async def count_unpublished(self):
        return 0

    async def mark_failed(self, event_id, error_message):
        raise RuntimeError(f"{event_id}: {error_message}")


class Collect(IEventPublisher):
    def __init__(self):
        self.messages = []

    async def publish(self, message):
        self.messages.append(message)


class Publisher(OutboxPublisherBase):
    async def schedule_publishing(self):
        while await self.publish_batch(limit=100):
            pass


async def main():
    # The publisher's own log lines go to standard error; standard output is the messages.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    repository = SqliteOutboxRepository(*sys.argv[1:3])
    collect = Collect()
    await Publisher(repository, collect).schedule_publishing()
    for message in collect.messages:
        print(json.dumps(message, ensure_ascii=False))


asyncio.run(main())
