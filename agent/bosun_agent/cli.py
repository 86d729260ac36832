"""`bosun-agent register | run | status | deregister | rotate-key`.

Expected failures (a wrong activation code, an unreachable server, a revoked node) print one
line on stderr and exit with a code that says what happened; only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Callable

from bosun_agent import __version__, protocol
from bosun_agent.client import (
    ActivationRefused,
    AgentClient,
    AgentError,
    ProtocolRefused,
    Revoked,
    ServerRefusal,
    ServerUnavailable,
    new_session,
)
from bosun_agent.commands import register_command_handlers
from bosun_agent.facts import FingerprintError, collect_facts, machine_fingerprint
from bosun_agent.handlers import builtin_handlers
from bosun_agent.registration import register_node
from bosun_agent.runtime import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PROTOCOL,
    EXIT_REVOKED,
    REVOKED_MESSAGE,
    NodeRuntime,
    NodeStopped,
)
from bosun_agent.sessions import register_session_handlers
from bosun_agent.state import Identity, StateError
from bosun_agent.statedir import StateDir, resolve_state_dir

EXIT_USAGE = 2
# How long `deregister` waits for a running agent to stop before it returns.
RUNNING_AGENT_STOP_SECONDS = 10.0
ACTIVATION_CODE_ENV = "BOSUN_AGENT_ACTIVATION_CODE"

log = logging.getLogger("bosun_agent")


class Failure(Exception):
    """An expected failure: printed as one line, exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except Failure as failure:
        print(f"bosun-agent: {failure}", file=sys.stderr)
        return failure.exit_code
    except NodeStopped as stopped:
        print(f"bosun-agent: {stopped.message}", file=sys.stderr)
        return stopped.exit_code
    except (AgentError, StateError, FingerprintError) as exc:
        print(f"bosun-agent: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bosun-agent",
        description="The Bosun agent: links this server to Bosun, outbound only.",
    )
    parser.add_argument("--version", action="version", version=f"bosun-agent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--state-dir",
            help="where the node's identity, key and journal live "
            "(default $BOSUN_AGENT_STATE_DIR or /var/lib/bosun-agent)",
        )
        sub.set_defaults(handler=handler)
        return sub

    register = command("register", cmd_register, "register this server with an activation")
    register.add_argument("--url", required=True, help="the Bosun server, e.g. https://bosun:8000")
    register.add_argument("--activation-id", required=True)
    register.add_argument(
        "--activation-code", help=f"the activation code (or ${ACTIVATION_CODE_ENV})"
    )
    register.add_argument("--name", help="the node's name (default: the activation's, or host)")
    register.add_argument("--tags", type=parse_tags, help="tags as k=v,k2=v2")
    register.add_argument(
        "--force", action="store_true", help="register again though already registered"
    )
    register.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep trying this long while the server cannot be reached (default: no retry)",
    )

    run = command("run", cmd_run, "run the agent (systemd runs this)")
    run.add_argument("-v", "--verbose", action="store_true", help="log debug detail")

    status = command("status", cmd_status, "show this node's registration and reach the server")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--offline", action="store_true", help="do not contact the server")

    deregister = command("deregister", cmd_deregister, "deregister and forget the credentials")
    deregister.add_argument(
        "--force",
        action="store_true",
        help="forget the local credentials even when the server cannot be told",
    )

    command("rotate-key", cmd_rotate_key, "replace the node key now")
    return parser


def parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise argparse.ArgumentTypeError(f"a tag must be key=value, not {item!r}")
        tags[key.strip()] = value.strip()
    return tags


# Shared plumbing.


def open_state(args: argparse.Namespace, *, create: bool = False) -> StateDir:
    path = resolve_state_dir(args.state_dir)
    if not create and not path.is_dir():
        raise Failure(f"this server is not registered (no state directory {path})")
    try:
        return StateDir(path, create=create)
    except PermissionError as exc:
        raise Failure(f"cannot use {path}: permission denied (run as root?)") from exc


def registered_identity(state: StateDir) -> Identity:
    identity = state.identity()
    if identity is None or state.node_key() is None:
        raise Failure(
            f"this server is not registered (nothing in {state.path}); "
            "run bosun-agent register first"
        )
    if identity.revoked_at is not None:
        raise Failure(REVOKED_MESSAGE, EXIT_REVOKED)
    return identity


def run_with_runtime(state: StateDir, work: Callable[[NodeRuntime], Awaitable[Any]]) -> Any:
    """Build a runtime for one-off signed calls (status, deregister, rotate-key) and run."""
    identity = registered_identity(state)
    fingerprint, _ = machine_fingerprint(identity.fingerprint_sources)

    async def go() -> Any:
        async with new_session() as session:
            client = AgentClient(session, identity.server_url)
            return await work(host_runtime(client, state, fingerprint))

    return asyncio.run(go())


