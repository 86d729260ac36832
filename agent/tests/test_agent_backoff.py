from __future__ import annotations

import random

from bosun_agent.backoff import Backoff, jittered


def test_backoff_doubles_from_one_second_to_a_minute_within_fifty_percent() -> None:
    backoff = Backoff(rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    nominal = [1, 2, 4, 8, 16, 20, 20, 20, 20, 20, 20, 20]
    for delay, expected in zip(delays, nominal):
        assert 0.5 * expected <= delay <= 1.5 * expected


def test_backoff_starts_over_after_a_success() -> None:
    backoff = Backoff(rng=random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    assert backoff.failing
    backoff.reset()
    assert not backoff.failing
    assert 0.5 <= backoff.next_delay() <= 1.5


def test_many_agents_retrying_together_spread_out_instead_of_stampeding() -> None:
    rng = random.Random(3)
    first_retries = sorted(Backoff(rng=rng).next_delay() for _ in range(1000))
    # Spread over the whole ±50 % window, not bunched at one instant.
    assert first_retries[0] < 0.55 and first_retries[-1] > 1.45
    in_any_tenth_of_a_second = max(
        sum(1 for d in first_retries if start / 10 <= d < (start + 1) / 10) for start in range(20)
    )
    assert in_any_tenth_of_a_second < 150


def test_a_heartbeat_interval_moves_by_at_most_ten_percent() -> None:
    rng = random.Random(5)
    values = [jittered(60, 0.1, rng) for _ in range(1000)]
    assert min(values) >= 54 and max(values) <= 66
    assert max(values) - min(values) > 10  # it does move
