"""End-to-end fixtures: one live embedded stack for the package, real agents per test.

The stack starts in seconds, but that is still most of a test's time, so the package shares
one; tests never depend on what others left in it (they look at their own nodes, or count
nodes by a tag of their own). Agents are stopped at the end of the test that made them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Agents, Stack, running_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack as shipped: agents heartbeat every 60 s, so anything faster is a wake-up."""
    root = tmp_path_factory.mktemp("e2e-stack")
    with running_stack(root / "var") as live:
        yield live


@pytest.fixture
def agents(stack: Stack, tmp_path: Path) -> Iterator[Agents]:
    made = Agents(stack, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On failure, show what the server and the agents logged: each sees half the story."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, Stack):
                report.sections.append(("bosun serve embedded (log tail)", value.log_tail()))
            elif isinstance(value, Agents):
                report.sections.append(("bosun-agent logs (tails)", value.logs()))
    return report
