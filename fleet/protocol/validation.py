"""The shapes of agent request bodies (agent/PROTOCOL.md), checked before any service runs.

Every problem is a 400 BadRequest whose message names the field. Whatever passes is safe to
store in both databases: no NaN or Infinity, no NUL characters (PostgreSQL's JSON refuses
both, which would otherwise surface as a 500 long after the request was read).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from bosun_agent import protocol

from fleet.exceptions import FleetValidationError
from fleet.protocol.errors import bad_request, unsupported_protocol
from fleet.tags import tags_validated

TEXT_MAX = 256
FINGERPRINT = re.compile(r"^[0-9a-fA-F]{16,128}$")
# Host facts with a column of their own on the node; all other keys are kept as reported.
KNOWN_FACTS = (
    "hostname",
    "platform_type",
    "platform_name",
    "platform_version",
    "kernel_version",
    "architecture",
    "agent_version",
    "python_version",
)
MAX_IP_ADDRESSES = 64
MAX_EXTRA_FACTS = 32
EXTRA_FACT_KEY_MAX = 64


def json_object(body: bytes, *, what: str = "body") -> dict[str, Any]:
    """The body (or websocket frame: `what`) as a JSON object; an empty one counts as `{}`."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise bad_request(f"the {what} is not UTF-8") from None
    except RecursionError:
        raise bad_request(f"the {what} nests too deeply") from None
    except ValueError as error:
        raise bad_request(f"the {what} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise bad_request(f"the {what} must be a JSON object")
    if _holds_nul(data):
        raise bad_request(f"the {what} holds a NUL character (\\u0000), which cannot be stored")
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _holds_nul(value: Any) -> bool:
    # Iterative: a deeply nested body must not overflow the stack here either.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


# --- Fields ---------------------------------------------------------------------------------


def text_field(
    data: dict[str, Any],
    name: str,
    *,
    max_length: int = TEXT_MAX,
    required: bool = True,
    label: str = "",
) -> str:
    """A string field; `label` is how messages name it (default: `name`)."""
    label = label or name
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request(f"{label}: required")
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{label}: must be a string")
    if required and not value:
        raise bad_request(f"{label}: must not be empty")
    if len(value) > max_length:
        raise bad_request(f"{label}: at most {max_length} characters")
    return value


def int_field(data: dict[str, Any], name: str, *, low: int, high: int, default: int) -> int:
    value = data.get(name, default)
    # bool is an int to Python, never to a client that meant a number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"{name}: must be an integer")
    if not low <= value <= high:
        raise bad_request(f"{name}: must be {low}-{high}")
    return value


def object_field(data: dict[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name}: required")
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{name}: must be a JSON object")
    return value


def reply_clean(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A reply's (status, result), sent over HTTP or the websocket."""
    status = data.get("status")
    if not isinstance(status, str) or status not in protocol.REPLY_STATUSES:
        raise bad_request(f"status: must be one of {', '.join(protocol.REPLY_STATUSES)}")
    return status, object_field(data, "result", required=False)


def protocol_version_check(data: dict[str, Any]) -> None:
    """A body's `protocol`: required; a version the server does not speak is a 426."""
    version = data.get("protocol")
    if version is None:
        raise bad_request("protocol: required")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad_request("protocol: must be an integer")
    if version not in protocol.SUPPORTED_PROTOCOL_VERSIONS:
        raise unsupported_protocol(version)


def fingerprint_check(value: str, *, name: str = "fingerprint") -> str:
    if not FINGERPRINT.match(value):
        raise bad_request(f"{name}: must be 16-128 hexadecimal digits")
    return value


def public_key_check(value: str, *, name: str = "public_key") -> str:
    try:
        protocol.load_public_key(value)
    except ValueError as error:
        raise bad_request(f"{name}: {error}") from None
    return value


# --- Host facts and tags --------------------------------------------------------------------


def facts_clean(value: Any, *, name: str = "facts") -> dict[str, Any]:
    """Host facts as PROTOCOL.md gives them: known strings, addresses, a few extra keys."""
    if not isinstance(value, dict):
        raise bad_request(f"{name}: must be a JSON object")
    for key in KNOWN_FACTS:
        text_field(value, key, required=False, label=f"{name}.{key}")
    addresses = value.get("ip_addresses", [])
    if not isinstance(addresses, list) or len(addresses) > MAX_IP_ADDRESSES:
        raise bad_request(f"{name}.ip_addresses: a list of at most {MAX_IP_ADDRESSES} addresses")
    for address in addresses:
        if ip_address_of(address) is None:
            raise bad_request(f"{name}.ip_addresses: {str(address)[:64]!r} is not an IP address")
    extra = [key for key in value if key not in KNOWN_FACTS and key != "ip_addresses"]
    if len(extra) > MAX_EXTRA_FACTS:
        raise bad_request(f"{name}: at most {MAX_EXTRA_FACTS} keys besides the known ones")
    for key in extra:
        if len(key) > EXTRA_FACT_KEY_MAX:
            raise bad_request(f"{name}: key {key[:32]!r}… is over {EXTRA_FACT_KEY_MAX} characters")
    return value


def ip_address_of(value: Any) -> str | None:
    """The address in canonical form without an IPv6 zone (`fe80::1%eth0`), or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return ipaddress.ip_address(value.split("%", 1)[0]).compressed
    except ValueError:
        return None


def tags_clean(value: Any, *, name: str = "tags") -> dict[str, str]:
    """Tags as `{key: value}` under AWS's rules (fleet.tags)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{name}: must be a JSON object of key to value")
    try:
        return tags_validated(value)
    except FleetValidationError as error:
        raise bad_request(f"{name}: {error.message}") from None


# --- Registration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    activation_id: str
    activation_code: str
    public_key: str
    fingerprint: str
    name: str
    tags: dict[str, str]
    facts: dict[str, Any]


def registration_clean(data: dict[str, Any]) -> Registration:
    """A registration body, checked field by field (unknown top-level fields are ignored)."""
    protocol_version_check(data)
    name = text_field(data, "name", required=False).strip()
    if any(ord(ch) < 32 for ch in name):
        raise bad_request("name: must not hold control characters")
    return Registration(
        activation_id=text_field(data, "activation_id", max_length=64),
        activation_code=text_field(data, "activation_code", max_length=128),
        public_key=public_key_check(text_field(data, "public_key", max_length=64)),
        fingerprint=fingerprint_check(text_field(data, "fingerprint", max_length=128)),
        name=name,
        tags=tags_clean(data.get("tags")),
        facts=facts_clean(object_field(data, "facts", required=False)),
    )
