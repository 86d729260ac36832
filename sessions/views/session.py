"""One session: its details and recording's state, terminating it, and its live terminal."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from access.authorization import Principal, is_allowed, principal_of
from access.views.common import confirm
from audit.permissions import READ_ACTION
from fleet.codes import node_arn
from sessions.codes import session_arn
from sessions.models import Session
from sessions.services.recording import recording_verify
from sessions.services.sessions import session_terminate
from sessions.verification import VerifyReport
from sessions.views.common import (
    HtmxHttpRequest,
    session_may_terminate,
    session_owned_by,
    session_visible,
    sessions_page,
    wants_partial,
)

DETAIL_TEMPLATE = "sessions/detail.html"
TERMINAL_TEMPLATE = "sessions/terminal.html"


def recording_state(report: VerifyReport) -> tuple[str, str]:
    """(state, what to say): verified, intact (so far, not sealed), broken, expired, none."""
    if report.problem is not None:
        kind = "expired" if report.problem.kind == "expired" else "broken"
        return kind, report.describe()
    if not report.recorded:
        return "none", report.describe()
    if report.sealed_at is None:
        return "intact", report.describe()
    return "verified", report.describe()


# Verifying reads every chunk: a page view does it for recordings up to this much output;
# a larger one (a `cat` of gigabytes) is verified when asked (?verify=1).
AUTO_VERIFY_MAX_BYTES = 8 * 1024 * 1024


def _context(principal: Principal, session: Session, *, verify: bool = False) -> dict[str, Any]:
    report: VerifyReport | None = None
    if session.is_ended and (verify or session.recording_output_bytes <= AUTO_VERIFY_MAX_BYTES):
        report = recording_verify(session=session)
        state, summary = recording_state(report)
    elif session.is_ended:
        state = "unverified"
        size = session.recording_output_bytes / 1_000_000
        summary = (
            f"{session.recording_chunks} chunks, {size:.0f} MB of output; verifying reads "
            "all of it, so it runs when asked."
        )
    else:
        # Verifying reads every chunk; a running session's page refreshes every few seconds,
        # so its recording is verified once it has ended and been sealed.
        state = "recording" if session.recording_header else "none"
        summary = (
            f"{session.recording_chunks} chunks so far; verified once the session ends."
            if session.recording_header
            else "Starts once the shell is connected."
        )
    ended_at = session.ended_at
    return {
        "session": session,
        "arn": session_arn(session.session_id),
        "duration": (ended_at - session.started_at) if ended_at else None,
        "recording": report,
        "recording_state": state,
        "recording_summary": summary,
        "has_recording": bool(session.recording_header) and session.recording_expired_at is None,
        "is_owner": session_owned_by(principal, session),
        "can_terminate": session_may_terminate(principal, session),
        "can_read_audit": is_allowed(principal, READ_ACTION),
        "can_see_node": is_allowed(
            principal, "ssm:DescribeInstanceInformation", node_arn(session.node_id)
        ),
        "live": not session.is_ended,
    }


@login_required
@require_GET
@sessions_page
def session_detail(request: HtmxHttpRequest, session_id: str) -> HttpResponse:
    principal = principal_of(request)
    session = session_visible(principal=principal, session_id=session_id)
    template = f"{DETAIL_TEMPLATE}#live" if wants_partial(request) else DETAIL_TEMPLATE
    context = _context(principal, session, verify=request.GET.get("verify") == "1")
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
@sessions_page
def session_terminate_page(request: HtmxHttpRequest, session_id: str) -> HttpResponse:
    principal = principal_of(request)
    session = session_visible(principal=principal, session_id=session_id)
    back = reverse("sessions:detail", args=[session.session_id])
    if session.is_ended:
        messages.info(request, f"The session has already ended ({session.status}).")
        return redirect(back)
    if request.method == "GET":
        if not session_may_terminate(principal, session):
            raise PermissionDenied("You may not terminate this session.")
        return confirm(
            request,
            title="Terminate this session?",
            message=f"The shell of {session.principal_name} on {session.node.name} "
            f"({session.node_id}) is ended at once, with every process it started. Its "
            "recording is sealed and kept.",
            button="Terminate session",
            cancel_url=back,
        )
    session_terminate(
        principal=principal, session_id=session.session_id, source_ip=principal.source_ip
    )
    messages.success(request, "The session is being terminated.")
    return redirect(back)


@login_required
@require_GET
@sessions_page
def session_terminal(request: HtmxHttpRequest, session_id: str) -> HttpResponse:
    principal = principal_of(request)
    session = session_visible(principal=principal, session_id=session_id)
    if not session_owned_by(principal, session):
        # The relay refuses anyone else's socket too (4403); the page says so first.
        raise PermissionDenied("Only whoever started a session may attach to its terminal.")
    if session.is_ended:
        messages.info(
            request,
            f"The session has ended ({session.status}"
            f"{': ' + session.end_reason if session.end_reason else ''}).",
        )
        return redirect("sessions:detail", session_id=session.session_id)
    return render(
        request,
        TERMINAL_TEMPLATE,
        {
            "session": session,
            "socket_path": f"/ws/sessions/{session.session_id}/",
            "can_terminate": session_may_terminate(principal, session),
        },
    )
