"""What the Session Manager pages share: the scoped lookup, errors as 403/404, buttons."""

from __future__ import annotations

from access.authorization import Principal
from bosun.lib.pages import HtmxHttpRequest, render_form, service_page, wants_partial
from sessions.exceptions import DoesNotExistException
from sessions.models import Session
from sessions.selectors import sessions_visible
from sessions.services.sessions import (
    START,
    TERMINATE,
    session_may_terminate,
    session_owned_by,
)

__all__ = [
    "PAGE_SIZE",
    "START",
    "TERMINATE",
    "HtmxHttpRequest",
    "render_form",
    "session_may_terminate",
    "session_owned_by",
    "session_visible",
    "sessions_page",
    "wants_partial",
]

PAGE_SIZE = 50

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
