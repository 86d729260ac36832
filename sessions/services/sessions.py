"""Starting and terminating sessions, and the endings the relay reports.

`session_start` and `session_terminate` act for a person: they authorize, audit and own their
transaction. The others are the relay's (sessions.relay, sessions.consumers): the agent's
socket is authenticated by the node's signature and the browser's by its session, so they
take ids, check that the session belongs to who asks, and write what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.authorization import Principal, authorize, is_allowed
from access.directory import user_arn
from audit.models import AuditEvent
from audit.services import SYSTEM_PRINCIPAL, audit_record
from bosun.lib.errors import AccessDenied
from commands.scope import document_arn
from fleet.codes import node_arn
from fleet.models import MessageState, NodeMessage, NodeStatus
from fleet.protocol.messages import message_enqueue
from fleet.selectors import node_authorized
from sessions import groups
from sessions.codes import new_session_id, session_arn
from sessions.exceptions import (
    DoesNotExistException,
    InvalidDocument,
    RecordingError,
    SessionsValidationError,
    TargetNotConnected,
)
from sessions.models import (
    COMMAND_MAX,
    DEFAULT_DOCUMENT,
    INTERACTIVE_DOCUMENTS,
    Session,
    SessionStatus,
)
from sessions.services.preferences import Preferences, preferences_effective, run_as_for
from sessions.services.recording import recording_seal, recording_start
from sessions.wire import MESSAGE_START_SESSION

logger = logging.getLogger(__name__)

START = "ssm:StartSession"
TERMINATE = "ssm:TerminateSession"
# A browser attaching to a running session is AWS's ResumeSession.
RESUME = "ssm:ResumeSession"
END = "bosun:EndSession"
REASON_MAX = 256
TERMINAL_MAX = 1000  # columns or rows, as the browser's resize frame allows
TERM = "xterm-256color"
# The node picks the run-as user's login shell; the header names it only in general.
LOGIN_SHELL = "login"


def session_owned_by(principal: Principal, session: Session) -> bool:
    """Whether `principal` started `session`: its owner may attach and always terminate."""
    return session.principal_arn == user_arn(principal.user)


def session_may_terminate(principal: Principal, session: Session) -> bool:
    """session_terminate's rule, asked without acting (for a button): the owner always, anyone
    else with ssm:TerminateSession on the session; an ended session has nothing to end."""
    if session.is_ended:
        return False
    return session_owned_by(principal, session) or is_allowed(
        principal, TERMINATE, session_arn(session.session_id)
    )


def session_start(
    *,
    principal: Principal,
    node_id: str,
    reason: str = "",
    document_name: str = DEFAULT_DOCUMENT,
    parameters: Mapping[str, Any] | None = None,
    cols: int = 80,
    rows: int = 24,
    source_ip: str = "",
) -> Session:
    """Authorize, create the session (Connecting) with its recording's header, audit, and ask
    the node's agent to open it. A shell (SSM-SessionManagerRunShell) or, with an interactive
    command document, the one command its `command` parameter names."""
    if source_ip:
        principal.source_ip = source_ip
    preferences = preferences_effective()
    reason = _checked_reason(reason, required=preferences.reason_required)
    _check_size(cols, rows)
    command = _checked_document(document_name, parameters)
    node = node_authorized(principal, START, node_id)
    authorize(principal, START, document_arn(document_name))
    if node.status != NodeStatus.ONLINE:
        raise TargetNotConnected(
            f"{node_id} is not connected: its agent is offline ({node.status}), so no shell "
            "can be opened there."
        )
    required = bool(settings.BOSUN_SESSION_RECORDING_REQUIRED)
    with transaction.atomic():
        session = Session.objects.create(
            session_id=new_session_id(principal.name),
            node=node,
            started_by=principal.user,
            principal_arn=user_arn(principal.user),
            principal_name=principal.name,
            document_name=document_name,
            command=command,
            run_as=run_as_for(principal.user, preferences),
            reason=reason,
            idle_timeout_minutes=preferences.idle_timeout_minutes,
            max_duration_minutes=preferences.max_duration_minutes or None,
            recording_required=required,
            input_recorded=preferences.record_input,
            idle_counts_output=preferences.idle_counts_output,
        )
        _recording_started(session, cols, rows)
        message_enqueue(
            node_ids=[node.pk],
            kind=MESSAGE_START_SESSION,
            payload=start_payload(session, cols=cols, rows=rows, preferences=preferences),
            created_by_arn=session.principal_arn,
        )
        principal.record(
            START,
            resources=[session_arn(session.session_id), node_arn(node.pk)],
            params={
                "SessionId": session.session_id,
                "Target": node.pk,
                "DocumentName": document_name,
                "Parameters": {"command": [command]} if command else None,
                "Reason": reason or None,
                "RunAs": session.run_as or None,
                "RecordingRequired": required,
            },
        )
    return session


def start_payload(
    session: Session, *, cols: int, rows: int, preferences: Preferences | None = None
) -> dict[str, object]:
    """The StartSession message's payload (the agent's PtySpec). The shell profile belongs
    to the shell document, as AWS's does: an interactive command runs without it."""
    preferences = preferences or preferences_effective()
    return {
        "session_id": session.session_id,
        "run_as": session.run_as,
        "allow_root": bool(settings.BOSUN_SESSION_ALLOW_ROOT),
        "command": session.command,
        "profile": "" if session.command else preferences.shell_profile,
        "cols": cols,
        "rows": rows,
        "idle_timeout_seconds": session.idle_timeout_minutes * 60,
        "max_duration_seconds": (session.max_duration_minutes or 0) * 60,
    }


