"""What a node remembers between runs: its identity, its key, the journal and the outbox.

`AgentState` is the interface the runtime uses; `MemoryState` keeps everything in memory for
the simulator (thousands of virtual nodes, no disk) and the state directory on disk is in
`bosun_agent.statedir`. Both give the same promise: a message id journaled once is never run
again, and a reply stays in the outbox until the server has accepted it.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bosun_agent import protocol
from bosun_agent.messages import Reply


class StateError(Exception):
    """The state is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class Identity:
    """Who this node is for the server it registered with (config.json)."""

    server_url: str
    node_id: str
    name: str
    registered_at: float
    key_rotated_at: float
    # Which machine facts the fingerprint was made from, so a later run recomputes it the
    # same way (or says clearly why it cannot) instead of looking like a cloned machine.
    fingerprint_sources: tuple[str, ...] = ()
    revoked_at: float | None = None
    revoked_reason: str = ""
    facts_digest: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fingerprint_sources"] = list(self.fingerprint_sources)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Identity:
        if not isinstance(data, dict):
            raise ValueError("the identity is not an object")
        try:
            return cls(
                server_url=str(data["server_url"]),
                node_id=str(data["node_id"]),
                name=str(data.get("name", "")),
                registered_at=float(data["registered_at"]),
                key_rotated_at=float(data.get("key_rotated_at") or data["registered_at"]),
                fingerprint_sources=tuple(str(s) for s in data.get("fingerprint_sources", ())),
                revoked_at=None if data.get("revoked_at") is None else float(data["revoked_at"]),
                revoked_reason=str(data.get("revoked_reason", "")),
                facts_digest=str(data.get("facts_digest", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the identity is incomplete ({exc})") from exc

    def revoked(self, reason: str, *, at: float | None = None) -> Identity:
        return replace(self, revoked_at=time.time() if at is None else at, revoked_reason=reason)


@dataclass
class JournalEntry:
    started_at: float
    done: bool = False


class AgentState(abc.ABC):
    """The store behind one node. Subclasses persist; this class keeps the journal's logic."""

    def __init__(self) -> None:
        self._journal: dict[str, JournalEntry] = {}

    # Identity and keys.

    @abc.abstractmethod
    def identity(self) -> Identity | None: ...

    @abc.abstractmethod
    def save_identity(self, identity: Identity) -> None: ...

    @abc.abstractmethod
    def node_key(self) -> Ed25519PrivateKey | None: ...

    @abc.abstractmethod
    def save_node_key(self, key: Ed25519PrivateKey) -> None: ...

    @abc.abstractmethod
    def pending_key(self) -> Ed25519PrivateKey | None: ...

    @abc.abstractmethod
    def save_pending_key(self, key: Ed25519PrivateKey) -> None: ...

    @abc.abstractmethod
    def _promote_pending_key(self) -> None:
        """Make the pending key the node key, atomically."""

    @abc.abstractmethod
    def discard_pending_key(self) -> None: ...

    def promote_pending_key(self) -> Ed25519PrivateKey:
        """The server accepted the pending key: it becomes the node key."""
        pending = self.pending_key()
        if pending is None:
            raise StateError("there is no pending key to promote")
        self._promote_pending_key()
        identity = self.identity()
        if identity is not None:
            self.save_identity(replace(identity, key_rotated_at=time.time()))
        return pending

    @abc.abstractmethod
    def wipe(self) -> None:
        """Forget the registration: identity, keys, journal, replies."""

    def directory(self) -> Path | None:
        """The private directory a node on disk keeps its files in (Run Command puts its
        scripts and process records there); None for a node kept in memory."""
        return None

    # The journal: message ids this node has started, durable before the message runs.

    @abc.abstractmethod
    def _write_journal(self, mark: str, message_id: str, at: float) -> None:
        """Persist one journal line; must be durable when it returns."""

    def journaled(self, message_id: str) -> bool:
        return message_id in self._journal

    def journal_start(self, message_id: str) -> None:
        if message_id in self._journal:
            raise StateError(f"message {message_id} was already journaled; it must not run twice")
        now = time.time()
        self._write_journal("S", message_id, now)
        self._journal[message_id] = JournalEntry(now)

    def interrupted(self) -> list[str]:
        """Ids started but never given a reply: the agent stopped while running them."""
        return [mid for mid, entry in self._journal.items() if not entry.done]

    def journal_size(self) -> int:
        return len(self._journal)

    def _load_journal_lines(self, lines: Iterable[str], *, keep_after: float) -> None:
        for line in lines:
            parts = line.split()
            if len(parts) != 3 or parts[0] not in ("S", "D"):
                continue  # a torn last line after a crash: its append never returned
            mark, stamp, message_id = parts
            try:
                at = float(stamp)
            except ValueError:
                continue
            if mark == "S" and at >= keep_after:
                self._journal.setdefault(message_id, JournalEntry(at))
            elif mark == "D" and message_id in self._journal:
                self._journal[message_id].done = True

    def _journal_lines(self) -> list[str]:
        lines = []
        for message_id, entry in self._journal.items():
            lines.append(f"S {entry.started_at:.3f} {message_id}\n")
            if entry.done:
                lines.append(f"D {entry.started_at:.3f} {message_id}\n")
        return lines

    # Replies: saved before sending, kept in the outbox until the server accepts them.

    @abc.abstractmethod
    def _write_outbox(self, message_id: str, reply: Reply) -> None: ...

    @abc.abstractmethod
    def outbox(self) -> list[tuple[str, Reply]]:
        """Replies not yet accepted by the server, oldest first."""

    @abc.abstractmethod
    def reply_delivered(self, message_id: str) -> None:
        """The server accepted the reply: out of the outbox, kept as the saved reply."""

    @abc.abstractmethod
    def saved_reply(self, message_id: str) -> Reply | None: ...

    def save_reply(self, message_id: str, reply: Reply) -> None:
        """Record the reply durably (outbox first), then mark the journal entry done."""
        self._write_outbox(message_id, reply)
        self.journal_finish(message_id)

    def journal_finish(self, message_id: str) -> None:
        """The message has its answer (or will never run): no longer interrupted."""
        entry = self._journal.get(message_id)
        if entry is not None and not entry.done:
            self._write_journal("D", message_id, time.time())
            entry.done = True

    def outbox_size(self) -> int:
        return len(self.outbox())


class MemoryState(AgentState):
    """State that lives as long as the process: the simulator's virtual nodes use it."""

    def __init__(self) -> None:
        super().__init__()
        self._identity: Identity | None = None
        self._key: Ed25519PrivateKey | None = None
        self._pending: Ed25519PrivateKey | None = None
        self._outbox: dict[str, Reply] = {}
        self._delivered: dict[str, Reply] = {}

    def identity(self) -> Identity | None:
        return self._identity

    def save_identity(self, identity: Identity) -> None:
        self._identity = identity

    def node_key(self) -> Ed25519PrivateKey | None:
        return self._key

    def save_node_key(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    def pending_key(self) -> Ed25519PrivateKey | None:
        return self._pending

    def save_pending_key(self, key: Ed25519PrivateKey) -> None:
        self._pending = key

    def _promote_pending_key(self) -> None:
        self._key, self._pending = self._pending, None

    def discard_pending_key(self) -> None:
        self._pending = None

    def wipe(self) -> None:
        self._identity = self._key = self._pending = None
        self._journal.clear()
        self._outbox.clear()
        self._delivered.clear()

    def _write_journal(self, mark: str, message_id: str, at: float) -> None:
        pass  # nothing outlives the process, so there is nothing to make durable

    def _write_outbox(self, message_id: str, reply: Reply) -> None:
        self._outbox[message_id] = reply

    def outbox(self) -> list[tuple[str, Reply]]:
        return list(self._outbox.items())

    def reply_delivered(self, message_id: str) -> None:
        reply = self._outbox.pop(message_id, None)
        # A virtual node answers Pings by the thousand: keep only what a redelivery needs.
        if reply is not None and len(self._delivered) < 64:
            self._delivered[message_id] = reply

    def saved_reply(self, message_id: str) -> Reply | None:
        return self._outbox.get(message_id) or self._delivered.get(message_id)

    def to_json(self) -> dict[str, Any] | None:
        """The identity and key, for the simulator's --state-file; None when unregistered."""
        if self._identity is None or self._key is None:
            return None
        return {
            "identity": self._identity.to_json(),
            "key": protocol.private_key_pem(self._key).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Any) -> MemoryState:
        if not isinstance(data, dict):
            raise ValueError("a saved virtual node is not an object")
        state = cls()
        state.save_identity(Identity.from_json(data.get("identity")))
        state.save_node_key(protocol.load_private_key(str(data.get("key", "")).encode("ascii")))
        return state


def dumps(data: Any) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode("utf-8") + b"\n"
