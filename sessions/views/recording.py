"""A session's recording: the .cast download and the player's page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from access.authorization import principal_of
from sessions.exceptions import RecordingError
from sessions.services.recording import recording_cast
from sessions.views.common import HtmxHttpRequest, session_visible, sessions_page

PLAYBACK_TEMPLATE = "sessions/playback.html"
CAST_TYPE = "application/x-asciicast"


@login_required
@require_GET
@sessions_page
def recording_download(request: HtmxHttpRequest, session_id: str) -> HttpResponse:
    session = session_visible(principal=principal_of(request), session_id=session_id)
    try:
        # Refused at once, before anything is streamed, when there is nothing to serve.
        lines = recording_cast(session=session)
    except RecordingError as error:
        # A download, not a page: a client saving the file gets a failure it can see.
        return HttpResponse(
            error.message, status=error.http_status, content_type="text/plain; charset=utf-8"
        )
    response = StreamingHttpResponse(lines, content_type=CAST_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{session.session_id}.cast"'
    response["Cache-Control"] = "private, no-store"
    # A streaming response: service_page types its views' answers as HttpResponse.
    return response  # type: ignore[return-value]


@login_required
@require_GET
@sessions_page
def recording_playback(request: HtmxHttpRequest, session_id: str) -> HttpResponse:
    session = session_visible(principal=principal_of(request), session_id=session_id)
    header = session.recording_header_data
    return render(
        request,
        PLAYBACK_TEMPLATE,
        {
            "session": session,
            "header": header,
            "expired": session.recording_expired_at is not None,
            "cast_url": reverse("sessions:recording", args=[session.session_id]),
        },
    )
