"""Writers racing on one parameter never lose, double or skip a version.

Each race runs in a Bosun process of its own, each writer a thread with its own connection
and real transactions: on PostgreSQL (the integration tier, a throwaway database) the row lock
on the parameter orders overwrites and the unique name decides between concurrent creates; on
the embedded SQLite database IMMEDIATE transactions queue the writers.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster import throwaway_database
from tests.support.processes import PYTHON, ROOT, bosun_env, manage

WRITERS = 8
WRITES = 25
TOTAL = WRITERS * WRITES
KEPT = 100


@contextlib.contextmanager
def database(backend: str) -> Iterator[dict[str, str]]:
    if backend == "sqlite":
        yield {}
        return
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        yield {"DATABASE_URL": database_url, "BOSUN_DB_POOL_SIZE": str(WRITERS + 4)}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def report(request, tmp_path_factory) -> dict[str, Any]:
    with database(request.param) as overrides:
        env = bosun_env(BOSUN_DATA_DIR=str(tmp_path_factory.mktemp("bosun")), **overrides)
        migrated = manage("migrate", "-v", "0", env=env)
        assert migrated.returncode == 0, migrated.stderr
        racer = subprocess.run(
            [
                *(PYTHON, "-m", "tests.integration.put_concurrently"),
                *("--writers", str(WRITERS), "--writes", str(WRITES)),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert racer.returncode == 0, racer.stderr
        return json.loads(racer.stdout.strip().splitlines()[-1])


def test_racing_overwrites_number_every_write_once_and_keep_the_newest_hundred(report):
    race = report["overwrites"]
    assert race["errors"] == []
    versions = sorted(version for version, _ in race["written"])
    assert versions == list(range(1, TOTAL + 1))  # no duplicates, no gaps
    assert race["version"] == TOTAL
    kept = [version for version, _ in race["kept"]]
    assert kept == list(range(TOTAL - KEPT + 1, TOTAL + 1))


def test_each_kept_version_holds_the_value_of_the_write_that_was_given_that_number(report):
    race = report["overwrites"]
    written = {version: value for version, value in race["written"]}
    assert all(written[version] == value for version, value in race["kept"])
    assert len({value for _, value in race["kept"]}) == KEPT


def test_racing_creates_with_overwrite_all_succeed_with_distinct_versions(report):
    race = report["creates_overwrite"]
    assert race["errors"] == []
    assert sorted(version for version, _ in race["written"]) == list(range(1, WRITERS + 1))
    assert [created for _, created in race["written"]].count(True) == 1
    assert race["version"] == WRITERS
    assert [version for version, _ in race["kept"]] == list(range(1, WRITERS + 1))


def test_racing_creates_without_overwrite_let_exactly_one_win(report):
    race = report["creates"]
    assert race["errors"] == []
    outcomes = Counter(outcome for outcome, _ in race["outcomes"])
    assert outcomes == {"created": 1, "ParameterAlreadyExists": WRITERS - 1}
    assert race["version"] == 1
    assert len(race["kept"]) == 1
