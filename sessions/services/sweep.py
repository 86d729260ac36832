"""Ending the sessions nobody is left to end (beat, every SWEEP_SECONDS).

The relay ends a session on every ending it sees, and the agent's reply to StartSession ends
one the relay did not. What neither can end: an agent that never opened the session's socket,
a node that died outright (its socket gone, no reply ever), a `ws` process that died holding a
session being terminated. The sweep ends those once they have waited longer than any live
party would, and says why.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from fleet.models import NodeStatus
from sessions.models import Session, SessionStatus
from sessions.services.sessions import session_end_locked
from sessions.wire import SESSION_GRACE_SECONDS

SWEEP_SECONDS = 10.0
# An online agent opens a session's socket within a second or two of the StartSession message.
CONNECT_TIMEOUT = timedelta(seconds=60)
# The agent keeps a shell through SESSION_GRACE_SECONDS without its socket, then ends it.
AGENT_LOST_AFTER = timedelta(seconds=SESSION_GRACE_SECONDS + 15)
TERMINATE_TIMEOUT = timedelta(seconds=30)
BATCH = 200


def _reason(session: Session, now: datetime) -> str | None:
    """Why the sweep ends this session now (None: it is not stuck)."""
    waited = now - session.status_changed_at
    if session.status == SessionStatus.CONNECTING and waited > CONNECT_TIMEOUT:
        return (
            f"the agent did not open the session within {CONNECT_TIMEOUT.seconds} s "
            "(is it running and connected?)"
        )
    if session.status == SessionStatus.DISCONNECTED and waited > AGENT_LOST_AFTER:
        return (
            f"the agent lost its connection for more than {SESSION_GRACE_SECONDS} s; "
            "it ends the shell after that"
        )
    if (
        session.status == SessionStatus.CONNECTED
        and session.node.status != NodeStatus.ONLINE
        and waited > AGENT_LOST_AFTER
    ):
        return f"the node is {session.node.status} and its agent no longer relays the session"
    if session.status == SessionStatus.TERMINATING and waited > TERMINATE_TIMEOUT:
        return "terminated (the agent did not confirm the end)"
    return None


def sessions_sweep(*, now: datetime | None = None) -> int:
    """End the stuck sessions; returns how many were ended."""
    now = now or timezone.now()
    due = (
        Q(status=SessionStatus.CONNECTING, status_changed_at__lt=now - CONNECT_TIMEOUT)
        | Q(status=SessionStatus.DISCONNECTED, status_changed_at__lt=now - AGENT_LOST_AFTER)
        | (
            Q(status=SessionStatus.CONNECTED, status_changed_at__lt=now - AGENT_LOST_AFTER)
            & ~Q(node__status=NodeStatus.ONLINE)
        )
        | Q(status=SessionStatus.TERMINATING, status_changed_at__lt=now - TERMINATE_TIMEOUT)
    )
    ended = 0
    for pk in Session.objects.filter(due).order_by("pk").values_list("pk", flat=True)[:BATCH]:
        with transaction.atomic():
            session = Session.objects.select_for_update(of=("self",)).select_related("node")
            locked = session.get(pk=pk)
            reason = _reason(locked, now)  # again, under the lock: the relay may have moved it
            if reason is None:
                continue
            status = (
                SessionStatus.TERMINATED
                if locked.status == SessionStatus.TERMINATING
                else SessionStatus.FAILED
            )
            session_end_locked(locked, reason=reason, status=status, face=AuditEvent.Face.TASK)
            ended += 1
    return ended
