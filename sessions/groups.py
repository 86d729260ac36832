"""The channel-layer groups a session's sockets talk through, and their message types.

The agent's socket is the session's home (sessions.relay); browsers are its viewers. They may
sit in different `ws` processes, so everything between them goes through the channel layer:
at most once (DESIGN.md §2), which is why output carries offsets and a viewer that sees a gap
asks the home to send again from where it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

# To the home.
INPUT = "shell.input"  # {"data": bytes}
RESIZE = "shell.resize"  # {"cols", "rows"}
ACK = "shell.ack"  # {"offset"}
ATTACH = "shell.attach"  # {"channel", "offset"}: send me the output from offset on
TERMINATE = "shell.terminate"  # {"reason"}
REPLACED = "shell.replaced"  # {"channel"}: a newer agent socket of the session took over
# To the viewers (or one viewer's channel).
REPLAY = "shell.replay"  # {"offset"}: the output sent to this viewer next starts here
OUTPUT = "shell.output"  # {"offset", "data"}
STATUS = "shell.status"  # {"status", "message"}
ENDED = "shell.ended"  # {"reason", "status"}

# Channels allows these characters in a group name, shorter than 100 characters.
_GROUP_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def _key(session_id: str) -> str:
    # Session ids may hold "@" and run to 96 characters; those are hashed into a name.
    if _GROUP_SAFE.match(session_id):
        return session_id
    return hashlib.sha256(session_id.encode()).hexdigest()[:40]


def home(session_id: str) -> str:
    return f"shell.{_key(session_id)}.home"


def viewers(session_id: str) -> str:
    return f"shell.{_key(session_id)}.viewers"


# --- The same-process shortcut ------------------------------------------------------------
#
# A browser and the agent's socket of a session are often in the same `ws` process: then
# their messages skip the channel layer (a Redis round trip each way, and the serializing) and
# go straight into the other consumer's inbox, a queue its dispatch loop reads beside the
# channel layer (sessions.consumers), so messages keep their order and are handled one at a
# time as ever. Only within one event loop; anything else, and every message from the
# services (terminate, ended), still goes through the channel layer.


class _Member:
    __slots__ = ("inbox", "loop")

    def __init__(self, inbox: asyncio.Queue[dict[str, Any]]) -> None:
        self.inbox = inbox
        self.loop = asyncio.get_running_loop()


_local: dict[str, dict[str, _Member]] = {}  # group → channel name → member


def local_join(group: str, channel: str, inbox: asyncio.Queue[dict[str, Any]]) -> None:
    _local.setdefault(group, {})[channel] = _Member(inbox)


def local_leave(group: str, channel: str) -> None:
    members = _local.get(group)
    if members is not None:
        members.pop(channel, None)
        if not members:
            del _local[group]


def _here(member: _Member) -> bool:
    try:
        return member.loop is asyncio.get_running_loop()
    except RuntimeError:
        return False


def local_channels(group: str) -> list[str]:
    """The group's members in this process (on this event loop)."""
    return [channel for channel, member in _local.get(group, {}).items() if _here(member)]


def is_local(group: str, channel: str) -> bool:
    member = _local.get(group, {}).get(channel)
    return member is not None and _here(member)


def deliver_local(group: str, channel: str, message: dict[str, Any]) -> bool:
    """Put `message` in the inbox of the group's member `channel` if it is here."""
    member = _local.get(group, {}).get(channel)
    if member is None or not _here(member):
        return False
    member.inbox.put_nowait(message)
    return True
