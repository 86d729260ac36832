"""Test tiers, personas and shared fixtures.

Tiers (DESIGN.md §5): the default tier needs nothing but this checkout; `integration` needs
PostgreSQL and Redis (BOSUN_TEST_DATABASE_URL, BOSUN_TEST_REDIS_URL); `browser` needs Debian's
Chromium. Locally a tier whose service is missing is skipped with the reason; with CI=true it
fails instead, so CI can never pass by skipping a tier.
"""

from __future__ import annotations

import functools
import os
import shutil

import psycopg
import pytest
import redis

from tests.factories import UserFactory

CHROMIUM = os.environ.get("BOSUN_TEST_CHROMIUM", "/usr/bin/chromium")


@functools.cache
def tier_problem(tier: str) -> str | None:
    """Why a tier cannot run here, or None when it can."""
    if tier == "integration":
        database_url = os.environ.get("BOSUN_TEST_DATABASE_URL")
        redis_url = os.environ.get("BOSUN_TEST_REDIS_URL")
        if not database_url or not redis_url:
            return "set BOSUN_TEST_DATABASE_URL and BOSUN_TEST_REDIS_URL (see .ci/run)"
        try:
            psycopg.connect(database_url, connect_timeout=3).close()
        except psycopg.Error as exc:
            return f"PostgreSQL at BOSUN_TEST_DATABASE_URL is unreachable ({exc})"
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            return f"Redis at BOSUN_TEST_REDIS_URL is unreachable ({exc})"
    if tier == "browser" and not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for tier in ("integration", "browser"):
        if item.get_closest_marker(tier) is None:
            continue
        problem = tier_problem(tier)
        if problem is None:
            continue
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the {tier} tier must run in CI: {problem}", pytrace=False)
        pytest.skip(f"{tier} tier skipped: {problem}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for tier in ("integration", "browser"):
        problem = tier_problem(tier)
        lines.append(f"bosun {tier} tier: {'ready' if problem is None else problem}")
    return lines


# --- Personas -------------------------------------------------------------------------------
# Until access policies exist, personas differ by account only; the identity issue gives the
# operator its Env=dev scope and the auditor its read-only policy.


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", is_superuser=True, is_staff=True)


@pytest.fixture
def operator_user(db):
    return UserFactory(username="otto")


@pytest.fixture
def auditor_user(db):
    return UserFactory(username="audrey")


@pytest.fixture
def outsider_user(db):
    return UserFactory(username="oscar")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client
