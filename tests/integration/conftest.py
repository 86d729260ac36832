"""Integration-tier fixtures: one production-shaped cluster per module, logs shown on failure."""

from __future__ import annotations

import os

import pytest

from tests.support.cluster import Cluster


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and report.when in {"setup", "call"}:
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, Cluster):
                report.sections.append(("bosun process logs (tail)", value.logs()))
                break
    return report


@pytest.fixture(scope="module")
def service_urls() -> dict[str, str]:
    """The PostgreSQL and Redis servers of this run (the tier is skipped without them)."""
    return {
        "database_server_url": os.environ["BOSUN_TEST_DATABASE_URL"],
        "redis_server_url": os.environ["BOSUN_TEST_REDIS_URL"],
    }
