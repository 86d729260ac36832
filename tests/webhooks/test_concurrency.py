"""Workers claiming at once never share a delivery (PostgreSQL: FOR UPDATE SKIP LOCKED; the
embedded stack's SQLite file: the write lock every transaction takes at BEGIN IMMEDIATE).

The race runs in a Bosun process of its own against a real database file or server: the
test tier's in-memory SQLite database locks whole tables across threads, which no deployment
does.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.cluster import throwaway_database
from tests.support.processes import PYTHON, ROOT, bosun_env, manage

WORKERS = 4
DELIVERIES = 60


@contextlib.contextmanager
def database(backend: str) -> Iterator[dict[str, str]]:
    if backend == "sqlite":
        yield {}
        return
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        yield {"DATABASE_URL": database_url, "BOSUN_DB_POOL_SIZE": str(WORKERS + 4)}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_concurrent_claims_take_each_delivery_once(backend, tmp_path):
    with database(backend) as overrides:
        env = bosun_env(BOSUN_DATA_DIR=str(tmp_path), **overrides)
        migrated = manage("migrate", "-v", "0", env=env)
        assert migrated.returncode == 0, migrated.stderr
        racer = subprocess.run(
            [
                *(PYTHON, "-m", "tests.integration.claim_concurrently"),
                *("--workers", str(WORKERS), "--deliveries", str(DELIVERIES)),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert racer.returncode == 0, racer.stderr
        report = json.loads(racer.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    claimed = report["claimed"]
    assert len(claimed) == len(set(claimed)) == DELIVERIES
    assert set(claimed) == set(report["existing"])
