"""The signing secret at rest: sealed by the key service and bound to the endpoint's name,
so a ciphertext copied onto another endpoint's row does not open."""

from __future__ import annotations

from access import kms
from webhooks.models import WebhookEndpoint


def secret_context(endpoint: WebhookEndpoint) -> dict[str, str]:
    return context_for(endpoint.name)


def context_for(name: str) -> dict[str, str]:
    return {"webhook": name}


def secret_seal(*, name: str, secret: str) -> bytes:
    return kms.value_encrypt(
        key=kms.default_key(), plaintext=secret.encode(), context=context_for(name)
    )


def secret_open(endpoint: WebhookEndpoint) -> str:
    """For signing deliveries only: the system's own use, never shown to anyone."""
    blob = bytes(endpoint.secret_ciphertext)
    return kms.value_decrypt(blob=blob, context=secret_context(endpoint)).decode()
