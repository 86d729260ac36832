"""A production-shaped Bosun cluster for the integration tier: real PostgreSQL, Redis, processes.

Each run gets its own throwaway PostgreSQL database and its own Redis database number, so two
runs on one machine (or a developer's `make run` next to CI) never see each other's tasks,
channel groups or cache entries: every throwaway database has its admin as user 1, so a shared
Redis would deliver one run's `user.1` events, and its Celery tasks, to the other.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery
from psycopg import sql
from websockets.sync.client import ClientConnection, connect

from tests.support.processes import (
    PYTHON,
    ROOT,
    bosun_env,
    free_port,
    log_tail,
    manage,
    running,
    stop,
    wait_for_port,
)

HOST = "127.0.0.1"
ADMIN_PASSWORD = "integration-" + secrets.token_hex(8)
START_TIMEOUT = 60.0
HTTP_TIMEOUT = 10.0
# Redis numbers its databases 0-15 by default; a run claims one that is empty and unclaimed.
REDIS_DATABASES = range(1, 16)
REDIS_CLAIM_PREFIX = "bosun-it:redis-db:"
REDIS_CLAIM_TTL = 3600


class ClusterError(RuntimeError):
    """The cluster could not be set up; the message carries the processes' logs."""


# --- Stores ---------------------------------------------------------------------------------


def _with_path(url: str, path: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=path).geturl()


@contextlib.contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `server_url`; dropped afterwards."""
    name = f"bosun_it_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_path(server_url, f"/{name}")
    finally:
        # FORCE ends the connections processes that did not stop cleanly may have left behind.
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def shell_on_postgresql(script: str, data_dir: Path, *, runs: int = 1, **env: str) -> Any:
    """Run `script` with `manage.py shell -c` (`runs` times, one process each) against a
    migrated throwaway database on the integration PostgreSQL, with `env` added to Bosun's
    environment; the JSON the last run printed last."""
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        bosun = bosun_env(BOSUN_DATA_DIR=str(data_dir), DATABASE_URL=database_url, **env)
        migrated = manage("migrate", "-v", "0", env=bosun)
        assert migrated.returncode == 0, migrated.stderr
        for _ in range(runs):
            done = manage("shell", "-c", script, env=bosun)
            assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def claimed_redis_database(server_url: str) -> Iterator[str]:
    """The URL of a Redis database number nobody else uses, emptied again afterwards.

    Claims live in the database of `server_url` (SET NX with a TTL, so a killed run frees its
    number within the hour); a number whose database holds keys is passed over even when
    unclaimed, since someone outside this scheme may be using it.
    """
    base = redis.Redis.from_url(server_url, socket_connect_timeout=3, socket_timeout=3)
    token = secrets.token_hex(8)
    base_db = int(urllib.parse.urlsplit(server_url).path.lstrip("/") or 0)
    claimed: int | None = None
    try:
        for number in REDIS_DATABASES:
            if number == base_db:
                continue
            key = f"{REDIS_CLAIM_PREFIX}{number}"
            if not base.set(key, token, nx=True, ex=REDIS_CLAIM_TTL):
                continue
            if _redis_at(server_url, number).dbsize() == 0:
                claimed = number
                break
            base.delete(key)
        if claimed is None:
            raise ClusterError(
                f"no free Redis database among {REDIS_DATABASES.start}-"
                f"{REDIS_DATABASES.stop - 1} at BOSUN_TEST_REDIS_URL (all claimed or non-empty)"
            )
        yield _with_path(server_url, f"/{claimed}")
    finally:
        if claimed is not None:
            # It was empty when claimed and has been ours since: all of it is this run's.
            _redis_at(server_url, claimed).flushdb()
            key = f"{REDIS_CLAIM_PREFIX}{claimed}"
            if base.get(key) == token.encode():
                base.delete(key)
        base.close()


def _redis_at(server_url: str, number: int) -> redis.Redis:
    return redis.Redis.from_url(
        _with_path(server_url, f"/{number}"), socket_connect_timeout=3, socket_timeout=3
    )


# --- Processes ------------------------------------------------------------------------------


@dataclass
class Cluster:
    env: dict[str, str]
    database_url: str
    redis_url: str
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # How each role process was started (argv, environment), to start it again.
    launches: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def url(self, role: str, path: str = "/") -> str:
        return f"http://{HOST}:{self.ports[role]}{path}"

    def kill(self, name: str) -> None:
        """As a crash: SIGKILL to role process `name` and everything in its process group
        (a Celery worker's pool, gunicorn's workers); no chance to finish anything."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, name: str) -> subprocess.Popen:
        """Start the stopped role process `name` again as it was (same port, environment);
        returns once it serves. The old process stays listed (its log is worth reading)."""
        old = self.processes[name]
        if old.poll() is None:
            raise ClusterError(f"{name} is still running: kill it first")
        argv, env = self.launches[name]
        generation = sum(1 for other in self.processes if other.startswith(f"{name}~")) + 1
        self.processes[f"{name}~{generation}"] = old
        self.processes[name] = process = _launch(argv, env=env, name=name)
        try:
            self.wait_ready(name)
        except (TimeoutError, RuntimeError) as exc:
            raise ClusterError(f"{name} did not start again: {exc}\n{self.logs()}") from exc
        return process

    def wait_ready(self, name: str, *, timeout: float = START_TIMEOUT) -> None:
        """Until role process `name` serves: listens on its port, or answers a ping."""
        process = self.processes[name]
        if name in self.ports:
            wait_for_port(self.ports[name], timeout=timeout, process=process)
        elif name == "worker":
            _wait_for_worker(self.redis_url, process, timeout=timeout)

    def logs(self, lines: int = 40) -> str:
        """The tail of every process's log, to read beside a failure."""
        parts = []
        for name, process in self.processes.items():
            state = "running" if process.poll() is None else f"exited {process.returncode}"
            parts.append(f"----- {name} ({state}) -----\n{log_tail(process, lines)}")
        return "\n".join(parts)


