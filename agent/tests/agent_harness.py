"""Running one real NodeRuntime against the fake server, for the runtime's tests, and the
RunCommand payloads the Run Command tests send it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun

from bosun_agent import protocol
from bosun_agent.client import AgentClient, new_session
from bosun_agent.commands import register_command_handlers
from bosun_agent.facts import machine_fingerprint
from bosun_agent.handlers import HandlerRegistry, builtin_handlers
from bosun_agent.registration import register_node
from bosun_agent.runtime import NodeRuntime
from bosun_agent.state import AgentState, Identity

FACTS = {
    "hostname": "web-1",
    "platform_type": "Linux",
    "platform_name": "Debian GNU/Linux",
    "platform_version": "12",
    "kernel_version": "6.1.0-18-amd64",
    "architecture": "x86_64",
    "ip_addresses": ["10.0.0.5"],
    "agent_version": "0.1.0",
    "python_version": "3.11.7",
}


async def facts_provider() -> dict[str, Any]:
    return dict(FACTS)


def command_handlers(platform_type: str | None = None) -> HandlerRegistry:
    """The built-in handlers and Run Command, as the real agent registers them."""
    registry = builtin_handlers(facts_provider)
    register_command_handlers(registry, facts_provider, platform_type=platform_type)
    return registry


async def register(server: FakeBosun, state: AgentState, **options: Any) -> Identity:
    fingerprint, sources = machine_fingerprint()
    async with new_session() as session:
        identity, _ = await register_node(
            client=AgentClient(session, server.url),
            state=state,
            activation_id=ACTIVATION_ID,
            activation_code=ACTIVATION_CODE,
            fingerprint=fingerprint,
            fingerprint_sources=sources,
            facts=dict(FACTS),
            **options,
        )
    return identity


@dataclass
class Harness:
    runtime: NodeRuntime
    task: asyncio.Task[int]
    session: aiohttp.ClientSession

    async def exit_code(self, timeout: float = 10.0) -> int:
        return await asyncio.wait_for(asyncio.shield(self.task), timeout)

    async def stop(self) -> int:
        self.runtime.stop()
        return await self.exit_code()


class running_agent:
    """Start a runtime for `state` against `server`; stopped (if still running) on exit."""

    def __init__(
        self, server: FakeBosun, state: AgentState, handlers: HandlerRegistry | None = None
    ) -> None:
        self.server = server
        self.state = state
        self.handlers = handlers or builtin_handlers(facts_provider)
        self.harness: Harness | None = None

    async def __aenter__(self) -> Harness:
        identity = self.state.identity()
        assert identity is not None
        fingerprint, _ = machine_fingerprint(identity.fingerprint_sources)
        session = new_session()
        runtime = NodeRuntime(
            client=AgentClient(session, self.server.url),
            state=self.state,
            fingerprint=fingerprint,
            facts=facts_provider,
            handlers=self.handlers,
        )
        self.harness = Harness(runtime, asyncio.create_task(runtime.run()), session)
        return self.harness

    async def __aexit__(self, *exc: object) -> None:
        assert self.harness is not None
        if not self.harness.task.done():
            await self.harness.stop()
        await self.harness.session.close()


# Run Command.


def shell_step(name: str, *lines: str, **inputs: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": protocol.ACTION_RUN_SHELL_SCRIPT,
        "inputs": {"runCommand": list(lines), **inputs},
    }


def command_payload(*steps: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A RunCommand payload as the server sends it (PROTOCOL.md "Run Command")."""
    return {
        "command_id": "3f2a0000-0000-4000-8000-000000000001",
        "document_name": "Bosun-RunShellScript",
        "document_version": "1",
        "execution_timeout": 60,
        "output_limit": 1_000_000,
        "secure_parameters": [],
        "steps": list(steps),
        **overrides,
    }


def process_gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped yet."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return text[text.rfind(")") + 2 :].startswith("Z")
