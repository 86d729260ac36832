"""Authenticating a signed agent request or websocket handshake (bosun_agent.protocol).

The checks run cheapest first and write nothing until the signature holds, so an anonymous
caller cannot fill the nonce table or flag a node as cloned: formats, protocol version and
clock window; then the node and its signature (current key, or the previous one during a
rotation's overlap); then the nonce (a replay finds its row); then revocation and the machine
fingerprint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bosun_agent import protocol
from django.db import IntegrityError, transaction
from django.utils import timezone

from fleet.codes import NODE_ID_PATTERN
from fleet.models import ManagedNode, NodeStatus, RequestNonce
from fleet.protocol.errors import bad_request, refusal, unsupported_protocol
from fleet.protocol.trail import FACE_HTTP, FACE_WEBSOCKET, agent_record
from fleet.protocol.validation import FINGERPRINT
from fleet.realtime import publish_node_status_on_commit
from fleet.timeline import node_event_record

NONCE = re.compile(rf"^[0-9a-fA-F]{{{protocol.NONCE_HEX_DIGITS}}}$")
# A replay older than the clock window is refused by its timestamp, so nonces need keeping
# only a little longer than the window on either side.
NONCE_RETENTION = timedelta(seconds=2 * protocol.CLOCK_SKEW_SECONDS)
_HEADER_NAMES = (
    protocol.HEADER_PROTOCOL,
    protocol.HEADER_NODE,
    protocol.HEADER_TIMESTAMP,
    protocol.HEADER_NONCE,
    protocol.HEADER_FINGERPRINT,
    protocol.HEADER_SIGNATURE,
)


def request_authenticate(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    source_ip: str = "",
    face: str = FACE_HTTP,
) -> ManagedNode:
    """The node that signed this request, or a ProtocolError saying why it is refused."""
    values = protocol.header_lookup(headers)
    version, node_id, timestamp, nonce, fingerprint, signature = values
    if version and version not in {str(v) for v in protocol.SUPPORTED_PROTOCOL_VERSIONS}:
        raise unsupported_protocol(version[:16])
    missing = [name for name, value in zip(_HEADER_NAMES, values, strict=True) if not value]
    if missing:
        raise refusal(
            protocol.ERROR_SIGNATURE,
            f"the request is not signed: missing {', '.join(missing)}",
        )
    _timestamp_check(timestamp)
    if not NONCE.match(nonce):
        digits = protocol.NONCE_HEX_DIGITS
        raise bad_request(f"{protocol.HEADER_NONCE}: must be {digits} hex digits")
    if not FINGERPRINT.match(fingerprint):
        raise bad_request(f"{protocol.HEADER_FINGERPRINT}: must be 16-128 hex digits")
    node = _node(node_id)
    message = protocol.canonical_request(
        method=method,
        path=path,
        node_id=node_id,
        timestamp=timestamp,
        nonce=nonce,
        fingerprint=fingerprint,
        protocol=version,
        body=body,
    )
    if not _signed_by(node, signature, message):
        raise refusal(
            protocol.ERROR_SIGNATURE,
            f"the signature does not verify with the key registered for {node_id}",
        )
    _nonce_claim(node_id, nonce)
    if node.status == NodeStatus.DEREGISTERED:
        raise refusal(
            protocol.ERROR_REVOKED,
            f"{node_id} was deregistered; register the agent again with a new activation",
        )
    if fingerprint != node.fingerprint:
        _clone_flag(node, fingerprint, source_ip=source_ip, face=face)
        raise refusal(
            protocol.ERROR_CLONE,
            f"this machine is not the one registered as {node_id} (its fingerprint differs); "
            "a copied agent identity is refused: register this machine with its own activation",
        )
    return node


@dataclass(frozen=True)
class Handshake:
    """What a websocket handshake presents for its signature check (GET, empty body)."""

    path: str
    headers: dict[str, str]
    source_ip: str

    @classmethod
    def of(cls, scope: Mapping[str, Any]) -> Handshake:
        """From an ASGI scope, on the event loop (no database here)."""
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        client = scope.get("client") or ("", 0)
        return cls(path=scope["path"], headers=headers, source_ip=client[0] or "")


def handshake_authenticate(handshake: Handshake) -> ManagedNode:
    """The node that signed a websocket handshake (request_authenticate's checks)."""
    return request_authenticate(
        method="GET",
        path=handshake.path,
        headers=handshake.headers,
        body=b"",
        source_ip=handshake.source_ip,
        face=FACE_WEBSOCKET,
    )


def request_nonces_prune(*, older_than: timedelta = NONCE_RETENTION) -> int:
    deleted, _ = RequestNonce.objects.filter(seen_at__lt=timezone.now() - older_than).delete()
    return deleted


def _timestamp_check(timestamp: str) -> None:
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise bad_request(f"{protocol.HEADER_TIMESTAMP}: must be Unix seconds")
    now = int(time.time())
    drift = int(timestamp) - now
    if abs(drift) > protocol.CLOCK_SKEW_SECONDS:
        raise refusal(
            protocol.ERROR_STALE,
            f"the request's timestamp is {drift:+d} s from the server's clock ({now}), beyond "
            f"±{protocol.CLOCK_SKEW_SECONDS} s: check the node's clock (NTP)",
        )


def _node(node_id: str) -> ManagedNode:
    unknown = refusal(
        protocol.ERROR_UNKNOWN_NODE,
        f"no node {node_id[:24]} is registered here; register the agent with an activation",
    )
    if not NODE_ID_PATTERN.match(node_id):
        raise unknown
    # The facts document can be large and no signed request reads it.
    node = ManagedNode.objects.defer("facts").filter(pk=node_id).first()
    if node is None:
        raise unknown
    return node


def _signed_by(node: ManagedNode, signature: str, message: bytes) -> bool:
    if protocol.signature_valid(protocol.load_public_key(node.public_key), signature, message):
        return True
    # During a rotation's overlap, requests signed before the agent switched keys still count.
    overlap = node.previous_key_valid_until
    if node.previous_public_key and overlap is not None and overlap > timezone.now():
        previous = protocol.load_public_key(node.previous_public_key)
        return protocol.signature_valid(previous, signature, message)
    return False


def _nonce_claim(node_id: str, nonce: str) -> None:
    nonce_row = RequestNonce(node_id=node_id, nonce=nonce, seen_at=timezone.now())
    try:
        if transaction.get_connection().in_atomic_block:
            # A savepoint inside a caller's transaction, so a replay does not poison it.
            with transaction.atomic():
                nonce_row.save(force_insert=True)
        else:
            # In autocommit the INSERT is its own transaction: no BEGIN/COMMIT round trips on
            # the path every heartbeat takes.
            nonce_row.save(force_insert=True)
    except IntegrityError:
        raise refusal(
            protocol.ERROR_REPLAY, "this request was already received (its nonce was used)"
        ) from None


def _clone_flag(node: ManagedNode, fingerprint: str, *, source_ip: str, face: str) -> None:
    """Flag the node once, on the first foreign fingerprint, and tell the dashboards."""
    with transaction.atomic():
        first = ManagedNode.objects.filter(pk=node.pk, clone_suspected_at__isnull=True).update(
            clone_suspected_at=timezone.now(), clone_fingerprint=fingerprint
        )
        if not first:
            return
        details = {"fingerprint": fingerprint, "source_ip": source_ip}
        node_event_record(
            node.pk,
            kind="clone_suspected",
            summary="A second machine presented this node's identity; it was refused",
            data=details,
        )
        agent_record(
            node_id=node.pk,
            action="bosun:DetectNodeClone",
            outcome="denied",
            error_code=protocol.ERROR_CLONE,
            params=details,
            source_ip=source_ip,
            face=face,
        )
        publish_node_status_on_commit(node.pk, node.status)
