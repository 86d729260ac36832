"""Relays racing on one recording on PostgreSQL: the session row lock orders the chunks.

What differs from the embedded SQLite database, where IMMEDIATE transactions queue every
writer anyway: real row locks between connections, chunk data coming back from bytea as a
memoryview, and the seal's audit anchor found in a jsonb column.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.support.cluster import throwaway_database
from tests.support.processes import PYTHON, ROOT, bosun_env, manage

pytestmark = pytest.mark.integration

WRITERS = 6
CHUNKS = 40


@pytest.fixture(scope="module")
def race(tmp_path_factory) -> dict[str, Any]:
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        env = bosun_env(
            BOSUN_DATA_DIR=str(tmp_path_factory.mktemp("bosun")),
            DATABASE_URL=database_url,
            BOSUN_DB_POOL_SIZE=str(WRITERS + 4),
        )
        migrated = manage("migrate", "-v", "0", env=env)
        assert migrated.returncode == 0, migrated.stderr
        done = subprocess.run(
            [
                *(PYTHON, "-m", "tests.shell_sessions.record_concurrently"),
                *("--writers", str(WRITERS), "--chunks", str(CHUNKS)),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


def test_relays_repeating_each_others_chunks_all_succeed_and_agree_on_every_hash(race):
    assert race["errors"] == []
    assert len(race["hashes"]) == WRITERS
    assert all(hashes == race["hashes"][0] for hashes in race["hashes"])
    assert len(race["hashes"][0]) == CHUNKS


def test_the_raced_recording_is_sealed_once_and_verifies_against_its_anchor(race):
    assert race["verified"], race["describe"]
    assert race["chunks"] == CHUNKS
    assert race["seal_events"] == 1
    assert race["audit_ok"]
    assert "as audit event" in race["describe"]


def test_the_raced_recordings_cast_file_holds_the_output_once_and_in_order(race):
    assert race["cast_matches"]
