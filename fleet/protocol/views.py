"""The agent's HTTPS face (agent/PROTOCOL.md): plain Django views, lean on the hot path.

Each view reads and bounds the body, authenticates the signature (all but registration),
checks the body's shape, calls one service and answers JSON. Every refusal is
`{"error", "message"}` with the protocol's status and is logged at info, never with a body
(a registration body holds the activation code).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from fleet.models import ManagedNode
from fleet.protocol import answers, lifecycle, messages
from fleet.protocol.auth import request_authenticate
from fleet.protocol.errors import bad_request, refusal
from fleet.protocol.registration import node_register
from fleet.protocol.validation import (
    facts_clean,
    int_field,
    json_object,
    object_field,
    registration_clean,
    reply_clean,
    text_field,
)

logger = logging.getLogger(__name__)

DEFAULT_FETCH = 10


@dataclass(frozen=True)
class AgentCall:
    """One agent request after its face's checks: the body, the caller, the signing node."""

    data: dict[str, Any]
    source_ip: str
    signed_by: ManagedNode | None

    @property
    def node(self) -> ManagedNode:
        if self.signed_by is None:
            raise RuntimeError("an unsigned endpoint asked for the signing node")
        return self.signed_by


Handler = Callable[..., dict[str, Any]]


def agent_view(*, signed: bool = True, status: int = 200) -> Callable[[Handler], Callable]:
    """Wrap `handler(call: AgentCall, **url_kwargs) -> answer` as a POST-only JSON view."""

    def decorate(handler: Handler) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                response = JsonResponse(
                    {"error": "MethodNotAllowed", "message": "agent endpoints take POST only"},
                    status=405,
                )
                response["Allow"] = "POST"
                return response
            source_ip = request.META.get("REMOTE_ADDR", "")
            try:
                body = _body(request)
                node = None
                if signed:
                    node = request_authenticate(
                        method="POST",
                        path=request.path,
                        headers=request.headers,
                        body=body,
                        source_ip=source_ip,
                    )
                call = AgentCall(data=json_object(body), source_ip=source_ip, signed_by=node)
                answer = handler(call, **kwargs)
            except ProtocolError as error:
                return _refused(request, error)
            return JsonResponse(answer, status=status)

        return view

    return decorate


def _body(request: HttpRequest) -> bytes:
    too_large = refusal(
        protocol.ERROR_TOO_LARGE, f"the body is over {protocol.MAX_BODY_BYTES} bytes"
    )
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit():
        raise bad_request("Content-Length: not a number")
    if int(length) > protocol.MAX_BODY_BYTES:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > protocol.MAX_BODY_BYTES:
        raise too_large
    return body


def _refused(request: HttpRequest, error: ProtocolError) -> JsonResponse:
    node_id = request.headers.get(protocol.HEADER_NODE, "")[:24]
    logger.info(
        "agent request refused: %s %s node=%s from=%s: %s",
        request.path,
        error.code,
        node_id or "-",
        request.META.get("REMOTE_ADDR", "-"),
        error.message,
    )
    return JsonResponse({"error": error.code, "message": error.message}, status=error.status)


# --- Endpoints ------------------------------------------------------------------------------


@agent_view(signed=False, status=201)
def register(call: AgentCall) -> dict[str, Any]:
    registered = node_register(registration=registration_clean(call.data), source_ip=call.source_ip)
    return {
        "protocol": protocol.PROTOCOL_VERSION,
        "node_id": registered.node_id,
        "name": registered.name,
        "heartbeat_interval": registered.heartbeat_interval,
        "server_time": int(time.time()),
    }


@agent_view()
def heartbeat(call: AgentCall) -> dict[str, Any]:
    agent_version = text_field(call.data, "agent_version", max_length=64, required=False)
    beat = lifecycle.node_heartbeat(node=call.node, agent_version=agent_version)
    return {
        "protocol": protocol.PROTOCOL_VERSION,
        "status": beat.status,
        "heartbeat_interval": beat.heartbeat_interval,
        "pending_messages": beat.pending_messages,
        "rotate_key": beat.rotate_key,
        "server_time": int(time.time()),
    }


@agent_view()
def fetch(call: AgentCall) -> dict[str, Any]:
    count = int_field(call.data, "max", low=1, high=protocol.MAX_FETCH, default=DEFAULT_FETCH)
    reclaim = call.data.get("reclaim", False)
    if not isinstance(reclaim, bool):
        raise bad_request("reclaim: true or false")
    leased = messages.messages_fetch(node=call.node, max_count=count, reclaim=reclaim)
    return {"messages": [messages.message_wire(m) for m in leased]}


@agent_view()
def ack(call: AgentCall, message_id: str) -> dict[str, Any]:
    return answers.message_ack(node_id=call.node.pk, message_id=message_id).answer()


@agent_view()
def reply(call: AgentCall, message_id: str) -> dict[str, Any]:
    status, result = reply_clean(call.data)
    outcome = answers.message_reply(
        node_id=call.node.pk, message_id=message_id, status=status, result=result
    )
    return {**outcome.answer(), "accepted": outcome.accepted}


@agent_view()
def facts(call: AgentCall) -> dict[str, Any]:
    lifecycle.node_facts_update(node=call.node, facts=facts_clean(object_field(call.data, "facts")))
    return {"updated": True}


@agent_view()
def rotate_key(call: AgentCall) -> dict[str, Any]:
    rotated_at = lifecycle.node_key_rotate(
        node=call.node,
        public_key=text_field(call.data, "public_key", max_length=64),
        proof=text_field(call.data, "proof", max_length=128),
        source_ip=call.source_ip,
    )
    return {"rotated_at": int(rotated_at.timestamp())}


@agent_view()
def deregister(call: AgentCall) -> dict[str, Any]:
    lifecycle.node_self_deregister(node=call.node, source_ip=call.source_ip)
    return {"status": "Deregistered"}
