"""The agent's websocket route; bosun.asgi keeps it apart from the browsers' (no Origin)."""

from bosun_agent import protocol
from django.urls import path

from fleet.protocol.consumers import AgentConsumer

agent_websocket_urlpatterns = [
    path(protocol.WEBSOCKET_PATH.lstrip("/"), AgentConsumer.as_asgi()),
]