def session_terminate(*, principal: Principal, session_id: str, source_ip: str = "") -> Session:
    """End a session: its owner may always, anyone else with ssm:TerminateSession on it. A
    session no agent has picked up yet ends here; a running one is ended by its relay."""
    if source_ip:
        principal.source_ip = source_ip
    found = Session.objects.filter(session_id=session_id).first()
    if found is None:
        raise DoesNotExistException(f"There is no session {session_id!s:.100}.")
    if not session_owned_by(principal, found):
        authorize(principal, TERMINATE, session_arn(session_id))
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=found.pk)
        if session.is_ended:
            return session
        if session.status == SessionStatus.CONNECTING:
            # No relay holds it yet: end it now; an agent that comes later is refused (4404).
            session_end_locked(
                session, reason=f"terminated by {principal.name}", status=SessionStatus.TERMINATED
            )
        else:
            session.status, session.status_changed_at = SessionStatus.TERMINATING, timezone.now()
            session.save(update_fields=["status", "status_changed_at"])
            transaction.on_commit(
                lambda: _tell_home(session.session_id, f"terminated by {principal.name}")
            )
        principal.record(
            TERMINATE,
            resources=[session_arn(session.session_id), node_arn(session.node_id)],
            params={"SessionId": session.session_id},
        )
    return session


# --- The relay's ------------------------------------------------------------------------------


def session_for_agent(*, session_id: str, node_id: str) -> Session:
    """The session an agent's socket opens: this node's, not ended (else DoesNotExist)."""
    session = Session.objects.filter(session_id=session_id, node_id=node_id).first()
    if session is None or session.is_ended:
        raise DoesNotExistException(f"There is no open session {session_id!s:.100} on {node_id}.")
    return session


def session_for_viewer(*, principal: Principal, session_id: str) -> Session:
    """The session a browser attaches to: only its owner's. Anyone else is refused, audited."""
    session = Session.objects.filter(session_id=session_id).first()
    if session is None:
        raise DoesNotExistException(f"There is no session {session_id!s:.100}.")
    if not session_owned_by(principal, session) or not principal.user.is_active:
        principal.record(
            RESUME,
            outcome="denied",
            resources=[session_arn(session_id)],
            error_code=AccessDenied.aws_code,
        )
        raise AccessDenied(
            f"User {principal.name} may not attach to session {session_id}: only the user who "
            "started it can."
        )
    return session


def session_connected(*, session_id: str, run_as: str = "") -> Session:
    """The agent started the shell (Connecting → Connected, with who it runs as), or its
    socket came back after a drop (Disconnected → Connected: it holds a running shell)."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(session_id=session_id)
        if session.status not in (SessionStatus.CONNECTING, SessionStatus.DISCONNECTED):
            return session
        session.status, session.status_changed_at = SessionStatus.CONNECTED, timezone.now()
        fields = ["status", "status_changed_at"]
        if run_as and run_as != session.run_as:
            session.run_as = run_as[:64]
            fields.append("run_as")
        session.save(update_fields=fields)
    return session


def session_disconnected(*, session_id: str) -> Session:
    """The agent's socket dropped: the shell waits for it to come back within its grace."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(session_id=session_id)
        if session.status in (SessionStatus.CONNECTING, SessionStatus.CONNECTED):
            session.status, session.status_changed_at = SessionStatus.DISCONNECTED, timezone.now()
            session.save(update_fields=["status", "status_changed_at"])
    return session


def session_progress(*, session_id: str, bytes_in: int, bytes_out: int) -> None:
    """The relay's byte counters, kept as it flushes (a new relay continues from them)."""
    Session.objects.filter(session_id=session_id).update(bytes_in=bytes_in, bytes_out=bytes_out)


