"""Who a session runs as: refusals with clear messages, the login environment, and the
privilege drop (in a forked child, as root: the test process itself must keep its rights)."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from bosun_agent.process_groups import RUN_MARKER_ENV
from bosun_agent.session_users import (
    C_UTF8,
    TERM,
    SessionRefused,
    drop_privileges,
    profile_input,
    resolve_run_as,
    session_environment,
    shell_argv,
    utf8_locale,
)

IS_ROOT = os.geteuid() == 0
UNKNOWN_UID = 54321


def other_user() -> pwd.struct_passwd:
    """An existing user that is neither root nor the one running the tests."""
    for entry in sorted(pwd.getpwall(), key=lambda entry: entry.pw_name != "nobody"):
        if entry.pw_uid not in (0, os.geteuid()):
            return entry
    pytest.skip("no user other than root and the test's own on this machine")


def test_an_empty_name_is_the_agent_s_own_user_and_needs_no_switch() -> None:
    me = pwd.getpwuid(os.geteuid())
    run_as = resolve_run_as("", allow_root=True)
    assert (run_as.name, run_as.uid, run_as.gid) == (me.pw_name, me.pw_uid, me.pw_gid)
    assert run_as.home == me.pw_dir
    assert run_as.shell == (me.pw_shell or "/bin/sh")
    assert run_as.groups is None and not run_as.switches


def test_an_unknown_user_is_refused_with_a_clear_message() -> None:
    with pytest.raises(SessionRefused) as refused:
        resolve_run_as("bosun-no-such-user")
    assert str(refused.value) == "run-as user 'bosun-no-such-user' does not exist on this node"


@pytest.mark.parametrize("name", ["bad\0name", "x" * 300])
def test_a_name_that_cannot_be_a_user_is_refused(name: str) -> None:
    with pytest.raises(SessionRefused, match="not a valid user name"):
        resolve_run_as(name)


def test_root_is_refused_unless_allowed() -> None:
    with pytest.raises(SessionRefused) as refused:
        resolve_run_as("root", agent_uid=0)
    assert "'root' is root (uid 0)" in str(refused.value)
    assert "not allowed" in str(refused.value)
    with pytest.raises(SessionRefused, match="uid 0"):
        resolve_run_as("", agent_uid=0)  # the agent's own user, when that is root
    run_as = resolve_run_as("root", allow_root=True, agent_uid=0)
    assert run_as.uid == 0 and not run_as.switches


def test_a_root_agent_switches_to_another_user_with_all_its_groups() -> None:
    user = other_user()
    run_as = resolve_run_as(user.pw_name, agent_uid=0)
    assert (run_as.uid, run_as.gid, run_as.home) == (user.pw_uid, user.pw_gid, user.pw_dir)
    assert run_as.groups == tuple(os.getgrouplist(user.pw_name, user.pw_gid))
    assert run_as.switches


def test_a_non_root_agent_runs_sessions_only_as_itself() -> None:
    user = other_user()
    same = resolve_run_as(user.pw_name, agent_uid=user.pw_uid)
    assert same.uid == user.pw_uid and not same.switches
    with pytest.raises(SessionRefused) as refused:
        resolve_run_as("root", allow_root=True, agent_uid=user.pw_uid)
    message = str(refused.value)
    assert f"the agent runs as '{user.pw_name}'" in message
    assert "must run as root to switch users" in message
    with pytest.raises(SessionRefused, match=f"uid {UNKNOWN_UID}.*must run as root"):
        resolve_run_as(user.pw_name, agent_uid=UNKNOWN_UID)
    with pytest.raises(SessionRefused, match="no entry in the user database"):
        resolve_run_as("", agent_uid=UNKNOWN_UID)


def test_the_environment_is_built_from_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOSUN_AGENT_STATE_DIR", "/var/lib/secret-place")
    run_as = resolve_run_as("", allow_root=True)
    env = session_environment(run_as, marker="session-1")
    assert env["HOME"] == run_as.home and env["SHELL"] == run_as.shell
    assert env["USER"] == env["LOGNAME"] == run_as.name
    assert env["TERM"] == TERM == "xterm-256color"
    assert env[RUN_MARKER_ENV] == "session-1"
    assert "BOSUN_AGENT_STATE_DIR" not in env
    assert "/usr/bin" in env["PATH"]
    locale = utf8_locale()
    if locale is None:
        assert "LANG" not in env
    else:
        assert env["LANG"] == env["LC_ALL"] == locale
    assert RUN_MARKER_ENV not in session_environment(run_as)


def test_the_locale_is_the_agent_s_own_when_it_is_utf_8() -> None:
    assert utf8_locale({"LANG": "de_DE.UTF-8"}) == "de_DE.UTF-8"
    assert utf8_locale({"LC_CTYPE": "en_GB.utf8", "LANG": "C"}) == "en_GB.utf8"
    # LC_ALL decides over LANG: a non-UTF-8 one means the fallback.
    assert utf8_locale({"LC_ALL": "C", "LANG": "de_DE.UTF-8"}) in (C_UTF8, None)
    assert utf8_locale({}) in (C_UTF8, None)


def test_a_login_shell_is_named_with_a_dash_and_a_command_runs_after_the_profile() -> None:
    assert shell_argv("/bin/bash", "", "export A=1") == ["-bash"]
    assert shell_argv("/bin/sh", "top", "") == ["/bin/sh", "-c", "top"]
    assert shell_argv("/bin/sh", "top", "A=1\nB=2") == ["/bin/sh", "-c", "A=1\nB=2\ntop"]
    assert profile_input("export A=1\n\n  \nalias é='ls'") == b"export A=1\nalias \xc3\xa9='ls'\n"


def _in_child() -> dict[str, object]:
    """Fork; the child switches to the other user, reports what it became, and exits."""
    user = other_user()
    run_as = resolve_run_as(user.pw_name, agent_uid=0)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        report: dict[str, object] = {}
        try:
            os.close(read_end)
            drop_privileges(run_as)
            report = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid()}
            report["groups"] = sorted(os.getgroups())
            try:
                os.setuid(0)
                report["regained"] = True
            except PermissionError:
                report["regained"] = False
        except BaseException as exc:
            report = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            os.write(write_end, json.dumps(report).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    result["expected"] = [run_as.uid, run_as.gid, sorted(run_as.groups or ())]
    return result


@pytest.mark.skipif(not IS_ROOT, reason="only root can drop privileges")
def test_dropping_privileges_leaves_no_way_back_to_root() -> None:
    result = _in_child()
    assert "error" not in result, result
    uid, gid, groups = result["expected"]  # type: ignore[misc]
    assert (result["uid"], result["euid"], result["gid"]) == (uid, uid, gid)
    assert result["groups"] == groups
    assert result["regained"] is False


@pytest.mark.skipif(IS_ROOT, reason="as root the switch succeeds")
def test_a_non_root_process_cannot_drop_to_another_user() -> None:
    user = other_user()
    run_as = resolve_run_as(user.pw_name, agent_uid=0)  # as if the agent were root
    with pytest.raises(PermissionError):
        drop_privileges(run_as)


# A real agent that is not root: it asks for root (refused), then runs a session as itself.
NON_ROOT_AGENT = """
import asyncio
from bosun_agent.session_pty import PtySession, PtySpec
from bosun_agent.session_users import SessionRefused, resolve_run_as
try:
    resolve_run_as("root", allow_root=True)
