"""Registrations racing on one activation never pass its limit, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from bosun_agent import protocol

from tests.support.cluster import throwaway_database
from tests.support.processes import PYTHON, ROOT, bosun_env, manage

THREADS = 12
LIMIT = 5


def race(env: dict[str, str]) -> None:
    migrated = manage("migrate", "-v", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    racer = subprocess.run(
        [
            *(PYTHON, "-m", "tests.fleet.protocol.register_concurrently"),
            *("--threads", str(THREADS), "--limit", str(LIMIT)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert racer.returncode == 0, racer.stderr
    report = json.loads(racer.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["outcomes"] == {
        "registered": LIMIT,
        protocol.ERROR_ACTIVATION_EXHAUSTED: THREADS - LIMIT,
    }
    assert report["nodes"] == report["counter"] == LIMIT


def test_racing_registrations_on_sqlite_create_exactly_the_limit(tmp_path):
    race(bosun_env(BOSUN_DATA_DIR=str(tmp_path)))


@pytest.mark.integration
def test_racing_registrations_on_postgresql_create_exactly_the_limit(tmp_path):
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        race(bosun_env(BOSUN_DATA_DIR=str(tmp_path), DATABASE_URL=database_url))
