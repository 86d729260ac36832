"""Identifiers and secrets of the fleet: activation ids and codes, node ids."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid

from bosun.lib.arn import arn

_CODE_ALPHABET = string.ascii_letters + string.digits
NODE_ID_PATTERN = re.compile(r"^mi-[0-9a-f]{17}$")


def new_activation_id() -> str:
    return str(uuid.uuid4())


def new_activation_code() -> str:
    """20 characters from 62: about 119 bits, so a plain SHA-256 is enough to store it."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(20))


def activation_code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def new_node_id() -> str:
    return "mi-" + secrets.token_hex(9)[:17]


def node_arn(node_id: str) -> str:
    """A managed node's ARN, as SSM names hybrid nodes: `…:managed-instance/mi-…`."""
    return arn("ssm", f"managed-instance/{node_id}")
