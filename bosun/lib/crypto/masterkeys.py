"""Master keys (KEKs): the key file, its rotation, and keys derived from it.

The key file holds one key per line, ``ID:base64(32 bytes)``, newest first; the first is
current. One bare base64 line (what ``bosun.lib.config`` generates on first start) is one key
with the id ``legacy``. Blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import fcntl
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bosun.lib.crypto.errors import MasterKeyError, UnknownMasterKeyError

# Raw bytes from a database driver: psycopg returns bytea as memoryview, SQLite as bytes.
Buffer: TypeAlias = bytes | bytearray | memoryview

KEY_BYTES = 32  # AES-256 everywhere: master keys, data keys, derived subkeys
LEGACY_MASTER_KEY_ID = "legacy"

# Distinct HKDF labels: the master key bytes are only ever HKDF input, so the wrapping key and
# every subkey are independent keys even though they come from one secret.
_KEK_INFO = b"bosun/kek/v1"
_SUBKEY_INFO = b"bosun/subkey/v1\x00"

_MASTER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FILE_HEADER = (
    "# Bosun master keys, newest first: the first line is the current key.\n"
    "# Keep older keys until every data key has been re-wrapped. Keep this file private and\n"
    "# backed up apart from the database: without it nothing encrypted can be read.\n"
)


def _hkdf(ikm: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


class MasterKeyRing:
    """The master keys from the key file, current first. Shows ids, never key bytes.

    The master key bytes are only ever HKDF input: the wrapping key and each subkey are derived
    from them with distinct labels, so one key never feeds two primitives directly.
    """

    __slots__ = ("_ids", "_keks", "_master", "source")

    def __init__(self, keys: Iterable[tuple[str, bytes]], *, source: Path | None = None) -> None:
        self.source = source
        self._ids: tuple[str, ...] = ()
        self._master: dict[str, bytes] = {}
        self._keks: dict[str, AESGCM] = {}
        where = f" in {source}" if source else ""
        for key_id, key in keys:
            if not _MASTER_ID.fullmatch(key_id):
                raise MasterKeyError(f"master key id {key_id!r}{where} is not a valid id")
            if key_id in self._master:
                raise MasterKeyError(f"master key id {key_id!r} appears twice{where}")
            if len(key) != KEY_BYTES:
                raise MasterKeyError(f"master key {key_id!r}{where} is not {KEY_BYTES} bytes")
            self._ids += (key_id,)
            self._master[key_id] = bytes(key)
            self._keks[key_id] = AESGCM(_hkdf(key, _KEK_INFO))
        if not self._ids:
            raise MasterKeyError(f"no master key{where}")

    @property
    def current_id(self) -> str:
        return self._ids[0]

    @property
    def ids(self) -> tuple[str, ...]:
        return self._ids

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._master

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"MasterKeyRing(current={self.current_id!r}, ids={self._ids!r})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would copy key bytes into a cache, a task queue or a crash dump.
        raise TypeError("MasterKeyRing cannot be pickled or copied")

    def _kek(self, key_id: str) -> AESGCM:
        try:
            return self._keks[key_id]
        except KeyError:
            where = f" ({self.source})" if self.source else ""
            raise UnknownMasterKeyError(
                f"master key {key_id!r} is not in the key file{where}; it was removed while "
                "still in use: restore it from a backup"
            ) from None

    def _master_key(self, key_id: str) -> bytes:
        self._kek(key_id)  # same error for an unknown id
        return self._master[key_id]


def _decode_key(text: str) -> bytes | None:
    text = text.strip()
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def parse_master_keys(text: str, *, source: Path | None = None) -> MasterKeyRing:
    """The ring from the key file's text. Errors name the file and line, never its content."""
    where = str(source) if source else "master key file"
    keys: list[tuple[str, bytes]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key_id, sep, encoded = line.rpartition(":")
        key_id = key_id.strip() if sep else LEGACY_MASTER_KEY_ID  # bare: config.py's format
        key = _decode_key(encoded)
        # Name the line, never echo it: a malformed line may still hold most of a key.
        if key is None or not _MASTER_ID.fullmatch(key_id):
            raise MasterKeyError(
                f"{where}, line {number}: expected ID:KEY where ID is letters, digits, '.', '_'"
                f" or '-' and KEY is the URL-safe base64 of {KEY_BYTES} random bytes"
            )
        if any(key_id == seen for seen, _ in keys):
            raise MasterKeyError(f"{where}, line {number}: master key id {key_id!r} repeats")
        keys.append((key_id, key))
    if not keys:
        raise MasterKeyError(f"{where} holds no master key")
    return MasterKeyRing(keys, source=source)


def load_master_keys(path: str | os.PathLike[str]) -> MasterKeyRing:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MasterKeyError(f"master key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise MasterKeyError(f"cannot read master key file {path} ({reason})") from None
    return parse_master_keys(text, source=path)


def _format_key_file(ring: MasterKeyRing) -> str:
    lines = (
        f"{key_id}:{base64.urlsafe_b64encode(ring._master[key_id]).decode()}\n"
        for key_id in ring.ids
    )
    return _FILE_HEADER + "".join(lines)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Serializes read-modify-write of the key file: two rotations at once must not lose a key
    # that has already wrapped data.
    if not path.is_file():
        raise MasterKeyError(f"master key file {path} does not exist")
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise MasterKeyError(f"cannot lock master key file {path} ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_key_file(path: Path, ring: MasterKeyRing) -> None:
    """Replace the file atomically: readers see the old keys or the new ones, never half."""
    owner = path.stat()
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Root rotating the key must not leave a 0600 file the service user cannot read.
            if owner.st_uid != os.geteuid():
                os.fchown(fd, owner.st_uid, owner.st_gid)
            data = memoryview(_format_key_file(ring).encode("ascii"))
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise MasterKeyError(f"cannot write master key file {path} ({exc.strerror})") from None


def new_master_key_id() -> str:
    # Random rather than sequential: a key file restored from an old backup and rotated again
    # must never reuse an id that already wrapped data under different key bytes.
    return f"{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(4)}"


def add_master_key(path: str | os.PathLike[str]) -> str:
    """Make a new random master key current, keeping the others for unwrapping; its id.

    Running processes pick it up through ``MasterKeyFile``; then ``rewrap_data_key`` moves each
    data key over, and only then may ``remove_master_key`` drop the old one.
    """
    path = Path(path)
    with _locked(path):
        ring = load_master_keys(path)
        new_id = new_master_key_id()
        keys = [(new_id, secrets.token_bytes(KEY_BYTES))]
        keys += [(key_id, ring._master[key_id]) for key_id in ring.ids]
        _write_key_file(path, MasterKeyRing(keys, source=path))
    return new_id


def remove_master_key(path: str | os.PathLike[str], key_id: str) -> None:
    """Drop a retired master key. The caller must first check no data key still uses it."""
    path = Path(path)
    with _locked(path):
        ring = load_master_keys(path)
        if key_id not in ring:
            raise MasterKeyError(f"master key {key_id!r} is not in {path}")
        if key_id == ring.current_id:
            raise MasterKeyError(f"master key {key_id!r} is current in {path}; add a new one first")
        keys = [(other, ring._master[other]) for other in ring.ids if other != key_id]
        _write_key_file(path, MasterKeyRing(keys, source=path))


class MasterKeyFile:
    """The ring from a key file, re-read whenever the file is replaced.

    This is what makes master key rotation online: ``add_master_key`` renames a new file into
    place, and every process sees it on its next call without a restart. One ``stat`` per call.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._ring: MasterKeyRing | None = None

    def ring(self) -> MasterKeyRing:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise MasterKeyError(
                f"cannot read master key file {self.path} ({exc.strerror})"
            ) from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._ring is None or stamp != self._stamp:
                self._ring = load_master_keys(self.path)
                self._stamp = stamp
            return self._ring

    def __repr__(self) -> str:
        return f"MasterKeyFile({str(self.path)!r})"


# -- derived keys ------------------------------------------------------------------------------


def derive_subkey_for(
    ring: MasterKeyRing, key_id: str, purpose: str, *, length: int = KEY_BYTES
) -> bytes:
    """The subkey for ``purpose`` derived from master key ``key_id`` (HKDF-SHA256)."""
    if not purpose:
        raise ValueError("a subkey needs a purpose")
    if not 16 <= length <= 64:
        raise ValueError("subkey length must be 16 to 64 bytes")
    # The length is part of the label so a 64-byte subkey never begins with the 32-byte one.
    info = _SUBKEY_INFO + bytes((length,)) + purpose.encode("utf-8")
    return _hkdf(ring._master_key(key_id), info, length)


def derive_subkey(ring: MasterKeyRing, purpose: str, *, length: int = KEY_BYTES) -> bytes:
    """A key for ``purpose`` (e.g. ``"audit-checkpoint"``) derived from the current master key.

    Rotating the master key changes this subkey. Record ``ring.current_id`` next to whatever
    the subkey protects (an audit checkpoint's HMAC) and verify old ones with
    ``derive_subkey_for(ring, recorded_id, purpose)`` while that master key is kept.
    """
    return derive_subkey_for(ring, ring.current_id, purpose, length=length)
