"""ASGI entry point for daphne: websockets for the `ws` role, HTTP too in the embedded stack."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")

# Django must be set up before anything imports models (consumers, auth middleware).
django_asgi_app = get_asgi_application()

from bosun_agent.protocol import WEBSOCKET_PATH  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from bosun.routing import agent_urlpatterns, websocket_urlpatterns  # noqa: E402

# A browser websocket must come from one of our own origins (ALLOWED_HOSTS), so another site
# cannot ride a signed-in user's cookie into a shell or a live feed.
browser_websockets = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
)
# Agents send no Origin and carry no cookie: each handshake is signed by the node's key, so
# they skip the origin check and the session lookup, and only their own path gets here.
agent_websockets = URLRouter(agent_urlpatterns)


async def websockets(scope, receive, send):
    app = agent_websockets if scope["path"].startswith(WEBSOCKET_PATH) else browser_websockets
    return await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websockets})
