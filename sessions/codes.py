"""Session identifiers and ARNs, as AWS Session Manager spells them."""

from __future__ import annotations

import re
import secrets

from bosun.lib.arn import arn

# AWS's SessionId: up to 96 characters of [A-Za-z0-9_.@-]; ours end in "-" + 17 hex digits.
SESSION_ID_MAX = 96
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,78}-[0-9a-f]{17}$")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.@-]")
_SUFFIX = 18  # "-" and 17 hex digits

# Audit actions of the recording. The seal's event is the recording's anchor outside its own
# tables: `recording_verify` compares the final hash with the one this event recorded.
SEAL_RECORDING = "bosun:SealSessionRecording"
EXPIRE_RECORDINGS = "bosun:ExpireSessionRecordings"


def new_session_id(username: str) -> str:
    """`<username>-<17 lowercase hex>`; characters AWS would refuse in an id become "-"."""
    prefix = _NOT_ALLOWED.sub("-", username)[: SESSION_ID_MAX - _SUFFIX] or "session"
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def session_arn(session_id: str) -> str:
    return arn("ssm", f"session/{session_id}")
