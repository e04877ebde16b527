#!/usr/bin/env python3
"""Writes N outbox events in python-outbox-core's to_message() layout, one per line, for the
CLI throughput comparison.

    gen_outbox.py N > events.jsonl

Every event has the shape of the `codec` benchmark's realistic event: a correlation id, a
causation id, a data version and a partition key of its own (five CloudEvents extensions),
and a JSON payload of about 150 bytes. Values are derived from the line number only, so the
output is the same on every run and every machine.
"""

import json
import sys
import uuid

NAMESPACE = uuid.UUID("0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11")
TYPES = ["com.gridflow.invite.created", "com.gridflow.invite.accepted", "com.gridflow.order.placed"]
SOURCES = ["user-service", "invite-service", "order-service"]
ROLES = ["admin", "viewer", "editor"]


def line(n: int) -> str:
    tenant = f"tenant-{n % 97}"
    second = n % 86400
    event = {
        "event_id": str(uuid.uuid5(NAMESPACE, f"event-{n}")),
        "event_type": TYPES[n % len(TYPES)],
        "aggregate_id": f"invite-{n:08x}",
        "occurred_at": f"2024-05-{1 + n % 28:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:"
        f"{second % 60:02d}.{n % 1000000:06d}+00:00",
        "source": SOURCES[n % len(SOURCES)],
        "data_version": "1.2.0",
        "correlation_id": str(uuid.uuid5(NAMESPACE, f"correlation-{n // 4}")),
        "causation_id": str(uuid.uuid5(NAMESPACE, f"event-{max(n - 1, 0)}")),
        "invite_id": f"inv_{n:08d}",
        "email": f"zoë.martin+{n}@example.com",
        "role": ROLES[n % len(ROLES)],
        "tenant": tenant,
        "invited_by": f"user-{n % 1729}",
        "expires_at": "2024-05-08T10:00:00Z",
        "partition_key": tenant,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.stdout
    for n in range(int(sys.argv[1])):
        out.write(line(n))
        out.write("\n")


if __name__ == "__main__":
    main()
