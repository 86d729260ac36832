"""This host's own agent in the embedded stack (`make run`): a real node from the first minute.

At each start, the supervisor gets an `agent` role. When the state dir under the data dir
holds a node the database still knows as live, the role only runs the agent; otherwise the
old state is cleared, a one-use activation is made (as the first admin, audited like any
other) and the role registers first, waiting for the web server to listen, then runs.
The activation code reaches the agent through its environment, never its command line
(`ps` shows arguments to every user of the machine).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone

from access.authorization import principal_for
from fleet.models import Activation, ManagedNode, NodeStatus
from fleet.services import activation_create

AGENT = str(Path(sys.executable).with_name("bosun-agent"))
STATE_DIR_NAME = "agent"
ACTIVATION_CODE_ENV = "BOSUN_AGENT_ACTIVATION_CODE"
# The web server is normally up within seconds; the activation outlives any slow start.
ACTIVATION_LIFETIME = timedelta(hours=1)
REGISTER_WAIT_SECONDS = 120


@dataclass(frozen=True)
class LocalAgentPlan:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    node_id: str | None = None  # known when the agent is already registered


def local_agent_plan(*, data_dir: Path, server_url: str, admin_username: str) -> LocalAgentPlan:
    state_dir = data_dir / STATE_DIR_NAME
    run = [AGENT, "run", "--state-dir", str(state_dir)]
    node_id = _registered_node_id(state_dir)
    if node_id and _node_is_live(node_id):
        return LocalAgentPlan(argv=run, node_id=node_id)
    # The database no longer knows the node (deregistered, or a fresh database): start over.
    shutil.rmtree(state_dir, ignore_errors=True)
    activation_id, code = _one_use_activation(admin_username)
    register = [
        AGENT, "register",
        "--url", server_url,
        "--activation-id", activation_id,
        "--state-dir", str(state_dir),
        "--wait", str(REGISTER_WAIT_SECONDS),
    ]  # fmt: skip
    # One role, two steps: register, then become the agent (exec keeps one process to stop).
    script = '"$0" "$@" && exec "$0" run --state-dir "$STATE_DIR"'
    return LocalAgentPlan(
        argv=["/bin/sh", "-c", script, AGENT, *register[1:]],
        env={ACTIVATION_CODE_ENV: code, "STATE_DIR": str(state_dir)},
    )


def _registered_node_id(state_dir: Path) -> str | None:
    """Ask the agent itself (its state layout is its own business)."""
    if not state_dir.exists():
        return None
    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [AGENT, "status", "--offline", "--json", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        return None
    try:
        return str(json.loads(done.stdout)["node_id"])
    except (ValueError, KeyError, TypeError):
        return None


def _node_is_live(node_id: str) -> bool:
    return (
        ManagedNode.objects.filter(pk=node_id, is_local=True)
        .exclude(status=NodeStatus.DEREGISTERED)
        .exists()
    )


def _one_use_activation(admin_username: str) -> tuple[str, str]:
    admin = get_user_model().objects.get(username=admin_username)
    created = activation_create(
        principal=principal_for(admin),
        description="This host's own agent, registered by the embedded stack at start",
        default_instance_name=socket.gethostname(),
        registration_limit=1,
        expires_at=timezone.now() + ACTIVATION_LIFETIME,
    )
    Activation.objects.filter(pk=created.activation.pk).update(is_local=True)
    return created.activation.pk, created.code
