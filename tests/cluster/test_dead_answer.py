"""An answer made by a node killed between the router's accept and its `answered` append
(issue 16's goal-size day: a kiosk saw the answer, on resume, while the log had none): the
survivor that takes the node over logs it once and tells the parties, with the numbers the
dead node took."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling import messages as m
from tests.cluster.losing import NumberingBus, issued
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, make_desk
from tests.switchboard.test_steps import offered_call


@pytest.fixture
async def survivor(database: Database, redis: Redis, key_prefix: str) -> AsyncIterator[Desk]:
    router = RedisRouter(redis, key_prefix, QUEUES, instance="survivor.1")
    await router.start()
    async for made in make_desk(database, router=router, bus=NumberingBus()):
        yield made


async def test_the_survivor_logs_a_dead_nodes_unlogged_answer(survivor: Desk, redis: Redis,
                                                               key_prefix: str) -> None:
    desk = survivor
    call_id = await offered_call(desk)
    dead = RedisRouter(redis, key_prefix, QUEUES, instance="dead.1")
    at = desk.clock() + 2
    # its own task: the numbers the dead node took are not this task's to send
    await asyncio.create_task(dead.accept(call_id, ALICE.id, at, 1))
    took = await issued(redis, key_prefix)
    router = desk.s.router
    assert isinstance(router, RedisRouter)
    assert await router.answered_by("dead.1") == [(call_id, ALICE.id, at)]
    kiosk = desk.sinks[KIOSK.principal]
    kiosk.frames.clear()

    await desk.board.answer_again(call_id, ALICE.id, at)
    # a second run: logged already, told again under the same numbers (as the node may
    # have died before its sends: `offers.told_again`), which a line drops as heard
    await desk.board.answer_again(call_id, ALICE.id, at)

    call = await router.get_call(call_id)
    assert call is not None
    session = await desk.db.get_session(call.session_id)
    assert session is not None and session.specialist_id == ALICE.id
    assert [e.type for e in session.events].count("answered") == 1
    assert [f["type"] for f in kiosk.frames if f["type"].startswith("call.")] == [
        "call.connected"] * 2
    bus = desk.s.bus
    assert isinstance(bus, NumberingBus)
    for principal in (KIOSK.principal, ALICE.principal):  # the dead node's numbers, again
        assert bus.numbers[principal][-2:] == [took[principal]] * 2
    assert await issued(redis, key_prefix) == took

    await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
    assert await router.answered_by("dead.1") == []


async def test_a_logged_answer_is_left_alone(survivor: Desk, redis: Redis, key_prefix: str
                                             ) -> None:
    """The answering node logged and told before it died: nothing logged again and no
    new number; told again under the answer's own numbers, which the members' lines drop
    as heard (`reorder`)."""
    desk = survivor
    call_id = await offered_call(desk)
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    router = desk.s.router
    assert isinstance(router, RedisRouter)
    ((_, agent, at),) = await router.answered_by("survivor.1")
    took = await issued(redis, key_prefix)
    bus = desk.s.bus
    assert isinstance(bus, NumberingBus)
    kiosk = desk.sinks[KIOSK.principal]
    kiosk.frames.clear()
    await desk.board.answer_again(call_id, agent, at)
    assert [f["type"] for f in kiosk.frames if f["type"].startswith("call.")] == [
        "call.connected"]
    assert bus.numbers[KIOSK.principal][-2:] == [took[KIOSK.principal]] * 2
    assert await issued(redis, key_prefix) == took
    call = await router.get_call(call_id)
    assert call is not None
    session = await desk.db.get_session(call.session_id)
    assert session is not None and [e.type for e in session.events].count("answered") == 1


def watching(desk: Desk) -> tuple[Desk, asyncio.Event]:
    """The desk on the real log, and an event set once a step has read a session's members
    (it found the answer unlogged: it waits)."""
    log, read = desk.db, asyncio.Event()

    class Watched:
        def __getattr__(self, name: str) -> Any:
            return getattr(log, name)

        async def session_members(self, session_id: str) -> set[str] | None:
            members = await log.session_members(session_id)
            read.set()
            return members

    services = dataclasses.replace(desk.s, session_log=Watched())  # type: ignore[arg-type]
    return desk.board_of(services), read


async def test_a_party_resumed_meanwhile_hears_connected_once_it_is_logged(
        survivor: Desk, redis: Redis, key_prefix: str) -> None:
    """The kiosk was on the dead node and comes back before the takeover: its re-sync waits
    for the answer's append instead of telling it connected (the goal-size day's 'kiosk saw
    the answer, the log has none', and a hang-up before the takeover that followed it)."""
    desk = survivor
    call_id = await offered_call(desk)
    dead = RedisRouter(redis, key_prefix, QUEUES, instance="dead.1")
    at = desk.clock() + 2
    await asyncio.create_task(dead.accept(call_id, ALICE.id, at, 1))
    watched, read = watching(desk)
    back = asyncio.create_task(watched.connect(KIOSK, desk.resumes[KIOSK.principal]))
    await asyncio.wait_for(read.wait(), 30)
    assert not back.done()
    await desk.board.answer_again(call_id, ALICE.id, at)  # the takeover
    kiosk = await asyncio.wait_for(back, 30)
    # the survivor's own `call.connected` (the dead node's number: a cluster's line drops it
    # as decided before the connection attached), then the re-sync's, both after the append
    connected = [f for f in kiosk.frames if f["type"] == "call.connected"]
    assert connected and connected[-1]["resumed"]
    call = await desk.s.router.get_call(call_id)
    assert call is not None
    session = await desk.db.get_session(call.session_id)
    assert session is not None and session.specialist_id == ALICE.id


async def test_a_cancel_waits_for_the_survivor_to_log_the_answer(
        survivor: Desk, redis: Redis, key_prefix: str) -> None:
    """The kiosk cancels before the dead node is taken over: its cancel waits, the survivor
    logs the answer, and the call is answered then hung up, as the kiosk hears it (the
    answer told again by the cancel: on two nodes it could otherwise follow the end)."""
    desk = survivor
    call_id = await offered_call(desk)
    dead = RedisRouter(redis, key_prefix, QUEUES, instance="dead.1")
    at = desk.clock() + 2
    await asyncio.create_task(dead.accept(call_id, ALICE.id, at, 1))
    kiosk = desk.sinks[KIOSK.principal]
    kiosk.frames.clear()
    watched, read = watching(desk)
    cancel = asyncio.create_task(watched.drive(KIOSK, m.CallCancel(call_id=call_id)))
    await asyncio.wait_for(read.wait(), 30)  # it found the answer unlogged: it waits
    await desk.board.answer_again(call_id, ALICE.id, at)  # the takeover
    await asyncio.wait_for(cancel, 30)
    assert [(f["type"], f.get("resumed"), f.get("reason")) for f in kiosk.frames
            if f["type"].startswith("call.")] == [
        ("call.connected", False, None), ("call.connected", True, None),
        ("call.ended", None, "hangup")]
    rows, _ = await desk.db.list_sessions(terminal=KIOSK.id)
    assert [(r.state, r.specialist_id) for r in rows] == [("ended", ALICE.id)]
