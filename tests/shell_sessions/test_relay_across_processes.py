"""The relay across `ws` processes: the agent's session socket on one daphne process, the
browser's on another, only the Redis channel layer between them (issue 7, deliverable 1)."""

from __future__ import annotations

import json
import os
import struct
import urllib.request
from collections.abc import Iterator

import pytest
from bosun_agent import protocol
from websockets.sync.client import ClientConnection, connect

from sessions.wire import SESSION_WEBSOCKET_PATH
from tests.fleet.protocol.agents import Agent
from tests.support.cluster import ADMIN_PASSWORD, HOST, Browser, Cluster, bosun_cluster
from tests.support.processes import manage

pytestmark = pytest.mark.integration

WAIT = 10.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with bosun_cluster(
        database_server_url=os.environ["BOSUN_TEST_DATABASE_URL"],
        redis_server_url=os.environ["BOSUN_TEST_REDIS_URL"],
        ws_count=2,
    ) as running_cluster:
        yield running_cluster


def django_shell(cluster: Cluster, code: str) -> str:
    done = manage("shell", "-c", code, env=cluster.env, timeout=60)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


def registered_agent(cluster: Cluster) -> Agent:
    made = json.loads(
        django_shell(
            cluster,
            "import json; from tests.fleet.protocol.agents import activation_make; "
            "a, code = activation_make(); print(json.dumps([a.pk, code]))",
        )
    )
    agent = Agent()
    body = json.dumps(agent.registration(_Activation(made[0]), made[1])).encode()
    request = urllib.request.Request(
        cluster.url("web", protocol.REGISTER_PATH),
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=WAIT) as answer:
        agent.node_id = json.loads(answer.read())["node_id"]
    return agent


class _Activation:
    def __init__(self, pk: str) -> None:
        self.pk = pk


def started_session(cluster: Cluster, node_id: str) -> str:
    return django_shell(
        cluster,
        "from django.contrib.auth.models import User; "
        "from access.authorization import Principal; "
        "from sessions.services.sessions import session_start; "
        "print(session_start(principal=Principal(user=User.objects.get(username='admin')), "
        f"node_id={node_id!r}).session_id)",
    )


def agent_socket(cluster: Cluster, ws: str, agent: Agent, session_id: str) -> ClientConnection:
    path = SESSION_WEBSOCKET_PATH.format(session_id=session_id)
    return connect(
        f"ws://{HOST}:{cluster.ports[ws]}{path}",
        additional_headers=agent.headers(path, method="GET"),
        open_timeout=WAIT,
        close_timeout=2,
        proxy=None,
    )


def browser_socket(
    cluster: Cluster, ws: str, cookie: str, session_id: str, resume: int = 0
) -> ClientConnection:
    port = cluster.ports[ws]
    return connect(
        f"ws://{HOST}:{port}/ws/sessions/{session_id}/?resume={resume}",
        additional_headers={"Cookie": f"bosun_session={cookie}"},
        origin=f"http://{HOST}:{port}",  # type: ignore[arg-type]
        open_timeout=WAIT,
        close_timeout=2,
        proxy=None,
    )


def next_json(socket: ClientConnection, kind: str) -> dict:
    while True:
        frame = socket.recv(timeout=WAIT)
        if isinstance(frame, str) and json.loads(frame).get("type") == kind:
            return json.loads(frame)


def output(socket: ClientConnection, size: int) -> tuple[int, bytes]:
    """(first offset, bytes) of the output frames until `size` bytes came."""
    first, data = None, b""
    while len(data) < size:
        frame = socket.recv(timeout=WAIT)
        if isinstance(frame, bytes):
            (offset,) = struct.unpack(">Q", frame[:8])
            first = offset if first is None else first
            data += frame[8:]
    assert first is not None
    return first, data


def test_a_shell_relays_between_sockets_on_different_ws_processes(cluster: Cluster):
    agent = registered_agent(cluster)
    session_id = started_session(cluster, agent.node_id)
    cookie = Browser(cluster.url("web")).log_in("admin", ADMIN_PASSWORD)

    with (
        agent_socket(cluster, "ws1", agent, session_id) as home,
        browser_socket(cluster, "ws2", cookie, session_id) as viewer,
    ):
        home.send(json.dumps({"type": "started", "run_as": "ssm-user", "pid": 7}))
        while next_json(viewer, "status")["status"] != "Connected":
            pass
        home.send(b"\x01hello from ws1\r\n")
        assert output(viewer, 16) == (0, b"hello from ws1\r\n")
        viewer.send(b"id\r")
        assert home.recv(timeout=WAIT) == b"\x02id\r"
        viewer.send(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
        assert json.loads(home.recv(timeout=WAIT)) == {"type": "resize", "cols": 100, "rows": 30}

        # The browser drops, output goes on, and it comes back to the other process: it gets
        # what it missed, once.
        viewer.close()
        home.send(b"\x01missed\r\n")
        with browser_socket(cluster, "ws1", cookie, session_id, resume=16) as again:
            assert output(again, 8) == (16, b"missed\r\n")
            again.send(json.dumps({"type": "terminate"}))
            assert next_json(home, "terminate")["reason"] == "terminated by admin"
            assert next_json(again, "ended")["status"] == "Terminated"

    verified = manage("sessions", "verify", session_id, env=cluster.env, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    state = django_shell(
        cluster,
        "from sessions.models import Session; "
        f"s = Session.objects.get(session_id={session_id!r}); "
        "print(s.status, s.bytes_in, s.bytes_out, s.is_sealed)",
    )
    assert state == "Terminated 3 24 True"
