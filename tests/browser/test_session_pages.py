"""Session Manager in a real browser, against a stack of its own whose local agent may open
a root shell (the tests run as root): a session started from this host's node page, typed
into, resized and terminated in xterm.js, then played back; and a recording written through
the recording services, listed, verified, and played with pause, speed and seek both ways,
its resizes applied and what was typed never shown."""

from __future__ import annotations

import re
import secrets
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import BosunServer
from tests.e2e.support import wait_until
from tests.support.processes import PYTHON, bosun_env, free_port, manage, running

pytestmark = pytest.mark.browser

READY = re.compile(r"Bosun is running at (\S+)")
STARTUP_TIMEOUT = 120.0
# The local agent registers once the web server listens.
LOCAL_NODE_TIMEOUT = 30.0
# A StartSession message fetched by the agent, its socket opened, its shell started.
CONNECT_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class SessionStack:
    server: BosunServer
    env: dict[str, str]


# The recording: output at 0.1 s, 0.6 s, 3 s and 6 s, input at 0.5 s, a resize at 1 s.
RECORDING_SCRIPT = """
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from access.directory import user_arn
from fleet import codes
from fleet.models import ManagedNode
from sessions.asciicast import CastEncoder
from sessions.codes import new_session_id
from sessions.models import Session, SessionStatus
from sessions.services.recording import recording_append, recording_seal, recording_start

user = get_user_model().objects.get(username={username!r})
now = timezone.now()
node = ManagedNode.objects.create(
    id=codes.new_node_id(), name="playback-{tag}", status="ConnectionLost",
    status_changed_at=now, registered_at=now, last_seen_at=now, key_rotated_at=now,
    public_key="A" * 43 + "=", fingerprint=secrets.token_hex(16),
)
session = Session.objects.create(
    session_id=new_session_id(user.get_username()), node=node, started_by=user,
    principal_arn=user_arn(user), principal_name=user.get_username(), run_as="ssm-user",
    reason="browser playback {tag}", status=SessionStatus.CONNECTED,
    started_at=now - timedelta(seconds=10), recording_required=True,
)
recording_start(session=session, width=80, height=24, term="xterm-256color",
                login_shell="/bin/bash")
cast = CastEncoder(input_recorded=True)
events = (
    cast.output(0.1, b"$ ")
    + cast.input(0.5, b"typed-{tag}\\r")
    + cast.output(0.6, b"\\r\\nfirst-{tag}\\r\\n$ ")
    + cast.resize(1.0, 100, 30)
    + cast.output(3.0, "\\x1b[38;5;208mcolour \\u00e9t\\u00e9 second-{tag}\\x1b[0m\\r\\n".encode())
    + cast.output(6.0, b"third-{tag}\\r\\n$ exit\\r\\n")
)
recording_append(session=session, sequence=0, events=events)
session.status, session.ended_at, session.end_reason = SessionStatus.TERMINATED, now, "exited"
session.save(update_fields=["status", "ended_at", "end_reason"])
recording_seal(session=session)
print("SESSION", session.session_id)
"""


@pytest.fixture(scope="module")
def session_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionStack]:
    """`serve embedded` as the browser tier runs it, plus root shells allowed."""
    password = secrets.token_urlsafe(16)
    env = {k: v for k, v in bosun_env().items() if not k.startswith("BOSUN_")}
    env.update(
        BOSUN_HOST="127.0.0.1",
        BOSUN_PORT=str(free_port()),
        BOSUN_DATA_DIR=str(tmp_path_factory.mktemp("bosun-sessions-data")),
        BOSUN_ADMIN_PASSWORD=password,
        BOSUN_DEBUG="0",
        BOSUN_SESSION_ALLOW_ROOT="1",
    )
    with running([PYTHON, "manage.py", "serve", "embedded"], env=env, name="sessions") as process:
        url = wait_until(
            lambda: READY.search(process.log_path.read_text(errors="replace")),  # type: ignore[attr-defined]
            timeout=STARTUP_TIMEOUT,
            every=0.2,
            what="serve embedded ready",
        ).group(1)
        server = BosunServer(url=url, username="admin", password=password, process=process)
        yield SessionStack(server=server, env=env)


@pytest.fixture(scope="module")
def bosun_server(session_stack: SessionStack) -> BosunServer:
    """This module's stack, for the browser tier's fixtures (context, signed_in_page)."""
    return session_stack.server


@pytest.fixture
def recording(session_stack: SessionStack) -> Iterator[tuple[str, str]]:
    """(session id, tag) of a sealed recording of the admin's, written through the services."""
    tag = secrets.token_hex(3)
    script = textwrap.dedent(RECORDING_SCRIPT).format(
        username=session_stack.server.username, tag=tag
    )
    done = manage("shell", "-c", script, env=session_stack.env)
    assert done.returncode == 0, done.stderr[-3000:]
    session_id = re.search(r"^SESSION (\S+)$", done.stdout, re.MULTILINE).group(1)
    yield session_id, tag


