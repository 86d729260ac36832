"""Signing checkpoints with a key derived from the master key (never stored in the database)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from django.conf import settings

from audit.chain import format_time
from bosun.lib import crypto

_PURPOSE = "audit checkpoint"


def _checkpoint_keys() -> list[bytes]:
    """The signing key first, then the keys of older master keys, whose signatures still count
    (a master-key rotation must not invalidate checkpoints signed before it)."""
    ring = crypto.load_master_keys(settings.BOSUN.master_key_file)
    ordered = [ring.current_id, *(key_id for key_id in ring.ids if key_id != ring.current_id)]
    return [crypto.derive_subkey_for(ring, key_id, _PURPOSE) for key_id in ordered]


def _message(sequence: int, event_hash: str, created_at: datetime) -> bytes:
    return f"bosun-audit-checkpoint:{sequence}:{event_hash}:{format_time(created_at)}".encode()


def sign(sequence: int, event_hash: str, created_at: datetime) -> str:
    key = _checkpoint_keys()[0]
    return hmac.new(key, _message(sequence, event_hash, created_at), hashlib.sha256).hexdigest()


def signature_valid(sequence: int, event_hash: str, created_at: datetime, signature: str) -> bool:
    message = _message(sequence, event_hash, created_at)
    return any(
        hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), signature)
        for key in _checkpoint_keys()
    )