def host_runtime(client: AgentClient, state: StateDir, fingerprint: str) -> NodeRuntime:
    """The runtime of this very host: real facts, the built-in handlers, Run Command and
    Session Manager."""
    facts = functools.partial(facts_of_this_host, client.server_host)
    handlers = builtin_handlers(facts)
    register_command_handlers(handlers, facts)
    register_session_handlers(handlers)
    return NodeRuntime(
        client=client,
        state=state,
        fingerprint=fingerprint,
        facts=facts,
        handlers=handlers,
    )


async def facts_of_this_host(server_host: str | None) -> dict[str, Any]:
    return await asyncio.to_thread(collect_facts, server_host=server_host)


def refused_line(exc: ServerRefusal, doing: str) -> Failure:
    if isinstance(exc, ProtocolRefused):
        return Failure(f"{doing} refused: {exc.message}", EXIT_PROTOCOL)
    return Failure(f"{doing} refused: {exc}")


# Commands.


def cmd_register(args: argparse.Namespace) -> int:
    code = args.activation_code or os.environ.get(ACTIVATION_CODE_ENV)
    if not code:
        raise Failure(f"give the activation code with --activation-code or ${ACTIVATION_CODE_ENV}")
    state = open_state(args, create=True)
    existing = state.identity()
    if existing is not None and existing.revoked_at is None and not args.force:
        raise Failure(
            f"this server is already registered as {existing.node_id} with "
            f"{existing.server_url}; use --force to register it again (the old node stays in "
            "Bosun until it is deregistered)"
        )
    pid = state.running_pid()
    if pid:
        raise Failure(f"bosun-agent run (pid {pid}) uses {state.path}: stop it first")
    fingerprint, sources = machine_fingerprint()

    async def go() -> tuple[Identity, dict[str, Any]]:
        async with new_session() as session:
            try:
                client = AgentClient(session, args.url)
            except ValueError as exc:
                raise Failure(str(exc)) from exc
            facts = await facts_of_this_host(client.server_host)
            # --wait: a server still starting (or a network not up yet at boot) is retried.
            deadline = time.monotonic() + args.wait
            while True:
                try:
                    return await register_node(
                        client=client,
                        state=state,
                        activation_id=args.activation_id,
                        activation_code=code,
                        fingerprint=fingerprint,
                        fingerprint_sources=sources,
                        facts=facts,
                        name=args.name,
                        tags=args.tags,
                    )
                except ServerUnavailable:
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(1.0)

    try:
        identity, _ = asyncio.run(go())
    except ActivationRefused as exc:
        raise Failure(f"registration refused: {exc}") from exc
    except ServerRefusal as exc:
        raise refused_line(exc, "registration") from exc
    print(identity.node_id)
    print(
        f"bosun-agent: registered as {identity.node_id} ({identity.name}) with "
        f"{identity.server_url}; now start it: systemctl enable --now bosun-agent",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    state = open_state(args)
    identity = registered_identity(state)
    state.prepare()
    fingerprint, _ = machine_fingerprint(identity.fingerprint_sources)
    with state.locked():
        state.maintain()
        log.info(
            "bosun-agent %s: node %s (%s), server %s, state %s",
            __version__,
            identity.node_id,
            identity.name,
            identity.server_url,
            state.path,
        )
        code = asyncio.run(_run(state, identity, fingerprint))
    return code


async def _run(state: StateDir, identity: Identity, fingerprint: str) -> int:
    async with new_session() as session:
        runtime = host_runtime(AgentClient(session, identity.server_url), state, fingerprint)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runtime.stop)
        code = await runtime.run()
    if runtime.outcome is None:
        log.info("stopped")
    return code


