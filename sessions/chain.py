"""The recording's hash chain: its arithmetic only. No Django here.

A recording is an asciicast v2 header and a run of chunks numbered 0, 1, 2, … Each hash is
SHA-256 and chains from the one before, so changing, removing, inserting or reordering
anything breaks every hash from that point on:

    genesis   = SHA-256("bosun-session-recording/1" 0x0A session_id 0x0A header)
    chunk[n]  = SHA-256(raw(previous) || n as 8-byte big-endian || data[n])
                where previous is chunk[n-1], or the genesis for chunk 0
    final     = SHA-256(raw(last) || "sealed" || count as 8-byte big-endian || sealed_at)
                where last is chunk[count-1] (the genesis if there are no chunks) and
                sealed_at is the seal's time as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC)

`raw()` is the 32 bytes behind a hex digest; `header` is the header line exactly as stored
(and served as the first line of the .cast), UTF-8. The genesis names the session, so chunks
copied from another session's recording do not chain; the seal names the count and the time,
so chunks cut from the end, or added after it, or a seal moved in time, are all caught.

Anyone who can write to the database can recompute all of this, which is why the seal is also
written into the audit trail (itself hash-chained, and anchored by checkpoints signed with the
master key, which is not in the database): `recording_verify` compares the two.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from audit.chain import format_time

DOMAIN = b"bosun-session-recording/1"
SEALED = b"sealed"


def genesis(session_id: str, header: str) -> str:
    parts = (DOMAIN, session_id.encode("utf-8"), header.encode("utf-8"))
    return hashlib.sha256(b"\n".join(parts)).hexdigest()


def chunk_hash(previous: str, sequence: int, data: bytes) -> str:
    digest = hashlib.sha256(bytes.fromhex(previous))
    digest.update(sequence.to_bytes(8, "big"))
    digest.update(data)
    return digest.hexdigest()


def seal_hash(last: str, chunks: int, sealed_at: datetime) -> str:
    digest = hashlib.sha256(bytes.fromhex(last))
    digest.update(SEALED)
    digest.update(chunks.to_bytes(8, "big"))
    digest.update(format_time(sealed_at).encode("ascii"))
    return digest.hexdigest()
