"""An end made by a node killed between the routing transaction and its append (issue
16's goal-size day: a phone's hang-up on the killed node; the session stayed connected in
the log and the specialist on the other node never heard the end): the survivor that
takes the node over finds it among the node's recent ends (`en:<instance>`), closes the
session as it ended and tells those who were in it; a logged end is left alone."""

from __future__ import annotations

from redis.asyncio import Redis

from server.cluster.keys import ENDS_WATCHED_S, recent_ends
from server.cluster.router import RedisRouter
from signaling import messages as m
from signaling.backend import Ending
from signaling.identity import Identity
from signaling.model import Call
from signaling.switchboard import ANY, STEPS
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk
from tests.switchboard.test_steps import connected_call


async def _step_then_killed(desk: Desk, who: Identity, msg: m.Inbound) -> None:
    step = STEPS.get((who.role, type(msg))) or STEPS[(ANY, type(msg))]
    await step(desk.s, who, msg)


def _router(desk: Desk) -> RedisRouter:
    router = desk.s.router
    assert isinstance(router, RedisRouter)
    return router


async def test_the_survivor_closes_and_tells_a_dead_nodes_unlogged_hangup(
        survivor: Desk, dead: Desk) -> None:
    call_id = await connected_call(survivor)
    await _step_then_killed(dead, KIOSK, m.CallHangup(call_id=call_id))
    ended_by = await _router(survivor).ended_by("dead.1")
    assert ended_by == [call_id]
    alice = survivor.sinks[ALICE.principal]
    alice.frames.clear()

    await survivor.board.ends_again(ended_by)
    await survivor.board.ends_again(ended_by)  # a second run: closed already

    ends = [f for f in alice.frames if f["type"] == "call.ended"]
    assert [(f["call_id"], f["reason"], f["by"]) for f in ends] == [
        (call_id, "hangup", KIOSK.principal)]
    session = await survivor.db.get_session(ends[0]["session_id"])
    assert session is not None
    assert (session.state, session.end_reason) == ("ended", "hangup")
    assert [e.type for e in session.events].count("ended") == 1
    assert {p.participant_id for p in session.participants if p.left_at is not None} == {
        ALICE.principal, KIOSK.principal}


async def test_a_logged_end_and_a_live_call_are_left_alone(survivor: Desk, dead: Desk
                                                            ) -> None:
    """Most of a dead node's recent ends were logged before it died: nothing again; a
    live call named with them (its session open, its call in routing) is not closed
    either, nor is an unknown one."""
    call_id = await connected_call(survivor)
    await survivor.drive(KIOSK, m.CallHangup(call_id=call_id))
    assert await _router(survivor).ended_by("survivor.1") == [call_id]
    again = await survivor.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-2"))
    live: str = again.sends[0][1].call_id  # type: ignore[attr-defined]  (waits: Alice wraps up)
    alice = survivor.sinks[ALICE.principal]
    alice.frames.clear()
    await survivor.board.ends_again([call_id, live, "c_unknown"])
    assert [f for f in alice.frames if f["type"] == "call.ended"] == []
    rows, _ = await survivor.db.list_sessions(terminal=KIOSK.id)
    assert sorted((r.call_id, r.state) for r in rows) == sorted(
        [(call_id, "ended"), (live, "queued")])
    rows = [r for r in rows if r.call_id == call_id]
    assert rows[0].end_reason == "hangup"
    session = await survivor.db.get_session(rows[0].id)
    assert session is not None and [e.type for e in session.events].count("ended") == 1
    assert await _router(dead).ended_by("dead.1") == []


async def test_only_the_last_minute_of_ends_is_watched(redis: Redis, key_prefix: str
                                                      ) -> None:
    """The list is the node's ends of the last `ENDS_WATCHED_S` (an older one is dropped
    as the next end is kept), and only ends that kept an `Ending`; it expires with its
    node."""
    router = RedisRouter(redis, key_prefix, QUEUES, instance="n.1")
    await router.start()
    for cid, at, ending in (("c1", 100.0, True), ("c2", 100.0 + ENDS_WATCHED_S + 1, True),
                            ("c3", 170.0, False)):
        await router.enqueue(Call(id=cid, session_id="s" + cid, queue=QUEUES[0].id,
                                  terminal_id="t" + cid, enqueued_at=at))
        await router.remove(cid, at, Ending(at=at, reason="cancelled") if ending else None)
    assert await router.ended_by("n.1") == ["c2"]
    assert 0 < await redis.ttl(recent_ends(key_prefix, "n.1")) <= 2 * ENDS_WATCHED_S
    await router.forget_ends_of("n.1")
    assert await router.ended_by("n.1") == []
