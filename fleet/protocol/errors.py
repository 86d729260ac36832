"""Refusals of the agent protocol: one code, one HTTP status, one websocket close code.

The codes and close codes are the wire contract's (bosun_agent.protocol); this module only
pairs them, so a view and the websocket consumer refuse the same thing the same way.
"""

from __future__ import annotations

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError

STATUS_FOR_CODE: dict[str, int] = {
    protocol.ERROR_BAD_REQUEST: 400,
    protocol.ERROR_SIGNATURE: 401,
    protocol.ERROR_STALE: 401,
    protocol.ERROR_REPLAY: 401,
    protocol.ERROR_UNKNOWN_NODE: 401,
    protocol.ERROR_ACTIVATION: 403,
    protocol.ERROR_ACTIVATION_EXPIRED: 403,
    protocol.ERROR_ACTIVATION_EXHAUSTED: 403,
    protocol.ERROR_REVOKED: 403,
    protocol.ERROR_NOT_FOUND: 404,
    protocol.ERROR_ACCESS_DENIED: 403,
    protocol.ERROR_PARAMETER_NOT_FOUND: 400,
    protocol.ERROR_CLONE: 409,
    protocol.ERROR_TOO_LARGE: 413,
    protocol.ERROR_PROTOCOL: 426,
    protocol.ERROR_INTERNAL: 500,
    protocol.ERROR_SOCKET_BUSY: 429,
}

_CLOSE_FOR_STATUS = {
    401: protocol.CLOSE_UNAUTHORIZED,
    403: protocol.CLOSE_DEREGISTERED,
    409: protocol.CLOSE_CLONE,
    426: protocol.CLOSE_PROTOCOL,
}


def refusal(code: str, message: str) -> ProtocolError:
    return ProtocolError(code, message, STATUS_FOR_CODE[code])


def bad_request(message: str) -> ProtocolError:
    return refusal(protocol.ERROR_BAD_REQUEST, message)


def unsupported_protocol(version: object) -> ProtocolError:
    speaks = ", ".join(str(v) for v in protocol.SUPPORTED_PROTOCOL_VERSIONS)
    return refusal(
        protocol.ERROR_PROTOCOL,
        f"protocol version {version} is not supported; this server speaks version {speaks}: "
        "install an agent release that matches the server",
    )


def close_code(error: ProtocolError) -> int:
    """The websocket close code of a refused handshake (anything else is a bad request)."""
    return _CLOSE_FOR_STATUS.get(error.status, protocol.CLOSE_BAD_REQUEST)