except SessionRefused as exc:
    print("refused:", exc)
async def main():
    async with PtySession(credit=65536) as pty:
        await pty.start(PtySpec(command="echo uid=$(id -u)"))
        output = b""
        while chunk := await pty.read():
            output += chunk
        print(output.decode().strip(), pty.exit_status)
asyncio.run(main())
"""


def _login_user() -> pwd.struct_passwd:
    for entry in sorted(pwd.getpwall(), key=lambda entry: entry.pw_uid):
        shell = os.path.basename(entry.pw_shell)
        if entry.pw_uid and shell in ("sh", "bash", "dash", "zsh", "ksh"):
            return entry
    pytest.skip("no user with an ordinary login shell on this machine")


@pytest.mark.skipif(not IS_ROOT, reason="starts a process as another user")
def test_a_real_non_root_agent_is_refused_another_user_and_runs_as_itself() -> None:
    user = _login_user()
    agent_dir = str(Path(__file__).resolve().parents[1])
    # The test's interpreter may sit where the user cannot reach it (under /root): try the
    # system's too, which must import the agent (it needs `cryptography`).
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            done = subprocess.run(
                [python, "-c", NON_ROOT_AGENT],
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                cwd="/",
                env={"PYTHONPATH": agent_dir, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (PermissionError, FileNotFoundError):
            continue
        if done.returncode == 0:
            break
    else:
        pytest.skip(f"{user.pw_name} can run no interpreter that imports the agent")
    assert f"the agent runs as '{user.pw_name}'" in done.stdout
    assert "must run as root to switch users" in done.stdout
    assert f"uid={user.pw_uid} 0" in done.stdout
