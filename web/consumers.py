"""The live event feed: one websocket per browser tab, fed by realtime.publish_on_commit()."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from access.adapters import CLOSE_FORBIDDEN
from bosun.lib import realtime

# Close codes in the 4000s are ours; the browser's realtime.js reads them. Consumers whose
# stream needs a policy call access.adapters.authorize_scope() and close with CLOSE_FORBIDDEN.
CLOSE_UNAUTHENTICATED = 4401


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first: a close before accept is an HTTP 403 to the browser, which then
            # sees only code 1006 and cannot tell "signed out" from "server down".
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not user.is_active:
            # The feed needs no policy (it carries only the user's own events and the worker's
            # heartbeat), but a deactivated account gets nothing, whatever its session says.
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined = [realtime.user_group(user.pk), realtime.BROADCAST_GROUP]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"event": "hello", "data": {}})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: dict, **kwargs) -> None:
        # The browser pings to measure the link and keep proxies from closing an idle socket.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "pong", "data": {"sent": content.get("sent")}})

    async def realtime_event(self, message: dict) -> None:
        await self.send_json({"event": message["event"], "data": message.get("data", {})})
