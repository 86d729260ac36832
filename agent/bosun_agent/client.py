"""The agent's side of the HTTP and websocket protocol, on aiohttp.

One `AgentClient` talks to one server; one `aiohttp.ClientSession` can serve many clients
(the simulator runs thousands of nodes on one session). Every answer the server refuses comes
back as a typed `ServerRefusal`; anything that means "try again later" (no connection,
timeouts, 5xx, a proxy's HTML error page) is `ServerUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bosun_agent import protocol

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
# The agent pings over its websocket so a silently dead connection (a NAT that forgot it) is
# noticed; a server restart closes the socket and is noticed at once anyway.
WEBSOCKET_PING_SECONDS = 45.0
SESSION_WEBSOCKET_PING_SECONDS = 10.0
# What a session id may be (the server's are `<user>-<17 hex>`, at most 96 characters).
SESSION_ID = re.compile(r"[A-Za-z0-9_.@-]{1,96}")


class AgentError(Exception):
    """Base of every error the client raises; `message` is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerUnavailable(AgentError):
    """No usable answer (connection refused, timeout, 5xx): retry with backoff."""


class ServerRefusal(AgentError):
    """The server answered with `{"error": code, "message": ...}`."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class BadRequest(ServerRefusal):
    """400 or 413: this agent sent something the server could not take."""


class Unauthorized(ServerRefusal):
    """401: bad signature, stale timestamp, replayed nonce or unknown node."""


class ActivationRefused(ServerRefusal):
    """403 at registration: unknown or wrong activation, expired, or used up."""


class Revoked(ServerRefusal):
    """403 NodeDeregistered: this node was deregistered; it must stop."""


class MessageNotFound(ServerRefusal):
    """404: the message is unknown, or no longer this node's to answer."""


class Clone(ServerRefusal):
    """409: the fingerprint differs from the registered machine's."""


class ProtocolRefused(ServerRefusal):
    """426: the server does not speak this agent's protocol version."""


_BY_CODE: dict[str, type[ServerRefusal]] = {
    protocol.ERROR_BAD_REQUEST: BadRequest,
    protocol.ERROR_TOO_LARGE: BadRequest,
    protocol.ERROR_SIGNATURE: Unauthorized,
    protocol.ERROR_STALE: Unauthorized,
    protocol.ERROR_REPLAY: Unauthorized,
    protocol.ERROR_UNKNOWN_NODE: Unauthorized,
    protocol.ERROR_ACTIVATION: ActivationRefused,
    protocol.ERROR_ACTIVATION_EXPIRED: ActivationRefused,
    protocol.ERROR_ACTIVATION_EXHAUSTED: ActivationRefused,
    protocol.ERROR_REVOKED: Revoked,
    protocol.ERROR_NOT_FOUND: MessageNotFound,
    protocol.ERROR_CLONE: Clone,
    protocol.ERROR_PROTOCOL: ProtocolRefused,
}
_BY_STATUS: dict[int, type[ServerRefusal]] = {
    400: BadRequest,
    401: Unauthorized,
    403: ActivationRefused,
    404: MessageNotFound,
    409: Clone,
    413: BadRequest,
    426: ProtocolRefused,
}
_BY_CLOSE_CODE: dict[int, tuple[type[ServerRefusal], str]] = {
    protocol.CLOSE_BAD_REQUEST: (BadRequest, protocol.ERROR_BAD_REQUEST),
    protocol.CLOSE_UNAUTHORIZED: (Unauthorized, protocol.ERROR_SIGNATURE),
    protocol.CLOSE_DEREGISTERED: (Revoked, protocol.ERROR_REVOKED),
    protocol.CLOSE_CLONE: (Clone, protocol.ERROR_CLONE),
    protocol.CLOSE_PROTOCOL: (ProtocolRefused, protocol.ERROR_PROTOCOL),
}


def refusal(status: int, code: str, message: str) -> ServerRefusal:
    """The typed error for an `{"error", "message"}` answer."""
    kind = _BY_CODE.get(code) or _BY_STATUS.get(status, ServerRefusal)
    return kind(
        code or f"HTTP{status}", message or f"the server refused with HTTP {status}", status
    )


def close_refusal(close_code: int, reason: str) -> ServerRefusal | None:
    """The typed error a refused websocket's close code stands for (None: an ordinary close)."""
    known = _BY_CLOSE_CODE.get(close_code)
    if known is None:
        return None
    kind, code = known
    return kind(code, reason or f"the server closed the websocket with {close_code}", close_code)


