"""The two things that travel through the message queue: a message the server sends and the
reply the agent gives. Plain data, shared by the handlers, the runtime and the state store."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bosun_agent import protocol

# Message ids become file names in the outbox and path segments of ack/reply URLs, so only
# plain ids (the server sends UUIDs) are accepted.
_SAFE_MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

INTERRUPTED = "the agent stopped while running this message; it was not run again"


def message_id_safe(message_id: str) -> bool:
    return bool(_SAFE_MESSAGE_ID.match(message_id))


@dataclass(frozen=True)
class Message:
    message_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    delivery_count: int = 1

    @classmethod
    def from_wire(cls, data: Any) -> Message:
        """One entry of a fetch answer; ValueError when it is not a message we can handle."""
        if not isinstance(data, dict):
            raise ValueError("a fetched message is not an object")
        message_id = data.get("message_id")
        kind = data.get("kind")
        payload = data.get("payload") or {}
        if not isinstance(message_id, str) or not message_id_safe(message_id):
            raise ValueError(f"a fetched message has an unusable id: {message_id!r}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"message {message_id} has no kind")
        if not isinstance(payload, dict):
            raise ValueError(f"message {message_id} has a payload that is not an object")
        delivery_count = data.get("delivery_count")
        return cls(
            message_id=message_id,
            kind=kind,
            payload=payload,
            delivery_count=delivery_count if isinstance(delivery_count, int) else 1,
        )


@dataclass(frozen=True)
class Reply:
    status: str
    result: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def success(cls, **result: Any) -> Reply:
        return cls(protocol.REPLY_SUCCESS, dict(result))

    @classmethod
    def failed(cls, error: str, **result: Any) -> Reply:
        return cls(protocol.REPLY_FAILED, {"error": error, **result})

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status, "result": self.result}

    @classmethod
    def from_wire(cls, data: Any) -> Reply:
        if not isinstance(data, dict) or data.get("status") not in protocol.REPLY_STATUSES:
            raise ValueError("not a saved reply")
        result = data.get("result")
        return cls(str(data["status"]), result if isinstance(result, dict) else {})
