"""Reading sessions."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from access.authorization import Principal
from access.directory import user_arn
from fleet.models import ManagedNode
from sessions.exceptions import DoesNotExistException
from sessions.models import Session

DESCRIBE_SESSIONS = "ssm:DescribeSessions"


def session_get(*, session_id: str) -> Session:
    """The session by its id; DoesNotExistException names the id when there is none.

    Unscoped: for the server's own use (the relay, tasks, the command line). Faces that act
    for a user scope the lookup by what that user may see.
    """
    session = Session.objects.select_related("node").filter(session_id=session_id).first()
    if session is None:
        raise DoesNotExistException(f"There is no session {session_id!s:.100}.")
    return session


def sessions_visible(*, principal: Principal) -> QuerySet[Session]:
    """The sessions a principal may list: their own, and every session on a node where the
    policy allows ssm:DescribeSessions (the node's tags as context, as for its other actions)."""
    user = principal.user
    if not user.is_active:
        return Session.objects.none()
    nodes = ManagedNode.objects.visible_to(principal, DESCRIBE_SESSIONS)
    if nodes.query.is_empty():
        return Session.objects.filter(principal_arn=user_arn(user))
    return Session.objects.filter(
        Q(principal_arn=user_arn(user)) | Q(node_id__in=nodes.values("pk"))
    )