def _run_ended_within(state: StateDir, seconds: float) -> bool:
    """Whether the `run` holding the state directory's lock lets go of it within `seconds`
    (a process's locks go with it when it exits)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if state.running_pid() is None:
            return True
        time.sleep(0.05)
    return False


def cmd_status(args: argparse.Namespace) -> int:
    state = open_state(args)
    identity = state.identity()
    if identity is None:
        raise Failure(f"this server is not registered (nothing in {state.path})")
    now = time.time()
    report: dict[str, Any] = {
        "node_id": identity.node_id,
        "name": identity.name,
        "server": identity.server_url,
        "registered_at": iso(identity.registered_at),
        "key_rotated_at": iso(identity.key_rotated_at),
        "key_age_days": round((now - identity.key_rotated_at) / 86400, 1),
        "key_rotation_pending": state.pending_key() is not None,
        "fingerprint_sources": list(identity.fingerprint_sources),
        "agent_running_pid": state.running_pid(),
        "journal_entries": state.journal_size(),
        "outbox_replies": state.outbox_size(),
        "deregistered_at": iso(identity.revoked_at) if identity.revoked_at else None,
        "agent_version": __version__,
        "state_dir": str(state.path),
    }
    code = EXIT_REVOKED if identity.revoked_at else EXIT_OK
    if not args.offline and identity.revoked_at is None:
        report["server_check"], code = live_check(state)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_status(report)
    return code


def live_check(state: StateDir) -> tuple[dict[str, Any], int]:
    """One signed heartbeat: proves the key, the clock and the server in one go."""

    async def beat(runtime: NodeRuntime) -> dict[str, Any]:
        return await runtime.heartbeat()

    try:
        answer = run_with_runtime(state, beat)
    except NodeStopped as stopped:
        return {"ok": False, "error": stopped.message}, stopped.exit_code
    except AgentError as exc:
        return {"ok": False, "error": str(exc)}, EXIT_ERROR
    check = {"ok": True, "status": answer.get("status")}
    for key in ("heartbeat_interval", "pending_messages", "rotate_key", "server_time"):
        if key in answer:
            check[key] = answer[key]
    if isinstance(answer.get("server_time"), (int, float)):
        check["clock_offset_seconds"] = round(answer["server_time"] - time.time(), 1)
    return check, EXIT_OK


def print_status(report: dict[str, Any]) -> None:
    running = report["agent_running_pid"]
    lines = [
        ("node", f"{report['node_id']} ({report['name']})"),
        ("server", report["server"]),
        ("registered", report["registered_at"]),
        ("key age", f"{report['key_age_days']} days (rotated {report['key_rotated_at']})"),
        ("agent", f"running (pid {running})" if running else "not running"),
        ("journal", f"{report['journal_entries']} messages"),
        ("outbox", f"{report['outbox_replies']} replies waiting"),
        ("state", report["state_dir"]),
    ]
    if report["key_rotation_pending"]:
        lines.append(("key rotation", "pending"))
    if report["deregistered_at"]:
        lines.append(("deregistered", report["deregistered_at"]))
    check = report.get("server_check")
    if check is not None:
        if check["ok"]:
            text = f"{check.get('status')} (heartbeat every {check.get('heartbeat_interval')} s"
            text += f", {check.get('pending_messages', 0)} messages pending)"
        else:
            text = check["error"]
        lines.append(("server says", text))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}")


def cmd_deregister(args: argparse.Namespace) -> int:
    state = open_state(args)
    identity = state.identity()
    if identity is None:
        raise Failure(f"this server is not registered (nothing in {state.path})")

    async def deregister(runtime: NodeRuntime) -> None:
        await runtime.call(protocol.DEREGISTER_PATH, {})

    # Read before telling the server: a running agent hears of it at once and exits.
    pid = state.running_pid()
    if identity.revoked_at is None:
        try:
            run_with_runtime(state, deregister)
        except NodeStopped as stopped:
            if stopped.exit_code != EXIT_REVOKED:  # already deregistered is what we wanted
                if not args.force:
                    raise
                print(f"bosun-agent: warning: {stopped.message}", file=sys.stderr)
        except (AgentError, FingerprintError) as exc:
            if not args.force:
                raise Failure(
                    f"could not deregister: {exc}. Nothing was removed; try again, or use "
                    "--force to forget the local credentials anyway (the node then stays in "
                    "Bosun until an administrator deregisters it)"
                ) from exc
            print(f"bosun-agent: warning: the server was not told: {exc}", file=sys.stderr)
    state.wipe()
    if pid and _run_ended_within(state, RUNNING_AGENT_STOP_SECONDS):
        # The running agent, told by the server, records its revocation as it stops: that
        # write can land after the wipe above and bring the identity back. Once it is gone,
        # wipe again (a no-op when nothing came back).
        state.wipe()
    print(
        f"bosun-agent: deregistered {identity.node_id}; local credentials removed", file=sys.stderr
    )
    if pid:
        print(f"bosun-agent: the running agent (pid {pid}) stops by itself", file=sys.stderr)
    return EXIT_OK


def cmd_rotate_key(args: argparse.Namespace) -> int:
    state = open_state(args)

    async def rotate(runtime: NodeRuntime) -> None:
        await runtime.rotate_key()

    try:
        run_with_runtime(state, rotate)
    except Revoked as exc:
        raise Failure(REVOKED_MESSAGE, EXIT_REVOKED) from exc
    except ServerRefusal as exc:
        raise refused_line(exc, "key rotation") from exc
    print("bosun-agent: rotated the node key", file=sys.stderr)
    return EXIT_OK


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
