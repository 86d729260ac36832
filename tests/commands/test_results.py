"""What agents report: the start (ack), the result (reply), output, and host facts."""

from __future__ import annotations

import logging

import pytest
from bosun_agent import protocol
from django.core.files.storage import default_storage

from access.authorization import Principal
from commands.models import Command, Invocation, OutputChunk
from commands.output import INLINE_CHARS, live_output, stream_full_text
from commands.services.sweep import commands_sweep
from fleet.models import ManagedNode, MessageState, NodeMessage
from tests.commands.runs import (
    ack,
    chunk,
    fetch,
    reply,
    result,
    send,
    start,
    step,
    stream,
    upload,
)
from tests.fleet.protocol.agents import facts_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def command(admin, agent) -> Command:
    return send(admin, instance_ids=[agent.node_id])


@pytest.fixture
def running(agent, command) -> str:
    """The message id of the agent's started run."""
    return start(agent)["message_id"]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def invocation() -> Invocation:
    return Invocation.objects.get()


def answer(agent, message_id, body, status=None):
    response = reply(agent, message_id, body, status)
    assert response.status_code == 200, response.content
    return response.json()


# --- Started --------------------------------------------------------------------------------


def test_the_ack_starts_the_invocation_and_the_command(agent, command):
    [message] = fetch(agent)
    assert invocation().status == "Pending"
    response = ack(agent, message["message_id"])
    assert response.json()["state"] == MessageState.ACKED
    started = invocation()
    assert (started.status, started.status_details) == ("InProgress", "InProgress")
    acked_at = NodeMessage.objects.get().acked_at
    assert started.started_at == acked_at
    command.refresh_from_db()
    assert command.status == "InProgress"


def test_a_repeated_ack_changes_nothing(agent, command):
    [message] = fetch(agent)
    ack(agent, message["message_id"])
    first = invocation().started_at
    assert ack(agent, message["message_id"]).status_code == 200
    assert invocation().started_at == first


