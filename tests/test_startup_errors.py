"""A wrong setting stops start-up with one line naming what to fix, never a traceback."""

import socket
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, bosun_env, free_port


def serve(role: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "serve", role],
        cwd=ROOT,
        env=bosun_env(BOSUN_DATA_DIR=str(tmp_path / "data"), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess, starts_with: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bosun: {starts_with}"), lines[0]
    assert "Traceback" not in result.stderr


def test_a_malformed_database_url(tmp_path):
    result = serve("web", tmp_path, DATABASE_URL="postgres//nohost")
    assert_one_clear_line(result, "DATABASE_URL: not a URL")


def unreachable_stores() -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://bosun@127.0.0.1:{free_port()}/bosun",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }


def test_an_unreachable_database(tmp_path):
    port = free_port()
    result = serve("embedded", tmp_path, DATABASE_URL=f"postgres://bosun@127.0.0.1:{port}/bosun")
    assert_one_clear_line(result, f"DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:{port}")


def test_an_unreachable_redis(tmp_path):
    stores = unreachable_stores()
    result = serve("worker", tmp_path, **stores)
    redis_port = stores["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    assert_one_clear_line(result, f"REDIS_URL: cannot reach Redis at 127.0.0.1:{redis_port}")


@pytest.mark.parametrize("role", ["web", "ws", "worker", "beat"])
def test_a_production_role_without_postgres_and_redis(tmp_path, role):
    assert_one_clear_line(serve(role, tmp_path), "DATABASE_URL: the web, ws, worker and beat roles")
    result = serve(role, tmp_path, DATABASE_URL="postgres://bosun@127.0.0.1/bosun")
    assert_one_clear_line(result, "REDIS_URL: the web, ws, worker and beat roles need Redis")


@pytest.mark.parametrize("role", ["embedded", "web", "ws"])
def test_a_port_in_use(tmp_path, role):
    stores = {} if role == "embedded" else unreachable_stores()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(role, tmp_path, BOSUN_PORT=str(port), **stores)
    assert_one_clear_line(result, f"BOSUN_PORT: 127.0.0.1:{port} is already in use")


def test_an_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=bosun_env(BOSUN_DATA_DIR=str(blocker / "data")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_clear_line(result, "BOSUN_DATA_DIR: cannot create")


def test_the_embedded_stack_refuses_a_redis_url(tmp_path):
    result = serve("embedded", tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert_one_clear_line(result, "REDIS_URL: the embedded stack runs without Redis")
