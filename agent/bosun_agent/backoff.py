"""Jittered exponential backoff and jittered intervals.

After a server restart every agent notices at the same instant; spreading their retries
(±50 %) and doubling the wait keeps them from coming back as one thundering herd.
"""

from __future__ import annotations

import random

BACKOFF_BASE_SECONDS = 1.0
# The cap bounds how long a fleet takes to come back after a server restart (the next try
# lands at most 30 s, the cap plus its jitter, after the server returns) while still spreading
# the retries of a thousand agents over more than ten seconds.
BACKOFF_CAP_SECONDS = 20.0
BACKOFF_JITTER = 0.5
HEARTBEAT_JITTER = 0.1


def jittered(seconds: float, jitter: float, rng: random.Random | None = None) -> float:
    """`seconds` moved at random by up to ±`jitter` of itself."""
    spread = (rng or random).uniform(-jitter, jitter)
    return max(0.0, seconds * (1.0 + spread))


class Backoff:
    """1 s, 2 s, 4 s … up to 20 s, each ±50 %; `reset()` after a success."""

    def __init__(
        self,
        *,
        base: float | None = None,
        cap: float | None = None,
        jitter: float = BACKOFF_JITTER,
        rng: random.Random | None = None,
    ) -> None:
        # Read at construction, not definition, so a test can shorten the module's constants.
        self.base = BACKOFF_BASE_SECONDS if base is None else base
        self.cap = BACKOFF_CAP_SECONDS if cap is None else cap
        self.jitter = jitter
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        # Doubling stops growing once it passes the cap, so the exponent stays small.
        exponent = min(self.failures, 32)
        self.failures += 1
        return jittered(min(self.cap, self.base * 2**exponent), self.jitter, self.rng)

    def reset(self) -> None:
        self.failures = 0

    @property
    def failing(self) -> bool:
        return self.failures > 0
