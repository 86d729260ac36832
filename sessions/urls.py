"""Session Manager's pages. Session ids end in "-" and 17 hex digits, so "start" never reads
as one."""

from django.urls import path

from sessions.views import history, preferences, recording, session, start

app_name = "sessions"

urlpatterns = [
    path("", history.session_list, name="list"),
    path("start/", start.session_start_page, name="start"),
    path("preferences/", preferences.preferences_page, name="preferences"),
    path("preferences/run-as/", preferences.run_as_rule_add, name="run-as-add"),
    path(
        "preferences/run-as/<int:rule_id>/remove/",
        preferences.run_as_rule_remove,
        name="run-as-remove",
    ),
    path("<str:session_id>/", session.session_detail, name="detail"),
    path("<str:session_id>/terminal/", session.session_terminal, name="terminal"),
    path("<str:session_id>/terminate/", session.session_terminate_page, name="terminate"),
    path("<str:session_id>/recording.cast", recording.recording_download, name="recording"),
    path("<str:session_id>/playback/", recording.recording_playback, name="playback"),
]
