"""Session Manager's terminal on REAL PTYs: round trips, UTF-8, resize, commands, the profile,
Ctrl-C (also in a flood), bounded output under credit, and sessions that leave nothing behind.

The tests run as whoever runs them (root in CI: then the root login shell is allowed)."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import signal
import time
import tracemalloc
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from agent_fake_server import eventually
from agent_harness import process_gone

from bosun_agent import session_users
from bosun_agent.process_groups import RUN_MARKER_ENV, GroupRecords
from bosun_agent.session_pty import (
    BURST_BYTES,
    EXITED,
    READ_SIZE,
    PtySession,
    PtySpec,
    session_groups,
)
from bosun_agent.session_users import SessionRefused, utf8_locale

IS_ROOT = os.geteuid() == 0
TIMEOUT = 20.0
WINDOW = 64 * 1024
LOGIN_SHELLS = ("sh", "bash", "dash", "zsh", "ksh")
UNREAD: weakref.WeakKeyDictionary[PtySession, bytes] = weakref.WeakKeyDictionary()


def spec(**fields: Any) -> PtySpec:
    return PtySpec(allow_root=IS_ROOT, **fields)


def run(test: Callable[[PtySession], Awaitable[None]], **options: Any) -> None:
    """Run `test` with a fresh session, closed after; no fd may be left open."""

    async def go() -> None:
        before = set(os.listdir("/proc/self/fd"))
        async with PtySession(**options) as pty:
            await asyncio.wait_for(test(pty), 120)
        assert set(os.listdir("/proc/self/fd")) <= before

    asyncio.run(go())


async def read_until(pty: PtySession, pattern: bytes, timeout: float = TIMEOUT) -> re.Match[bytes]:
    """Read (granting credit as it goes) until the regex `pattern` matches the output; what
    came after the match is kept for the next call."""
    seen = bytearray(UNREAD.pop(pty, b""))
    deadline = time.monotonic() + timeout
    while not (found := re.search(pattern, seen)):
        if pty.credit < WINDOW // 2:
            pty.grant(WINDOW - pty.credit)
        chunk = await asyncio.wait_for(pty.read(), max(0.01, deadline - time.monotonic()))
        assert chunk, f"the session ended before {pattern!r}: {bytes(seen[-2000:])!r}"
        seen += chunk
    UNREAD[pty] = bytes(seen[found.end() :])
    return found


async def read_to_end(pty: PtySession) -> bytes:
    seen = bytearray(UNREAD.pop(pty, b""))
    while True:
        pty.grant(WINDOW)
        chunk = await asyncio.wait_for(pty.read(), TIMEOUT)
        if not chunk:
            return bytes(seen)
        seen += chunk


def session_processes(sid: int) -> dict[int, str]:
    """Live (not zombie) processes of session `sid`, pid → name, straight from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            found[int(entry.name)] = stat[stat.find("(") + 1 : stat.rfind(")")]
    return found


async def running(pty: PtySession, name: str) -> int:
    """The pid of `name` once it runs in the session."""
    assert pty.pid is not None
    sid = pty.pid
    await eventually(lambda: name in session_processes(sid).values(), timeout=TIMEOUT)
    return next(pid for pid, comm in session_processes(sid).items() if comm == name)


async def in_foreground(pty: PtySession, name: str) -> int:
    """The pid of `name` once it runs and its group holds the terminal: running is not enough
    for a Ctrl-C to reach it (the shell hands the terminal over around the exec; on a loaded
    machine the key could come first)."""
    pid = await running(pty, name)
    await eventually(lambda: _holds_terminal(pid), timeout=TIMEOUT)
    return pid


def _holds_terminal(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    process_group, foreground_group = int(fields[2]), int(fields[5])
    return process_group == foreground_group


def test_echo_round_trip_in_a_login_shell_that_leads_its_session() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec())
        await pty.write(b"echo hello\n")
        await read_until(pty, rb"[\r\n]hello\r\n")
        assert pty.pid is not None
        assert os.getsid(pty.pid) == pty.pid  # a session of its own
        stat = Path(f"/proc/{pty.pid}/stat").read_text()
        assert stat[stat.rfind(")") + 2 :].split()[4] != "0"  # with a controlling terminal
        assert Path(f"/proc/{pty.pid}/cmdline").read_bytes().startswith(b"-")  # a login shell

    run(go)


