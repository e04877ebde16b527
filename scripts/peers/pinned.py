"""Event classes for the Python SDKs with a pinned clock and id generator.

When an event has no `time` (or no `id`), both SDKs make one up: datetime.now() and uuid4().
These classes make up PINNED_NOW and PINNED_ID instead, in the same form and at the same
place in the attribute order, so that the scripts' output is deterministic and the invented
attribute stays visible.
"""

from datetime import datetime, timezone

from cloudevents.core.v1.event import CloudEvent as CoreCloudEvent
from cloudevents.v1.http import CloudEvent as V1CloudEvent

PINNED_NOW = datetime(2000, 1, 1, tzinfo=timezone.utc)
PINNED_ID = "00000000-0000-4000-8000-000000000000"


def core_event(attributes, data=None):
    """An event factory for cloudevents.core (JSONFormat.read, kafka.from_*)."""
    attributes.setdefault("id", PINNED_ID)
    attributes.setdefault("time", PINNED_NOW)
    return CoreCloudEvent(attributes, data)


class V1Event(V1CloudEvent):
    """An event type for the legacy cloudevents.v1 API."""

    def __init__(self, attributes, data=None):
        attributes = {k.lower(): v for k, v in attributes.items()}
        attributes.setdefault("id", PINNED_ID)
        attributes.setdefault("time", PINNED_NOW.isoformat())
        super().__init__(attributes, data)
