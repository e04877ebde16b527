"""Writes the python-outbox-core golden files from real IOutboxEvent subclasses.

    python_outbox_core_fixtures.py OUT_DIR

OUT_DIR/events.jsonl       one json.dumps(event.to_message()) per event
OUT_DIR/cloudevents.jsonl  {"event", "partition_key", "formatter_source", "cloudevent"} per event,
                           "cloudevent" being CloudEventsFormatter(source=S).format(event)

What occurred_at looks like: to_message() is model_dump(mode="json"), and IOutboxEvent's
Config.json_encoders ({datetime: isoformat}) still applies under pydantic 2, so the JSON holds
exactly datetime.isoformat(), the same string CloudEventsFormatter puts in `time`:
    aware UTC   2024-05-06T07:08:09.123456+00:00   2024-05-06T07:08:09+00:00
    naive       2024-05-06T07:08:09.654321         2024-05-06T07:08:09   (no offset at all)
    +02:00      2024-05-06T09:08:09.120000+02:00   (6 fraction digits whenever microsecond != 0)
(Plain pydantic 2 without that encoder would write `Z` instead of `+00:00` for UTC.)

QuotaExceeded routes by tenant, not by aggregate: its get_partition_key() returns tenant_id, and
a computed field puts that key in to_message() as "partition_key" so the JSON carries it.
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

from pydantic import BaseModel, computed_field
from python_outbox_core import CloudEventsFormatter, IOutboxEvent


class Event(IOutboxEvent):
    def to_message(self):
        return self.model_dump(mode="json")


class Inviter(BaseModel):
    user_id: str
    display_name: str


class InviteCreated(Event):
    email: str
    roles: list[str]
    inviter: Inviter


class OrderPlaced(Event):
    customer_name: str
    total: float
    ledger_sequence: int


class QuotaExceeded(Event):
    tenant_id: str
    usage_ratio: float

    @computed_field
    @property
    def partition_key(self) -> str:
        return self.tenant_id

    def get_partition_key(self) -> str:
        return self.partition_key


class PaymentCaptured(Event):
    amount_cents: int
    currency: str


UTC = timezone.utc

EVENTS = [
    # aware UTC with microseconds; nested object and list
    InviteCreated(
        event_id=UUID("3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01"),
        event_type="com.gridflow.invite.created",
        aggregate_id="invite-42",
        occurred_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        source="user-service",
        email="ana@example.com",
        roles=["admin", "viewer"],
        inviter=Inviter(user_id="user-1", display_name="Ana"),
    ),
    # naive, as datetime.utcnow() gives it; big integer, float, unicode
    OrderPlaced(
        event_id=UUID("3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f02"),
        event_type="com.gridflow.order.placed",
        aggregate_id="order-1001",
        occurred_at=datetime(2024, 5, 6, 7, 8, 9, 654321),
        source="order-service",
        customer_name="Zoë 🚀 東京",
        total=129.9,
        ledger_sequence=18446744073709551617,
    ),
    # aware UTC without microseconds; partition key overridden
    QuotaExceeded(
        event_id=UUID("3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f03"),
        event_type="com.gridflow.quota.exceeded",
        aggregate_id="quota-7",
        occurred_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        source="billing-service",
        tenant_id="tenant-東京",
        usage_ratio=1.05,
    ),
    # naive without microseconds; correlation and causation set
    PaymentCaptured(
        event_id=UUID("3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f04"),
        event_type="com.gridflow.payment.captured",
        aggregate_id="payment-9",
        occurred_at=datetime(2024, 5, 6, 7, 8, 9),
        source="payment-service",
        data_version="2.0.0",
        correlation_id=UUID("5f0c6e2a-1b3d-4c5e-9f7a-8b9c0d1e2f30"),
        causation_id=UUID("5f0c6e2a-1b3d-4c5e-9f7a-8b9c0d1e2f31"),
        amount_cents=12990,
        currency="EUR",
    ),
    # aware with a +02:00 offset and a fraction with trailing zeros
    InviteCreated(
        event_id=UUID("3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f05"),
        event_type="com.gridflow.invite.created",
        aggregate_id="invite-43",
        occurred_at=datetime(2024, 5, 6, 9, 8, 9, 120000, tzinfo=timezone(timedelta(hours=2))),
        source="user-service",
        data_version="1.1.0",
        correlation_id=UUID("5f0c6e2a-1b3d-4c5e-9f7a-8b9c0d1e2f32"),
        email="bo@example.com",
        roles=[],
        inviter=Inviter(user_id="user-2", display_name="Bo"),
    ),
]

# The formatter's source: the event's own, except for the order, formatted by the API gateway.
FORMATTER_SOURCE = {"order-1001": "gridflow-api"}


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def main(out_dir):
    out = Path(out_dir)
    with open(out / "events.jsonl", "w", encoding="utf-8") as events, open(
        out / "cloudevents.jsonl", "w", encoding="utf-8"
    ) as cloudevents:
        for event in EVENTS:
            source = FORMATTER_SOURCE.get(event.aggregate_id, event.source)
            events.write(dumps(event.to_message()) + "\n")
            row = {
                "event": event.to_message(),
                "partition_key": event.get_partition_key(),
                "formatter_source": source,
                "cloudevent": CloudEventsFormatter(source=source).format(event),
            }
            cloudevents.write(dumps(row) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