def player_position(page: Page) -> float:
    return float(page.locator("#player").get_attribute("data-position") or 0)


def seek(page: Page, seconds: float) -> None:
    page.evaluate(
        """seconds => {
             const bar = document.getElementById("player-seek");
             bar.value = String(seconds);
             bar.dispatchEvent(new Event("input"));
             bar.dispatchEvent(new Event("change"));
           }""",
        seconds,
    )


def test_a_recording_is_listed_verified_and_played_back_with_pause_speed_and_seek(
    signed_in_page: Page, recording: tuple[str, str], screenshots: Path
):
    page = signed_in_page
    session_id, tag = recording

    page.goto("/sessions/")
    expect(page).to_have_title("Session Manager · Bosun")
    row = page.locator(f"#session-{session_id}")
    expect(row).to_contain_text(f"playback-{tag}")
    expect(row).to_contain_text("Terminated")
    page.screenshot(path=screenshots / "sessions-list.png", full_page=True)

    row.get_by_role("link", name=session_id).click()
    expect(page).to_have_url(re.compile(rf"/sessions/{re.escape(session_id)}/$"))
    expect(page.locator("#session-recording")).to_have_attribute("data-recording-state", "verified")
    expect(page.locator("#session-overview")).to_contain_text(f"browser playback {tag}")
    page.screenshot(path=screenshots / "session-detail.png", full_page=True)

    cast = page.request.get(f"/sessions/{session_id}/recording.cast")
    assert cast.ok
    assert cast.headers["content-type"] == "application/x-asciicast"
    assert f"first-{tag}" in cast.text()

    page.get_by_role("link", name="Play recording").click()
    player = page.locator("#player")
    screen = page.locator("#player-screen .xterm-rows")
    expect(player).to_have_attribute("data-state", "playing")
    expect(screen).to_contain_text(f"first-{tag}")
    expect(page.locator("#player-time")).to_contain_text("/ 0:06")

    # Paused, the position stays put and nothing more is shown.
    page.get_by_role("button", name="Pause").click()
    expect(player).to_have_attribute("data-state", "paused")
    paused_at = player_position(page)
    page.wait_for_timeout(700)
    assert player_position(page) == paused_at
    if paused_at < 3.0:
        expect(screen).not_to_contain_text(f"second-{tag}")

    # Seeking forward draws everything up to the point at once, the resize included.
    seek(page, 4.0)
    expect(screen).to_contain_text(f"second-{tag}")
    expect(screen).to_contain_text("colour été")
    expect(screen).not_to_contain_text(f"third-{tag}")
    page.wait_for_function("window.bosunPlayer.term.cols === 100")
    # Back again: the later output is gone, the size is the header's.
    seek(page, 0.8)
    expect(screen).to_contain_text(f"first-{tag}")
    expect(screen).not_to_contain_text(f"second-{tag}")
    page.wait_for_function("window.bosunPlayer.term.cols === 80")

    # What was typed is in the recording but never drawn.
    expect(screen).not_to_contain_text(f"typed-{tag}")

    # Eight times as fast, the rest plays in well under a second.
    page.locator("#player-speed").select_option("8")
    page.get_by_role("button", name="Play").click()
    expect(player).to_have_attribute("data-state", "ended", timeout=5000)
    expect(screen).to_contain_text(f"third-{tag}")
    expect(page.locator("#player-time")).to_have_text("0:06 / 0:06")
    # Played on from the seek: each line once, the earlier ones not drawn again.
    expect(screen.get_by_text(f"first-{tag}")).to_have_count(1)
    page.screenshot(path=screenshots / "session-playback.png", full_page=True)


def local_node_page(page: Page) -> None:
    """This host's node page, once its agent has registered."""
    row = page.locator("tr[data-live-node]").filter(has=page.get_by_text("this host"))

    def listed() -> int:
        page.goto("/fleet/")
        return row.count()

    wait_until(listed, timeout=LOCAL_NODE_TIMEOUT, every=1.0, what="this host's node listed")
    row.get_by_role("link").first.click()


def start_session(page: Page, reason: str, screenshot: Path | None = None) -> str:
    """From this host's node page to a connected terminal; the session's id."""
    local_node_page(page)
    page.get_by_role("link", name="Start session").click()
    expect(page).to_have_title("Start a session · Bosun")
    expect(page.get_by_label("Node")).to_have_value(re.compile(r"^mi-[0-9a-f]{17}$"))
    page.get_by_label("Reason").fill(reason)
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    page.get_by_role("button", name="Start session").click()
    expect(page).to_have_url(re.compile(r"/sessions/[^/]+/terminal/$"))
    expect(page.locator("#terminal-status")).to_have_attribute(
        "data-state", "connected", timeout=CONNECT_TIMEOUT_MS
    )
    screen = page.locator("#terminal .xterm-rows")
    expect(screen).to_contain_text("#")  # the root shell's prompt
    page.locator("#terminal").click()
    return page.url.rstrip("/").split("/")[-2]