@dataclass
class Credentials:
    """What signs a node's requests. The key changes when it rotates."""

    node_id: str
    key: Ed25519PrivateKey
    fingerprint: str

    def headers(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        return protocol.signed_headers(
            key=self.key,
            method=method,
            path=path,
            node_id=self.node_id,
            fingerprint=self.fingerprint,
            body=body,
        )


def encode_body(body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) > protocol.MAX_BODY_BYTES:
        raise BadRequest(
            protocol.ERROR_TOO_LARGE,
            f"the request is {len(data)} bytes; the limit is {protocol.MAX_BODY_BYTES}",
            413,
        )
    return data


class AgentClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        concurrency: asyncio.Semaphore | None = None,
        websocket_ping: float | None = WEBSOCKET_PING_SECONDS,
        ws_url: str | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        parts = _checked_url(self.base_url, ("http", "https"))
        self.server_host = parts.hostname
        # The signed path is the whole path the server sees, so a URL prefix is signed too.
        self._path_prefix = parts.path
        # Where the websocket goes, when not beside the HTTP endpoints: behind a reverse proxy
        # both share one URL; without one (a benchmark of the bare roles) they differ.
        self.ws_base_url = websocket_url((ws_url or self.base_url).rstrip("/"))
        self._ws_path_prefix = _checked_url(self.ws_base_url, ("ws", "wss")).path
        # Shared by every node of a simulator, so thousands of nodes never open thousands of
        # HTTP connections at once (their websockets do not count against it).
        self.concurrency = concurrency
        self.websocket_ping = websocket_ping

    def _url(self, path: str) -> str:
        return self.base_url + path

    async def register(
        self,
        *,
        activation_id: str,
        activation_code: str,
        public_key: str,
        fingerprint: str,
        facts: dict[str, Any],
        name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST /agent/v1/register (the only unsigned request)."""
        body: dict[str, Any] = {
            "protocol": protocol.PROTOCOL_VERSION,
            "activation_id": activation_id,
            "activation_code": activation_code,
            "public_key": public_key,
            "fingerprint": fingerprint,
            "facts": facts,
        }
        if name:
            body["name"] = name
        if tags:
            body["tags"] = tags
        return await self._post(protocol.REGISTER_PATH, encode_body(body), {})

    async def call(
        self, path: str, body: dict[str, Any], credentials: Credentials
    ) -> dict[str, Any]:
        """A signed POST to one of the agent paths."""
        data = encode_body(body)
        headers = credentials.headers("POST", self._path_prefix + path, data)
        return await self._post(path, data, headers)

    async def _post(self, path: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        headers = {**headers, "Content-Type": "application/json"}
        if self.concurrency is None:
            return await self._send(path, data, headers)
        async with self.concurrency:
            return await self._send(path, data, headers)

    async def _send(self, path: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        try:
            async with self.session.post(
                self._url(path), data=data, headers=headers, timeout=REQUEST_TIMEOUT
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise ServerUnavailable(f"cannot reach {self.base_url}: {describe(exc)}") from exc
        return decode_answer(status, raw, path)

    async def websocket(self, credentials: Credentials) -> aiohttp.ClientWebSocketResponse[bool]:
        """Open the push channel (GET WEBSOCKET_PATH with signed headers)."""
        return await self._signed_websocket(
            protocol.WEBSOCKET_PATH, credentials, self.websocket_ping
        )

    async def session_websocket(
        self, credentials: Credentials, session_id: str
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        """Open one session's terminal channel (GET SESSION_WEBSOCKET_PATH, signed the same
        way). Its pings come more often: the shell is only kept SESSION_GRACE_SECONDS after
        the socket is found dead."""
        if not session_id_safe(session_id):
            raise ValueError(f"not a usable session id: {session_id!r}")
        path = protocol.SESSION_WEBSOCKET_PATH.format(session_id=session_id)
        ping = None if self.websocket_ping is None else SESSION_WEBSOCKET_PING_SECONDS
        return await self._signed_websocket(path, credentials, ping)

    async def _signed_websocket(
        self, path: str, credentials: Credentials, ping: float | None
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        headers = credentials.headers("GET", self._ws_path_prefix + path)
        ws_url = self.ws_base_url + path
        try:
            return await self.session.ws_connect(
                ws_url, headers=headers, heartbeat=ping, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 426:
                raise ProtocolRefused(protocol.ERROR_PROTOCOL, exc.message, 426) from exc
            raise ServerUnavailable(
                f"the server refused the websocket with HTTP {exc.status}"
            ) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise ServerUnavailable(f"cannot reach {self.base_url}: {describe(exc)}") from exc


def session_id_safe(session_id: str) -> bool:
    """A session id that can go into a URL path and a file name as it is."""
    return bool(SESSION_ID.fullmatch(session_id)) and session_id.strip(".") != ""


def new_session(*, limit: int = 8, trust_env: bool = True) -> aiohttp.ClientSession:
    """A session for agent traffic. `limit` bounds pooled HTTP connections; websockets hold
    theirs for as long as they are open, so a simulator passes 0 (no limit) and bounds its
    HTTP requests with `AgentClient(concurrency=...)` instead."""
    connector = aiohttp.TCPConnector(limit=limit)
    # trust_env: HTTPS_PROXY / NO_PROXY from the environment, as operators expect.
    return aiohttp.ClientSession(connector=connector, trust_env=trust_env)


def websocket_url(url: str) -> str:
    """http→ws, https→wss; a ws:// or wss:// URL stays as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https", "ws", "wss"):
        return url  # not ours to fix: the caller's check names the URL
    return ("wss" if scheme in ("https", "wss") else "ws") + "://" + rest


def _checked_url(url: str, schemes: tuple[str, ...]) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"the server URL must be {wanted}, not {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the server URL must not have a query or fragment: {url!r}")
    return parts


def decode_answer(status: int, raw: bytes, path: str) -> dict[str, Any]:
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = None
    if status >= 500 or status in (408, 429):
        raise ServerUnavailable(f"the server answered HTTP {status} to {path}")
    if not isinstance(answer, dict):
        # Not the server speaking: a proxy's error page, or the wrong URL altogether.
        if status < 400:
            raise ServerUnavailable(f"the answer to {path} (HTTP {status}) is not JSON")
        raise ServerRefusal(
            f"HTTP{status}", f"HTTP {status} from {path}; is the URL a Bosun server?", status
        )
    if status >= 400:
        raise refusal(status, str(answer.get("error", "")), str(answer.get("message", "")))
    return answer


def describe(exc: BaseException) -> str:
    """A short reason for a connection failure (timeouts have an empty str())."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text or type(exc).__name__
