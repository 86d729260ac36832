"""Test agents: real keys, real signatures (bosun_agent.protocol), Django's test client."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bosun_agent import protocol
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import Client
from django.utils import timezone

from fleet.codes import activation_code_hash, new_activation_code, new_activation_id
from fleet.models import Activation


def activation_make(
    *,
    limit: int = 5,
    expires_in: timedelta = timedelta(days=1),
    node_tags: list[dict[str, str]] | None = None,
    default_instance_name: str = "",
    is_local: bool = False,
) -> tuple[Activation, str]:
    """An activation and its code, stored as activation_create stores them (hashed)."""
    code = new_activation_code()
    activation = Activation.objects.create(
        id=new_activation_id(),
        code_hash=activation_code_hash(code),
        registration_limit=limit,
        expires_at=timezone.now() + expires_in,
        node_tags=node_tags or [],
        default_instance_name=default_instance_name,
        is_local=is_local,
    )
    return activation, code


def facts_of(hostname: str = "web-1", **extra: Any) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "platform_type": "Linux",
        "platform_name": "Debian GNU/Linux",
        "platform_version": "12",
        "kernel_version": "6.1.0-18-amd64",
        "architecture": "x86_64",
        "ip_addresses": ["10.0.0.5", "fe80::1%eth0"],
        "agent_version": "0.1.0",
        "python_version": "3.11.7",
        **extra,
    }


def encoded(body: dict[str, Any] | bytes | None) -> bytes:
    if body is None:
        return b"{}"
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@dataclass
class Agent:
    """One machine's agent: its key pair and fingerprint, and its node id once registered."""

    key: Ed25519PrivateKey = field(default_factory=protocol.generate_private_key)
    fingerprint: str = field(default_factory=lambda: secrets.token_hex(16))
    node_id: str = ""
    client: Client = field(default_factory=Client)

    def registration(self, activation: Activation, code: str, **fields: Any) -> dict[str, Any]:
        return {
            "protocol": protocol.PROTOCOL_VERSION,
            "activation_id": activation.pk,
            "activation_code": code,
            "public_key": protocol.public_key_text(self.key),
            "fingerprint": self.fingerprint,
            "facts": facts_of(),
            **fields,
        }

    def register(self, activation: Activation, code: str, **fields: Any):
        body = self.registration(activation, code, **fields)
        response = self.client.post(
            protocol.REGISTER_PATH, data=encoded(body), content_type="application/json"
        )
        if response.status_code == 201:
            self.node_id = response.json()["node_id"]
        return response

    def headers(
        self, path: str, body: bytes = b"", *, method: str = "POST", **overrides: Any
    ) -> dict[str, str]:
        """Signed headers; `overrides` may swap key, node_id, fingerprint, now or nonce."""
        return protocol.signed_headers(
            key=overrides.pop("key", self.key),
            method=method,
            path=path,
            node_id=overrides.pop("node_id", self.node_id),
            fingerprint=overrides.pop("fingerprint", self.fingerprint),
            body=body,
            **overrides,
        )

    def post(self, path: str, body: dict[str, Any] | bytes | None = None, **overrides: Any):
        """A signed POST, as the agent sends it."""
        data = encoded(body)
        headers = self.headers(path, data, **overrides)
        return self.client.post(path, data=data, content_type="application/json", headers=headers)

    def heartbeat(self, **overrides: Any):
        return self.post(protocol.HEARTBEAT_PATH, {"agent_version": "0.1.0"}, **overrides)

    def socket_headers(self, **overrides: Any) -> list[tuple[bytes, bytes]]:
        """A websocket handshake's headers as ASGI carries them (no Origin: agents send none)."""
        signed = self.headers(protocol.WEBSOCKET_PATH, method="GET", **overrides)
        return [(b"host", b"127.0.0.1:8000")] + [
            (name.lower().encode(), value.encode()) for name, value in signed.items()
        ]