def test_utf_8_goes_through_intact() -> None:
    text = "héllo → ✓ 日本語"

    async def go(pty: PtySession) -> None:
        await pty.start(spec())
        await pty.write(f"echo '{text}'; printf '\\342\\234\\223-%s\\n' \"$LANG\"\n".encode())
        await read_until(pty, rb"[\r\n]" + re.escape(text.encode()) + b"\r\n")
        found = await read_until(pty, rb"\xe2\x9c\x93-(\S*)\r\n")
        assert found.group(1).decode() == (utf8_locale() or "")

    run(go)


def test_the_size_is_set_at_start_and_resize_is_visible_to_stty() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec(cols=100, rows=30))
        await pty.write(b"stty size\n")
        await read_until(pty, rb"[\r\n]30 100\r\n")
        pty.resize(132, 43)
        await pty.write(b"stty size\n")
        await read_until(pty, rb"[\r\n]43 132\r\n")
        for cols, rows in ((0, 10), (10, 1001), (True, 10), (80.0, 24)):
            with pytest.raises(ValueError, match=r"1\.\.1000"):
                pty.resize(cols, rows)  # type: ignore[arg-type]

    run(go)
    with pytest.raises(ValueError):
        run(lambda pty: pty.start(spec(cols=0)))


def test_an_interactive_command_takes_input_and_ends_with_its_status() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec(command="echo ready; read line; echo got-$line; exit 3"))
        await read_until(pty, b"ready")
        await pty.write(b"abc\n")
        await read_until(pty, b"got-abc")
        await read_to_end(pty)
        assert pty.exit_status == 3 and pty.end_reason == EXITED
        assert await pty.wait() == 3

    run(go)


def test_the_profile_runs_before_the_user_types_or_the_command_runs() -> None:
    async def login(pty: PtySession) -> None:
        await pty.start(spec(profile="export BOSUN_P=on\n\nBOSUN_Q=$((20+1))"))
        await pty.write(b'echo "p=$BOSUN_P-$BOSUN_Q"\n')
        await read_until(pty, rb"p=on-21")

    async def command(pty: PtySession) -> None:
        await pty.start(spec(command='echo "p=$X"', profile="X=$((40+2))"))
        assert b"p=42" in await read_to_end(pty)

    run(login)
    run(command)


@pytest.mark.parametrize("program", ["sleep 100", "cat"])
def test_ctrl_c_interrupts_the_foreground_program_promptly(program: str) -> None:
    async def go(pty: PtySession) -> None:
        # An agent started in the background ignores SIGINT: its shells must not inherit that.
        ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            await pty.start(spec())
        finally:
            signal.signal(signal.SIGINT, ignored)
        await pty.write(program.encode() + b"\n")
        pid = await in_foreground(pty, program.split()[0])
        started = time.monotonic()
        await pty.write(b"\x03")
        await eventually(lambda: process_gone(pid), timeout=5.0)
        assert time.monotonic() - started < 2.0
        await pty.write(b"echo after-$((2+3))\n")  # the shell has the terminal again
        await read_until(pty, rb"after-5")

    run(go)


def test_ctrl_c_reaches_a_flood_while_its_output_is_held_back() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec())
        await pty.write(b"yes\n")
        await read_until(pty, rb"(y\r\n){2000}")  # flooding
        while pty.credit:
            await pty.read()  # spend the credit: the output stops here
        pid = await in_foreground(pty, "yes")
        started = time.monotonic()
        await pty.write(b"\x03")
        await eventually(lambda: process_gone(pid), timeout=5.0)  # with no credit granted
        assert time.monotonic() - started < 2.0
        await pty.write(b"echo stopped-$((3*3))\n")
        await read_until(pty, rb"stopped-9")

    run(go)


def test_without_credit_nothing_is_read_and_the_writer_blocks() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec(command="yes"))
        pty.grant(1000)
        received = 0
        while received < 1000:
            received += len(await pty.read())
        assert received == 1000 and pty.credit == 0
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pty.read(), 0.5)
        pid = await running(pty, "yes")
        stat = Path(f"/proc/{pid}/stat")
        await eventually(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "S")
        pty.grant(5000)
        assert 0 < len(await pty.read()) <= 5000

    run(go)


