"""The embedded channel layer: two instances on one file behave like two processes."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull

from bosun.lib.sqlite_channel_layer import SQLiteChannelLayer


@pytest.fixture
def layers(tmp_path):
    path = str(tmp_path / "channels.sqlite3")
    return SQLiteChannelLayer(path=path), SQLiteChannelLayer(path=path)


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


def test_a_message_sent_by_one_process_reaches_a_channel_received_in_another(layers):
    web, worker = layers

    async def scenario():
        channel = await web.new_channel()
        await worker.send(channel, {"type": "hello", "n": 1, "raw": b"\x00\xff"})
        return await asyncio.wait_for(web.receive(channel), 2)

    assert run(scenario) == {"type": "hello", "n": 1, "raw": b"\x00\xff"}


def test_group_send_reaches_every_member_in_every_process(layers):
    first, second = layers

    async def scenario():
        a = await first.new_channel()
        b = await second.new_channel()
        await first.group_add("dashboard", a)
        await second.group_add("dashboard", b)
        await second.group_send("dashboard", {"type": "event", "id": 7})
        return await asyncio.gather(
            asyncio.wait_for(first.receive(a), 2), asyncio.wait_for(second.receive(b), 2)
        )

    assert run(scenario) == [{"type": "event", "id": 7}, {"type": "event", "id": 7}]


def test_a_discarded_channel_no_longer_gets_group_messages(layers):
    layer, _ = layers

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_discard("g", channel)
        await layer.group_send("g", {"type": "event"})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.2)

    run(scenario)


def test_messages_arrive_in_order(layers):
    sender, receiver = layers

    async def scenario():
        channel = await receiver.new_channel()
        for n in range(20):
            await sender.send(channel, {"type": "n", "n": n})
        return [(await asyncio.wait_for(receiver.receive(channel), 2))["n"] for _ in range(20)]

    assert run(scenario) == list(range(20))


def test_a_full_channel_refuses_direct_sends(tmp_path):
    layer = SQLiteChannelLayer(path=str(tmp_path / "c.sqlite3"), capacity=2)

    async def scenario():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "a"})
        await layer.send(channel, {"type": "b"})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "c"})

    run(scenario)


def test_expired_messages_are_never_delivered(tmp_path):
    layer = SQLiteChannelLayer(path=str(tmp_path / "c.sqlite3"), expiry=0)

    async def scenario():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "stale"})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.2)

    run(scenario)


def test_named_channels_are_received_by_name(layers):
    first, second = layers

    async def scenario():
        await first.send("worker-jobs", {"type": "job"})
        return await asyncio.wait_for(second.receive("worker-jobs"), 2)

    assert run(scenario) == {"type": "job"}


def test_invalid_input_is_refused(layers):
    layer, _ = layers

    async def scenario():
        with pytest.raises(TypeError):
            await layer.send("valid", ["not", "a", "dict"])
        with pytest.raises(TypeError):
            await layer.send("bad channel name!", {"type": "x"})

    run(scenario)


def test_flush_empties_messages_and_groups(layers):
    layer, other = layers

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.send(channel, {"type": "x"})
        await other.flush()
        await layer.group_send("g", {"type": "y"})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.2)

    run(scenario)
