"""Registering a node: make a key on this machine, present the activation, keep the identity."""

from __future__ import annotations

import re
import time
from typing import Any

from bosun_agent import protocol
from bosun_agent.client import AgentClient, AgentError
from bosun_agent.facts import facts_digest
from bosun_agent.state import AgentState, Identity

NODE_ID = re.compile(r"^mi-[0-9a-f]{17}$")


class RegistrationError(AgentError):
    """The server's answer to a registration is not one this agent understands."""


async def register_node(
    *,
    client: AgentClient,
    state: AgentState,
    activation_id: str,
    activation_code: str,
    fingerprint: str,
    fingerprint_sources: tuple[str, ...],
    facts: dict[str, Any],
    name: str | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[Identity, dict[str, Any]]:
    """Register and persist the new identity; the answer comes back for its interval.

    The key is generated here, on the node, and only its public half is sent. It is saved
    before the identity, so a saved identity always has its key.
    """
    key = protocol.generate_private_key()
    answer = await client.register(
        activation_id=activation_id,
        activation_code=activation_code,
        public_key=protocol.public_key_text(key),
        fingerprint=fingerprint,
        facts=facts,
        name=name,
        tags=tags,
    )
    node_id = answer.get("node_id")
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise RegistrationError(f"the server answered with an unusable node id: {node_id!r}")
    now = time.time()
    identity = Identity(
        server_url=client.base_url,
        node_id=node_id,
        name=str(answer.get("name") or name or facts.get("hostname", "")),
        registered_at=now,
        key_rotated_at=now,
        fingerprint_sources=fingerprint_sources,
        facts_digest=facts_digest(facts),
    )
    state.wipe()
    state.save_node_key(key)
    state.save_identity(identity)
    return identity, answer
