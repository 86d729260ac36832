"""Publishing live events to browsers after the database commit.

The channel layer is a wake-up path, never the record (DESIGN.md §2): a service writes its rows,
then asks for an event to be published once the transaction commits, so a browser that reacts
to the event always finds the data it is told about.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# The message type consumers handle (Channels maps "realtime.event" to realtime_event()).
EVENT_TYPE = "realtime.event"

BROADCAST_GROUP = "broadcast"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(group: str, event: str, data: dict[str, Any]) -> None:
    """Send an event to a group now. Failures are logged, never raised: the record is safe."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": EVENT_TYPE, "event": event, "data": data})
    except Exception:
        logger.exception("could not publish %s to %s", event, group)


def publish_on_commit(group: str, event: str, data: dict[str, Any]) -> None:
    """Send an event to a group once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(group, event, data))
