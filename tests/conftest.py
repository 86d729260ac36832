"""Test tiers, personas and shared fixtures.

Tiers (DESIGN.md §5): the default tier needs nothing but this checkout; `integration` needs
PostgreSQL and Redis (BOSUN_TEST_DATABASE_URL, BOSUN_TEST_REDIS_URL); `browser` needs Debian's
Chromium. Locally a tier whose service is missing is skipped with the reason; with CI=true it
fails instead, so CI can never pass by skipping a tier.
"""

from __future__ import annotations

import functools
import json
import os
import shutil

import psycopg
import pytest
import redis

from access.models import ManagedPolicy
from access.policy.builtin import BUILTIN_POLICIES
from access.services import builtin_policies_sync
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


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache: counters kept there (the audit budget of failed
    authentications, audit.failures) must not carry over from one test to the next."""
    from django.core.cache import cache

    cache.clear()


# --- Personas -------------------------------------------------------------------------------
# DESIGN.md §5: admin (superuser), operator (runs commands on Env=dev nodes, runs system checks,
# manages its own access keys), auditor (the built-in AuditViewer), outsider (no policy).

OPERATOR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "RunCommandsOnDev",
            "Effect": "Allow",
            "Action": BUILTIN_POLICIES["RunCommandOperator"].document["Statement"][0]["Action"],
            "Resource": "*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
        {
            "Sid": "Dashboard",
            "Effect": "Allow",
            "Action": [
                "bosun:ViewDashboard",
                "bosun:RunSystemCheck",
                "bosun:ManageOwnAccessKeys",
            ],
            "Resource": "*",
        },
    ],
}


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", is_superuser=True, is_staff=True)


@pytest.fixture
def operator_user(db):
    user = UserFactory(username="otto")
    policy, _ = ManagedPolicy.objects.get_or_create(
        name="DevOperator",
        defaults={
            "description": "Run commands on Env=dev nodes",
            "document": json.dumps(OPERATOR_POLICY),
        },
    )
    policy.users.add(user)
    return user


@pytest.fixture
def auditor_user(db):
    user = UserFactory(username="audrey")
    builtin_policies_sync()
    ManagedPolicy.objects.get(name="AuditViewer").users.add(user)
    return user


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


@pytest.fixture
def auditor_client(client, auditor_user):
    client.force_login(auditor_user)
    return client


@pytest.fixture
def outsider_client(client, outsider_user):
    client.force_login(outsider_user)
    return client
