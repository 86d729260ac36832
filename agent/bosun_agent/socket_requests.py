"""Acks and replies over the node's websocket, when the server takes them there.

The server's hello lists the request frames it takes (`requests`). Each request frame
carries an id; the server answers with an `answer` frame holding the same id and either the
HTTP endpoint's answer or its `{"error", "message"}` (PROTOCOL.md "Websocket"). A frame costs
neither party a TLS request, a signature nor a database transaction of its own, which is what
lets a thousand nodes answer a command within a second.

Whenever the socket cannot answer (not open, closed while waiting, no answer in time) the
caller gets SocketUnavailable and sends the same body over HTTP: acks and replies are
idempotent on the server, so one sent both ways is recorded once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import aiohttp

from bosun_agent import protocol
from bosun_agent.client import ServerUnavailable, refusal

# Past this the socket is assumed stuck and the request goes over HTTP instead.
ANSWER_TIMEOUT_SECONDS = 30.0


class SocketUnavailable(Exception):
    """The websocket could not carry this request: send it over HTTP."""


class SocketRequests:
    def __init__(self, *, timeout: float = ANSWER_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._socket: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._accepted: frozenset[str] = frozenset()
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0

    def attach(self, socket: aiohttp.ClientWebSocketResponse[bool], accepted: Any) -> None:
        """The server's hello: what it takes over `socket` (an older server lists nothing)."""
        self._socket = socket
        kinds: Iterable[Any] = accepted if isinstance(accepted, list) else ()
        self._accepted = frozenset(kind for kind in kinds if kind in protocol.WS_REQUESTS)

    def detach(self) -> None:
        """The socket closed: whatever waits for an answer goes over HTTP."""
        self._socket = None
        self._accepted = frozenset()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(SocketUnavailable("the websocket closed"))

    def takes(self, kind: str) -> bool:
        return self._socket is not None and kind in self._accepted

    async def request(self, kind: str, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The server's answer, or the refusal the HTTP endpoint would have raised."""
        socket = self._socket
        if socket is None or kind not in self._accepted:
            raise SocketUnavailable(f"the websocket does not take {kind}")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        frame = {**body, "type": kind, "id": request_id, "message_id": message_id}
        try:
            await socket.send_str(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
            return await asyncio.wait_for(future, self.timeout)
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise SocketUnavailable(f"could not send over the websocket: {exc}") from exc
        except asyncio.TimeoutError:
            raise SocketUnavailable(f"no answer over the websocket in {self.timeout:g} s") from None
        finally:
            self._waiting.pop(request_id, None)

    def on_answer(self, frame: dict[str, Any]) -> None:
        """An `answer` frame: hand it to the request waiting for it (a late one is dropped)."""
        request_id = frame.get("id")
        future = self._waiting.get(request_id) if isinstance(request_id, int) else None
        if future is None or future.done():
            return
        error = frame.get("error")
        if error is None:
            answer = frame.get("answer")
            future.set_result(answer if isinstance(answer, dict) else {})
            return
        message = str(frame.get("message") or error)
        if error == protocol.ERROR_SOCKET_BUSY:
            future.set_exception(SocketUnavailable(f"the websocket is busy: {message}"))
        elif error == protocol.ERROR_INTERNAL:
            future.set_exception(ServerUnavailable(f"the server failed: {message}"))
        else:
            future.set_exception(refusal(0, str(error), message))
