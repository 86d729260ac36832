"""The channel-layer groups a session's sockets talk through, and their message types.

The agent's socket is the session's home (sessions.relay); browsers are its viewers. They may
sit in different `ws` processes, so everything between them goes through the channel layer:
at most once (DESIGN.md §2), which is why output carries offsets and a viewer that sees a gap
asks the home to send again from where it is.
"""

from __future__ import annotations

import hashlib
import re

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
