"""The embedded stack's Celery broker: kombu's filesystem transport, with messages written
atomically.

kombu creates a message file under its final name and only then writes it; a worker polling
the folder can move and read it in between, find it empty, and die of a JSON error (which
stops the embedded stack). Here a message is written to a hidden file first (kombu's reader
never picks those: it matches `<time>_<uuid>.<queue>.msg`) and renamed into place, which is
atomic on one filesystem.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's own base classes name the second argument differently (message, payload).
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
