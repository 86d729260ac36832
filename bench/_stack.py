"""Real Bosun processes for benchmarks: the stores, the server roles, a signed-in session."""

from __future__ import annotations

import collections
import contextlib
import http.cookiejar
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_PASSWORD = "bench-" + secrets.token_hex(8)  # throwaway, per run


# A leaking server may exhaust only its own share of the PostgreSQL it shares with other users.
CONNECTION_LIMIT = 40


@contextlib.contextmanager
def stores() -> Iterator[dict[str, str]]:
    """DATABASE_URL and REDIS_URL of a throwaway database on the local PostgreSQL and Redis.

    The production roles refuse to start without both. The database belongs to a throwaway role
    with a connection limit, so a server that leaks connections fails its own requests instead of
    locking everyone else out of the server; both are dropped afterwards.
    """
    _require_postgres_and_redis()
    name = f"bosun_bench_{secrets.token_hex(4)}"
    password = secrets.token_hex(16)
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(
            f"CREATE ROLE {name} LOGIN PASSWORD '{password}' CONNECTION LIMIT {CONNECTION_LIMIT}"
        )
        admin.execute(f"CREATE DATABASE {name} OWNER {name}")
    try:
        yield {
            "DATABASE_URL": f"postgres://{name}:{password}@127.0.0.1:5432/{name}",
            "REDIS_URL": REDIS_URL,
        }
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as admin:
            # FORCE: a server we just stopped may still hold a connection for a moment.
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {name}")


def _require_postgres_and_redis() -> None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        raise SystemExit(
            f"bench: the production roles need PostgreSQL; none answered at {POSTGRES_URL} "
            f"({str(exc).strip().splitlines()[0]})"
        ) from None
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(
            f"bench: the production roles need Redis; none answered at {REDIS_URL} ({exc})"
        ) from None
    finally:
        client.close()


def bosun_env(data_dir: Path, stores: dict[str, str]) -> dict[str, str]:
    """Our environment minus any Bosun (or gunicorn) settings of the caller's, so the roles run
    as shipped."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BOSUN_")
        and key not in {"DATABASE_URL", "REDIS_URL", "GUNICORN_CMD_ARGS"}
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        BOSUN_DATA_DIR=str(data_dir),
        BOSUN_HOST=HOST,
        BOSUN_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    env.update(stores)
    return env


def manage(*args: str, env: dict[str, str]) -> None:
    """Run a management command; its output only matters when it fails."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(role: str, *, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`manage.py serve ROLE` for the block; yields its base URL and always stops it.

    The server logs to a file: a pipe nobody reads would fill up and stall it mid-benchmark.
    """
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [PYTHON, "manage.py", "serve", role],
            cwd=ROOT,
            env={**env, "BOSUN_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so one signal reaches gunicorn's workers too.
            start_new_session=True,
        )
    base_url = f"http://{HOST}:{port}"
    try:
        _wait_until_serving(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _wait_until_serving(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{_tail(log_path)}")
        with (
            contextlib.suppress(OSError),  # not listening yet, or an HTTP error page
            urllib.request.urlopen(f"{base_url}/login/", timeout=2),
        ):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within 60 s:\n{_tail(log_path)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def error_lines(log_path: Path, limit: int = 5) -> list[str]:
    """The distinct exception lines a server logged (`SomeError: why`), commonest first."""
    counts = collections.Counter(
        line.strip()
        for line in log_path.read_text(errors="replace").splitlines()
        if re.match(r"[\w.]+(Error|Exception): ", line)
    )
    return [f"{count} times: {line}" for line, count in counts.most_common(limit)]


def _tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The login answer's cookie is all we want; following it would render the dashboard."""

    def redirect_request(self, *args, **kwargs):
        return None


def sign_in(base_url: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """Sign in through the real login form; returns the `bosun_session` cookie's value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    opener.open(f"{base_url}/login/", timeout=10).close()
    cookies = {cookie.name: cookie.value for cookie in jar}
    form = urllib.parse.urlencode(
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": cookies["bosun_csrftoken"],
        }
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/login/", data=form, headers={"Referer": f"{base_url}/login/"}
    )
    try:
        opener.open(request, timeout=10).close()
    except urllib.error.HTTPError as answer:  # with redirects off, the 302 arrives as an error
        if answer.code != 302:
            raise RuntimeError(f"signing in at {base_url}/login/ answered {answer.code}") from None
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "bosun_session" not in cookies:
        raise RuntimeError(f"signing in as {username} at {base_url}/login/ set no session cookie")
    return cookies["bosun_session"]


@contextlib.contextmanager
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as path:
        yield Path(path)


class Released(NamedTuple):
    env: dict[str, str]
    data_dir: Path
    stores: dict[str, str]


@contextlib.contextmanager
def released(extra_env: dict[str, str] | None = None) -> Iterator[Released]:
    """A throwaway database and data directory, made ready by the Procfile's release steps in
    its order (collectstatic, then bootstrap): the roles' environment (`bosun_env` plus
    `extra_env`), the data directory and the stores' URLs."""
    with stores() as throwaway, data_dir() as directory:
        env = bosun_env(directory, throwaway)
        env.update(extra_env or {})
        manage("collectstatic", "--noinput", env=env)
        manage("bootstrap", env=env)
        yield Released(env, directory, throwaway)
