"""The process groups of running steps: ended with SIGTERM then SIGKILL, and recorded on disk
so that the groups a crashed agent left behind are ended when it starts again.

Every step runs in a session of its own, so its process group holds the shell and whatever it
started, unless a process left the group on purpose (setsid, a daemon).

A record holds the group id, the boot it was made in, the start time of the group's leader
and the run it belongs to. A recorded id is only acted on when the group is provably still
that run's, never because the number was reused by an unrelated group after a reboot or a
long time: the boot must match, and either the leader must be the same process or a member
must carry the run's marker in its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from bosun_agent.statedir import FILE_MODE, ensure_private_dir

log = logging.getLogger(__name__)

# What a step's processes find in their environment: the id of the message that runs them.
RUN_MARKER_ENV = "BOSUN_AGENT_RUN"
# SIGTERM first; what still runs this long after gets SIGKILL.
KILL_GRACE_SECONDS = 5.0
# How long to wait for a SIGKILLed group to be gone before giving up on it.
KILL_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
PROC = Path("/proc")


@dataclass(frozen=True)
class GroupRecord:
    pgid: int
    message_id: str
    step: int
    boot_id: str
    leader_start: str

    def file_name(self) -> str:
        return f"{self.message_id}.{self.step}.json"


def boot_id() -> str:
    try:
        return Path(BOOT_ID_PATH).read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> str:
    """When the process started, in clock ticks since boot ('' where unknown)."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a group. Zombies are skipped: an orphan stays one
    until its new parent reaps it, and some container inits never do."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []  # no process at all, not even a zombie: no need to look further
    except PermissionError:
        pass
    if not PROC.is_dir():
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


def _carries_marker(pid: int, message_id: str) -> bool:
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{RUN_MARKER_ENV}={message_id}".encode() in environ.split(b"\0")


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _gone(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def end_group(pgid: int, grace: float | None = None) -> bool:
    """SIGTERM the group, SIGKILL it if anything is left after the grace; True once gone."""
    _signal_group(pgid, signal.SIGTERM)
    if await _gone(pgid, KILL_GRACE_SECONDS if grace is None else grace):
        return True
    _signal_group(pgid, signal.SIGKILL)
    return await _gone(pgid, KILL_WAIT_SECONDS)


class GroupRecords:
    """The directory of records (under the state directory), one file per running step."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, pgid: int, message_id: str, step: int) -> GroupRecord:
        ensure_private_dir(self.directory)
        record = GroupRecord(pgid, message_id, step, boot_id(), start_time(pgid))
        # No fsync: a record only matters to processes, and none survive a power cut. Written
        # at once, so the window in which a crash leaves a group unrecorded is as short as can
        # be; the run marker finds a group that fell into it (`end_marked_groups`).
        fd = os.open(
            self.directory / record.file_name(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE
        )
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(asdict(record)))
        return record

    def remove(self, record: GroupRecord) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / record.file_name()).unlink()

    def load(self) -> list[tuple[Path, GroupRecord | None]]:
        records: list[tuple[Path, GroupRecord | None]] = []
        if not self.directory.is_dir():
            return records
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                records.append((path, GroupRecord(**data)))
            except (OSError, ValueError, TypeError):
                records.append((path, None))  # torn by the crash: nothing to act on
        return records

    async def end_leftovers(self) -> list[int]:
        """End the groups of runs interrupted by a crash; the ids of those it ended."""
        ended = []
        for path, record in self.load():
            if record is not None and still_that_run(record):
                log.warning(
                    "ending process group %d left by message %s (the agent stopped under it)",
                    record.pgid,
                    record.message_id,
                )
                if await end_group(record.pgid):
                    ended.append(record.pgid)
                else:
                    log.error("process group %d would not end; it is left running", record.pgid)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return ended


def still_that_run(record: GroupRecord) -> bool:
    """Whether the recorded group still belongs to the recorded run (see the module doc)."""
    if not record.boot_id or record.boot_id != boot_id():
        return False  # rebooted: nothing of that run survived, the number means nothing now
    if record.pgid in (os.getpgrp(), os.getpid()):
        return False  # this agent was started from inside that run: never end itself
    members = group_members(record.pgid)
    if not members:
        return False
    if record.leader_start and start_time(record.pgid) == record.leader_start:
        return True
    return any(_carries_marker(pid, record.message_id) for pid in members)


def marked_groups(message_ids: Iterable[str]) -> set[int]:
    """The groups of live processes that carry the run marker of one of `message_ids`."""
    wanted = {f"{RUN_MARKER_ENV}={message_id}".encode() for message_id in message_ids}
    groups: set[int] = set()
    if not wanted or not PROC.is_dir():
        return groups
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted.isdisjoint(environ.split(b"\0")):
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 2 and fields[0] != "Z":
            groups.add(int(fields[2]))
    groups.discard(os.getpgrp())  # this agent, started from inside such a run: never itself
    return groups


async def end_marked_groups(message_ids: Iterable[str]) -> list[int]:
    """End the groups of interrupted runs by their marker: what a crash left unrecorded (it
    came between starting a step and recording its group)."""
    ended = []
    for pgid in sorted(marked_groups(message_ids)):
        log.warning("ending process group %d left by an interrupted run", pgid)
        if await end_group(pgid):
            ended.append(pgid)
    return ended
