"""The wire contract between a Bosun agent and the server (DESIGN.md §3).

Both sides import this module, so the canonical string a node signs and the one the server
verifies are built by the same code. It depends on the standard library and `cryptography`
only: the server imports it, and it must never import Django.

Every request after registration carries these headers and is signed with the node's Ed25519
key over `canonical_request()`:

    X-Bosun-Protocol     the protocol version the agent speaks
    X-Bosun-Node         the node id (mi- + 17 hex digits)
    X-Bosun-Timestamp    Unix seconds; outside CLOCK_SKEW_SECONDS of the server's clock: refused
    X-Bosun-Nonce        32 random hex digits, never reused by the node (replays are refused)
    X-Bosun-Fingerprint  the machine fingerprint (a second machine with one identity: clone)
    X-Bosun-Signature    base64 of the Ed25519 signature

The agent's websocket (`WEBSOCKET_PATH`) is opened with the same headers over `GET`.
Errors come back as JSON `{"error": CODE, "message": text}` with a 4xx status.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PROTOCOL_VERSION = 1
# The versions a server of this release answers; an agent outside them is refused clearly.
SUPPORTED_PROTOCOL_VERSIONS = (1,)

SIGNATURE_SCHEME = "BOSUN-ED25519-V1"
CLOCK_SKEW_SECONDS = 300

HEADER_PROTOCOL = "X-Bosun-Protocol"
HEADER_NODE = "X-Bosun-Node"
HEADER_TIMESTAMP = "X-Bosun-Timestamp"
HEADER_NONCE = "X-Bosun-Nonce"
HEADER_FINGERPRINT = "X-Bosun-Fingerprint"
HEADER_SIGNATURE = "X-Bosun-Signature"

# Paths, relative to the server's base URL.
REGISTER_PATH = "/agent/v1/register"
HEARTBEAT_PATH = "/agent/v1/heartbeat"
FETCH_PATH = "/agent/v1/messages/fetch"
ACK_PATH = "/agent/v1/messages/{message_id}/ack"
REPLY_PATH = "/agent/v1/messages/{message_id}/reply"
FACTS_PATH = "/agent/v1/facts"
ROTATE_KEY_PATH = "/agent/v1/rotate-key"
DEREGISTER_PATH = "/agent/v1/deregister"
OUTPUT_PATH = "/agent/v1/messages/{message_id}/output"
SECURE_PARAMETERS_PATH = "/agent/v1/commands/secure-parameters"
WEBSOCKET_PATH = "/ws/agent/"

# Limits both sides hold to.
MAX_BODY_BYTES = 256 * 1024
MAX_FETCH = 50
NONCE_HEX_DIGITS = 32

# Error codes in `{"error": ...}` answers.
ERROR_BAD_REQUEST = "BadRequest"
ERROR_TOO_LARGE = "RequestTooLarge"
ERROR_PROTOCOL = "UnsupportedProtocol"
ERROR_ACTIVATION = "InvalidActivation"  # unknown id or wrong code: one answer, no oracle
ERROR_ACTIVATION_EXPIRED = "ActivationExpired"
ERROR_ACTIVATION_EXHAUSTED = "ActivationLimitExceeded"
ERROR_SIGNATURE = "InvalidSignature"
ERROR_STALE = "RequestExpired"
ERROR_REPLAY = "ReplayedRequest"
ERROR_UNKNOWN_NODE = "UnknownNode"
ERROR_REVOKED = "NodeDeregistered"
ERROR_CLONE = "SuspectedClone"
ERROR_NOT_FOUND = "MessageNotFound"
ERROR_ACCESS_DENIED = "AccessDenied"  # 403: the command's sender may not read a SecureString
ERROR_PARAMETER_NOT_FOUND = "ParameterNotFound"  # 400: a {{ssm-secure:...}} name is unknown
ERROR_INTERNAL = "InternalError"  # the server failed: like an unreachable server, try later
ERROR_SOCKET_BUSY = "SocketBusy"  # too many requests unanswered on the websocket: use HTTP

# Statuses a reply carries; the first terminal reply for a message wins.
REPLY_SUCCESS = "Success"
REPLY_FAILED = "Failed"
REPLY_STATUSES = (REPLY_SUCCESS, REPLY_FAILED)

# Built-in message kinds every agent answers.
MESSAGE_PING = "Ping"
MESSAGE_REFRESH_HOST_FACTS = "RefreshHostFacts"
# Run Command (PROTOCOL.md "Run Command").
MESSAGE_RUN_COMMAND = "RunCommand"
MESSAGE_CANCEL_COMMAND = "CancelCommand"
ACTION_RUN_SHELL_SCRIPT = "aws:runShellScript"
ACTION_RUN_POWERSHELL_SCRIPT = "aws:runPowerShellScript"
ACTION_REFRESH_HOST_FACTS = "bosun:refreshHostFacts"
# Step and run outcomes a RunCommand reply reports.
STEP_SUCCESS = "Success"
STEP_FAILED = "Failed"
STEP_TIMED_OUT = "TimedOut"
STEP_CANCELLED = "Cancelled"
STEP_SKIPPED = "Skipped"
RUN_OUTCOMES = (STEP_SUCCESS, STEP_FAILED, STEP_TIMED_OUT, STEP_CANCELLED)
# Output: each chunk of an output upload carries at most this many characters.
MAX_OUTPUT_CHUNK_CHARS = 64 * 1024
# ... and one upload carries at most this many chunks (the server refuses more).
MAX_OUTPUT_CHUNKS = 64
# What a killed step reports as its exit code (timeout, cancel), as AWS's agent does.
KILLED_RESPONSE_CODE = -1

# Session Manager (PROTOCOL.md "Session Manager"): a StartSession message has the agent open
# one websocket per session, signed like WEBSOCKET_PATH, and relay its terminal over it.
MESSAGE_START_SESSION = "StartSession"
SESSION_WEBSOCKET_PATH = "/ws/agent/sessions/{session_id}/"
# Output credit the agent starts a session with; "grant" frames add to it. Also what the relay
# keeps for a browser that reconnects. A megabyte: at a quarter of that, a flood spent its
# time waiting for the browser's acks to come back as grants.
SESSION_WINDOW_BYTES = 1024 * 1024
# How long the agent keeps a shell whose session socket dropped, reconnecting meanwhile.
SESSION_GRACE_SECONDS = 30
# Binary frames: one byte of type, then the bytes (at most SESSION_MAX_FRAME_BYTES of them).
SESSION_FRAME_OUTPUT = 0x01  # agent → server: terminal output
SESSION_FRAME_INPUT = 0x02  # server → agent: keyboard input
SESSION_MAX_FRAME_BYTES = 64 * 1024
# Text frames, agent → server (JSON objects with a "type").
SESSION_STARTED = "started"  # {"run_as", "pid"}
SESSION_REFUSED = "refused"  # {"message"}; then the agent closes the socket
SESSION_EXITED = "exited"  # {"status", "reason"}
# Text frames, server → agent.
SESSION_GRANT = "grant"  # {"bytes"}: more output credit
SESSION_RESIZE = "resize"  # {"cols", "rows"}
SESSION_TERMINATE = "terminate"  # {"reason"}
# The session socket of an unknown session, another node's, or one that has ended.
CLOSE_SESSION_UNKNOWN = 4404

# Websocket frames, server to agent (JSON objects with a "type").
WS_WAKE = "wake"  # messages are waiting: take the pushed ones (`messages`), fetch the rest
WS_ROTATE_KEY = "rotate-key"  # rotate the node key now
WS_REVOKED = "revoked"  # the node was deregistered: stop
WS_HELLO = "hello"  # `requests` lists the request frames this server takes over the socket
WS_ANSWER = "answer"  # to a request frame: {"id", "answer": {...}} or {"id", "error", "message"}
# Request frames, agent to server, each with an "id" the answer repeats: the same bodies as
# the HTTP ack and reply, on the socket the handshake authenticated (PROTOCOL.md "Websocket").
WS_ACK = "ack"  # {"id", "message_id"}
WS_REPLY = "reply"  # {"id", "message_id", "status", "result"}
WS_REQUESTS = (WS_ACK, WS_REPLY)
# Request frames one socket may have unanswered at once; more are refused (SocketBusy).
MAX_SOCKET_REQUESTS = 256

# Close codes of a refused agent websocket (accepted, then closed, so the agent can read them).
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_DEREGISTERED = 4403
CLOSE_CLONE = 4409
CLOSE_PROTOCOL = 4426

LEASE_SECONDS = 120
KEY_OVERLAP_SECONDS = 600


class ProtocolError(Exception):
    """A refusal with one of the codes above; `status` is the HTTP status that carries it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def new_nonce() -> str:
    return secrets.token_hex(NONCE_HEX_DIGITS // 2)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    *,
    method: str,
    path: str,
    node_id: str,
    timestamp: str,
    nonce: str,
    fingerprint: str,
    protocol: str,
    body: bytes,
) -> bytes:
    """The exact bytes a node signs. `path` excludes the query string: requests carry none."""
    return "\n".join(
        (
            SIGNATURE_SCHEME,
            method.upper(),
            path,
            node_id,
            timestamp,
            nonce,
            fingerprint,
            protocol,
            body_digest(body),
        )
    ).encode("utf-8")


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the node key is not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The public half as base64 of its 32 raw bytes: what registration and rotation send."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Parse a public key sent by a node; ValueError for anything but 32 base64 bytes."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("the public key is not base64") from exc
    if len(raw) != 32:
        raise ValueError("the public key must be 32 bytes of Ed25519")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def signature_valid(public_key: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        public_key.verify(raw, message)
    except (ValueError, UnicodeEncodeError, InvalidSignature):
        return False
    return True


def signed_headers(
    *,
    key: Ed25519PrivateKey,
    method: str,
    path: str,
    node_id: str,
    fingerprint: str,
    body: bytes = b"",
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers of one signed request (the agent's side of the contract)."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = nonce or new_nonce()
    protocol = str(PROTOCOL_VERSION)
    message = canonical_request(
        method=method,
        path=path,
        node_id=node_id,
        timestamp=timestamp,
        nonce=nonce,
        fingerprint=fingerprint,
        protocol=protocol,
        body=body,
    )
    return {
        HEADER_PROTOCOL: protocol,
        HEADER_NODE: node_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_FINGERPRINT: fingerprint,
        HEADER_SIGNATURE: sign(key, message),
    }


def key_rotation_proof(new_key: Ed25519PrivateKey, node_id: str) -> str:
    """The new key signs the node id, so a rotation proves possession of the new private key."""
    return sign(new_key, f"{SIGNATURE_SCHEME}\nrotate\n{node_id}".encode())


def key_rotation_proof_valid(public_key: Ed25519PublicKey, node_id: str, proof: str) -> bool:
    return signature_valid(public_key, proof, f"{SIGNATURE_SCHEME}\nrotate\n{node_id}".encode())


def header_lookup(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The six signed-request headers, in the order of the module docstring ('' when absent)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = (
        HEADER_PROTOCOL,
        HEADER_NODE,
        HEADER_TIMESTAMP,
        HEADER_NONCE,
        HEADER_FINGERPRINT,
        HEADER_SIGNATURE,
    )
    return tuple(lowered.get(name.lower(), "") for name in names)
