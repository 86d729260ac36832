"""Fixtures of the agent's tests. Nothing here touches Django: the agent never does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_fake_server import FakeBosun

from bosun_agent import backoff, facts, runtime


@pytest.fixture
def server() -> Iterator[FakeBosun]:
    fake = FakeBosun().start()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch, server: FakeBosun) -> FakeBosun:
    """Backoff and heartbeats in tenths of a second, so behaviour over time runs quickly."""
    monkeypatch.setattr(backoff, "BACKOFF_BASE_SECONDS", 0.05)
    monkeypatch.setattr(backoff, "BACKOFF_CAP_SECONDS", 0.4)
    monkeypatch.setattr(runtime, "MIN_HEARTBEAT_SECONDS", 0.05)
    server.heartbeat_interval = 0.2
    return server


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(autouse=True)
def machine_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed machine for every test; a test that needs a second machine changes it."""
    monkeypatch.setenv(facts.FINGERPRINT_ENV, "test-machine-1")
    monkeypatch.delenv("BOSUN_AGENT_STATE_DIR", raising=False)
