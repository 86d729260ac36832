"""`bosun-agent …` as an operator uses it: one clear line for every refusal, never a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun, free_port, wait_until

from bosun_agent import protocol
from bosun_agent.cli import main
from bosun_agent.runtime import REVOKED_MESSAGE
from bosun_agent.statedir import StateDir


def register_argv(server: FakeBosun, state_dir: Path, *extra: str) -> list[str]:
    return [
        "register",
        "--url",
        server.url,
        "--activation-id",
        ACTIVATION_ID,
        "--activation-code",
        ACTIVATION_CODE,
        "--state-dir",
        str(state_dir),
        *extra,
    ]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_register_prints_the_node_id_and_keeps_the_key_private(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(register_argv(server, state_dir, "--name", "db-1", "--tags", "Env=dev,Team=ops"))
    out, err = capsys.readouterr()
    assert code == 0
    node = server.only_node()
    assert out.strip() == node.node_id
    assert re.fullmatch(r"mi-[0-9a-f]{17}", node.node_id)
    assert f"registered as {node.node_id} (db-1)" in err
    assert node.tags == {"Env": "dev", "Team": "ops"}
    assert node.facts["platform_type"] == "Linux"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "node.key").stat().st_mode) == 0o600
    key = StateDir(state_dir).node_key()
    assert key is not None
    assert protocol.public_key_text(key) == node.public_key


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            "wrong-code",
            "registration refused: the activation id or code is wrong (InvalidActivation)",
        ),
        ("expired", "registration refused: the activation expired (ActivationExpired)"),
        ("exhausted", "registration refused: the activation is used up (ActivationLimitExceeded)"),
    ],
)
def test_a_refused_registration_says_why_in_one_line_and_saves_nothing(
    server: FakeBosun,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    expected: str,
) -> None:
    argv = register_argv(server, state_dir)
    if setup == "wrong-code":
        argv[argv.index(ACTIVATION_CODE)] = "guess"
    elif setup == "expired":
        server.activations[ACTIVATION_ID].expired = True
    else:
        server.activations[ACTIVATION_ID].uses_left = 0
    assert main(argv) == 1
    assert one_line(capsys.readouterr().err) == f"bosun-agent: {expected}"
    assert StateDir(state_dir).identity() is None
    assert server.nodes == {}


def test_an_unreachable_server_is_one_line(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["register", "--url", url, "--activation-id", "a", "--activation-code", "b"]
    assert main([*argv, "--state-dir", str(state_dir)]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"bosun-agent: cannot reach {url}: ")


def test_a_url_that_is_not_http_is_one_line(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["register", "--url", "bosun.example", "--activation-id", "a", "--activation-code", "b"]
    assert main([*argv, "--state-dir", str(state_dir)]) == 1
    assert "must be http:// or https://" in one_line(capsys.readouterr().err)


def test_the_activation_code_can_come_from_the_environment(
    server: FakeBosun,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = register_argv(server, state_dir)
    del argv[argv.index("--activation-code") : argv.index("--activation-code") + 2]
    assert main(argv) == 1
    assert "--activation-code or $BOSUN_AGENT_ACTIVATION_CODE" in capsys.readouterr().err
    monkeypatch.setenv("BOSUN_AGENT_ACTIVATION_CODE", ACTIVATION_CODE)
    assert main(argv) == 0


def test_registering_twice_needs_force(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(register_argv(server, state_dir)) == 0
    first = StateDir(state_dir).identity()
    capsys.readouterr()
    assert main(register_argv(server, state_dir)) == 1
    line = one_line(capsys.readouterr().err)
    assert f"already registered as {first.node_id}" in line  # type: ignore[union-attr]
    assert "--force" in line
    assert main(register_argv(server, state_dir, "--force")) == 0
    assert StateDir(state_dir).identity().node_id != first.node_id  # type: ignore[union-attr]


def test_bad_tags_are_a_usage_error(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(register_argv(server, state_dir, "--tags", "Env"))
    assert exited.value.code == 2
    assert "a tag must be key=value, not 'Env'" in capsys.readouterr().err


def test_status_shows_the_registration_and_what_the_server_says(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(register_argv(server, state_dir))
    node = server.only_node()
    capsys.readouterr()

    assert main(["status", "--state-dir", str(state_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["node_id"] == node.node_id
    assert report["server"] == server.url
    assert report["key_age_days"] == 0.0
    assert report["agent_running_pid"] is None
    assert (report["journal_entries"], report["outbox_replies"]) == (0, 0)
    assert report["server_check"]["ok"] is True
    assert report["server_check"]["status"] == "Online"
    assert node.heartbeats == 1

    assert main(["status", "--state-dir", str(state_dir), "--offline"]) == 0
    text = capsys.readouterr().out
    assert node.node_id in text and "not running" in text
    assert "server says" not in text
    assert node.heartbeats == 1


def test_status_of_a_deregistered_node_says_so(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(register_argv(server, state_dir))
    server.only_node().revoked = True
    capsys.readouterr()
    assert main(["status", "--state-dir", str(state_dir)]) == 3
    assert REVOKED_MESSAGE in capsys.readouterr().out


def test_status_of_an_unregistered_server(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--state-dir", str(state_dir)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"bosun-agent: this server is not registered (no state directory {state_dir})"
    )


def test_deregister_tells_the_server_then_forgets_the_credentials(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(register_argv(server, state_dir))
    node = server.only_node()
    assert main(["deregister", "--state-dir", str(state_dir)]) == 0
    assert node.revoked
    assert StateDir(state_dir).identity() is None
    assert not (state_dir / "node.key").exists()
    assert f"deregistered {node.node_id}" in capsys.readouterr().err


LATE_REVOCATION = """
import sys, time
from pathlib import Path
from bosun_agent.statedir import StateDir
state = StateDir(Path(sys.argv[1]))
identity = state.identity()
with state.locked():
    print("running", flush=True)
    # As a running agent told of its revocation: it read the identity before the CLI's wipe
    # and writes it back, revoked, just after.
    while state.identity() is not None:
        time.sleep(0.01)
    state.save_identity(identity.revoked("deregistered"))
    time.sleep(0.2)
