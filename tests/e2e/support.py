"""Real Bosun processes for the end-to-end tests: the embedded stack and `bosun-agent`s.

Nothing of Bosun is mocked: `manage.py serve embedded` runs in a throw-away data dir with a
short agent heartbeat (so ConnectionLost comes within seconds), and every agent is the
installed `bosun-agent` console script with a state dir of its own and a fingerprint of its
own (BOSUN_AGENT_FINGERPRINT), since all of them share this one machine.

The tests read the server through its REST API (an access key made by `createaccesskey`), act
as a person through the dashboard (a signed-in HTTP session), and look at what no API shows
(the message queue) through `manage.py shell`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.support.cluster import Browser
from tests.support.processes import PYTHON, ROOT, bosun_env, free_port, manage

AGENT = str(Path(PYTHON).with_name("bosun-agent"))
READY_BANNER = "Bosun is running at "
WORKER_READY = "celery@"  # "... celery@HOST ready." once beat and the worker consume
STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0
AGENT_TIMEOUT = 60.0

T = TypeVar("T")


def wait_until(
    fetch: Callable[[], T],
    done: Callable[[T], object] = bool,
    *,
    timeout: float,
    what: str,
    every: float = 0.1,
) -> T:
    """Fetch until `done(answer)` holds and return that answer; else fail with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        answer = fetch()
        if done(answer):
            return answer
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {answer!r})")
        time.sleep(every)


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def clean_env(**overrides: str) -> dict[str, str]:
    """Our environment without any Bosun setting of the developer's, and never a proxy."""
    env = {
        k: v
        for k, v in bosun_env().items()
        if not k.startswith("BOSUN_") and "proxy" not in k.lower()
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(overrides)
    return env


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (the supervisor puts its children in their own groups)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for child in map(int, (task / "children").read_text().split()):
                found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _stat_after_name(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state first, then ppid, pgrp…"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def processes_running(marker: str) -> list[tuple[int, int]]:
    """(pid, process group) of each live process whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = _stat_after_name(int(entry.name))
        if marker in argv and fields and fields[0] != "Z":
            found.append((int(entry.name), int(fields[2])))
    return found


def processes_of_run(message_id: str) -> list[int]:
    """Live processes an agent started for message `message_id`: each step's processes carry
    BOSUN_AGENT_RUN=<message id> in their environment, and so does whatever they start."""
    wanted = f"BOSUN_AGENT_RUN={message_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = _stat_after_name(int(entry.name))
        if wanted in environ and fields and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_after_name(int(entry.name))
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- The server -----------------------------------------------------------------------------


@dataclass
class ApiAnswer:
    status: int
    body: Any


@dataclass
class Api:
    """The REST API (/api/v1/) with an access key: `Authorization: Bearer ID:SECRET`."""

    base_url: str
    key: str

    @classmethod
    def for_admin(cls, base_url: str, env: dict[str, str]) -> Api:
        """With a new access key of the first admin, made as an operator would make one."""
        done = manage("createaccesskey", "--user", "admin", "--json", env=env, timeout=60)
        assert done.returncode == 0, f"createaccesskey failed:\n{done.stdout}\n{done.stderr}"
        pair = json.loads(done.stdout)
        return cls(base_url, f"{pair['AccessKeyId']}:{pair['SecretAccessKey']}")

    def request(self, method: str, path: str, body: Any = None) -> ApiAnswer:
        request = urllib.request.Request(
            f"{self.base_url}/api/v1{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=HTTP_TIMEOUT) as answer:
                return ApiAnswer(answer.status, _json_or_none(answer.read()))
        except urllib.error.HTTPError as error:
            with error:
                return ApiAnswer(error.code, _json_or_none(error.read()))

    def download(self, url: str) -> ApiAnswer:
        """A text download the API links to (its `url` fields include /api/v1)."""
        path = url.removeprefix("/api/v1")
        request = urllib.request.Request(
            f"{self.base_url}/api/v1{path}", headers={"Authorization": f"Bearer {self.key}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=HTTP_TIMEOUT) as answer:
                return ApiAnswer(answer.status, answer.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            with error:
                return ApiAnswer(error.code, error.read().decode("utf-8", errors="replace"))


def _json_or_none(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


TERMINAL_COMMAND_STATUSES = frozenset({"Success", "Failed", "Cancelled", "TimedOut"})
TERMINAL_INVOCATION_STATUSES = TERMINAL_COMMAND_STATUSES


@dataclass
class RunCommands:
    """Run Command through the REST API: send, read, cancel and wait for commands."""

    api: Api

    def send(self, commands: list[str], **fields: Any) -> dict[str, Any]:
        """Bosun-RunShellScript with `commands`; `fields` are the send's other members
        (`instance_ids` or `targets`, `max_concurrency`, a `parameters` addition…)."""
        parameters = {"commands": commands, **fields.pop("parameters", {})}
        body = {"document_name": "Bosun-RunShellScript", "parameters": parameters, **fields}
        answer = self.api.request("POST", "/commands/", body)
        assert answer.status == 201, answer
        return answer.body

    def command(self, command_id: str) -> dict[str, Any]:
        answer = self.api.request("GET", f"/commands/{command_id}/")
        assert answer.status == 200, answer
        return answer.body

    def invocations(self, command_id: str, *, details: bool = False) -> list[dict[str, Any]]:
        """Every invocation of the command, all pages."""
        found: list[dict[str, Any]] = []
        query = {"details": "true" if details else "false"}
        while True:
            path = f"/commands/{command_id}/invocations/?{urllib.parse.urlencode(query)}"
            answer = self.api.request("GET", path)
            assert answer.status == 200, answer
            found += answer.body["results"]
            if not answer.body.get("next_token"):
                return found
            query["next_token"] = answer.body["next_token"]

    def invocation(self, command_id: str, node_id: str) -> dict[str, Any]:
        answer = self.api.request("GET", f"/commands/{command_id}/invocations/{node_id}/")
        assert answer.status == 200, answer
        return answer.body

    def cancel(self, command_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.api.request("POST", f"/commands/{command_id}/cancel/", fields)
        assert answer.status == 200, answer
        return answer.body

    def output(self, stream: dict[str, Any]) -> str:
        """The whole stream an invocation's step links to (its `url`)."""
        answer = self.api.download(stream["url"])
        assert answer.status == 200, answer
        return answer.body

    def wait_until_done(self, command_id: str, *, timeout: float) -> dict[str, Any]:
        """Until the command has ended (every invocation settled); returns it."""
        return wait_until(
            lambda: self.command(command_id),
            lambda command: command["status"] in TERMINAL_COMMAND_STATUSES,
            timeout=timeout,
            every=0.25,
            what=f"command {command_id} ended",
        )


@dataclass
class Stack:
    """One `manage.py serve embedded`, restartable on the same port and data dir."""

    data_dir: Path
    heartbeat_seconds: int | None = None  # None: the server's default (60 s)
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: "e2e-" + secrets.token_urlsafe(12))
    process: subprocess.Popen | None = None
    log_paths: list[Path] = field(default_factory=list)
    last_children: list[int] = field(default_factory=list)
    _api: Api | None = None
    _browser: Browser | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = clean_env(
            BOSUN_HOST="127.0.0.1",
            BOSUN_PORT=str(self.port),
            BOSUN_DATA_DIR=str(self.data_dir),
            BOSUN_ADMIN_PASSWORD=self.password,
            # The agents run as this test's user, root on CI; a session's shell runs as the
            # agent's own user, and root shells are refused unless allowed.
            BOSUN_SESSION_ALLOW_ROOT="1",
        )
        if self.heartbeat_seconds is not None:
            env["BOSUN_AGENT_HEARTBEAT_SECONDS"] = str(self.heartbeat_seconds)
        return env

    # Starting and stopping.

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log_path = self.data_dir.parent / f"stack-{len(self.log_paths) + 1}.log"
        self.log_paths.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [PYTHON, "manage.py", "serve", "embedded"],
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            text = log_path.read_text(errors="replace")
            # The sweep that finds silent nodes runs in the worker's beat: wait for it too.
            if READY_BANNER in text and f"{WORKER_READY}" in text and " ready." in text:
                break
            if self.process.poll() is not None:
                raise AssertionError(
                    f"serve embedded exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"serve embedded not ready in time:\n{self.log_tail()}")
            time.sleep(0.1)
        self.last_children = _descendants(self.process.pid)

    def stop(self) -> list[int]:
        """Stop the whole stack; returns the pids of its processes still alive (none, we hope)."""
        process = self.process
        if process is None:
            return []
        family = sorted(set(self.last_children) | set(_descendants(process.pid)))
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        survivors = [pid for pid in family if _alive(pid)]
        for pid in survivors:  # only ever the stack's own children, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._browser = None  # a restart keeps sessions, but start afresh anyway
        return survivors

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_paths:
            return "(not started)"
        text = self.log_paths[-1].read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # Talking to it.

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        done = manage(*args, env=self.env(), timeout=60)
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def shell(self, code: str) -> Any:
        """Run `code` in `manage.py shell`; it prints one JSON document as its last line."""
        done = self.manage("shell", "-c", code)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def api(self, method: str, path: str, body: Any = None) -> ApiAnswer:
        return self.api_client().request(method, path, body)

    def api_client(self) -> Api:
        """The admin's REST API client (one access key for the stack's life)."""
        if self._api is None:
            self._api = Api.for_admin(self.url, self.env())
        return self._api

    def run_commands(self) -> RunCommands:
        return RunCommands(self.api_client())

    def dashboard(self) -> Browser:
        """An HTTP session signed in as admin, posting as the dashboard's htmx does."""
        if self._browser is None:
            self._browser = Browser(self.url)
            self._browser.log_in("admin", self.password)
        return self._browser

    # What the tests need most.

    def activation(self, **fields: Any) -> dict[str, Any]:
        answer = self.api("POST", "/activations/", {"description": "e2e", **fields})
        assert answer.status == 201, answer
        return answer.body

    def node(self, node_id: str) -> dict[str, Any]:
        answer = self.api("GET", f"/nodes/{node_id}/")
        assert answer.status == 200, answer
        return answer.body

    def nodes(self, **query: str) -> dict[str, Any]:
        params = urllib.parse.urlencode({"page_size": "500", **query})
        answer = self.api("GET", f"/nodes/?{params}")
        assert answer.status == 200, answer
        return answer.body

    def wait_for_status(self, node_id: str, status: str, *, timeout: float) -> dict[str, Any]:
        return wait_until(
            lambda: self.node(node_id),
            lambda node: node["status"] == status,
            timeout=timeout,
            what=f"{node_id} {status}",
        )

    def refresh_facts(self, node_id: str) -> None:
        """What the node page's "Refresh host facts" button does (the htmx POST)."""
        reply = self.dashboard().post(f"/fleet/nodes/{node_id}/refresh-facts/")
        assert reply.status < 400, (reply.status, reply.text[:500])

    def messages_of(self, node_id: str) -> list[dict[str, Any]]:
        return self.shell(
            "import json; from fleet.models import NodeMessage; print(json.dumps(["
            "{'kind': m.kind, 'state': m.state, 'result': m.result, "
            "'delivery_count': m.delivery_count, 'message_id': str(m.message_id)} "
            f"for m in NodeMessage.objects.filter(node_id={node_id!r}).order_by('id')]))"
        )


@contextlib.contextmanager
def running_stack(data_dir: Path, *, heartbeat_seconds: int | None = None) -> Iterator[Stack]:
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(data_dir=data_dir, heartbeat_seconds=heartbeat_seconds)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


# --- Agents ---------------------------------------------------------------------------------


@dataclass
class Agent:
    """One `bosun-agent` with its own state dir and machine fingerprint."""

    server_url: str
    root: Path
    name: str
    fingerprint: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen | None = None
    node_id: str | None = None
    runs: int = 0

    @property
    def state_dir(self) -> Path:
        return self.root / self.name

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.run-{self.runs}.log"

    def env(self) -> dict[str, str]:
        return clean_env(BOSUN_AGENT_FINGERPRINT=self.fingerprint)

    def cli(self, *args: str, timeout: float = AGENT_TIMEOUT) -> subprocess.CompletedProcess:
        command, *rest = args
        return subprocess.run(
            [AGENT, command, "--state-dir", str(self.state_dir), *rest],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def register(self, activation: dict[str, Any], *extra: str) -> subprocess.CompletedProcess:
        return self.cli(
            "register",
            "--url",
            self.server_url,
            "--activation-id",
            activation["id"],
            "--activation-code",
            activation["activation_code"],
            "--name",
            self.name,
            *extra,
        )

    def registered(self, activation: dict[str, Any], *extra: str) -> str:
        done = self.register(activation, *extra)
        assert done.returncode == 0, f"register failed ({done.returncode}): {done.stderr}"
        self.node_id = done.stdout.strip()
        return self.node_id

    def start(self) -> subprocess.Popen:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [AGENT, "run", "--state-dir", str(self.state_dir)],
                cwd=self.root,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.process

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still runs after {timeout:.0f}s:\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        """As a crash or `kill -9`: no goodbye to the server."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_connected(self, times: int = 1, *, timeout: float = 20) -> None:
        """Until this run's websocket has connected `times` times (it logs each one)."""
        wait_until(
            lambda: self.log_text().count("websocket connected"),
            lambda connects: connects >= times,
            timeout=timeout,
            what=f"{self.name}'s websocket connected {times} time(s)",
        )

    def journal_started(self) -> list[str]:
        """The message ids this agent journaled before running them ("S <time> <id>")."""
        path = self.state_dir / "journal.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [parts[2] for parts in map(str.split, lines) if len(parts) == 3 and parts[0] == "S"]

    def status(self) -> tuple[int, dict[str, Any]]:
        done = self.cli("status", "--json")
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}

    def log_tail(self, lines: int = 30) -> str:
        path = self.log_path
        if not path.exists():
            return "(never ran)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Agents:
    """Makes agents for one test and stops every one of them at its end."""

    def __init__(self, stack: Stack, root: Path) -> None:
        self.stack = stack
        self.root = root
        self.made: list[Agent] = []

    def new(self, name: str | None = None, *, fingerprint: str | None = None) -> Agent:
        name = name or f"e2e-{secrets.token_hex(3)}"
        agent = Agent(self.stack.url, self.root, name)
        if fingerprint:
            agent.fingerprint = fingerprint
        self.made.append(agent)
        return agent

    def online(self, *, timeout: float = 20) -> Agent:
        """A registered agent, running, heard from, with its websocket open."""
        (agent,) = self.online_many(1, timeout=timeout)
        return agent

    def online_many(
        self, count: int, *, activation: dict[str, Any] | None = None, timeout: float = 20
    ) -> list[Agent]:
        """`count` agents registered (with `activation`, else one each), then started
        together and each heard from with its websocket open."""
        made = []
        for _ in range(count):
            agent = self.new()
            node_id = agent.registered(activation or self.stack.activation())
            made.append((agent, self.stack.node(node_id)))
        for agent, _ in made:
            agent.start()
        for agent, registered in made:
            agent.wait_connected(timeout=timeout)
            wait_until(
                lambda node_id=agent.node_id: self.stack.node(node_id),
                lambda node, registered=registered: (
                    node["status"] == "Online"
                    and node["last_seen_at"] != registered["last_seen_at"]
                ),
                timeout=timeout,
                what=f"a heartbeat from {agent.name}",
            )
        return [agent for agent, _ in made]

    def stop_all(self) -> None:
        for agent in self.made:
            agent.stop()

    def logs(self) -> str:
        return "\n".join(f"----- agent {a.name} -----\n{a.log_tail()}" for a in self.made)