def terminate(page: Page) -> None:
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Terminate").click()
    expect(page.locator("#terminal-status")).to_have_attribute(
        "data-state", "ended", timeout=CONNECT_TIMEOUT_MS
    )


def test_a_shell_opened_from_the_node_page_echoes_resizes_terminates_and_plays_back(
    signed_in_page: Page, screenshots: Path
):
    page = signed_in_page
    marker = f"hello-{secrets.token_hex(3)}"
    session_id = start_session(page, "browser test", screenshots / "session-start.png")
    screen = page.locator("#terminal .xterm-rows")

    # The shell computes the marker: what shows is its output, not just the echo of the typing.
    page.keyboard.type(f"echo {marker}-$((6*7))\n")
    expect(screen).to_contain_text(f"{marker}-42")

    # A smaller window: the fit add-on resizes the terminal, and the shell learns its size.
    cols_before = page.evaluate("window.bosunTerminal.term.cols")
    page.set_viewport_size({"width": 1000, "height": 700})
    page.wait_for_function(f"window.bosunTerminal.term.cols < {cols_before}")
    cols, rows = page.evaluate("[window.bosunTerminal.term.cols, window.bosunTerminal.term.rows]")
    page.keyboard.type("echo size-$(stty size | tr ' ' x)\n")
    expect(screen).to_contain_text(f"size-{rows}x{cols}")
    page.screenshot(path=screenshots / "session-terminal.png", full_page=True)

    terminate(page)
    expect(page.locator("#terminal-message")).to_contain_text("terminated")

    page.get_by_role("link", name="Details").click()
    expect(page.locator("#session-status")).to_contain_text("Terminated")
    expect(page.locator("#session-overview")).to_contain_text("browser test")

    def recording_state() -> str | None:
        page.goto(f"/sessions/{session_id}/")
        return page.locator("#session-recording").get_attribute("data-recording-state")

    wait_until(lambda: recording_state() == "verified", timeout=10, every=0.5, what="sealed")
    page.screenshot(path=screenshots / "session-detail-live-run.png", full_page=True)

    page.get_by_role("link", name="Play recording").click()
    page.locator("#player-speed").select_option("8")
    player_screen = page.locator("#player-screen .xterm-rows")
    expect(player_screen).to_contain_text(f"{marker}-42")
    expect(player_screen).to_contain_text(f"size-{rows}x{cols}")


def test_a_dropped_socket_reconnects_and_resumes_without_losing_or_repeating_output(
    signed_in_page: Page,
):
    page = signed_in_page
    marker = secrets.token_hex(3)
    start_session(page, "reconnect test")
    screen = page.locator("#terminal .xterm-rows")
    status = page.locator("#terminal-status")

    # Output the shell writes while the browser is away is held and sent on the resume.
    page.keyboard.type(f"sleep 1; echo away-{marker}-$((1+1))\n")
    page.evaluate("window.bosunTerminal.drop()")
    expect(status).to_have_attribute("data-state", re.compile("reconnecting|connecting"))
    expect(status).to_have_attribute("data-state", "connected", timeout=CONNECT_TIMEOUT_MS)
    expect(screen).to_contain_text(f"away-{marker}-2")
    page.keyboard.type(f"echo back-{marker}-$((2+2))\n")
    expect(screen).to_contain_text(f"back-{marker}-4")
    expect(screen.get_by_text(f"away-{marker}-2", exact=True)).to_have_count(1)
    offsets = page.evaluate("window.bosunTerminal.offsets()")
    assert offsets["rendered"] == offsets["received"]
    terminate(page)


def test_a_flood_is_rendered_at_the_terminals_pace_and_ctrl_c_stops_it(signed_in_page: Page):
    page = signed_in_page
    marker = secrets.token_hex(3)
    start_session(page, "flood test")
    screen = page.locator("#terminal .xterm-rows")

    # Well past the relay's window (256 KiB): only acked output earns the agent more credit.
    page.keyboard.type("seq 1 150000\n")
    expect(screen).to_contain_text("150000", timeout=30_000)
    page.wait_for_function(
        "(() => { const o = window.bosunTerminal.offsets();"
        " return o.received > 900000 && o.acked === o.received; })()"
    )

    page.keyboard.type("yes flood\n")
    expect(screen).to_contain_text("flood")
    page.wait_for_timeout(1000)
    page.keyboard.press("Control+C")
    page.keyboard.type(f"echo after-{marker}-$((2+3))\n")
    expect(screen).to_contain_text(f"after-{marker}-5", timeout=10_000)
    terminate(page)
