"""Reading sessions."""

from __future__ import annotations

from sessions.exceptions import DoesNotExistException
from sessions.models import Session


def session_get(*, session_id: str) -> Session:
    """The session by its id; DoesNotExistException names the id when there is none.

    Unscoped: for the server's own use (the relay, tasks, the command line). Faces that act
    for a user scope the lookup by what that user may see.
    """
    session = Session.objects.select_related("node").filter(session_id=session_id).first()
    if session is None:
        raise DoesNotExistException(f"There is no session {session_id!s:.100}.")
    return session
