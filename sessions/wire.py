"""The session websockets' wire constants, under the names the server's modules use.

The values are the agent protocol's (bosun_agent.protocol; PROTOCOL.md "Session Manager"):
nothing in the server spells them again.
"""

from __future__ import annotations

from bosun_agent.protocol import (
    CLOSE_SESSION_UNKNOWN,
    MESSAGE_START_SESSION,
    SESSION_GRACE_SECONDS,
    SESSION_WEBSOCKET_PATH,
    SESSION_WINDOW_BYTES,
)
from bosun_agent.protocol import SESSION_FRAME_INPUT as FRAME_INPUT
from bosun_agent.protocol import SESSION_FRAME_OUTPUT as FRAME_OUTPUT
from bosun_agent.protocol import SESSION_MAX_FRAME_BYTES as FRAME_MAX_DATA

__all__ = [
    "CLOSE_SESSION_UNKNOWN",
    "FRAME_INPUT",
    "FRAME_MAX_DATA",
    "FRAME_OUTPUT",
    "MESSAGE_START_SESSION",
    "SESSION_GRACE_SECONDS",
    "SESSION_WEBSOCKET_PATH",
    "SESSION_WINDOW_BYTES",
]