def test_a_flood_is_read_in_large_pieces_and_an_echo_at_once() -> None:
    """The kernel hands PTY output over 4 KiB at a time; a flood's reads gather what follows
    (one frame instead of sixteen), a keystroke's echo is not held back for it."""

    async def go(pty: PtySession) -> None:
        await pty.start(spec(command="cat"))
        pty.grant(10 * READ_SIZE)
        started = time.monotonic()
        await pty.write(b"k")
        assert await read_until(pty, b"k")
        assert time.monotonic() - started < 0.5

    run(go)

    async def flood(pty: PtySession) -> None:
        await pty.start(spec(command="head -c 20000000 /dev/zero | tr '\\0' x"))
        pty.grant(1 << 40)
        sizes = []
        while data := await pty.read():
            sizes.append(len(data))
        assert sum(sizes) == 20_000_000
        assert max(sizes) <= READ_SIZE
        large = [size for size in sizes if size >= BURST_BYTES]
        # Most of the flood came in reads far above the kernel's 4 KiB.
        assert sum(large) / len(large) > 16 * 1024

    run(flood)


def test_a_flood_in_small_grants_holds_no_more_than_it_was_granted() -> None:
    step = 16 * 1024
    budget = step + READ_SIZE + 256 * 1024  # what was granted, one read, and the loop's own

    async def go(pty: PtySession) -> None:
        await pty.start(spec(command="cat /dev/zero | head -c 50M; echo; echo END-$((40+2))"))
        granted = received = 0
        tail = b""
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            while b"END-42" not in tail:
                if pty.credit == 0:
                    pty.grant(step)
                    granted += step
                allowed = min(pty.credit, READ_SIZE)
                chunk = await asyncio.wait_for(pty.read(), TIMEOUT)
                assert chunk, f"ended before the marker, after {received} bytes"
                assert len(chunk) <= allowed
                received += len(chunk)
                assert received <= granted and pty.credit == granted - received
                tail = tail[-16:] + chunk[-16:]
            peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        assert received >= 50 * 1024 * 1024
        assert peak < budget, f"held {peak} bytes at the peak"

    run(go)


def test_terminate_ends_every_process_of_the_session_and_reaps_the_shell() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec())
        await pty.write(b"sleep 1000 & echo bg=$!\n")
        background = int((await read_until(pty, rb"bg=(\d+)\r\n")).group(1))
        # One that ignores SIGHUP and SIGTERM: only SIGKILL, after the grace, ends it.
        await pty.write(b"(trap '' HUP TERM; exec sleep 1001) & echo stubborn=$!\n")
        stubborn = int((await read_until(pty, rb"stubborn=(\d+)\r\n")).group(1))
        await running(pty, "sleep")
        assert pty.pid is not None
        sid = pty.pid
        assert os.getpgid(background) != sid  # job control: a group of its own
        started = time.monotonic()
        await pty.terminate("terminated by a test")
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 8.0
        assert process_gone(background) and process_gone(stubborn)
        assert session_processes(sid) == {} and session_groups(sid) == set()
        assert not Path(f"/proc/{sid}").exists()  # reaped, not a zombie
        assert pty.end_reason == "terminated by a test" and pty.exit_status is not None
        await read_to_end(pty)

    run(go, grace=0.5)


def test_the_shell_s_exit_ends_read_with_its_status_and_ends_what_it_left() -> None:
    async def go(pty: PtySession) -> None:
        await pty.start(spec())
        await pty.write(b"sleep 1002 & echo bg=$!\n")
        background = int((await read_until(pty, rb"bg=(\d+)\r\n")).group(1))
        await pty.write(b"exit 7\n")
        await read_to_end(pty)
        assert pty.exit_status == 7 and pty.end_reason == EXITED
        assert await pty.wait() == 7
        await eventually(lambda: process_gone(background), timeout=TIMEOUT)

    run(go)


