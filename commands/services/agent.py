"""What a node's agent may ask of Run Command while it runs an invocation: store output,
and read the `{{ssm-secure:…}}` values its command refers to.

Both are bound to the asking node's own running invocation. A secret is read as the
command's sender (their policy, their `kms:Decrypt`), audited under their name with the face
`agent`, and never written anywhere by the server: it travels once, to the node that runs it.
"""

from __future__ import annotations

import uuid
from typing import Any

from bosun_agent import protocol

from access.authorization import Principal
from bosun.lib.errors import AccessDenied
from commands.models import TERMINAL_INVOCATION_STATUSES, Invocation
from commands.output import chunks_store
from fleet.models import ManagedNode, MessageState, NodeMessage
from fleet.protocol.errors import refusal
from parameters.exceptions import ParameterError
from parameters.selectors import parameter_get


def _running_message(node: ManagedNode, message_id: str) -> NodeMessage:
    try:
        parsed = uuid.UUID(message_id)
    except ValueError:
        parsed = None
    message = (
        NodeMessage.objects.filter(
            message_id=parsed, node_id=node.pk, kind=protocol.MESSAGE_RUN_COMMAND
        ).first()
        if parsed
        else None
    )
    if message is None:
        raise refusal(
            protocol.ERROR_NOT_FOUND, f"no command message {message_id[:40]} for this node"
        )
    return message


def invocation_output_add(
    *, node: ManagedNode, message_id: str, chunks: list[dict[str, Any]]
) -> int:
    message = _running_message(node, message_id)
    invocation = (
        Invocation.objects.filter(message_id=message.message_id).values_list("pk", "status").first()
    )
    if invocation is None:
        raise refusal(protocol.ERROR_NOT_FOUND, f"no invocation for message {message_id[:40]}")
    invocation_id, status = invocation
    if status in TERMINAL_INVOCATION_STATUSES:
        # Its output was assembled when it ended: a late duplicate would only be left behind.
        return 0
    return chunks_store(invocation_id, chunks)


def secure_parameters_read(
    *, node: ManagedNode, message_id: str, names: list[str], source_ip: str
) -> dict[str, str]:
    message = _running_message(node, message_id)
    # Leased counts too: the agent journals before it acks, and runs a message whose ack
    # could not reach the server (at most once either way).
    if message.state not in (MessageState.LEASED, MessageState.ACKED):
        raise refusal(
            protocol.ERROR_NOT_FOUND,
            f"message {message.message_id} is not running on this node ({message.state})",
        )
    allowed = set((message.payload or {}).get("secure_parameters") or [])
    unasked = [name for name in names if name not in allowed]
    if unasked:
        raise refusal(
            protocol.ERROR_ACCESS_DENIED,
            f"the command does not refer to {unasked[0][:200]}; only its own references are served",
        )
    invocation = (
        Invocation.objects.select_related("command__requested_by")
        .filter(message_id=message.message_id)
        .first()
    )
    sender = invocation.command.requested_by if invocation else None
    if sender is None or not sender.is_active:
        raise refusal(
            protocol.ERROR_ACCESS_DENIED, "the command's sender can no longer read secrets"
        )
    principal = Principal(user=sender, face="agent", source_ip=source_ip)
    values = {}
    for name in dict.fromkeys(names):
        try:
            found = parameter_get(principal=principal, name=name, with_decryption=True)
        except AccessDenied as exc:
            raise refusal(protocol.ERROR_ACCESS_DENIED, exc.message) from None
        except ParameterError as exc:
            raise refusal(protocol.ERROR_PARAMETER_NOT_FOUND, exc.message) from None
        values[name] = found.value
    return values
