"""Session Manager's AWS operations: StartSession, TerminateSession and DescribeSessions,
translated to the session services and selectors.

Registered on the AWS endpoint (access.aws_endpoint) by bosun.lib.aws.registry; the services
and selectors authorize and audit, exactly as for the pages.

StartSession opens the session as the Session Manager page does; its StreamUrl is Bosun's
browser websocket for the session (`ws[s]://<host>/ws/sessions/<id>/`, which authenticates by
the dashboard's login, so TokenValue is empty). AWS's session-manager-plugin data channel is
not served: `aws ssm start-session` cannot attach a terminal to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Q

from bosun.lib.aws import errors
from bosun.lib.aws.paging import offset_page
from bosun.lib.aws.registry import AwsCall, operation
from sessions.models import DEFAULT_DOCUMENT, ENDED_SESSION_STATUSES, Session
from sessions.selectors import sessions_visible
from sessions.services.sessions import session_start, session_terminate

SESSIONS_PAGE = 50  # AWS's SessionMaxResults: 1 to 200
DETAILS_MAX = 1024
ACCESS_TYPE = "Standard"  # Bosun has no just-in-time node access


# --- Operations -----------------------------------------------------------------------------


@operation("StartSession")
def start_session(call: AwsCall) -> dict[str, Any]:
    p = call.params
    session = session_start(
        principal=call.principal,
        node_id=p["Target"],
        reason=p.get("Reason", ""),
        document_name=_document_name(p.get("DocumentName", DEFAULT_DOCUMENT)),
        parameters=p.get("Parameters"),
    )
    return {
        "SessionId": session.session_id,
        "TokenValue": "",
        "StreamUrl": _stream_url(call, session.session_id),
    }


def _document_name(name: str) -> str:
    """AWS takes a document's name or its ARN (`arn:…:document/<name>`)."""
    if name.startswith("arn:") and ":document/" in name:
        return name.rpartition(":document/")[2]
    return name


def _stream_url(call: AwsCall, session_id: str) -> str:
    """The session's browser websocket on the origin the client reached Bosun at."""
    parts = urlsplit(call.origin)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/ws/sessions/{session_id}/"


@operation("TerminateSession")
def terminate_session(call: AwsCall) -> dict[str, Any]:
    session = session_terminate(principal=call.principal, session_id=call.params["SessionId"])
    return {"SessionId": session.session_id}


@operation("DescribeSessions")
def describe_sessions(call: AwsCall) -> dict[str, Any]:
    sessions = sessions_visible(principal=call.principal)
    if call.params["State"] == "Active":
        sessions = sessions.exclude(status__in=ENDED_SESSION_STATUSES)
    else:
        sessions = sessions.filter(status__in=ENDED_SESSION_STATUSES)
    for item in call.params.get("Filters", []):
        sessions = sessions.filter(_session_condition(item["key"], item["value"]))
    page, token = offset_page(
        sessions.order_by("-started_at", "-id"), call, kind="sessions", default_size=SESSIONS_PAGE
    )
    answer: dict[str, Any] = {"Sessions": [_session(session) for session in page]}
    if token:
        answer["NextToken"] = token
    return answer


def _session_condition(key: str, value: str) -> Q:
    if key == "InvokedAfter":
        return Q(started_at__gte=_moment(key, value))
    if key == "InvokedBefore":
        return Q(started_at__lte=_moment(key, value))
    if key == "Target":
        return Q(node_id=value)
    if key == "Owner":
        # AWS's value is the owner's ARN; a user name is accepted too.
        return Q(principal_arn=value) | Q(principal_name=value)
    if key == "Status":
        return Q(status=value)
    if key == "SessionId":
        return Q(session_id=value)
    # AccessType (the model allows no other key): every Bosun session is Standard.
    return Q() if value == ACCESS_TYPE else Q(pk__in=[])


def _moment(key: str, value: str) -> datetime:
    """A filter's date, as AWS writes it (`2018-08-29T00:00:00Z`); UTC when no zone is given."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise errors.validation(
            f"The {key} filter's value {value!r:.60} is not a date and time such as "
            "2018-08-29T00:00:00Z."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _session(session: Session) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "SessionId": session.session_id,
        "Target": session.node_id,
        "Status": session.status,
        "StartDate": session.started_at,
        "DocumentName": session.document_name,
        "Owner": session.principal_arn,
        "AccessType": ACCESS_TYPE,
    }
    if session.ended_at:
        shape["EndDate"] = session.ended_at
    if session.reason:
        shape["Reason"] = session.reason
    if session.end_reason:
        shape["Details"] = session.end_reason[:DETAILS_MAX]
    if session.max_duration_minutes:
        shape["MaxSessionDuration"] = str(session.max_duration_minutes)
    return shape
