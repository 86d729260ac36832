"""Registering a node through a hybrid activation (the only unsigned agent request).

All of it happens in one transaction with the activation row locked: the use counter and the
node go in together, so concurrent registrations never pass the limit and a refused or failed
registration leaves nothing behind.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from django.db import transaction
from django.utils import timezone

from fleet.codes import activation_code_hash, new_node_id
from fleet.models import Activation, ManagedNode, NodeStatus, NodeTag
from fleet.protocol.errors import bad_request, refusal
from fleet.protocol.facts import facts_columns
from fleet.protocol.status import heartbeat_interval
from fleet.protocol.trail import agent_record
from fleet.protocol.validation import Registration
from fleet.realtime import publish_node_status_on_commit
from fleet.tag_rules import MAX_TAGS
from fleet.timeline import node_event_record

# Compared against when the activation id is unknown, so "no such id" and "wrong code" take
# the same time as well as giving the same answer.
_NO_HASH = activation_code_hash("")


@dataclass(frozen=True)
class Registered:
    node_id: str
    name: str
    heartbeat_interval: int


def _invalid_activation() -> ProtocolError:
    return refusal(
        protocol.ERROR_ACTIVATION,
        "the activation id or code is not valid; check both, or ask for a new activation",
    )


def node_register(*, registration: Registration, source_ip: str = "") -> Registered:
    """Create the node a (validated) registration asks for, or refuse it with no trace."""
    now = timezone.now()
    with transaction.atomic():
        activation = (
            Activation.objects.select_for_update().filter(pk=registration.activation_id).first()
        )
        offered = activation_code_hash(registration.activation_code)
        if not hmac.compare_digest(activation.code_hash if activation else _NO_HASH, offered):
            raise _invalid_activation()
        if activation is None:
            raise _invalid_activation()
        if activation.expires_at <= now:
            raise refusal(
                protocol.ERROR_ACTIVATION_EXPIRED,
                "the activation has expired; create a new one to register more nodes",
            )
        if activation.registrations_count >= activation.registration_limit:
            raise refusal(
                protocol.ERROR_ACTIVATION_EXHAUSTED,
                f"the activation's {activation.registration_limit} registrations are used up; "
                "create a new one or raise its limit",
            )
        tags = _tags(activation, registration)
        activation.registrations_count += 1
        activation.save(update_fields=["registrations_count"])
        node = ManagedNode.objects.create(
            id=new_node_id(),
            name=(
                registration.name
                or activation.default_instance_name
                or str(registration.facts.get("hostname") or "")
            ),
            status=NodeStatus.ONLINE,
            status_changed_at=now,
            registered_at=now,
            last_seen_at=now,
            activation_id=activation.pk,
            is_local=activation.is_local,
            public_key=registration.public_key,
            key_rotated_at=now,
            fingerprint=registration.fingerprint,
            protocol_version=protocol.PROTOCOL_VERSION,
            **facts_columns(registration.facts, now=now),
        )
        if not node.name:
            node.name = node.pk
            node.save(update_fields=["name"])
        NodeTag.objects.bulk_create(
            NodeTag(node=node, key=key, value=value) for key, value in tags.items()
        )
        node_event_record(
            node,
            kind="registered",
            summary=f"Registered through activation {activation.pk}",
            data={"activation_id": activation.pk, "source_ip": source_ip},
        )
        agent_record(
            node_id=node.pk,
            action="bosun:RegisterNode",
            params={"activation_id": activation.pk, "name": node.name, "tags": tags},
            source_ip=source_ip,
        )
        publish_node_status_on_commit(node.pk, NodeStatus.ONLINE)
    return Registered(node_id=node.pk, name=node.name, heartbeat_interval=heartbeat_interval())


def _tags(activation: Activation, registration: Registration) -> dict[str, str]:
    """The agent's tags under the activation's: the agent may add keys, never change the
    administrator's, since tags decide who may act on the node (`ssm:resourceTag/...`)."""
    tags = dict(registration.tags)
    tags.update(
        (str(tag["Key"]), str(tag.get("Value", "")))
        for tag in activation.node_tags or []
        if isinstance(tag, dict) and tag.get("Key")
    )
    if len(tags) > MAX_TAGS:
        raise bad_request(f"tags: with the activation's tags, more than {MAX_TAGS}")
    return tags
