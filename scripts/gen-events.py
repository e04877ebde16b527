#!/usr/bin/env python3
"""Writes N outbox events (python-outbox-core's to_message() layout), one per line, for
measuring `outbox-ce` on large inputs.

Usage: scripts/gen-events.py N [FIXTURE] > events.jsonl

Cycles through the lines of FIXTURE (default fixtures/python-outbox-core/events.jsonl),
giving each event a new event_id derived from its line number (UUID version 5), so the
output is the same on every run.
"""

import json
import sys
import uuid
from pathlib import Path

NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # the URL namespace


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    count = int(sys.argv[1])
    fixture = Path(sys.argv[2] if len(sys.argv) == 3 else
                   Path(__file__).parent.parent / "fixtures/python-outbox-core/events.jsonl")
    templates = [line for line in fixture.read_text(encoding="utf-8").splitlines() if line.strip()]
    # The id is the first member of every template: swap its value in place, so the rest of the
    # line (payload spelling, key order, big integers) stays byte for byte as the fixture has it.
    out = sys.stdout
    for n in range(count):
        line = templates[n % len(templates)]
        old_id = json.loads(line)["event_id"]
        new_id = str(uuid.uuid5(NAMESPACE, f"outbox-ce-event-{n}"))
        out.write(line.replace(old_id, new_id, 1))
        out.write("\n")


if __name__ == "__main__":
    main()
