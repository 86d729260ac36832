"""Websocket routes of every app, gathered for bosun.asgi."""

from web.routing import websocket_urlpatterns as web_websockets

websocket_urlpatterns = [*web_websockets]