@contextlib.contextmanager
def bosun_cluster(
    *, database_server_url: str, redis_server_url: str, ws_count: int = 2, beat: bool = False
) -> Iterator[Cluster]:
    """Bootstrap a fresh database, then run `web`, `ws` x `ws_count` and `worker` (and
    `beat`, for what the periodic tasks do)."""
    with (
        throwaway_database(database_server_url) as database_url,
        claimed_redis_database(redis_server_url) as redis_url,
        tempfile.TemporaryDirectory(prefix="bosun-it-") as data_dir,
        contextlib.ExitStack() as stack,
    ):
        # One data dir for all: it holds the generated SECRET_KEY that signs the sessions.
        env = bosun_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            BOSUN_DATA_DIR=data_dir,
            BOSUN_HOST=HOST,
            BOSUN_ADMIN_PASSWORD=ADMIN_PASSWORD,
            BOSUN_WEB_WORKERS="2",
            BOSUN_LOG_LEVEL="INFO",
        )
        cluster = Cluster(
            env=env, database_url=database_url, redis_url=redis_url, data_dir=Path(data_dir)
        )
        _run_release_steps(env)

        roles = ["web", *(f"ws{n}" for n in range(1, ws_count + 1)), "worker"]
        if beat:
            roles.append("beat")
        for name in roles:
            role = name.rstrip("0123456789")
            role_env = dict(env)
            if role in {"web", "ws"}:
                port = _free_port_not_in(cluster.ports.values())
                cluster.ports[name] = port
                role_env["BOSUN_PORT"] = str(port)
            argv = [PYTHON, "manage.py", "serve", role]
            cluster.launches[name] = (argv, role_env)
            cluster.processes[name] = stack.enter_context(running(argv, env=role_env, name=name))
        stack.callback(_stop_all, cluster)

        try:
            for name, port in cluster.ports.items():
                wait_for_port(port, timeout=START_TIMEOUT, process=cluster.processes[name])
            _wait_for_worker(redis_url, cluster.processes["worker"], timeout=START_TIMEOUT)
        except (TimeoutError, RuntimeError) as exc:
            raise ClusterError(f"the cluster did not start: {exc}\n{cluster.logs()}") from exc
        yield cluster


