from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from bosun_agent import protocol, statedir
from bosun_agent.messages import Reply
from bosun_agent.state import Identity, MemoryState, StateError
from bosun_agent.statedir import StateDir, atomic_write, resolve_state_dir


def identity(**changes: object) -> Identity:
    values: dict[str, object] = {
        "server_url": "http://bosun.test",
        "node_id": "mi-0123456789abcdef0",
        "name": "web-1",
        "registered_at": 1_700_000_000.0,
        "key_rotated_at": 1_700_000_000.0,
        "fingerprint_sources": ("machine-id",),
    }
    values.update(changes)
    return Identity(**values)  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_directory_is_private_and_every_file_in_it_is_0600(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    state.save_identity(identity())
    state.save_node_key(protocol.generate_private_key())
    state.save_pending_key(protocol.generate_private_key())
    state.journal_start("m1")
    state.save_reply("m1", Reply.success(pong=True))

    assert mode(state_dir) == 0o700
    assert mode(state_dir / "outbox") == 0o700
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"config.json", "node.key", "node.key.pending", "m1.json"}
    assert all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}


def test_an_existing_loose_directory_is_tightened(state_dir: Path) -> None:
    state_dir.mkdir(mode=0o755)
    os.chmod(state_dir, 0o755)  # noqa: S103 - as systemd's StateDirectory= makes it
    StateDir(state_dir, create=True)
    assert mode(state_dir) == 0o700


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.json"
    atomic_write(target, b"old")

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(statedir.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_write_is_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(source: str, target: str) -> None:
        events.append("replace")
        real_replace(source, target)

    monkeypatch.setattr(statedir.os, "fsync", fsync)
    monkeypatch.setattr(statedir.os, "replace", replace)
    atomic_write(tmp_path / "node.key", b"key")
    # The file's data, then the rename, then the directory entry.
    assert events == ["fsync", "replace", "fsync"]


def test_a_journaled_message_is_never_started_twice_even_after_a_crash(state_dir: Path) -> None:
    first_run = StateDir(state_dir, create=True)
    first_run.journal_start("m-1")
    with pytest.raises(StateError, match="must not run twice"):
        first_run.journal_start("m-1")

    # The process dies; a new one opens the same directory.
    second_run = StateDir(state_dir, create=True)
    assert second_run.journaled("m-1")
    with pytest.raises(StateError):
        second_run.journal_start("m-1")
    assert second_run.interrupted() == ["m-1"]


def test_a_reply_marks_the_journal_entry_done(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    state.journal_start("m-1")
    state.save_reply("m-1", Reply.success())
    assert StateDir(state_dir).interrupted() == []
    assert StateDir(state_dir).journaled("m-1")


def test_a_torn_last_journal_line_is_ignored(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    state.journal_start("m-1")
    with open(state.journal_path, "a") as journal:
        journal.write("S 17000")  # the crash came mid-append: that start never returned
    reopened = StateDir(state_dir)
    assert reopened.journaled("m-1")
    assert reopened.journal_size() == 1


def test_the_outbox_keeps_replies_until_delivered_and_then_keeps_them_as_saved(
    state_dir: Path,
) -> None:
    state = StateDir(state_dir, create=True)
    state.save_reply("m-1", Reply.success(pong=True))
    time.sleep(0.01)
    state.save_reply("m-2", Reply.failed("boom"))

    reopened = StateDir(state_dir)
    assert [mid for mid, _ in reopened.outbox()] == ["m-1", "m-2"]  # oldest first
    reopened.reply_delivered("m-1")
    assert [mid for mid, _ in StateDir(state_dir).outbox()] == ["m-2"]
    assert StateDir(state_dir).saved_reply("m-1") == Reply.success(pong=True)
    assert StateDir(state_dir).saved_reply("m-2") == Reply.failed("boom")
    assert StateDir(state_dir).saved_reply("m-3") is None


def test_maintenance_drops_old_journal_entries_and_old_saved_replies(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    old = time.time() - statedir.JOURNAL_RETENTION_SECONDS - 60
    state.journal_path.write_text(f"S {old:.3f} ancient\nD {old:.3f} ancient\n")
    state.journal_start("recent")
    state.save_reply("recent", Reply.success())
    state.reply_delivered("recent")
    saved = state_dir / "replies" / "recent.json"
    stale = time.time() - statedir.REPLY_RETENTION_SECONDS - 60
    os.utime(saved, (stale, stale))

    reopened = StateDir(state_dir, create=True)
    reopened.maintain()
    assert not reopened.journaled("ancient")
    assert "ancient" not in reopened.journal_path.read_text()
    assert reopened.journaled("recent")
    assert not saved.exists()


def test_promoting_the_pending_key_replaces_the_node_key_and_records_when(
    state_dir: Path,
) -> None:
    state = StateDir(state_dir, create=True)
    state.save_identity(identity())
    state.save_node_key(protocol.generate_private_key())
    pending = protocol.generate_private_key()
    state.save_pending_key(pending)

    state.promote_pending_key()

    node_key = state.node_key()
    assert node_key is not None
    assert protocol.public_key_text(node_key) == protocol.public_key_text(pending)
    assert state.pending_key() is None
    assert state.identity().key_rotated_at > time.time() - 5  # type: ignore[union-attr]


def test_wipe_forgets_the_registration(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    state.save_identity(identity())
    state.save_node_key(protocol.generate_private_key())
    state.journal_start("m-1")
    state.save_reply("m-1", Reply.success())
    state.wipe()
    reopened = StateDir(state_dir)
    assert reopened.identity() is None
    assert reopened.node_key() is None
    assert reopened.journal_size() == 0
    assert reopened.outbox() == []


def test_only_one_agent_runs_on_a_state_directory(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    assert state.running_pid() is None
    with state.locked():
        assert StateDir(state_dir).running_pid() == os.getpid()
        refused = pytest.raises(StateError, match=rf"pid {os.getpid()}\) is already running")
        with refused, StateDir(state_dir).locked():
            pass
    assert state.running_pid() is None


def test_an_unsafe_message_id_never_becomes_a_file_name(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    with pytest.raises(StateError, match="unsafe"):
        state.save_reply("../../etc/passwd", Reply.success())


def test_the_state_dir_comes_from_the_option_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_state_dir(None) == Path("/var/lib/bosun-agent")
    monkeypatch.setenv("BOSUN_AGENT_STATE_DIR", "/srv/agent")
    assert resolve_state_dir(None) == Path("/srv/agent")
    assert resolve_state_dir("/opt/x") == Path("/opt/x")


def test_memory_state_keeps_the_same_promises_and_round_trips_its_identity() -> None:
    state = MemoryState()
    state.journal_start("m-1")
    with pytest.raises(StateError):
        state.journal_start("m-1")
    state.save_reply("m-1", Reply.success())
    assert state.outbox() == [("m-1", Reply.success())]
    state.reply_delivered("m-1")
    assert state.outbox() == []
    assert state.saved_reply("m-1") == Reply.success()

    assert state.to_json() is None
    key = protocol.generate_private_key()
    state.save_identity(identity())
    state.save_node_key(key)
    copy = MemoryState.from_json(state.to_json())
    assert copy.identity() == identity()
    assert protocol.public_key_text(copy.node_key()) == protocol.public_key_text(key)  # type: ignore[arg-type]


def test_a_damaged_config_is_reported_not_crashed_on(state_dir: Path) -> None:
    state = StateDir(state_dir, create=True)
    state.config_path.write_text('{"node_id": 1}')
    with pytest.raises(StateError, match="damaged"):
        state.identity()
