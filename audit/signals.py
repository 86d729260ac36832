"""Recording sign-ins and sign-outs from Django's authentication signals.

The attempted username is the principal of a failed sign-in; the password never reaches the
event (Django's signal carries the credentials with secrets masked, and only the username is
read from them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from audit.failures import audit_failed_authentication
from audit.models import AuditEvent
from audit.services import audit_record

SIGN_IN = "bosun:SignIn"
SIGN_OUT = "bosun:SignOut"


def request_context(request: HttpRequest | None) -> dict[str, str]:
    """Source address, user agent, request id and face of a request, for audit_record."""
    if request is None:
        return {"face": AuditEvent.Face.CLI}
    meta = request.META
    return {
        "source_ip": meta.get("REMOTE_ADDR", "") or "",
        "user_agent": meta.get("HTTP_USER_AGENT", "") or "",
        "request_id": meta.get("HTTP_X_REQUEST_ID", "") or "",
        "face": AuditEvent.Face.API if request.path.startswith("/api/") else AuditEvent.Face.WEB,
    }


def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(
        principal=user.get_username(),
        user_id=user.pk,
        action=SIGN_IN,
        outcome=AuditEvent.Outcome.SUCCESS,
        **request_context(request),
    )


def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # signing out without a session: nobody to name, nothing happened
        return
    audit_record(
        principal=user.get_username(),
        user_id=user.pk,
        action=SIGN_OUT,
        outcome=AuditEvent.Outcome.SUCCESS,
        **request_context(request),
    )


def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    users = get_user_model()
    username = str(credentials.get(users.USERNAME_FIELD) or credentials.get("username") or "")
    # The account's owner sees attempts on it among their own events.
    user_id = (
        users._default_manager.filter(**{users.USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
        if username
        else None
    )
    audit_failed_authentication(
        principal=username or "(no username)",
        user_id=user_id,
        action=SIGN_IN,
        outcome=AuditEvent.Outcome.DENIED,
        error_code="InvalidCredentials",
        **request_context(request),
    )


def connect() -> None:
    user_logged_in.connect(_signed_in, dispatch_uid="audit-sign-in")
    user_logged_out.connect(_signed_out, dispatch_uid="audit-sign-out")
    user_login_failed.connect(_sign_in_failed, dispatch_uid="audit-sign-in-failed")
