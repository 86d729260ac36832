"""Running one real NodeRuntime against the fake server, for the runtime's tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun

from bosun_agent.client import AgentClient, new_session
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
