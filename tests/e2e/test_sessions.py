"""Session Manager end to end: a real `bosun-agent`, the real relay, a headless terminal.

The terminal speaks the browser's protocol (tests/support/shell_client.py) to the embedded
stack; the shell is a real PTY on this machine, and the recording is checked with the same
`manage.py sessions verify` an operator runs.
"""

from __future__ import annotations

import json
import secrets

from tests.e2e.support import Agents, Stack, processes_running, wait_until
from tests.support.shell_client import ShellClient

SESSION_TIMEOUT = 30.0
# The agent's 30 s grace, the sweep's margin (15 s) and its period (10 s), with room to spare.
AGENT_LOST_TIMEOUT = 90.0


def _start(stack: Stack, node_id: str, reason: str = "e2e") -> str:
    return stack.shell(
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from access.authorization import principal_for\n"
        "from sessions.services.sessions import session_start\n"
        "admin = get_user_model().objects.get(username='admin')\n"
        f"s = session_start(principal=principal_for(admin), node_id={node_id!r}, "
        f"reason={reason!r})\n"
        "print(json.dumps(s.session_id))\n"
    )


def _session(stack: Stack, session_id: str) -> dict:
    return stack.shell(
        "import json\n"
        "from sessions.models import Session\n"
        f"s = Session.objects.get(session_id={session_id!r})\n"
        "print(json.dumps({'status': s.status, 'end_reason': s.end_reason, "
        "'bytes_out': s.bytes_out, 'sealed': s.recording_sealed_at is not None}))\n"
    )


def _terminal(stack: Stack, session_id: str) -> ShellClient:
    browser = stack.dashboard()
    cookie = browser.cookie("bosun_session")
    assert cookie, "the dashboard did not sign in"
    terminal = ShellClient(stack.url, cookie, session_id)
    terminal.open()
    return terminal


def test_a_shell_on_a_real_agent_echoes_resizes_ends_and_leaves_a_verified_recording(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    session_id = _start(stack, agent.node_id)
    terminal = _terminal(stack, session_id)
    try:
        terminal.type("echo hello-$((6*7))\r")
        terminal.read_until("hello-42", timeout=SESSION_TIMEOUT)
        terminal.resize(101, 33)
        terminal.type("stty size\r")
        terminal.read_until("33 101", timeout=SESSION_TIMEOUT)
        terminal.terminate()
        ended = terminal.read_control("ended", timeout=SESSION_TIMEOUT)
    finally:
        terminal.close()
    assert ended["status"] in ("Terminated", "Failed"), ended

    session = wait_until(
        lambda: _session(stack, session_id),
        lambda s: s["sealed"],
        timeout=SESSION_TIMEOUT,
        what="the sealed recording",
    )
    assert session["status"] == "Terminated"
    assert session["bytes_out"] >= len(terminal.output)

    verified = stack.manage("sessions", "verify", session_id)
    assert "verified" in verified.stdout

    cast = stack.dashboard().get(f"/sessions/{session_id}/recording.cast")
    assert cast.status == 200
    lines = cast.text.splitlines()
    assert json.loads(lines[0])["version"] == 2
    output = "".join(event[2] for event in map(json.loads, lines[1:]) if event[1] == "o")
    assert "hello-42" in output
    assert "33 101" in output


def test_a_browser_that_reconnects_gets_what_it_missed_exactly_once(stack: Stack, agents: Agents):
    agent = agents.online()
    session_id = _start(stack, agent.node_id)
    terminal = _terminal(stack, session_id)
    try:
        terminal.type("echo ready\r")
        terminal.read_until("ready", timeout=SESSION_TIMEOUT)
        # Output produced while no browser is attached waits on the relay.
        terminal.type("sleep 1; echo after-the-gap-$((40+2))\r")
        terminal.close()
        terminal.open(resume=True)
        output = terminal.read_until("after-the-gap-42", timeout=SESSION_TIMEOUT)
        terminal.type("exit\r")
        terminal.read_control("ended", timeout=SESSION_TIMEOUT)
    finally:
        terminal.close()
    assert output.count(b"after-the-gap-42") == 1


def test_an_agent_killed_mid_session_ends_the_session_with_its_reason_and_leaves_no_shell(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    session_id = _start(stack, agent.node_id)
    terminal = _terminal(stack, session_id)
    try:
        # A marker in the process's own command line, to find what the session left running.
        marker = f"600.{secrets.randbelow(10**6):06d}"
        terminal.type(f"echo started; sleep {marker}\r")
        terminal.read_until("started", timeout=SESSION_TIMEOUT)
        wait_until(
            lambda: processes_running(marker),
            lambda found: bool(found),
            timeout=SESSION_TIMEOUT,
            what="the session's sleep",
        )
        agent.kill()  # no goodbye: the relay only sees the socket drop

        # The PTY's master went with the agent: the kernel hangs the shell up.
        wait_until(
            lambda: processes_running(marker),
            lambda found: not found,
            timeout=SESSION_TIMEOUT,
            what="the session's processes to end with the agent",
        )
        # Nobody will answer for the session any more: past the agent's grace the sweep ends
        # it and the browser is told why.
        ended = terminal.read_control("ended", timeout=AGENT_LOST_TIMEOUT)
    finally:
        terminal.close()
    assert ended["status"] == "Failed", ended
    assert "lost" in ended["reason"], ended
    session = _session(stack, session_id)
    assert session["status"] == "Failed"
    assert session["sealed"]
