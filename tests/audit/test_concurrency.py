"""Writers racing to append: the chain must come out gapless, unforked and verifiable.

Real processes, each with several threads, against the embedded SQLite database (WAL,
IMMEDIATE transactions) and, in the integration tier, a throwaway PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.cluster import throwaway_database
from tests.support.processes import PYTHON, ROOT, bosun_env, manage

PROCESSES = 2
THREADS = 4
EVENTS = 40
TOTAL = PROCESSES * THREADS * EVENTS


def race_verify_and_prune(env: dict[str, str]) -> None:
    """Migrate, race PROCESSES appenders, verify; prune it all, verify again."""
    migrated = manage("migrate", "-v", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    writers = [
        subprocess.Popen(
            [
                *(PYTHON, "-m", "tests.audit.append_concurrently"),
                *("--threads", str(THREADS), "--events", str(EVENTS), "--label", f"p{n}"),
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    verified = manage("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert f"{TOTAL} events verified, 1 to {TOTAL}" in verified.stdout
    pruned = manage("audit", "prune", "--before", "2100-01-01", env=env)
    assert f"Deleted {TOTAL} events up to event {TOTAL}" in pruned.stdout, pruned.stderr
    verified = manage("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert f"chained from the signed checkpoint at event {TOTAL}" in verified.stdout


def test_concurrent_writers_on_sqlite_make_one_gapless_chain_that_survives_pruning(tmp_path):
    race_verify_and_prune(bosun_env(BOSUN_DATA_DIR=str(tmp_path)))


@pytest.mark.integration
def test_concurrent_writers_on_postgresql_make_one_gapless_chain_that_survives_pruning(tmp_path):
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        race_verify_and_prune(bosun_env(BOSUN_DATA_DIR=str(tmp_path), DATABASE_URL=database_url))
