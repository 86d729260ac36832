"""Run Command on a real host: the RunCommand and CancelCommand handlers (PROTOCOL.md).

A run fetches its secure parameters, writes each step's script into a private directory
under the state directory, runs the steps in order (each in a session of its own), uploads
their output while they run, and replies with every step's status and the output the server
has not confirmed yet. Its process groups are recorded on disk while they run, so the next
start of the agent ends whatever a crash left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bosun_agent import protocol
from bosun_agent.backoff import Backoff
from bosun_agent.client import ServerRefusal, ServerUnavailable
from bosun_agent.command_output import RunOutput
from bosun_agent.command_process import CANCELLED, EXITED, ProcessStep, run_process
from bosun_agent.command_spec import (
    CommandSpec,
    PayloadError,
    StepResult,
    StepSpec,
    host_platform_type,
    precondition_holds,
    run_outcome,
    run_reply,
    run_response_code,
    secure_references,
    substitute_secure,
)
from bosun_agent.command_upload import OutputUploader
from bosun_agent.handlers import FactsProvider, HandlerContext, HandlerRegistry
from bosun_agent.messages import Message, Reply
from bosun_agent.process_groups import GroupRecords, end_marked_groups
from bosun_agent.statedir import ensure_private_dir

log = logging.getLogger(__name__)

RUNS_DIR = "runs"  # under the state directory: one private directory per run
PROCESSES_DIR = "processes"  # under the state directory: a record per running process group
SHELL = "/bin/sh"
POWERSHELLS = ("pwsh", "powershell")
SCRIPT_MODE = 0o600


class RunRefused(Exception):
    """The run cannot start (its secure parameters); the reply is Failed with this message."""


def register_command_handlers(
    registry: HandlerRegistry, facts: FactsProvider, *, platform_type: str | None = None
) -> None:
    """RunCommand and CancelCommand for this host, and the clean-up after a crash."""
    runner = CommandRunner(facts, platform_type or host_platform_type())
    registry.register_with_context(protocol.MESSAGE_RUN_COMMAND, runner.run_command)
    registry.register_with_context(protocol.MESSAGE_CANCEL_COMMAND, cancel_command)
    registry.on_start(end_interrupted_runs)


async def cancel_command(message: Message, context: HandlerContext) -> Reply:
    target = message.payload.get("message_id")
    if not isinstance(target, str) or not target:
        return Reply.failed("CancelCommand needs the message_id of the RunCommand to cancel")
    return Reply.success(cancelled=context.running.cancel(target))


async def end_interrupted_runs(context: HandlerContext) -> None:
    """At start: end the process groups of runs a crash interrupted, and remove their
    directories (their scripts may hold secure parameter values)."""
    if context.state_dir is None:
        return
    await GroupRecords(context.state_dir / PROCESSES_DIR).end_leftovers()
    runs = context.state_dir / RUNS_DIR
    leftovers = list(runs.iterdir()) if runs.is_dir() else []
    if leftovers:
        # A run's directory exists before its first process starts, so these also find a
        # group the crash left no record of.
        await end_marked_groups(leftover.name for leftover in leftovers)
    for leftover in leftovers:
        shutil.rmtree(leftover, ignore_errors=True)


class CommandRunner:
    def __init__(self, facts: FactsProvider, platform_type: str) -> None:
        self.facts = facts
        self.platform_type = platform_type

    async def run_command(self, message: Message, context: HandlerContext) -> Reply:
        try:
            spec = CommandSpec.from_payload(message.payload)
        except PayloadError as exc:
            return Reply.failed(f"the RunCommand payload is not usable: {exc}")
        if context.state_dir is None:
            return Reply.failed("Run Command needs the agent's state directory")
        run = CommandRun(self, spec, message.message_id, context, context.state_dir)
        return await run.execute()


class CommandRun:
    """One RunCommand, from its secure parameters to its reply."""

    def __init__(
        self,
        runner: CommandRunner,
        spec: CommandSpec,
        message_id: str,
        context: HandlerContext,
        state_dir: Path,
    ) -> None:
        self.runner = runner
        self.spec = spec
        self.message_id = message_id
        self.context = context
        self.deadline = time.monotonic() + spec.execution_timeout
        self.run_dir = state_dir / RUNS_DIR / message_id
        self.records = GroupRecords(state_dir / PROCESSES_DIR)
        self.cancel = asyncio.Event()
        self.results: list[StepResult] = []
        self.output = RunOutput(spec.output_limit)

    async def execute(self) -> Reply:
        with self.context.running.running(self.message_id) as cancel:
            self.cancel = cancel
            try:
                secrets = await self._secure_values()
            except RunRefused as exc:
                return Reply.failed(str(exc))
            self.output = RunOutput(self.spec.output_limit, secrets.values())
            uploader = OutputUploader(self.context.call, self.message_id, self.output)
            ticking = asyncio.ensure_future(uploader.upload_every_interval())
            try:
                await self._run_steps(secrets)
            finally:
                ticking.cancel()
                await asyncio.gather(ticking, return_exceptions=True)
                shutil.rmtree(self.run_dir, ignore_errors=True)
            cancelled = cancel.is_set()
        # Finished: a CancelCommand from here on finds nothing to cancel.
        outcome = run_outcome(self.results, cancelled)
        result = self._result(outcome, {})
        await uploader.settle(OutputUploader.reply_budget(result))
        return run_reply(self._result(outcome, uploader.tail_allowances(result)))

    def _result(self, outcome: str, allowances: dict[tuple[int, str], int]) -> dict[str, Any]:
        steps = []
        for index, step in enumerate(self.results):
            streams = {
                name: self.output.stream(index, name).to_wire(allowances.get((index, name), 0))
                for name in ("stdout", "stderr")
            }
            steps.append(step.to_wire(streams))
        return {
            "command_id": self.spec.command_id,
            "outcome": outcome,
            "response_code": run_response_code(self.results, outcome),
            "steps": steps,
        }

    # Secure parameters.

    async def _secure_values(self) -> dict[str, str]:
        names = list(self.spec.secure_parameters)
        for step in self.spec.steps:
            with contextlib.suppress(PayloadError):  # a malformed step fails on its own
                for line in step.commands():
                    for name in secure_references(line):
                        if name not in names:
                            raise RunRefused(
                                f"step {step.name} uses {{{{ssm-secure:{name}}}}}, which is "
                                "not among the command's secure_parameters"
                            )
        if not names:
            return {}
        answer = await self._fetch_secure(names)
        if answer is None:
            return {}  # cancelled while the server was away: no step will run
        values = answer.get("parameters")
        if not isinstance(values, dict):
            raise RunRefused("the server's answer for the secure parameters has no parameters")
        missing = [n for n in names if not isinstance(values.get(n), str)]
        if missing:
            raise RunRefused(f"the server did not send the secure parameter {missing[0]}")
        return {name: str(values[name]) for name in names}

    async def _fetch_secure(self, names: list[str]) -> dict[str, Any] | None:
        """The server's answer; None when the run was cancelled while it was unreachable."""
        body = {"message_id": self.message_id, "names": names}
        backoff = Backoff()
        while True:
            try:
                return await self.context.call(protocol.SECURE_PARAMETERS_PATH, body)
            except ServerRefusal as exc:
                raise RunRefused(str(exc)) from exc
            except ServerUnavailable as exc:
                if self.cancel.is_set():
                    return None
                delay = backoff.next_delay()
                if time.monotonic() + delay >= self.deadline:
                    raise RunRefused(f"could not fetch the secure parameters: {exc}") from exc
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.cancel.wait(), delay)

    # Steps.

    async def _run_steps(self, secrets: dict[str, str]) -> None:
        stopped_by = ""  # the status of the step that ended the run early
        for step in self.spec.steps:
            result = StepResult(step.name, step.action)
            self.results.append(result)
            if self.cancel.is_set():
                result.end(protocol.STEP_CANCELLED, "the command was cancelled before this step")
            elif stopped_by:
                result.end(protocol.STEP_SKIPPED, f"not run: an earlier step {stopped_by.lower()}")
            elif time.monotonic() >= self.deadline:
                result.ran = True
                result.end(
                    protocol.STEP_TIMED_OUT,
                    f"the execution timeout ({self.spec.execution_timeout:g} s) ended "
                    "before this step started",
                    protocol.KILLED_RESPONSE_CODE,
                )
            else:
                await self._run_step(step, result, secrets)
            for name in ("stdout", "stderr"):
                self.output.stream(step.index, name).finish()
            if result.status in (protocol.STEP_FAILED, protocol.STEP_TIMED_OUT):
                stopped_by = result.status

    async def _run_step(self, step: StepSpec, result: StepResult, secrets: dict[str, str]) -> None:
        try:
            holds = precondition_holds(step.precondition, self.runner.platform_type)
        except PayloadError as exc:
            result.fail(str(exc))
            return
        if not holds:
            condition = json.dumps(step.precondition)
            platform_type = self.runner.platform_type
            self._skip(step, result, f"its precondition {condition} is false on {platform_type}")
        elif step.action == protocol.ACTION_REFRESH_HOST_FACTS:
            await self._refresh_host_facts(step, result)
        elif step.action == protocol.ACTION_RUN_SHELL_SCRIPT:
            if self.runner.platform_type == "Windows":
                self._skip(step, result, f"{step.action} does not run on Windows")
            else:
                await self._run_script(step, result, secrets, [SHELL], ".sh")
        elif step.action == protocol.ACTION_RUN_POWERSHELL_SCRIPT:
            found = next((path for path in map(shutil.which, POWERSHELLS) if path), None)
            if found is None:
                self._skip(step, result, "no pwsh or powershell is installed on this node")
            else:
                argv = [found, "-NoProfile", "-NonInteractive", "-File"]
                await self._run_script(step, result, secrets, argv, ".ps1")
        else:
            result.fail(f"this agent does not know the action {step.action}")

    def _skip(self, step: StepSpec, result: StepResult, why: str) -> None:
        self.output.stream(step.index, "stdout").write(f"Step {step.name} skipped: {why}.\n")
        result.end(protocol.STEP_SKIPPED, why)

    async def _refresh_host_facts(self, step: StepSpec, result: StepResult) -> None:
        result.ran = True
        try:
            facts = await self.runner.facts()
        except Exception as exc:
            result.fail(f"could not collect the host facts: {exc}")
            return
        result.facts = facts
        addresses = facts.get("ip_addresses") or []
        summary = (
            f"{facts.get('hostname', '?')}: {facts.get('platform_name', '?')} "
            f"{facts.get('platform_version', '')} ({facts.get('architecture', '?')}), "
            f"{len(addresses)} address{'es' if len(addresses) != 1 else ''}, "
            f"agent {facts.get('agent_version', '?')}\n"
        )
        self.output.stream(step.index, "stdout").write(summary)
        result.end(protocol.STEP_SUCCESS, "", 0)

    async def _run_script(
        self,
        step: StepSpec,
        result: StepResult,
        secrets: dict[str, str],
        argv: list[str],
        suffix: str,
    ) -> None:
        try:
            lines = [substitute_secure(line, secrets) for line in step.commands()]
            step_timeout = step.timeout_seconds()
            directory = step.working_directory()
        except PayloadError as exc:
            result.fail(str(exc))
            return
        stderr = self.output.stream(step.index, "stderr")
        ensure_private_dir(self.run_dir.parent)  # mkdir(parents=True) would not make it 0700
        ensure_private_dir(self.run_dir)
        cwd = self.run_dir / directory if directory else self.run_dir
        if not cwd.is_dir():
            message = f"the working directory {directory} does not exist"
            stderr.write(message + "\n")
            result.fail(message)
            return
        script = self.run_dir / f"step-{step.index}{suffix}"
        write_private(script, "\n".join(lines) + "\n")
        timeout = min(step_timeout, self.deadline - time.monotonic())
        result.ran = True
        result.started_at = time.time()
        process = ProcessStep(
            argv=[*argv, str(script)],
            cwd=cwd,
            stdout=self.output.stream(step.index, "stdout"),
            stderr=stderr,
            records=self.records,
            message_id=self.message_id,
            step=step.index,
        )
        try:
            end = await run_process(process, max(timeout, 0.0), self.cancel)
        except OSError as exc:
            result.fail(f"could not start {argv[0]}: {exc.strerror or exc}")
            return
        finally:
            with contextlib.suppress(FileNotFoundError):
                script.unlink()
        if end.how == EXITED:
            code = end.exit_code or 0
            status = protocol.STEP_SUCCESS if code == 0 else protocol.STEP_FAILED
            result.end(status, "" if code == 0 else f"exited with {code}", code)
        elif end.how == CANCELLED:
            result.end(protocol.STEP_CANCELLED, "cancelled", protocol.KILLED_RESPONSE_CODE)
        elif step_timeout <= timeout:
            details = f"timed out after {step_timeout:g} s (timeoutSeconds)"
            result.end(protocol.STEP_TIMED_OUT, details, protocol.KILLED_RESPONSE_CODE)
        else:
            details = f"the execution timeout ({self.spec.execution_timeout:g} s) ended"
            result.end(protocol.STEP_TIMED_OUT, details, protocol.KILLED_RESPONSE_CODE)


def write_private(path: Path, text: str) -> None:
    """A new file only this user can read: it may hold secure parameter values."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # O_EXCL below: never write through a file or link that was there
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, SCRIPT_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
