"""The state directory on disk (default /var/lib/bosun-agent).

Layout, all owned by the agent's user, the directory 0700 and every file 0600:

    config.json         the identity (server URL, node id, name, times)
    node.key            the node's Ed25519 private key (PEM)
    node.key.pending    the next key while a rotation is in flight
    journal.log         "S <time> <id>" before a message runs, "D <time> <id>" once replied
    outbox/<id>.json    replies the server has not accepted yet
    replies/<id>.json   replies it accepted, kept a while for redelivered messages
    lock                held by `bosun-agent run`, so two agents never share a journal
    runs/<id>/          a running command's scripts and working directory (bosun_agent.commands)
    processes/          the process group of each running step (bosun_agent.process_groups)

Every file that must survive a crash intact is written to a temporary file, fsynced, renamed
over the old one, and the directory fsynced: a reader sees the old or the new, never half.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bosun_agent import protocol
from bosun_agent.messages import Reply, message_id_safe
from bosun_agent.state import AgentState, Identity, StateError, dumps

DEFAULT_STATE_DIR = "/var/lib/bosun-agent"
STATE_DIR_ENV = "BOSUN_AGENT_STATE_DIR"

# A journaled id is only ever redelivered within a lease or two, so a month is ample.
JOURNAL_RETENTION_SECONDS = 30 * 24 * 3600
# A saved reply only matters when its message comes back after a lost ack.
REPLY_RETENTION_SECONDS = 7 * 24 * 3600

DIR_MODE = 0o700
FILE_MODE = 0o600


def resolve_state_dir(option: str | None) -> Path:
    """--state-dir, else $BOSUN_AGENT_STATE_DIR, else /var/lib/bosun-agent."""
    return Path(option or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, whole."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)


def ensure_private_dir(path: Path) -> None:
    """Create the directory 0700, or tighten an existing one we own (systemd makes it 0755)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    info = path.stat()
    if stat.S_IMODE(info.st_mode) != DIR_MODE and info.st_uid == os.geteuid():
        path.chmod(DIR_MODE)


class StateDir(AgentState):
    def __init__(self, path: Path, *, create: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        if create:
            self.prepare()
        self._journal_dropped = 0
        self._load_journal()

    def prepare(self) -> None:
        """Create the layout, private to this user (tightening what systemd made 0755)."""
        ensure_private_dir(self.path)
        for sub in ("outbox", "replies"):
            ensure_private_dir(self.path / sub)

    def directory(self) -> Path:
        return self.path

    # Files.

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def key_path(self) -> Path:
        return self.path / "node.key"

    @property
    def pending_key_path(self) -> Path:
        return self.path / "node.key.pending"

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.log"

    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise StateError(
                f"cannot read {path}: permission denied (run as the user that registered, "
                "usually root)"
            ) from exc

    # Identity and keys.

    def identity(self) -> Identity | None:
        raw = self._read(self.config_path)
        if raw is None:
            return None
        try:
            return Identity.from_json(json.loads(raw))
        except ValueError as exc:
            raise StateError(f"{self.config_path} is damaged ({exc})") from exc

    def save_identity(self, identity: Identity) -> None:
        atomic_write(self.config_path, dumps(identity.to_json()))

    def _load_key(self, path: Path) -> Ed25519PrivateKey | None:
        raw = self._read(path)
        if raw is None:
            return None
        try:
            return protocol.load_private_key(raw)
        except ValueError as exc:
            raise StateError(f"{path} is not a usable node key ({exc})") from exc

    def node_key(self) -> Ed25519PrivateKey | None:
        return self._load_key(self.key_path)

    def save_node_key(self, key: Ed25519PrivateKey) -> None:
        atomic_write(self.key_path, protocol.private_key_pem(key))

    def pending_key(self) -> Ed25519PrivateKey | None:
        return self._load_key(self.pending_key_path)

    def save_pending_key(self, key: Ed25519PrivateKey) -> None:
        atomic_write(self.pending_key_path, protocol.private_key_pem(key))

    def _promote_pending_key(self) -> None:
        os.replace(self.pending_key_path, self.key_path)
        fsync_dir(self.path)

    def discard_pending_key(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pending_key_path.unlink()

    def wipe(self) -> None:
        for path in (self.pending_key_path, self.key_path, self.config_path, self.journal_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for sub in ("outbox", "replies"):
            for path in (self.path / sub).glob("*.json"):
                path.unlink()
        self._journal.clear()
        fsync_dir(self.path)

    # Journal.

    def _load_journal(self) -> None:
        raw = self._read(self.journal_path)
        if raw is None:
            return
        lines = raw.decode("utf-8", "replace").splitlines()
        self._load_journal_lines(lines, keep_after=time.time() - JOURNAL_RETENTION_SECONDS)
        self._journal_dropped = len(lines) - len(self._journal_lines())

    def _write_journal(self, mark: str, message_id: str, at: float) -> None:
        created = not self.journal_path.exists()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            os.write(fd, f"{mark} {at:.3f} {message_id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path)

    def maintain(self) -> None:
        """Drop journal entries and saved replies past their retention (run at start)."""
        if self._journal_dropped:
            atomic_write(self.journal_path, "".join(self._journal_lines()).encode())
            self._journal_dropped = 0
        cutoff = time.time() - REPLY_RETENTION_SECONDS
        for path in (self.path / "replies").glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    # Replies.

    def _reply_path(self, box: str, message_id: str) -> Path:
        if not message_id_safe(message_id):
            raise StateError(f"refusing an unsafe message id as a file name: {message_id!r}")
        return self.path / box / f"{message_id}.json"

    def _write_outbox(self, message_id: str, reply: Reply) -> None:
        record = {"message_id": message_id, "saved_at": time.time(), **reply.to_wire()}
        atomic_write(self._reply_path("outbox", message_id), dumps(record))

    def _read_reply(self, path: Path) -> Reply | None:
        raw = self._read(path)
        if raw is None:
            return None
        try:
            return Reply.from_wire(json.loads(raw))
        except ValueError:
            return None

    def outbox(self) -> list[tuple[str, Reply]]:
        entries = []
        for path in (self.path / "outbox").glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                entries.append((path.stat().st_mtime_ns, path))
        replies = []
        for _, path in sorted(entries):
            reply = self._read_reply(path)
            if reply is not None:
                replies.append((path.stem, reply))
        return replies

    def reply_delivered(self, message_id: str) -> None:
        # Not fsynced: if the rename is lost in a crash the reply is sent again, and the server
        # keeps the first terminal reply.
        with contextlib.suppress(FileNotFoundError):
            os.replace(
                self._reply_path("outbox", message_id), self._reply_path("replies", message_id)
            )

    def saved_reply(self, message_id: str) -> Reply | None:
        for box in ("outbox", "replies"):
            reply = self._read_reply(self._reply_path(box, message_id))
            if reply is not None:
                return reply
        return None

    # The run lock.

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory for one `run`; a second agent on the same journal is refused."""
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        # A `status` peeking at the lock holds it for an instant: try a few times.
        for attempt in range(5):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if attempt == 4:
                    os.close(fd)
                    pid = self.running_pid()
                    raise StateError(
                        f"another bosun-agent{f' (pid {pid})' if pid else ''} is already "
                        f"running with {self.path}"
                    ) from exc
                time.sleep(0.1)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def running_pid(self) -> int | None:
        """The pid of the `run` holding the lock, or None when no agent runs here."""
        try:
            fd = os.open(self.path / "lock", os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = os.read(fd, 32).decode("ascii", "replace").strip()
                return int(text) if text.isdigit() else -1
            return None
        finally:
            os.close(fd)
