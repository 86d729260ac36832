"""What the Session Manager pages share: the scoped lookup, errors as 403/404, buttons."""

from __future__ import annotations

from access.authorization import Principal, is_allowed
from access.directory import user_arn
from bosun.lib.pages import HtmxHttpRequest, render_form, service_page, wants_partial
from sessions.codes import session_arn
from sessions.exceptions import DoesNotExistException
from sessions.models import Session
from sessions.selectors import sessions_visible

__all__ = [
    "PAGE_SIZE",
    "START",
    "TERMINATE",
    "HtmxHttpRequest",
    "is_owner",
    "may_terminate",
    "render_form",
    "session_visible",
    "sessions_page",
    "wants_partial",
]

PAGE_SIZE = 50
START = "ssm:StartSession"
TERMINATE = "ssm:TerminateSession"

# A refusal becomes the branded 403, a session one may not see the 404; any other refusal of
# a posted action comes back as a message on the page it was posted from.
sessions_page = service_page("sessions:list")


def session_visible(*, principal: Principal, session_id: str) -> Session:
    """The session if this principal may see it; else the same 404 as for no session at all,
    so a guessed id tells nothing."""
    session = (
        sessions_visible(principal=principal)
        .select_related("node", "started_by")
        .filter(session_id=session_id)
        .first()
    )
    if session is None:
        raise DoesNotExistException(f"There is no session {session_id!s:.100}.")
    return session


def is_owner(principal: Principal, session: Session) -> bool:
    return session.principal_arn == user_arn(principal.user)


def may_terminate(principal: Principal, session: Session) -> bool:
    """For the button: the owner always may, anyone else with ssm:TerminateSession on the
    session (the service decides again, and audits)."""
    if session.is_ended:
        return False
    return is_owner(principal, session) or is_allowed(
        principal, TERMINATE, session_arn(session.session_id)
    )
