"""Websocket routes of every app, gathered for bosun.asgi."""

from fleet.protocol.routing import agent_websocket_urlpatterns
from sessions.routing import agent_session_urlpatterns, browser_session_urlpatterns
from web.routing import websocket_urlpatterns as web_websockets

# Browser sockets: behind the origin check and the session.
websocket_urlpatterns = [*web_websockets, *browser_session_urlpatterns]
# Agent sockets: signed requests from servers, which send no Origin and have no session.
agent_urlpatterns = [*agent_websocket_urlpatterns, *agent_session_urlpatterns]
