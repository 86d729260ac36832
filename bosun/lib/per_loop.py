"""One object per running event loop, for process-wide async state of the `ws` role.

Daphne runs one event loop per process, so this is one object per process there; tests start
a loop per test, and each gets its own (asyncio objects must not cross loops).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_event_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter returning the running loop's object, made by `factory` on first use."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get() -> T:
        loop = asyncio.get_running_loop()
        found = made.get(loop)
        if found is None:
            found = made[loop] = factory()
        return found

    return get
