"""Envelope encryption: data keys wrapped by the master key, values sealed by data keys.

Blob formats (version byte first, so a later format can be told apart)::

    wrapped data key: 0x01 | len(master_id):u8 | master_id | nonce:12 | AES-GCM(data key)+16
    value:            0x01 | len(key_id):u8    | key_id    | nonce:12 | AES-GCM(plaintext)+16

Both are AES-256-GCM with a fresh random 96-bit nonce. The associated data is a label for the
kind of blob, its header (so an edited version or id fails authentication) and the canonical
encoding of the caller's encryption context (so a blob moved to another row fails to open).
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Mapping
from typing import TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bosun.lib.crypto.errors import DecryptionError
from bosun.lib.crypto.masterkeys import KEY_BYTES, Buffer, MasterKeyRing

Context: TypeAlias = Mapping[str, str] | bytes

FORMAT_V1 = 0x01
# Random nonces: the collision bound allows ~2**32 values per data key, which data-key rotation
# keeps far away.
NONCE_BYTES = 12
TAG_BYTES = 16

# Labels keep the two kinds of blob apart even if one were ever sealed under the other's key.
_WRAP_AAD = b"bosun/data-key/v1\x00"
_VALUE_AAD = b"bosun/value/v1\x00"


def encode_context(context: Context) -> bytes:
    """The canonical bytes of an encryption context, used as associated data.

    Pairs are sorted and every field is length-prefixed, so ``{"a": "b=c"}`` and
    ``{"a=b": "c"}`` differ, and a leading tag keeps raw bytes apart from any mapping.
    """
    if isinstance(context, bytes | bytearray | memoryview):
        raw = bytes(context)
        return b"\x00" + struct.pack(">I", len(raw)) + raw
    if not isinstance(context, Mapping):
        raise TypeError("encryption context must be a mapping of str to str, or bytes")
    pairs = []
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("encryption context keys and values must be str")
        pairs.append((key.encode("utf-8"), value.encode("utf-8")))
    parts = [b"\x01", struct.pack(">I", len(pairs))]
    for key_bytes, value_bytes in sorted(pairs):
        parts += [struct.pack(">I", len(key_bytes)), key_bytes]
        parts += [struct.pack(">I", len(value_bytes)), value_bytes]
    return b"".join(parts)


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("utf-8")
    if not 1 <= len(encoded) <= 255:
        raise ValueError("key id must be 1 to 255 bytes of UTF-8")
    return bytes((FORMAT_V1, len(encoded))) + encoded


def _split(blob: Buffer, body_min: int) -> tuple[bytes, str, bytes, bytes]:
    """(header, id, nonce, sealed) of a v1 blob; DecryptionError for anything else."""
    data = bytes(blob)
    if len(data) < 2 or data[0] != FORMAT_V1:
        raise DecryptionError
    end = 2 + data[1]
    if data[1] == 0 or len(data) < end + NONCE_BYTES + body_min:
        raise DecryptionError
    try:
        key_id = data[2:end].decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError from None
    return data[:end], key_id, data[end : end + NONCE_BYTES], data[end + NONCE_BYTES :]


def _check_data_key(data_key: Buffer) -> bytes:
    key = bytes(data_key)
    if len(key) != KEY_BYTES:
        raise ValueError(f"a data key is {KEY_BYTES} bytes")
    return key


def wrap_data_key(ring: MasterKeyRing, data_key: Buffer, *, context: Context = b"") -> bytes:
    """Wrap an existing data key under the current master key (imports, re-wrapping)."""
    key = _check_data_key(data_key)
    header = _header(ring.current_id)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = ring._kek(ring.current_id).encrypt(
        nonce, key, _WRAP_AAD + header + encode_context(context)
    )
    return header + nonce + sealed


def generate_data_key(ring: MasterKeyRing, *, context: Context = b"") -> tuple[bytes, bytes]:
    """A fresh random data key: (plaintext, wrapped). Store only the wrapped form.

    ``context`` optionally binds the wrapped key to what owns it (e.g. the named key's id);
    the same context is then needed to unwrap and rewrap it.
    """
    key = secrets.token_bytes(KEY_BYTES)
    return key, wrap_data_key(ring, key, context=context)


def wrapped_key_master_id(wrapped: Buffer) -> str:
    """The id of the master key that wrapped this data key (to find keys still to rewrap)."""
    return _split(wrapped, KEY_BYTES + TAG_BYTES)[1]


def unwrap_data_key(ring: MasterKeyRing, wrapped: Buffer, *, context: Context = b"") -> bytes:
    header, master_id, nonce, sealed = _split(wrapped, KEY_BYTES + TAG_BYTES)
    if len(sealed) != KEY_BYTES + TAG_BYTES:
        raise DecryptionError
    kek = ring._kek(master_id)
    try:
        return kek.decrypt(nonce, sealed, _WRAP_AAD + header + encode_context(context))
    except InvalidTag:
        raise DecryptionError from None


def rewrap_data_key(ring: MasterKeyRing, wrapped: Buffer, *, context: Context = b"") -> bytes:
    """The same data key wrapped under the current master key; values stay as they are."""
    return wrap_data_key(ring, unwrap_data_key(ring, wrapped, context=context), context=context)


def encrypt(data_key: Buffer, plaintext: Buffer, *, key_id: str, context: Context) -> bytes:
    """Seal ``plaintext`` under ``data_key``, bound to ``context``.

    ``key_id`` is the caller's id for the data key (any UTF-8 string of 1 to 255 bytes); it is
    stored in the clear in the header so that after data-key rotation ``peek_key_id`` tells the
    caller which key opens an old value. Every call draws a fresh random nonce.
    """
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise TypeError("plaintext must be bytes; encode text first")
    header = _header(key_id)
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = _VALUE_AAD + header + encode_context(context)
    return header + nonce + AESGCM(_check_data_key(data_key)).encrypt(nonce, bytes(plaintext), aad)


def peek_key_id(blob: Buffer) -> str:
    """The data key id recorded in a value blob, read without decrypting (and unauthenticated:
    a forged id only leads to a key that then fails to open the blob)."""
    return _split(blob, TAG_BYTES)[1]


def decrypt(data_key: Buffer, blob: Buffer, *, context: Context) -> bytes:
    """Open a value blob; DecryptionError if it was altered, moved, or sealed by another key."""
    header, _key_id, nonce, sealed = _split(blob, TAG_BYTES)
    aead = AESGCM(_check_data_key(data_key))
    try:
        return aead.decrypt(nonce, sealed, _VALUE_AAD + header + encode_context(context))
    except InvalidTag:
        raise DecryptionError from None