def _run_release_steps(env: dict[str, str]) -> None:
    # A production release migrates, creates the admin and collects the static files that
    # whitenoise's manifest storage serves (the login page cannot render without them). The
    # two are independent, so they run side by side.
    steps = [("bootstrap",), ("collectstatic", "--noinput", "-v", "0")]
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        results = list(pool.map(lambda args: manage(*args, env=env, timeout=120), steps))
    for args, result in zip(steps, results, strict=True):
        if result.returncode != 0:
            raise ClusterError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )


def _launch(argv: list[str], *, env: dict[str, str], name: str) -> subprocess.Popen:
    """Start a role process as `running` does (own session, log file); `_stop_all` stops it."""
    with tempfile.NamedTemporaryFile(prefix=f"bosun-{name}-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log_path = Path(log.name)  # type: ignore[attr-defined]
    return process


def _free_port_not_in(taken: Iterable[int]) -> int:
    taken = set(taken)
    while True:
        port = free_port()
        if port not in taken:
            return port


def _stop_all(cluster: Cluster) -> None:
    # Stop them together rather than one by one, so teardown takes one grace period, not four.
    for process in cluster.processes.values():
        with contextlib.suppress(ProcessLookupError):
            if process.poll() is None:
                process.terminate()
    for process in cluster.processes.values():
        stop(process)


def _wait_for_worker(redis_url: str, process: subprocess.Popen, *, timeout: float) -> None:
    """Until a worker answers a remote-control ping on the cluster's broker."""
    probe = Celery("bosun-it-probe", broker=redis_url, set_as_current=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with {process.returncode} before it was ready")
            if probe.control.ping(timeout=0.5):
                return
            time.sleep(0.2)
    finally:
        probe.close()
    raise TimeoutError(f"no Celery worker answered a ping within {timeout}s")


# --- Clients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """An HTTP client with a cookie jar, talking to one base URL and never through a proxy."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.cookies),
            _NoRedirect(),
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers or {}
        )
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT) as reply:
                return Response(reply.status, reply.read())
        except urllib.error.HTTPError as reply:
            with reply:
                return Response(reply.code, reply.read())

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, *, form: dict[str, str] | None = None) -> Response:
        """A POST as the dashboard's htmx sends it: CSRF token header and same-site Referer."""
        token = self.cookie("bosun_csrftoken") or ""
        headers = {"X-CSRFToken": token, "Referer": self.base_url + path}
        return self.request("POST", path, form=form or {}, headers=headers)

    def log_in(self, username: str, password: str) -> str:
        """Sign in through the login form; returns the session cookie's value."""
        page = self.get("/login/")
        if page.status != 200:
            raise AssertionError(f"GET /login/ answered {page.status}")
        token = self.cookie("bosun_csrftoken")
        if not token:
            raise AssertionError("GET /login/ set no bosun_csrftoken cookie")
        reply = self.post(
            "/login/",
            form={"username": username, "password": password, "csrfmiddlewaretoken": token},
        )
        session = self.cookie("bosun_session")
        if reply.status != 302 or not session:
            raise AssertionError(f"login as {username} failed: {reply.status} {reply.text[:300]}")
        return session


def open_events(
    port: int, *, session: str | None, origin: str | None = None, timeout: float = 10.0
) -> ClientConnection:
    """The live event feed on a ws process, as a signed-in (or not) browser tab opens it."""
    headers = {"Cookie": f"bosun_session={session}"} if session else {}
    return connect(
        f"ws://{HOST}:{port}/ws/events/",
        additional_headers=headers,
        origin=origin or f"http://{HOST}:{port}",
        open_timeout=timeout,
        close_timeout=2,
        proxy=None,
    )


def next_event(socket: ClientConnection, *, timeout: float) -> dict[str, Any]:
    return json.loads(socket.recv(timeout=timeout))


def events_until(
    socket: ClientConnection, wanted, *, timeout: float
) -> tuple[list[dict[str, Any]], bool]:
    """Read events until `wanted(seen)` holds or `timeout` runs out; returns (seen, satisfied)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not wanted(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            return seen, False
        try:
            seen.append(next_event(socket, timeout=left))
        except TimeoutError:
            return seen, False
    return seen, True