def test_close_is_idempotent_and_leaves_no_fd_or_zombie() -> None:
    async def go() -> None:
        before = set(os.listdir("/proc/self/fd"))
        pty = PtySession()
        await pty.start(spec(command="sleep 100"))
        pid = pty.pid
        with pytest.raises(RuntimeError):
            await pty.start(spec())
        await asyncio.gather(pty.close(), pty.close())
        await pty.close()
        assert not Path(f"/proc/{pid}").exists()
        assert set(os.listdir("/proc/self/fd")) <= before
        assert await pty.read() == b""
        await pty.write(b"ignored\n")
        pty.resize(80, 24)
        assert pty.end_reason == "closed"

    asyncio.run(go())


def test_the_group_is_recorded_while_the_session_runs(tmp_path: Path) -> None:
    records = GroupRecords(tmp_path / "processes")

    async def go(pty: PtySession) -> None:
        await pty.start(spec(marker="session-42"))
        assert pty.pid is not None
        [(_, record)] = records.load()
        assert record is not None and (record.pgid, record.message_id) == (pty.pid, "session-42")
        environ = Path(f"/proc/{pty.pid}/environ").read_bytes().split(b"\0")
        assert f"{RUN_MARKER_ENV}=session-42".encode() in environ

    run(go, records=records)
    assert records.load() == []


def test_refusals_say_why_and_leave_nothing_open() -> None:
    async def go(pty: PtySession) -> None:
        with pytest.raises(SessionRefused, match="'bosun-no-such-user' does not exist"):
            await pty.start(PtySpec(run_as="bosun-no-such-user"))
        with pytest.raises(SessionRefused, match="sessions as root are not allowed"):
            await pty.start(PtySpec(run_as="root"))
        if not IS_ROOT:  # (as root: test_session_users runs a real non-root agent)
            with pytest.raises(SessionRefused, match="must run as root to switch users"):
                await pty.start(PtySpec(run_as="root", allow_root=True))

    run(go)


def test_a_failing_switch_refuses_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(run_as: object) -> None:
        raise PermissionError("no switching today")

    monkeypatch.setattr(session_users, "drop_privileges", refuse)

    async def go(pty: PtySession) -> None:
        with pytest.raises(SessionRefused, match=r"switching to user .* no switching today"):
            await pty.start(spec())

    run(go)


def login_user() -> pwd.struct_passwd:
    """A user other than root with an ordinary login shell (else the test is skipped)."""
    for entry in sorted(pwd.getpwall(), key=lambda entry: entry.pw_uid):
        shell = entry.pw_shell
        if entry.pw_uid and os.path.basename(shell) in LOGIN_SHELLS and os.access(shell, os.X_OK):
            return entry
    pytest.skip("no user with an ordinary login shell on this machine")


@pytest.mark.skipif(not IS_ROOT, reason="only a root agent switches users")
def test_a_root_agent_runs_the_session_as_the_user() -> None:
    user = login_user()
    groups = " ".join(map(str, sorted(set(os.getgrouplist(user.pw_name, user.pw_gid)))))
    home = user.pw_dir if os.path.isdir(user.pw_dir) else "/"
    command = (
        'echo "ids=$(id -u) $(id -g) $(id -G | tr " " "\\n" | sort -nu | tr "\\n" " ")"; pwd; '
        'echo "env=$HOME|$USER|$LOGNAME|$SHELL"'
    )

    async def go(pty: PtySession) -> None:
        await pty.start(PtySpec(run_as=user.pw_name, command=command))
        output = (await read_to_end(pty)).decode()
        assert f"ids={user.pw_uid} {user.pw_gid} {groups} \r\n{home}\r\n" in output
        assert f"env={user.pw_dir}|{user.pw_name}|{user.pw_name}|{user.pw_shell}" in output
        assert pty.exit_status == 0

    run(go)


@pytest.mark.skipif(not IS_ROOT, reason="only a root agent switches users")
def test_a_user_whose_shell_refuses_logins_gets_its_refusal() -> None:
    shells = {entry.pw_name: entry.pw_shell for entry in pwd.getpwall()}
    if os.path.basename(shells.get("nobody", "")) not in ("nologin", "false"):
        pytest.skip("no user 'nobody' whose login shell refuses logins")

    async def go(pty: PtySession) -> None:
        await pty.start(PtySpec(run_as="nobody"))
        await read_to_end(pty)
        assert pty.exit_status not in (None, 0)

    run(go)
