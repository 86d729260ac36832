"""The agent loop against the fake server: delivery, the journal, the outbox, keys, refusals."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from agent_fake_server import FakeBosun, eventually
from agent_harness import facts_provider, register, running_agent

from bosun_agent import facts, protocol
from bosun_agent.handlers import HandlerRegistry, builtin_handlers
from bosun_agent.messages import INTERRUPTED, Message, Reply
from bosun_agent.runtime import (
    EXIT_CLONE,
    EXIT_OK,
    EXIT_PROTOCOL,
    EXIT_REVOKED,
    MAX_REPLY_BYTES,
    REVOKED_MESSAGE,
)
from bosun_agent.state import MemoryState
from bosun_agent.statedir import StateDir

MESSAGE_ID = "7f9d3c1e-2b4a-4c5d-8e6f-0a1b2c3d4e5f"


def counting_handlers(calls: list[str]) -> HandlerRegistry:
    registry = builtin_handlers(facts_provider)

    async def count(message: Message) -> Reply:
        calls.append(message.message_id)
        return Reply.success(counted=len(calls))

    registry.register("Count", count)
    return registry


def test_a_woken_agent_fetches_acks_runs_and_replies(fast: FakeBosun, state_dir: Path) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        async with running_agent(fast, state):
            await eventually(lambda: fast.connected(identity.node_id) == 1)
            message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_PING)
            await eventually(lambda: fast.message(message_id).state == "succeeded", timeout=3)
        message = fast.message(message_id)
        assert message.replies == [
            {"status": "Success", "result": {"pong": True, "agent_version": "0.1.0"}}
        ]
        assert message.delivery_count == 1
        assert StateDir(state_dir).journaled(message_id)
        assert StateDir(state_dir).outbox() == []
        routes = [name for name, _ in fast.requests]
        assert routes.index("fetch") < routes.index("ack") < routes.index("reply")

    asyncio.run(scenario())


def test_a_restarted_agent_reclaims_a_message_its_previous_run_leased_but_never_journaled(
    fast: FakeBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_PING)
        # The previous run fetched it and died before journaling: leased for two minutes.
        fast.message(message_id).state = "leased"
        fast.message(message_id).lease_until = time.time() + 120
        async with running_agent(fast, state):
            await eventually(lambda: fast.message(message_id).state == "succeeded", timeout=3)
        assert fast.fetch_bodies[0].get("reclaim") is True
        assert all("reclaim" not in body for body in fast.fetch_bodies[1:])

    asyncio.run(scenario())


def test_refresh_host_facts_replies_with_the_facts(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state):
            message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_REFRESH_HOST_FACTS)
            await eventually(lambda: fast.message(message_id).state == "succeeded")
        reply = fast.message(message_id).replies[0]
        assert reply["result"]["facts"] == await facts_provider()

    asyncio.run(scenario())


def test_an_unknown_kind_fails_with_a_clear_reply(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state):
            message_id = fast.enqueue(identity.node_id, "aws:runShellScript")
            await eventually(lambda: fast.message(message_id).state == "failed")
        assert fast.message(message_id).replies == [
            {
                "status": "Failed",
                "result": {"error": "this agent does not know message kind aws:runShellScript"},
            }
        ]

    asyncio.run(scenario())


def test_a_handler_that_raises_gives_a_failed_reply_and_the_agent_goes_on(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        registry = builtin_handlers(facts_provider)

        async def broken(message: Message) -> Reply:
            raise RuntimeError("disk on fire")

        registry.register("Broken", broken)
        async with running_agent(fast, state, registry) as agent:
            bad = fast.enqueue(identity.node_id, "Broken")
            await eventually(lambda: fast.message(bad).state == "failed")
            good = fast.enqueue(identity.node_id, protocol.MESSAGE_PING)
            await eventually(lambda: fast.message(good).state == "succeeded")
            assert not agent.task.done()
        assert "disk on fire" in fast.message(bad).replies[0]["result"]["error"]

    asyncio.run(scenario())


def test_a_reply_too_big_for_the_protocol_becomes_a_failed_reply(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        registry = builtin_handlers(facts_provider)

        async def chatty(message: Message) -> Reply:
            return Reply.success(output="x" * protocol.MAX_BODY_BYTES)

        registry.register("Chatty", chatty)
        async with running_agent(fast, state, registry):
            message_id = fast.enqueue(identity.node_id, "Chatty")
            await eventually(lambda: fast.message(message_id).state == "failed")
        error = fast.message(message_id).replies[0]["result"]["error"]
        assert f"more than the {MAX_REPLY_BYTES} a reply can carry" in error

    asyncio.run(scenario())


def test_without_a_websocket_the_agent_polls_at_every_heartbeat(fast: FakeBosun) -> None:
    fast.refuse_websockets = True

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state):
            await eventually(lambda: [n for n, _ in fast.requests].count("fetch") >= 3)
            message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_PING, wake=False)
            await eventually(lambda: fast.message(message_id).state == "succeeded", timeout=3)

    asyncio.run(scenario())


def test_a_lost_wake_up_is_caught_by_the_heartbeats_pending_count(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state):
            await eventually(lambda: fast.connected(identity.node_id) == 1)
            message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_PING, wake=False)
            await eventually(lambda: fast.message(message_id).state == "succeeded", timeout=3)

    asyncio.run(scenario())


def test_a_redelivered_message_is_never_run_twice_and_gets_its_saved_reply(
    fast: FakeBosun, state_dir: Path
) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        async with running_agent(fast, state, counting_handlers(calls)):
            fast.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID)
            await eventually(lambda: fast.message(MESSAGE_ID).state == "succeeded")
        # The server lost the result and hands the same message out again.
        message = fast.message(MESSAGE_ID)
        message.state, message.replies = "pending", []
        async with running_agent(fast, StateDir(state_dir, create=True), counting_handlers(calls)):
            fast.push(identity.node_id, {"type": protocol.WS_WAKE})
            await eventually(lambda: fast.message(MESSAGE_ID).replies != [])
        assert calls == [MESSAGE_ID]
        assert fast.message(MESSAGE_ID).replies == [{"status": "Success", "result": {"counted": 1}}]

    asyncio.run(scenario())


def test_a_message_redelivered_while_it_still_runs_is_acked_again_and_gets_its_real_reply(
    fast: FakeBosun, state_dir: Path
) -> None:
    """Its ack failed and its lease ran out mid-run: not "interrupted", it is running."""
    fast.lease_seconds = 0.3
    fast.fail("ack", 503)

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        registry = builtin_handlers(facts_provider)
        runs: list[str] = []
        finish = asyncio.Event()

        async def slow(message: Message) -> Reply:
            runs.append(message.message_id)
            await finish.wait()
            return Reply.success(finished=True)

        registry.register("Slow", slow)
        async with running_agent(fast, state, registry):
            message_id = fast.enqueue(identity.node_id, "Slow")
            # The heartbeat's pending count brings the lapsed lease back while it runs.
            await eventually(lambda: fast.message(message_id).delivery_count >= 2, timeout=5)
            await eventually(lambda: fast.message(message_id).state == "acked", timeout=5)
            assert fast.message(message_id).replies == []
            finish.set()
            await eventually(lambda: fast.message(message_id).replies != [], timeout=5)
        assert runs == [message_id]
        assert fast.message(message_id).replies == [
            {"status": "Success", "result": {"finished": True}}
        ]

    asyncio.run(scenario())


def test_a_message_journaled_before_a_crash_is_answered_failed_and_not_run(
    fast: FakeBosun, state_dir: Path
) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        fast.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
        # An earlier run journaled the message and died before its ack.
        state.journal_start(MESSAGE_ID)
        async with running_agent(fast, StateDir(state_dir, create=True), counting_handlers(calls)):
            await eventually(lambda: fast.message(MESSAGE_ID).replies != [])
        assert calls == []
        assert fast.message(MESSAGE_ID).replies == [
            {"status": "Failed", "result": {"error": INTERRUPTED}}
        ]
        assert fast.message(MESSAGE_ID).state == "failed"

    asyncio.run(scenario())


def test_a_reply_saved_just_before_a_crash_is_sent_by_the_next_run(
    fast: FakeBosun, state_dir: Path
) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        fast.enqueue(identity.node_id, "Count", message_id=MESSAGE_ID, wake=False)
        # The earlier run finished the message and wrote its reply to the outbox, then died
        # before journaling it done (and before sending it).
        state.journal_start(MESSAGE_ID)
        state._write_outbox(MESSAGE_ID, Reply.success(counted=41))
        async with running_agent(fast, StateDir(state_dir, create=True), counting_handlers(calls)):
            await eventually(lambda: fast.message(MESSAGE_ID).replies != [])
        assert calls == []
        assert fast.message(MESSAGE_ID).replies == [
            {"status": "Success", "result": {"counted": 41}}
        ]
        assert StateDir(state_dir).outbox() == []
        assert StateDir(state_dir).interrupted() == []

    asyncio.run(scenario())


def test_a_reply_that_fails_to_send_is_resent_from_the_outbox_before_new_work(
    fast: FakeBosun, state_dir: Path
) -> None:
    calls: list[str] = []
    fast.fail("reply", 503, 502)

    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        async with running_agent(fast, state, counting_handlers(calls)):
            first = fast.enqueue(identity.node_id, "Count")
            await eventually(lambda: [n for n, _ in fast.requests].count("reply!") == 2)
            second = fast.enqueue(identity.node_id, "Count")
            await eventually(lambda: fast.message(second).state == "succeeded", timeout=5)
            assert fast.message(first).state == "succeeded"
        assert len(calls) == 2
        assert StateDir(state_dir).outbox() == []
        routes = [n for n, _ in fast.requests if n.startswith(("reply", "fetch"))]
        # After a failed reply, no fetch happens until the outbox has gone out.
        last_failure = max(i for i, n in enumerate(routes) if n == "reply!")
        assert routes[last_failure + 1] == "reply"

    asyncio.run(scenario())


def test_the_agent_rotates_its_key_when_the_heartbeat_says_so(
    fast: FakeBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        old_key = fast.nodes[identity.node_id].public_key
        fast.nodes[identity.node_id].rotate_key = True
        async with running_agent(fast, state):
            await eventually(lambda: fast.nodes[identity.node_id].public_key != old_key)
            heartbeats = fast.nodes[identity.node_id].heartbeats
            await eventually(lambda: fast.nodes[identity.node_id].heartbeats > heartbeats + 1)
        node_key = StateDir(state_dir).node_key()
        assert node_key is not None
        assert protocol.public_key_text(node_key) == fast.nodes[identity.node_id].public_key
        assert StateDir(state_dir).pending_key() is None

    asyncio.run(scenario())


def test_the_websocket_can_ask_for_a_rotation(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        old_key = fast.nodes[identity.node_id].public_key
        async with running_agent(fast, state):
            await eventually(lambda: fast.connected(identity.node_id) == 1)
            fast.push(identity.node_id, {"type": protocol.WS_ROTATE_KEY})
            await eventually(lambda: fast.nodes[identity.node_id].public_key != old_key)

    asyncio.run(scenario())


def test_a_rotation_whose_answer_was_lost_completes_with_the_pending_key(
    fast: FakeBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        # The server took the new key, the answer never came back, and the overlap passed.
        pending = protocol.generate_private_key()
        state.save_pending_key(pending)
        node = fast.nodes[identity.node_id]
        node.public_key = protocol.public_key_text(pending)
        async with running_agent(fast, state):
            await eventually(lambda: node.heartbeats >= 2)
        node_key = StateDir(state_dir).node_key()
        assert node_key is not None
        assert protocol.public_key_text(node_key) == node.public_key
        assert StateDir(state_dir).pending_key() is None

    asyncio.run(scenario())


def test_a_lost_rotation_answer_is_retried_with_the_same_pending_key(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        node = fast.nodes[identity.node_id]
        node.rotate_key = True
        fast.lose_rotate_answer = True
        async with running_agent(fast, state):
            await eventually(lambda: state.pending_key() is None and node.previous_key != "")
            await eventually(lambda: [n for n, _ in fast.requests].count("rotate") == 2)
        node_key = state.node_key()
        assert node_key is not None
        assert protocol.public_key_text(node_key) == node.public_key

    asyncio.run(scenario())


def test_a_deregistered_node_stops_with_exit_code_3_and_says_why(
    fast: FakeBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        fast.nodes[identity.node_id].revoked = True
        async with running_agent(fast, state) as agent:
            assert await agent.exit_code() == EXIT_REVOKED
            assert agent.runtime.outcome is not None
            assert agent.runtime.outcome.message == REVOKED_MESSAGE
        assert StateDir(state_dir).identity().revoked_at is not None  # type: ignore[union-attr]

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["frame", "close"])
def test_revocation_over_the_websocket_stops_the_agent_at_once(fast: FakeBosun, how: str) -> None:
    fast.heartbeat_interval = 30  # the heartbeat cannot be what notices

    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state) as agent:
            await eventually(lambda: fast.connected(identity.node_id) == 1)
            started = time.monotonic()
            if how == "frame":
                fast.revoke(identity.node_id)
            else:
                fast.close_websockets(identity.node_id, protocol.CLOSE_DEREGISTERED, "gone")
            assert await agent.exit_code() == EXIT_REVOKED
            assert time.monotonic() - started < 2

    asyncio.run(scenario())


def test_a_cloned_machine_stops_with_exit_code_4(
    fast: FakeBosun, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        monkeypatch.setenv(facts.FINGERPRINT_ENV, "test-machine-2")  # the disk was copied
        async with running_agent(fast, state) as agent:
            assert await agent.exit_code() == EXIT_CLONE
            assert agent.runtime.outcome is not None
            assert "suspected clone" in agent.runtime.outcome.message
        assert fast.nodes[identity.node_id].clone_seen

    asyncio.run(scenario())


def test_an_incompatible_protocol_stops_with_exit_code_5_and_the_servers_words(
    fast: FakeBosun,
) -> None:
    async def scenario() -> None:
        state = MemoryState()
        await register(fast, state)
        fast.protocols = (2,)
        async with running_agent(fast, state) as agent:
            assert await agent.exit_code() == EXIT_PROTOCOL
            assert agent.runtime.outcome is not None
            assert "this server speaks (2,)" in agent.runtime.outcome.message

    asyncio.run(scenario())


def test_the_agent_comes_back_by_itself_after_a_server_restart(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state) as agent:
            await eventually(lambda: fast.connected(identity.node_id) == 1)
            await asyncio.to_thread(fast.stop)
            await eventually(lambda: agent.runtime.stats.heartbeats_failed >= 1)
            await asyncio.to_thread(fast.start)
            await eventually(lambda: fast.connected(identity.node_id) == 1, timeout=5)
            ok = agent.runtime.stats.heartbeats_ok
            await eventually(lambda: agent.runtime.stats.heartbeats_ok > ok, timeout=5)
            assert agent.runtime.stats.reconnects >= 1
            message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_PING)
            await eventually(lambda: fast.message(message_id).state == "succeeded")

    asyncio.run(scenario())


def test_heartbeats_follow_the_interval_the_server_sets(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        node = fast.nodes[identity.node_id]
        async with running_agent(fast, state):
            await asyncio.sleep(1.0)
            fast_rate = node.heartbeats
            fast.heartbeat_interval = 10
            await asyncio.sleep(0.4)  # one more heartbeat carries the new interval
            slowed_at = node.heartbeats
            await asyncio.sleep(1.0)
            assert node.heartbeats == slowed_at
        assert 3 <= fast_rate <= 8  # every 0.2 s ±10 %, from t=0

    asyncio.run(scenario())


def test_a_clean_stop_answers_the_message_it_interrupts(fast: FakeBosun, state_dir: Path) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        registry = builtin_handlers(facts_provider)
        started = asyncio.Event()

        async def slow(message: Message) -> Reply:
            started.set()
            await asyncio.sleep(60)
            return Reply.success()

        registry.register("Slow", slow)
        async with running_agent(fast, state, registry) as agent:
            message_id = fast.enqueue(identity.node_id, "Slow")
            await asyncio.wait_for(started.wait(), 5)
            assert await agent.stop() == EXIT_OK
        assert fast.message(message_id).replies == [
            {
                "status": "Failed",
                "result": {"error": "the agent was stopped while running this message"},
            }
        ]

    asyncio.run(scenario())


def test_a_key_rotated_under_a_running_agent_is_picked_up_on_the_next_refusal(
    fast: FakeBosun, state_dir: Path
) -> None:
    async def scenario() -> None:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        node = fast.nodes[identity.node_id]
        async with running_agent(fast, state):
            await eventually(lambda: node.heartbeats >= 1)
            # `bosun-agent rotate-key` ran beside it, and the old key's overlap ended.
            new_key = protocol.generate_private_key()
            StateDir(state_dir).save_node_key(new_key)
            node.public_key = protocol.public_key_text(new_key)
            beats = node.heartbeats
            await eventually(lambda: node.heartbeats >= beats + 2)

    asyncio.run(scenario())


def test_changed_host_facts_are_reported_once_at_start(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        fast.nodes[identity.node_id].facts = {}
        async with running_agent(fast, state):
            await eventually(lambda: fast.nodes[identity.node_id].heartbeats >= 3)
        assert [n for n, _ in fast.requests].count("facts") == 0  # unchanged since registering

        # An upgrade later, the facts differ from what the server last heard.
        state.save_identity(replace(identity, facts_digest="before-the-upgrade"))
        async with running_agent(fast, state):
            await eventually(lambda: fast.nodes[identity.node_id].facts != {})
            await eventually(lambda: fast.nodes[identity.node_id].heartbeats >= 6)
        assert [n for n, _ in fast.requests].count("facts") == 1
        assert fast.nodes[identity.node_id].facts == await facts_provider()

    asyncio.run(scenario())
