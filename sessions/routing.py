"""The session websockets: the agent's (signed, no Origin) and the browser's (session, Origin)."""

from django.urls import path

from sessions.consumers import AgentSessionConsumer, BrowserSessionConsumer
from sessions.wire import SESSION_WEBSOCKET_PATH

agent_session_urlpatterns = [
    path(
        SESSION_WEBSOCKET_PATH.lstrip("/").replace("{session_id}", "<str:session_id>"),
        AgentSessionConsumer.as_asgi(),
    ),
]
browser_session_urlpatterns = [
    path("ws/sessions/<str:session_id>/", BrowserSessionConsumer.as_asgi()),
]
