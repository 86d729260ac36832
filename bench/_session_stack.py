"""The session benchmark's stack: the production roles behind nginx, and a real bosun-agent.

A real agent needs one base URL for HTTP and websockets. In production that is Bosun's nginx
site (deploy/nginx/bosun.conf): `/ws/` to the `ws` role (daphne), everything else to `web`
(gunicorn). This starts the four roles as shipped (bench/_fleet_stack.ServerRoles: a throwaway
PostgreSQL database, the local Redis as the channel layer) and nginx with that site's routing
on a free port, without TLS; Debian's nginx is installed when missing, as bench/http.py does
with wrk. The agent registers with an activation made through the REST API and runs as
`bosun-agent run`, with a state dir and a fingerprint of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import _fleet_stack, _procfs, _stack

AGENT = str(Path(_stack.PYTHON).with_name("bosun-agent"))
NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 60
MB = 1024 * 1024

# deploy/nginx/bosun.conf's routing, less TLS, the Host header as $http_host as there.
NGINX_CONF = """\
worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $bosun_connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream bosun_web {{ server 127.0.0.1:{web}; }}
    upstream bosun_ws {{ least_conn; server 127.0.0.1:{ws}; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;
        location /ws/ {{
            proxy_pass http://bosun_ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade           $http_upgrade;
            proxy_set_header Connection        $bosun_connection_upgrade;
            proxy_set_header Host              $http_host;
            proxy_set_header X-Forwarded-For   $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }}
        location / {{
            proxy_pass http://bosun_web;
            proxy_set_header Host              $http_host;
            proxy_set_header X-Forwarded-For   $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_redirect off;
            proxy_buffering on;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""

STACK_DESCRIPTION = (
    "production roles as shipped (serve web: gunicorn, ws: one daphne, worker and beat: "
    "Celery), Redis on 127.0.0.1 as the channel layer, a throwaway PostgreSQL database; in "
    "front, nginx with deploy/nginx/bosun.conf's routing (/ws/ to ws, the rest to web) on one "
    "port, which is the one base URL both the agent and the headless browser use; a real "
    "bosun-agent registered through an activation made with the REST API"
)


def ensure_nginx() -> None:
    if Path(NGINX).exists():
        return
    print("session: installing Debian's nginx (apt-get install nginx-light)…", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "nginx-light"],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


@dataclass
class Nginx:
    prefix: Path
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{_stack.HOST}:{self.port}"


@contextlib.contextmanager
def nginx(prefix: Path, *, web_port: int, ws_port: int) -> Iterator[Nginx]:
    ensure_nginx()
    prefix.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:  # nginx's workers then run as nobody
            shutil.chown(prefix / sub, user="nobody")
    port = _stack.free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, web=web_port, ws=ws_port, port=port))
    with (prefix / "nginx.log").open("ab") as log:
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proxy = Nginx(prefix=prefix, port=port, process=process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    "nginx exited:\n" + (prefix / "nginx-error.log").read_text(errors="replace")
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{proxy.url}/login/", timeout=2),
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not answer in time")
            time.sleep(0.1)
        yield proxy
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _api(base_url: str, key: str, method: str, path: str, body: object = None) -> dict:
    request = urllib.request.Request(
        f"{base_url}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        return json.loads(answer.read())


@dataclass
class Agent:
    node_id: str
    process: subprocess.Popen
    log_path: Path


@contextlib.contextmanager
def agent(base_url: str, key: str, root: Path) -> Iterator[Agent]:
    """A registered, running bosun-agent; waits until its node is Online."""
    activation = _api(base_url, key, "POST", "/activations/", {"description": "bench session"})
    state = root / "agent-state"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOSUN_") and "proxy" not in k.lower()
    }
    env["BOSUN_AGENT_FINGERPRINT"] = secrets.token_hex(16)
    done = subprocess.run(
        [
            AGENT,
            "register",
            "--state-dir",
            str(state),
            "--url",
            base_url,
            "--activation-id",
            activation["id"],
            "--activation-code",
            activation["activation_code"],
            "--name",
            "bench-session",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bosun-agent register failed: {done.stderr}")
    node_id = done.stdout.strip().splitlines()[-1]
    log_path = root / "agent.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [AGENT, "run", "--state-dir", str(state)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while _api(base_url, key, "GET", f"/nodes/{node_id}/")["status"] != "Online":
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the agent did not come online:\n" + log_path.read_text(errors="replace")
                )
            time.sleep(0.2)
        yield Agent(node_id=node_id, process=process, log_path=log_path)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class SessionStack:
    env: dict[str, str]
    url: str  # nginx: the one base URL
    roles: _fleet_stack.ServerRoles
    proxy: Nginx
    agent: Agent
    database_url: str
    cookie: str

    def server_rss_bytes(self) -> int:
        """RSS of every Bosun server process (the four roles' trees), from /proc."""
        return _procfs.usage(list(self.roles.pids().values())).rss_bytes

    def rss_by_role_mb(self) -> dict[str, float]:
        figures = {
            role: round(_procfs.usage([pid]).rss_bytes / MB, 1)
            for role, pid in self.roles.pids().items()
        }
        figures["nginx"] = round(_procfs.usage([self.proxy.process.pid]).rss_bytes / MB, 1)
        return figures

    def start_session(self) -> str:
        """session_start for the admin, as the e2e tests do it (manage.py shell)."""
        code = (
            "import json\n"
            "from django.contrib.auth import get_user_model\n"
            "from access.authorization import principal_for\n"
            "from sessions.services.sessions import session_start\n"
            "admin = get_user_model().objects.get(username='admin')\n"
            f"s = session_start(principal=principal_for(admin), node_id={self.agent.node_id!r}, "
            "reason='bench session', cols=200, rows=50)\n"
            "print(json.dumps(s.session_id))\n"
        )
        done = subprocess.run(
            [_stack.PYTHON, "manage.py", "shell", "-c", code],
            cwd=_stack.ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"session_start failed:\n{done.stdout}{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def session_row(self, session_id: str) -> dict:
        with psycopg.connect(self.database_url, autocommit=True) as db:
            row = db.execute(
                "SELECT status, end_reason, bytes_out, recording_sealed_at IS NOT NULL, "
                "recording_chunks, recording_output_bytes FROM shell_sessions_session "
                "WHERE session_id = %s",
                (session_id,),
            ).fetchone()
        keys = ("status", "end_reason", "bytes_out", "sealed", "chunks", "output_bytes")
        return dict(zip(keys, row, strict=True))

    def recording_output(self, session_id: str) -> tuple[bytes, int]:
        """The recording's "o" events' data, concatenated and encoded UTF-8, read chunk by
        chunk from PostgreSQL; and the number of chunks."""
        output = bytearray()
        chunks = 0
        with (
            psycopg.connect(self.database_url) as db,  # a named cursor needs a transaction
            db.cursor(name="chunks") as cursor,
        ):
            cursor.itersize = 16
            cursor.execute(
                "SELECT c.data FROM shell_sessions_recordingchunk c "
                "JOIN shell_sessions_session s ON s.id = c.session_id "
                "WHERE s.session_id = %s ORDER BY c.sequence",
                (session_id,),
            )
            for (data,) in cursor:
                chunks += 1
                for line in bytes(data).splitlines():
                    event = json.loads(line)
                    if isinstance(event, list) and len(event) == 3 and event[1] == "o":
                        output += event[2].encode("utf-8")
        return bytes(output), chunks


@contextlib.contextmanager
def session_stack(extra_env: dict[str, str] | None = None) -> Iterator[SessionStack]:
    # The agent runs as root on this machine: a session's shell is the agent's own user's.
    extra = {"BOSUN_SESSION_ALLOW_ROOT": "1", **(extra_env or {})}
    with _stack.released(extra) as (env, data_dir, stores):
        key = _fleet_stack.admin_access_key(env)
        with (
            _fleet_stack.running(env=env, log_dir=data_dir) as roles,
            nginx(
                data_dir / "nginx", web_port=roles.ports["web"], ws_port=roles.ports["ws"]
            ) as proxy,
            agent(proxy.url, key, data_dir) as running_agent,
        ):
            yield SessionStack(
                env=env,
                url=proxy.url,
                roles=roles,
                proxy=proxy,
                agent=running_agent,
                database_url=stores["DATABASE_URL"],
                cookie=_stack.sign_in(proxy.url),
            )