"""


def test_deregister_waits_for_the_running_agent_so_its_last_write_does_not_bring_it_back(
    server: FakeBosun, state_dir: Path
) -> None:
    main(register_argv(server, state_dir))
    running = subprocess.Popen(
        [sys.executable, "-c", LATE_REVOCATION, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert running.stdout is not None and running.stdout.readline().strip() == "running"
        assert main(["deregister", "--state-dir", str(state_dir)]) == 0
    finally:
        running.wait(timeout=20)
    assert StateDir(state_dir).identity() is None


def test_deregister_without_the_server_removes_nothing_unless_forced(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(register_argv(server, state_dir))
    server.stop()
    capsys.readouterr()
    assert main(["deregister", "--state-dir", str(state_dir)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "could not deregister" in line and "Nothing was removed" in line
    assert StateDir(state_dir).identity() is not None
    assert main(["deregister", "--state-dir", str(state_dir), "--force"]) == 0
    assert StateDir(state_dir).identity() is None


def test_rotate_key_replaces_the_key_on_both_sides(
    server: FakeBosun, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(register_argv(server, state_dir))
    node = server.only_node()
    before = node.public_key
    assert main(["rotate-key", "--state-dir", str(state_dir)]) == 0
    key = StateDir(state_dir).node_key()
    assert key is not None
    assert node.public_key == protocol.public_key_text(key) != before


def test_run_without_registration_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["run", "--state-dir", str(tmp_path / "empty")]) == 1
    assert "run bosun-agent register first" in one_line(capsys.readouterr().err)


# The real process, as systemd runs it.


def agent_process(state_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bosun_agent", *args, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_run_stops_cleanly_on_sigterm_and_logs_with_timestamps(
    server: FakeBosun, state_dir: Path
) -> None:
    main(register_argv(server, state_dir))
    node = server.only_node()
    process = agent_process(state_dir, "run")
    try:
        wait_until(lambda: server.connected(node.node_id) == 1 and node.heartbeats >= 1)
        second = agent_process(state_dir, "run")
        _, second_err = second.communicate(timeout=10)
        assert second.returncode == 1
        assert "is already running" in second_err
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO bosun-agent", err), err
    assert "Traceback" not in err


def test_run_exits_3_with_a_clear_message_when_deregistered(
    server: FakeBosun, state_dir: Path
) -> None:
    main(register_argv(server, state_dir))
    node = server.only_node()
    process = agent_process(state_dir, "run")
    try:
        wait_until(lambda: server.connected(node.node_id) == 1)
        server.revoke(node.node_id)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 3
    assert REVOKED_MESSAGE in err
    assert "Traceback" not in err
    # Run again: it refuses at once, with the same words.
    again = agent_process(state_dir, "run")
    _, err = again.communicate(timeout=10)
    assert again.returncode == 3
    assert one_line(err) == f"bosun-agent: {REVOKED_MESSAGE}"
