"""The terminal of one Session Manager session: a PTY running the run-as user's login shell
(or an interactive command), its output read under flow control, its input written at once.

- The shell leads a session with the PTY as its controlling terminal, as after a console
  login, so Ctrl-C, job control and SIGWINCH work. subprocess forks and execs it (C code,
  safe in a threaded agent); `session_users.child_setup` does the rest between the two.
- Output is read from the master only while the consumer holds credit (`grant`), and at most
  that much: nothing is buffered here, so a flood (`yes`) costs one read, and once the credit
  is spent the kernel's PTY buffer fills and blocks the writer.
- Input never waits behind output: `write` goes straight to the master, so Ctrl-C reaches
  the foreground process while output is held back.
- A session leaves nothing behind, also when its shell exits by itself. Job control gives
  background jobs process groups of their own, so every group of the shell's session gets
  SIGHUP (what a hang-up sends), then SIGTERM and, after a grace, SIGKILL (`end_group`, as
  for Run Command). A process that left the session on purpose (setsid) is not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import select
import signal
import struct
import subprocess
import termios
from dataclasses import dataclass

from bosun_agent.process_groups import PROC, GroupRecord, GroupRecords, end_group, group_members
from bosun_agent.session_users import (
    RunAs,
    SessionRefused,
    child_setup,
    profile_input,
    resolve_run_as,
    session_environment,
    shell_argv,
)

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024  # the most one read() returns
# A read of at least BURST_BYTES is a flood's (a keystroke's echo is a few bytes): the kernel
# hands a PTY's output over 4 KiB at a time, so read() gathers what follows within
# GATHER_SECONDS, up to READ_SIZE, into one answer. One 64 KiB frame instead of sixteen 4 KiB
# ones is a sixteenth of the per-frame work for the agent, the relay and the browser.
BURST_BYTES = 2048
GATHER_SECONDS = 0.002
INPUT_HIGH_WATER = 64 * 1024  # input queued beyond this makes write() wait
KILL_GRACE_SECONDS = 2.0  # after SIGHUP and SIGTERM, how long before SIGKILL
REAP_WAIT_SECONDS = 5.0  # after the session was ended, how long to wait for the shell's status
END_ROUNDS = 3  # passes over the session's groups (one may start more while it ends)
MAX_SIZE = 1000  # columns and rows, each 1..MAX_SIZE
EXITED = "exited"  # end_reason when the shell ended by itself


@dataclass(frozen=True)
class PtySpec:
    """What to run. `command` (non-empty) runs `shell -c COMMAND` instead of a login shell;
    `profile` holds shell lines: typed into a login shell at start, run before a command.
    `marker` (the session's id) goes into the environment and the group record."""

    run_as: str = ""  # "" is the agent's own user
    command: str = ""
    profile: str = ""
    allow_root: bool = False
    cols: int = 80
    rows: int = 24
    marker: str = ""


def check_size(cols: int, rows: int) -> None:
    for value in (cols, rows):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            raise ValueError(f"terminal size must be 1..{MAX_SIZE} columns and rows")


def _set_size(fd: int, cols: int, rows: int) -> None:
    check_size(cols, rows)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def session_groups(sid: int) -> set[int]:
    """The process groups of session `sid` that still have a live process."""
    if not PROC.is_dir():
        return {sid}
    groups = set()
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    groups.add(os.getpgid(int(entry.name)))
    return {pgid for pgid in groups if group_members(pgid)}


def _status(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLIN for _, events in poller.poll(0))


class PtySession:
    """One shell on a PTY. Start it, then from any tasks: `read` (one reader at a time) with
    `grant`, `write`, `resize`, `terminate`; always `close` (or use `async with`)."""

    def __init__(
        self,
        *,
        credit: int = 0,
        grace: float = KILL_GRACE_SECONDS,
        records: GroupRecords | None = None,
    ) -> None:
        self.grace = grace
        self.records = records
        self.run_as: RunAs | None = None
        self.end_reason: str | None = None  # EXITED, or the first terminate() reason
        self.exit_status: int | None = None  # the shell's status; 128 + N for signal N
        self.bytes_out = 0
        self.bytes_in = 0
        self._credit = 0
        self._fd = -1
        self._eof = False
        self._process: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Future[int] | None = None
        self._ending: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._record: GroupRecord | None = None
        self._session_gone = False
        self._waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._pending = bytearray()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.grant(credit)

    async def __aenter__(self) -> PtySession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def pid(self) -> int | None:
        """The shell's pid, which is also its session and first process group id."""
        return self._process.pid if self._process is not None else None

    @property
    def credit(self) -> int:
        return self._credit

    async def start(self, spec: PtySpec) -> None:
        """Start the shell; SessionRefused (with the reason, for the user) when it cannot."""
        if self._process is not None or self._closing is not None:
            raise RuntimeError("a PtySession starts once")
        check_size(spec.cols, spec.rows)
        run_as = resolve_run_as(spec.run_as, allow_root=spec.allow_root)
        env = session_environment(run_as, marker=spec.marker)
        master, slave = os.openpty()
        try:
            _set_size(master, spec.cols, spec.rows)
            if "LANG" in env:  # line editing (erase) then steps over whole UTF-8 characters
                attrs = termios.tcgetattr(slave)
                attrs[0] |= getattr(termios, "IUTF8", 0)
                termios.tcsetattr(slave, termios.TCSANOW, attrs)
            argv = shell_argv(run_as.shell, spec.command, spec.profile)
            self._process = await self._spawn(argv, run_as, slave, env)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the shell has its copies: EIO on the master once all are closed
        os.set_blocking(master, False)
        self._fd = master
        self.run_as = run_as
        self._exited = asyncio.ensure_future(self._process.wait())
        self._exited.add_done_callback(self._on_exit)
        if self.records is not None and spec.marker:
            try:
                self._record = self.records.add(self._process.pid, spec.marker, 0)
            except OSError as exc:
                await self.close()
                raise SessionRefused(f"could not record the session's processes: {exc}") from exc
        if spec.profile and not spec.command:
            await self.write(profile_input(spec.profile))

    async def _spawn(
        self, argv: list[str], run_as: RunAs, slave: int, env: dict[str, str]
    ) -> asyncio.subprocess.Process:
        error_read, error_write = os.pipe()
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                executable=run_as.shell,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                preexec_fn=child_setup(run_as, error_write),
            )
        except subprocess.SubprocessError as exc:
            detail = ""
            os.set_blocking(error_read, False)
            with contextlib.suppress(OSError):
                detail = os.read(error_read, 4096).decode(errors="replace")
            raise SessionRefused(
                f"could not start a session as '{run_as.name}': {detail or exc}"
            ) from exc
        except OSError as exc:
            raise SessionRefused(
                f"could not start {run_as.shell} as '{run_as.name}': {exc.strerror or exc}"
            ) from exc
        finally:
            os.close(error_read)
            os.close(error_write)

    def _on_exit(self, exited: asyncio.Future[int]) -> None:
        if not exited.cancelled() and exited.exception() is None:
            self.exit_status = _status(exited.result())
            if self.end_reason is None:
                self.end_reason = EXITED
            if self._ending is None:  # what the shell left running ends with it
                self._ending = asyncio.ensure_future(self._end_session())
        self._wake()

    def grant(self, n_bytes: int) -> None:
        """Allow `n_bytes` more of output to be read (the consumer's window opened)."""
        if isinstance(n_bytes, bool) or not isinstance(n_bytes, int) or n_bytes < 0:
            raise ValueError("credit must be a non-negative number of bytes")
        self._credit += n_bytes
        if n_bytes:
            self._wake()

    async def read(self) -> bytes:
        """The next output, at most the credit and READ_SIZE; b"" once the session is over:
        the shell has exited (`exit_status` is set) and its output is read, or it was closed."""
        if self._exited is None:
            raise RuntimeError("read() before start()")
        if self._reading:
            raise RuntimeError("read() is already waiting in another task")
        self._reading = True
        try:
            while self._fd >= 0 and not self._eof:
                if self._credit > 0:
                    data = self._read_now(READ_SIZE)
                    if data and len(data) >= BURST_BYTES:
                        return await self._gather(data)
                    if data:
                        return data
                    if self._eof:
                        break
                if self._exited.done() and not _readable(self._fd):
                    break
                await self._wait(watch_output=self._credit > 0)
            while not self._exited.done() and self._fd >= 0:  # the end comes with the status
                await self._wait(watch_output=False)
            return b""
        finally:
            self._reading = False

    async def _gather(self, first: bytes) -> bytes:
        """`first` and what follows it within GATHER_SECONDS, up to READ_SIZE and the credit."""
        gathered = bytearray(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GATHER_SECONDS
        while len(gathered) < READ_SIZE and self._credit > 0 and self._fd >= 0:
            more = self._read_now(READ_SIZE - len(gathered))
            if more:
                gathered += more
                continue
            left = deadline - loop.time()
            if self._eof or left <= 0:
                break
            try:
                await asyncio.wait_for(self._wait(watch_output=True), left)
            except asyncio.TimeoutError:  # TimeoutError itself only from Python 3.11
                break
        return bytes(gathered)

    def _read_now(self, limit: int) -> bytes | None:
        try:
            data = os.read(self._fd, min(self._credit, limit))
        except BlockingIOError:
            return None
        except OSError:  # EIO: every process holding the terminal is gone
            self._eof = True
            return None
        if not data:
            self._eof = True
            return None
        self._credit -= len(data)
        self.bytes_out += len(data)
        return data

    async def _wait(self, *, watch_output: bool) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        fd = self._fd
        if watch_output:
            loop.add_reader(fd, self._wake)
        try:
            await self._waiter
        finally:
            self._waiter = None
            if watch_output and self._fd == fd:
                loop.remove_reader(fd)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def write(self, data: bytes) -> None:
        """Input for the shell: written now, else queued (the terminal's input buffer is full),
        and then waits while over INPUT_HIGH_WATER is queued. Dropped after the end."""
        if not data or self._fd < 0:
            return
        self.bytes_in += len(data)
        if not self._pending:
            data = data[self._write_now(data) :]
            if not data:
                return
            asyncio.get_running_loop().add_writer(self._fd, self._flush_input)
        self._pending += data
        while len(self._pending) > INPUT_HIGH_WATER and self._fd >= 0:
            drained = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(drained)
            await drained

    def _write_now(self, data: bytes | bytearray) -> int:
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError:  # EIO: nobody is left to read it
            return len(data)

    def _flush_input(self) -> None:
        del self._pending[: self._write_now(self._pending)]
        if not self._pending:
            asyncio.get_running_loop().remove_writer(self._fd)
        if len(self._pending) <= INPUT_HIGH_WATER:
            self._release_writers()

    def _release_writers(self) -> None:
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size; the kernel sends SIGWINCH to the foreground job."""
        check_size(cols, rows)
        if self._fd >= 0:
            _set_size(self._fd, cols, rows)

    async def terminate(self, reason: str = "terminated") -> None:
        """End the shell and all of its session (SIGHUP, SIGTERM, SIGKILL after the grace),
        reap it; read() then ends. The first reason (or EXITED) stays the end_reason."""
        if self.end_reason is None:
            self.end_reason = reason
        if self._process is None:
            return
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end_session())
        await asyncio.shield(self._ending)

    async def _end_session(self) -> None:
        if self._process is None or self._exited is None:
            return
        sid = self._process.pid
        try:
            for pgid in session_groups(sid) | {sid}:
                for signum in (signal.SIGHUP, signal.SIGCONT):  # CONT: stopped jobs see it
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pgid, signum)
            for _ in range(END_ROUNDS):
                left = session_groups(sid)
                if not left:
                    break
                await asyncio.gather(*(end_group(pgid, self.grace) for pgid in left))
            left = session_groups(sid)
            if left:
                log.error("session %d: process groups %s would not end", sid, sorted(left))
            self._session_gone = not left
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exited), REAP_WAIT_SECONDS)
        except Exception:
            log.exception("session %d: ending its processes failed", sid)

    async def wait(self) -> int:
        """Until the shell has exited (by itself or terminated); its exit status."""
        if self._exited is None:
            raise RuntimeError("wait() before start()")
        return _status(await asyncio.shield(self._exited))

    async def close(self) -> None:
        """End the session (if still running), close the PTY and drop the group record.
        Idempotent; safe to call concurrently; what it started finishes even if cancelled."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        try:
            if self._process is not None:
                await self.terminate("closed")
        finally:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                loop = asyncio.get_running_loop()
                loop.remove_reader(fd)
                loop.remove_writer(fd)
                os.close(fd)
            self._pending.clear()
            self._release_writers()
            self._wake()
            if self._record is not None and self.records is not None and self._session_gone:
                self.records.remove(self._record)  # else the next agent start retries
                self._record = None