def session_ended(
    *,
    session_id: str,
    reason: str,
    status: str = SessionStatus.TERMINATED,
    bytes_in: int | None = None,
    bytes_out: int | None = None,
) -> Session:
    """The session is over: seal its recording, record the ending, audit it. Ending an ended
    session changes nothing."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(session_id=session_id)
        if session.is_ended:
            return session
        if bytes_in is not None:
            session.bytes_in = bytes_in
        if bytes_out is not None:
            session.bytes_out = bytes_out
        session_end_locked(session, reason=reason, status=status)
    return session


def sessions_replied(messages: list[NodeMessage]) -> None:
    """The agents' replies to StartSession (fleet.protocol.messages reply handler, inside the
    answers' transaction): a session the relay has not ended (its agent lost the server past
    the grace period, or refused before its socket opened) ends with what the agent says."""
    for message in messages:
        session_id = (message.payload or {}).get("session_id")
        result = message.result if isinstance(message.result, dict) else {}
        session = (
            Session.objects.select_for_update()
            .filter(session_id=session_id, node_id=message.node_id)
            .first()
        )
        if session is None or session.is_ended:
            continue
        if message.state == MessageState.SUCCEEDED:
            reason = str(result.get("end_reason") or "ended on the node")
            status = SessionStatus.TERMINATED
            for name in ("bytes_in", "bytes_out"):
                value = result.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    setattr(session, name, max(value, getattr(session, name)))
        else:
            reason = f"failed on the node: {result.get('error') or message.state}"
            status = SessionStatus.FAILED
        session_end_locked(session, reason=reason[:2000], status=status)


def session_end_locked(
    session: Session, *, reason: str, status: str, face: str = AuditEvent.Face.WS
) -> None:
    """End `session` (its row locked by the caller, in the caller's transaction): the
    ending's fields, the recording sealed, the audit event, and the viewers told after commit."""
    session.status = status
    session.ended_at = session.status_changed_at = timezone.now()
    session.end_reason = reason
    session.save(
        update_fields=[
            "status",
            "ended_at",
            "status_changed_at",
            "end_reason",
            "bytes_in",
            "bytes_out",
        ]
    )
    if session.recording_header and not session.is_sealed:
        recording_seal(session=session)
    audit_record(
        principal=SYSTEM_PRINCIPAL,
        action=END,
        outcome=AuditEvent.Outcome.SUCCESS,
        resources=[session_arn(session.session_id), node_arn(session.node_id)],
        params={
            "SessionId": session.session_id,
            "Status": status,
            "Reason": reason,
            "BytesIn": session.bytes_in,
            "BytesOut": session.bytes_out,
            "RecordingFinalHash": session.recording_final_hash or None,
        },
        face=face,
    )
    transaction.on_commit(lambda: _tell_viewers_ended(session.session_id, reason, status))


def _recording_started(session: Session, cols: int, rows: int) -> None:
    try:
        with transaction.atomic():
            recording_start(
                session=session, width=cols, height=rows, term=TERM, login_shell=LOGIN_SHELL
            )
    except RecordingError:
        if session.recording_required:
            raise
        # Not mandatory: the session runs unrecorded (its page says so: no header).


def _checked_document(document_name: str, parameters: Mapping[str, Any] | None) -> str:
    """The command an interactive command document runs ("" for the shell document)."""
    if document_name != DEFAULT_DOCUMENT and document_name not in INTERACTIVE_DOCUMENTS:
        raise InvalidDocument(
            f"Document {document_name!s:.128} is not a session document this server runs; "
            f"use {DEFAULT_DOCUMENT} or {', '.join(INTERACTIVE_DOCUMENTS)}."
        )
    parameters = dict(parameters or {})
    allowed = {"command"} if document_name in INTERACTIVE_DOCUMENTS else set()
    for name in parameters:
        if name not in allowed:
            raise SessionsValidationError(
                f"Document {document_name} has no parameter {name!s:.64}.", field="parameters"
            )
    if not allowed:
        return ""
    value = parameters.get("command")
    # AWS passes every parameter as a list of strings; this one holds exactly one.
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if value is None or (isinstance(value, list | tuple) and not value):
        value = ""
    if not isinstance(value, str):
        raise SessionsValidationError(
            "The parameter command is one string: the command to run.", field="command"
        )
    if not value.strip():
        raise SessionsValidationError(
            f"Document {document_name} needs the parameter command: the command to run.",
            field="command",
        )
    if len(value) > COMMAND_MAX:
        raise SessionsValidationError(
            f"The parameter command is at most {COMMAND_MAX} characters.", field="command"
        )
    if "\x00" in value:
        raise SessionsValidationError(
            "The parameter command may not contain NUL characters.", field="command"
        )
    return value


def _checked_reason(reason: str, *, required: bool) -> str:
    if not isinstance(reason, str):
        raise SessionsValidationError("The reason is text.", field="reason")
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise SessionsValidationError(
            f"A reason is at most {REASON_MAX} characters.", field="reason"
        )
    if not reason and required:
        raise SessionsValidationError(
            "Give a reason for this session: this server requires one.", field="reason"
        )
    return reason


def _check_size(cols: int, rows: int) -> None:
    for name, value in (("cols", cols), ("rows", rows)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= TERMINAL_MAX:
            raise SessionsValidationError(
                f"The terminal's {name} must be 1 to {TERMINAL_MAX}, not {value!r:.20}.",
                field=name,
            )


def _tell_home(session_id: str, reason: str) -> None:
    _group_send(groups.home(session_id), {"type": groups.TERMINATE, "reason": reason})


def _tell_viewers_ended(session_id: str, reason: str, status: str) -> None:
    _group_send(
        groups.viewers(session_id), {"type": groups.ENDED, "reason": reason, "status": status}
    )


def _group_send(group: str, message: dict[str, object]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # at most once (DESIGN.md §2): the row is the record
        logger.exception("could not signal the session's group %s", group)