def test_a_delayed_invocation_starts_when_its_offline_node_acks(admin, agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(status="ConnectionLost")
    send(admin, instance_ids=[agent.node_id])
    assert invocation().status == "Delayed"
    start(agent)
    assert invocation().status == "InProgress"


# --- Replies --------------------------------------------------------------------------------


def test_a_success_reply_ends_the_invocation_with_its_steps(agent, command, running):
    body = result(steps=[step(stdout=stream("hello\n"), stderr=stream("warn\n"))])
    assert answer(agent, running, body)["accepted"]
    done = invocation()
    assert (done.status, done.status_details, done.response_code) == ("Success", "Success", 0)
    assert done.finished_at is not None and done.reason == ""
    [stored] = done.steps
    assert stored["name"] == "runShellScript" and stored["status"] == "Success"
    assert stored["started_at"] == 1764158400.1
    assert stored["stdout"] == {
        "inline": "hello\n",
        "length": 6,
        "inline_cut": False,
        "dropped_bytes": 0,
        "file": "",
    }
    assert stored["stderr"]["inline"] == "warn\n"
    command.refresh_from_db()
    assert (command.status, command.completed_count) == ("Success", 1)


@pytest.mark.parametrize(
    ("outcome", "status", "details"),
    [
        ("Failed", "Failed", "Failed"),
        ("TimedOut", "TimedOut", "ExecutionTimedOut"),
        ("Cancelled", "Cancelled", "Cancelled"),
    ],
)
def test_each_outcome_ends_the_invocation_so(agent, command, running, outcome, status, details):
    answer(agent, running, result(outcome, response_code=-1 if outcome != "Failed" else 2))
    done = invocation()
    assert (done.status, done.status_details) == (status, details)
    assert done.response_code == (2 if outcome == "Failed" else -1)


def test_a_failure_without_steps_is_the_agent_being_interrupted(agent, command, running):
    error = "the agent stopped while the command ran (restart); it was not run again"
    answer(agent, running, {"error": error}, status="Failed")
    done = invocation()
    assert (done.status, done.status_details) == ("Failed", "Failed")
    assert done.reason == error
    assert done.steps == [] and done.response_code is None
    command.refresh_from_db()
    assert (command.status, command.error_count) == ("Failed", 1)


def test_a_failure_without_steps_or_error_gets_a_default_reason(agent, command, running):
    answer(agent, running, {}, status="Failed")
    assert invocation().reason == "The agent reported a failure without details."


def test_the_failed_step_and_the_skipped_ones_are_kept_in_order(agent, command, running):
    body = result(
        "Failed",
        steps=[
            step("Success", name="one"),
            step("Failed", name="two", response_code=3, stderr=stream("boom\n")),
            step("Skipped", name="three", response_code=-1),
        ],
        response_code=3,
    )
    answer(agent, running, body)
    done = invocation()
    assert [(s["name"], s["status"]) for s in done.steps] == [
        ("one", "Success"),
        ("two", "Failed"),
        ("three", "Skipped"),
    ]
    assert done.steps[1]["stderr"]["inline"] == "boom\n"
    assert done.response_code == 3


def test_a_reply_without_an_ack_still_records_a_start(agent, command):
    [message] = fetch(agent)
    answer(agent, message["message_id"], result())
    done = invocation()
    assert done.status == "Success"
    assert done.started_at is not None and done.started_at <= done.finished_at


def test_an_unknown_outcome_follows_the_reply_status(agent, command, running):
    answer(agent, running, result("Weird", steps=[step()]), status="Success")
    assert invocation().status == "Success"


def test_a_boolean_response_code_is_not_taken_as_a_number(agent, command, running):
    answer(agent, running, {**result(), "response_code": True})
    assert invocation().response_code is None


@pytest.mark.parametrize(
    "steps",
    [
        ["not a step"],
        [{"status": "Exploded"}],
        [{"name": "x"}],
        [step(), 7],
    ],
)
def test_a_malformed_step_report_fails_the_invocation_never_the_request(
    agent, command, running, steps, caplog
):
    with caplog.at_level(logging.WARNING, logger="commands.services.results"):
        body = answer(agent, running, result("Success", steps=steps))
    assert body["accepted"]
    done = invocation()
    assert (done.status, done.status_details) == ("Failed", "Failed")
    assert done.reason.startswith("Malformed reply: ")
    assert done.steps == []
    assert "malformed" in caplog.text
    command.refresh_from_db()
    assert command.status == "Failed"


@pytest.mark.parametrize(
    "steps",
    [
        [step(started_at=10**400)],
        [step(stdout={"offset": 10**30, "data": "x"})],
        [step(stdout={"offset": 2**40, "data": "x"})],
    ],
    ids=["huge-time", "huge-offset", "offset-past-32-bits"],
)
def test_numbers_too_large_to_store_are_a_malformed_reply_not_a_server_error(
    agent, command, running, steps
):
    body = answer(agent, running, result("Success", steps=steps))
    assert body["accepted"]
    done = invocation()
    assert done.status == "Failed" and done.reason.startswith("Malformed reply: ")


def test_a_response_code_too_large_to_store_is_not_a_server_error(agent, command, running):
    body = answer(agent, running, {**result(), "response_code": 10**30})
    assert body["accepted"]
    assert invocation().status == "Success"
    assert invocation().response_code is None


def test_the_first_reply_wins_and_later_ones_are_ignored(agent, command, running):
    assert answer(agent, running, result("Success"))["accepted"]
    late = answer(agent, running, result("Failed", response_code=9))
    assert late == {"message_id": running, "state": MessageState.SUCCEEDED, "accepted": False}
    done = invocation()
    assert (done.status, done.response_code) == ("Success", 0)
    command.refresh_from_db()
    assert (command.status, command.error_count) == ("Success", 0)


def test_a_reply_to_an_invocation_the_server_already_ended_is_ignored(agent, command, running):
    Invocation.objects.update(
        status="TimedOut", status_details="ExecutionTimedOut", reason="silent"
    )
    assert answer(agent, running, result("Success"))["accepted"]
    done = invocation()
    assert (done.status_details, done.reason) == ("ExecutionTimedOut", "silent")


# --- Output ---------------------------------------------------------------------------------


def stdout_of(done: Invocation, index: int = 0) -> dict:
    return done.steps[index]["stdout"]


def test_chunks_out_of_order_are_assembled_in_offset_order(agent, command, running):
    upload(agent, running, [chunk(6, "world\n"), chunk(0, "hello ")])
    upload(agent, running, [chunk(12, "bye\n")])
    answer(agent, running, result(steps=[step(stdout=stream(offset=16))]))
    assert stdout_of(invocation())["inline"] == "hello world\nbye\n"
    assert stdout_of(invocation())["length"] == 16


def test_duplicated_and_overlapping_chunks_are_assembled_once(agent, command, running):
    upload(agent, running, [chunk(0, "abcdef")])
    upload(agent, running, [chunk(0, "abcdef"), chunk(3, "defghi")])
    upload(agent, running, [chunk(4, "ef")])
    answer(agent, running, result(steps=[step(stdout=stream("ghijkl", offset=6))]))
    assert stdout_of(invocation())["inline"] == "abcdefghijkl"


def test_a_resent_chunk_that_grew_since_its_first_upload_keeps_the_new_text(
    agent, command, running
):
    # The first upload was stored but its answer lost; the agent sends all it has not seen
    # confirmed again, from the same offset, by now longer.
    upload(agent, running, [chunk(0, "hel")])
    upload(agent, running, [chunk(0, "hello\n")])
    upload(agent, running, [chunk(6, "bye\n")])
    answer(agent, running, result(steps=[step(stdout=stream(offset=10))]))
    assert stdout_of(invocation())["inline"] == "hello\nbye\n"


def test_a_reply_tail_that_grew_past_an_unconfirmed_upload_keeps_the_new_text(
    agent, command, running
):
    upload(agent, running, [chunk(0, "partial")])
    answer(agent, running, result(steps=[step(stdout=stream("partial and the rest\n"))]))
    assert stdout_of(invocation())["inline"] == "partial and the rest\n"


def test_a_gap_in_the_output_is_marked(agent, command, running):
    upload(agent, running, [chunk(0, "start\n"), chunk(20, "end\n")])
    answer(agent, running, result(steps=[step(stdout=stream(offset=24))]))
    text = stdout_of(invocation())["inline"]
    assert text == "start\n\n[... 14 characters were lost in transit ...]\nend\n"


def test_each_step_and_stream_is_assembled_apart(agent, command, running):
    upload(
        agent,
        running,
        [
            chunk(0, "one-out"),
            chunk(0, "one-err", stream="stderr"),
            chunk(0, "two-out", step=1),
        ],
    )
    answer(
        agent,
        running,
        result(steps=[step(name="a"), step(name="b", stderr=stream("two-err"))]),
    )
    first, second = invocation().steps
    assert (first["stdout"]["inline"], first["stderr"]["inline"]) == ("one-out", "one-err")
    assert (second["stdout"]["inline"], second["stderr"]["inline"]) == ("two-out", "two-err")


def test_output_so_far_is_readable_while_the_step_runs(agent, command, running):
    upload(agent, running, [chunk(4, "two\n"), chunk(0, "one\n")])
    assert live_output(invocation(), 0, "stdout") == "one\ntwo\n"
    assert stream_full_text(invocation(), 0, "stdout") == "one\ntwo\n"


def test_long_output_keeps_24000_characters_inline_and_the_whole_in_storage(
    agent, command, running, media
):
    text = "".join(f"line {n:06d}\n" for n in range(5000))  # 60,000 characters
    pieces = [text[i : i + 16000] for i in range(0, len(text), 16000)]
    offsets = range(0, len(text), 16000)
    upload(agent, running, [chunk(o, p) for o, p in zip(offsets, pieces, strict=True)][:3])
    tail = pieces[3]
    answer(agent, running, result(steps=[step(stdout=stream(tail, offset=48000))]))
    done = invocation()
    out = stdout_of(done)
    assert out["inline"] == text[:INLINE_CHARS]
    assert (out["length"], out["inline_cut"]) == (len(text), True)
    assert out["file"].startswith(f"commands/{command.command_id}/{done.node_id}/0.stdout")
    assert default_storage.open(out["file"]).read().decode() == text
    assert (media / out["file"]).is_file()
    assert stream_full_text(done, 0, "stdout") == text
    assert not OutputChunk.objects.exists()


def test_output_of_exactly_24000_characters_stays_inline_only(agent, command, running, media):
    text = "x" * INLINE_CHARS
    upload(agent, running, [chunk(0, text)])
    answer(agent, running, result(steps=[step(stdout=stream(offset=INLINE_CHARS))]))
    out = stdout_of(invocation())
    assert (out["inline"], out["inline_cut"], out["file"]) == (text, False, "")
    assert not any(media.rglob("*.txt"))


def test_chunks_are_deleted_once_the_invocation_ends(agent, command, running):
    upload(agent, running, [chunk(0, "a"), chunk(0, "b", stream="stderr")])
    assert OutputChunk.objects.count() == 2
    answer(agent, running, result(steps=[step(stdout=stream(offset=1), stderr=stream(offset=1))]))
    assert not OutputChunk.objects.exists()


def test_chunks_of_an_interrupted_run_are_assembled_or_dropped_not_left_behind(
    agent, command, running
):
    upload(agent, running, [chunk(0, "half")])
    answer(agent, running, {"error": "agent restarted"}, status="Failed")
    assert not OutputChunk.objects.exists()


def test_bytes_the_agent_dropped_over_its_limit_are_reported(agent, command, running):
    body = result(steps=[step(stdout=stream("kept", dropped_bytes=1234))])
    answer(agent, running, body)
    out = stdout_of(invocation())
    assert (out["inline"], out["dropped_bytes"]) == ("kept", 1234)


def test_a_negative_dropped_count_or_offset_is_taken_as_zero(agent, command, running):
    body = result(steps=[step(stdout={"offset": -5, "data": "ok", "dropped_bytes": -3})])
    answer(agent, running, body)
    out = stdout_of(invocation())
    assert (out["inline"], out["dropped_bytes"]) == ("ok", 0)


# --- Host facts -----------------------------------------------------------------------------


@pytest.fixture
def facts_command(admin, agent) -> Command:
    return send(admin, document_name="Bosun-RefreshHostFacts", instance_ids=[agent.node_id])


def facts_step(facts) -> dict:
    return step(
        name="refreshHostFacts",
        action=protocol.ACTION_REFRESH_HOST_FACTS,
        stdout=stream("facts refreshed\n"),
        facts=facts,
    )


def test_a_refresh_host_facts_step_updates_the_node(agent, facts_command):
    message = start(agent)
    assert message["payload"]["steps"][0]["action"] == protocol.ACTION_REFRESH_HOST_FACTS
    facts = facts_of("renamed-host", platform_version="13", kernel_version="6.12.0")
    answer(agent, message["message_id"], result(steps=[facts_step(facts)]))
    node = ManagedNode.objects.get(pk=agent.node_id)
    assert (node.hostname, node.platform_version, node.kernel_version) == (
        "renamed-host",
        "13",
        "6.12.0",
    )
    assert node.facts["hostname"] == "renamed-host"
    assert invocation().steps[0]["facts"]["hostname"] == "renamed-host"
    assert invocation().status == "Success"


def test_malformed_facts_are_ignored_and_the_node_kept(agent, facts_command):
    message = start(agent)
    answer(agent, message["message_id"], result(steps=[facts_step({"hostname": 5})]))
    assert ManagedNode.objects.get(pk=agent.node_id).hostname == "web-1"
    assert invocation().status == "Success"


def test_facts_in_a_shell_step_are_not_taken(agent, command, running):
    answer(agent, running, result(steps=[step(facts=facts_of("sneaky"))]))
    assert ManagedNode.objects.get(pk=agent.node_id).hostname == "web-1"


# --- After the end --------------------------------------------------------------------------


def test_a_finished_command_is_left_alone_by_the_sweep(agent, command, running):
    answer(agent, running, result())
    assert commands_sweep() == 0
    command.refresh_from_db()
    assert command.status == "Success"
