"""A lost recorder names every gap it leaves, also of calls that are over (issue 16's
goal-size day 3, `c_e0af02470ab89a8b`: answered 0.3 s after node 1's kill and given rec1,
whose socket was on it; the parties' offers went to the dead node, and the call ended
before the survivor's takeover came to it. The log had `recording_started` and nothing
else: an unrecorded call whose gap it did not name).

Real Redis router and recorder pool, the real catalog on SQLite and PostgreSQL. The
recorder's socket closes as a dead node's takeover closes it (`Switchboard.disconnect`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.recorders import RedisRecorderPool
from server.cluster.router import RedisRouter
from server.recording.catalog import FileCatalog
from server.storage.db import Database
from signaling import events as ev
from signaling import messages as m
from signaling.identity import Identity, Role
from signaling.messages import RecordingManifest
from signaling.model import Call
from signaling.recorders import Assignment, RecordingSetup, Unassigned
from tests.switchboard import conftest as desks
from tests.switchboard.conftest import (
    ALICE,
    BOB,
    KIOSK,
    QUEUES,
    RECORDER,
    SITE,
    Desk,
    make_desk,
)

KIOSK2 = Identity(role=Role.TERMINAL, id="T2", name="二号机", site=SITE)


class ReadHookRouter(RedisRouter):
    """A Redis router that runs another step just before one read of a call: the moment
    another node's step lands while the hand-over goes through the lost recorder's calls."""

    before_read: tuple[str, Callable[[], Awaitable[object]]] | None = None

    async def get_call(self, call_id: str) -> Call | None:
        if self.before_read is not None and self.before_read[0] == call_id:
            step, self.before_read = self.before_read[1], None
            await step()
        return await super().get_call(call_id)


@pytest.fixture
async def desk(redis: Redis, key_prefix: str, database: Database, tmp_path: Path
               ) -> AsyncIterator[Desk]:
    router = ReadHookRouter(redis, key_prefix, QUEUES)
    await router.start()
    setup = RecordingSetup(pool=RedisRecorderPool(redis, key_prefix),
                           catalog=FileCatalog(database, tmp_path))
    async for made in make_desk(database, router=router, recording=setup):
        yield made


async def _answered(desk: Desk) -> tuple[str, str]:
    """rec1 live, a call answered and given to it: (call id, session id)."""
    _, alice, offered = await desks.offered_recorded(desk)
    await desk.drive(ALICE, m.CallAccept(call_id=offered["call_id"], offer=offered["offer"]))
    connected = [f for f in alice.frames if f["type"] == "call.connected"][-1]
    return str(offered["call_id"]), str(connected["session_id"])


async def _lost(desk: Desk) -> None:
    """rec1's socket is gone (its node's takeover closes it)."""
    await desk.board.disconnect(RECORDER, desk.epochs[RECORDER.principal],
                                desk.sinks[RECORDER.principal])


async def _recording_events(desk: Desk, session_id: str) -> list[tuple[str, Any]]:
    detail = await desk.db.get_session(session_id)
    assert detail is not None
    return [(e.type, e.data.get("reason")) for e in detail.events
            if e.type.startswith("recording_")]


async def _segment(desk: Desk, call_id: str, session_id: str, party: str, closed: bool
                   ) -> None:
    await desk.drive(RECORDER, m.RecordSegment(call_id=call_id, session_id=session_id,
                                               participant_id=party, segment=1,
                                               path=f"x/{party}-1.webm"))
    if closed:
        await desk.drive(RECORDER, m.RecordManifest(
            call_id=call_id, session_id=session_id, participant_id=party,
            manifest=RecordingManifest(segment=1, state="finished", path=f"x/{party}-1.webm")))


async def test_a_call_over_before_its_recorder_was_lost_has_its_gap_named_once(
        desk: Desk) -> None:
    """The hang-up released the recorder as usual (`record.stop` to a recorder already
    dead), then the loss was noticed: nothing of the call was ever written."""
    call_id, session_id = await _answered(desk)
    await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
    await _lost(desk)
    await _lost(desk)  # the disconnect run again (a backend failed): named once still
    assert await _recording_events(desk, session_id) == [
        ("recording_started", None), ("recording_stopped", "hangup"),
        ("recording_interrupted", "recorder_lost")]


async def test_a_call_that_ends_as_its_recorder_is_handed_on_has_its_gap_named(
        desk: Desk) -> None:
    """The pool gave the lost recorder's call back, and the call ended before the
    hand-over read it: released, and named."""
    call_id, session_id = await _answered(desk)
    router = desk.s.router
    assert isinstance(router, ReadHookRouter)
    router.before_read = (call_id, lambda: desk.drive(KIOSK, m.CallHangup(call_id=call_id)))
    await _lost(desk)
    assert router.before_read is None
    assert await _recording_events(desk, session_id) == [
        ("recording_started", None), ("recording_interrupted", "recorder_lost")]


@pytest.mark.parametrize("kiosk_closed", [True, False])
async def test_a_call_over_is_named_unless_its_recorder_closed_its_segments(
        desk: Desk, kiosk_closed: bool) -> None:
    """Both parties' segments closed: no gap. One left open: named, and it ends
    interrupted."""
    call_id, session_id = await _answered(desk)
    await _segment(desk, call_id, session_id, KIOSK.principal, closed=kiosk_closed)
    await _segment(desk, call_id, session_id, ALICE.principal, closed=True)
    await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
    await _lost(desk)
    named = [("recording_interrupted", "recorder_lost")] * (not kiosk_closed)
    assert await _recording_events(desk, session_id) == [
        ("recording_started", None), ("recording_stopped", "hangup"), *named]
    states = {r.participant_id: r.state for r in await desk.db.list_recordings(session_id)}
    assert states == {KIOSK.principal: "complete" if kiosk_closed else "interrupted",
                      ALICE.principal: "complete"}


async def test_a_connected_call_is_named_once_by_its_hand_over(desk: Desk) -> None:
    call_id, session_id = await _answered(desk)
    await _lost(desk)
    assert await _recording_events(desk, session_id) == [
        ("recording_started", None), ("recording_interrupted", "recorder_lost"),
        ("recording_failed", "no_recorder")]  # none other to hand it to
    assert (await desk.s.router.get_call(call_id)) is not None


async def test_a_gap_after_a_hand_over_named_late_is_still_named(desk: Desk) -> None:
    """rec1's socket comes back; the kiosk's resume gives the call segment 2 on rec1 before
    the hello's hand-over reads it, which then names segment 1 cut, after segment 2's
    start. The call ends and rec1 is lost before it closed anything of segment 2: that gap
    is named too (the late naming of segment 1 does not stand for it)."""
    call_id, session_id = await _answered(desk)
    router = desk.s.router
    assert isinstance(router, ReadHookRouter)
    await desk.connect(RECORDER)
    router.before_read = (call_id, lambda: desk.connect(
        KIOSK, resume=desk.resumes[KIOSK.principal]))
    await desk.board.recorder_joined(RECORDER, 4)
    assert router.before_read is None
    await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
    await _lost(desk)
    detail = await desk.db.get_session(session_id)
    assert detail is not None
    assert [(e.type, e.data.get("reason"), e.data.get("segment")) for e in detail.events
            if e.type.startswith("recording_")] == [
        ("recording_started", None, 1), ("recording_started", None, 2),
        ("recording_interrupted", "recorder_reconnected", 1),
        ("recording_stopped", "hangup", None),
        ("recording_interrupted", "recorder_lost", None)]


async def test_a_reconnecting_recorders_call_that_ended_before_its_hand_over_is_named(
        desk: Desk) -> None:
    """rec1's socket comes back; its hello hands its sessions on one by one, and a call
    it held ends before its turn (the goal-size day's `c_e4e9db1fd41e314c`: its gap was
    named by nobody). Named, as a lost recorder's are; a call given to the new
    connection meanwhile, nothing written of it yet, is not."""
    call_id, session_id = await _answered(desk)
    router = desk.s.router
    assert isinstance(router, ReadHookRouter)
    await desk.connect(RECORDER)
    other: list[str] = []

    async def meanwhile() -> None:
        await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
        await desk.connect(BOB)
        await desk.drive(BOB, m.AgentStatus(status="available"))
        await desk.connect(KIOSK2)
        queued = await desk.drive(KIOSK2, m.CallRequest(queue="general"))
        other.append(queued.sends[0][1].call_id)  # type: ignore[attr-defined]
        await desk.drive(BOB, m.CallAccept(call_id=other[0], offer=1))
    router.before_read = (call_id, meanwhile)
    await desk.board.recorder_joined(RECORDER, 4)
    assert router.before_read is None and other
    assert await _recording_events(desk, session_id) == [  # (the hello let go of it: no
        ("recording_started", None), ("recording_interrupted", "recorder_reconnected")]
    call = await router.get_call(other[0])  # recorder to stop at the hang-up)
    assert call is not None and call.state.value == "connected"
    assert await _recording_events(desk, call.session_id) == [("recording_started", None)]


async def test_a_replayed_answer_tells_the_recorder_it_gave_the_call(
        desk: Desk, redis: Redis, key_prefix: str) -> None:
    """The goal-size day's `c_4279b396ed01c0fa`: node 1 answered the call and gave it rec1
    (segment 1), and was killed before its append; rec1 came back on node 2, its hello let
    go of the call, and the survivor replayed the answer before the hand-over came to the
    call: the pool gave it segment 2. The replay took a later segment for a hand-over's
    and told nobody; the hand-over found the call given a recorder and left it to whoever
    gave it. The parties offered to rec1 for the whole call, and nothing was recorded. Now
    the replay tells rec1 the segment it gave, and the hand-over does not tell it again."""
    _, _, offered = await desks.offered_recorded(desk)
    call_id, at = str(offered["call_id"]), desk.clock() + 1
    dead = RedisRouter(redis, key_prefix, QUEUES, instance="dead.1")
    # its own task: the numbers the dead node took are not this task's to send
    call = await asyncio.create_task(dead.accept(call_id, ALICE.id, at, offered["offer"]))
    assert desk.s.recording is not None
    given = await desk.s.recording.pool.assign(call_id, call.session_id)  # the dead node's
    assert not isinstance(given, Unassigned) and given.segment == 1
    back = await desk.connect(RECORDER)  # rec1's socket, back on the survivor
    router = desk.s.router
    assert isinstance(router, ReadHookRouter)
    router.before_read = (call_id, lambda: desk.board.answer_again(call_id, ALICE.id, at))

    await desk.board.recorder_joined(RECORDER, 4)

    assert router.before_read is None  # replayed within the hand-over
    starts = [f["segment"] for f in back.frames
              if f["type"] == "record.start" and f["call_id"] == call_id]
    assert starts == [2]
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None
    recording = [(e.type, e.data) for e in detail.events if e.type.startswith("recording_")]
    assert recording == [
        ("recording_started", {"recorder": "recorder:rec1", "segment": 2}),
        ("recording_interrupted", {"recorder": "recorder:rec1",
                                   "reason": "recorder_reconnected", "segment": 1}),
    ]
    connected = [f for f in desk.sinks[KIOSK.principal].frames
                 if f["type"] == "call.connected"]
    assert "recorder:rec1" in [p["id"] for p in connected[-1]["participants"]]


async def test_an_answer_told_again_tells_its_recorder_again(
        desk: Desk, redis: Redis, key_prefix: str) -> None:
    """The CI day's `c_ea455c27490ae5fa`: node 1 answered, gave the call rec2, logged it,
    and was killed before its sends. The survivor told the parties `call.connected` again
    (`offers.told_again`) but not rec2 its `record.start`: both parties offered to rec2
    for the whole call, unanswered. Now rec2 hears the start again (not logged again)."""
    rec, _, offered = await desks.offered_recorded(desk)
    call_id, at = str(offered["call_id"]), desk.clock()
    dead = RedisRouter(redis, key_prefix, QUEUES, instance="dead.1")
    call = await asyncio.create_task(dead.accept(call_id, ALICE.id, at, offered["offer"]))
    assert desk.s.recording is not None
    given = await desk.s.recording.pool.assign(call_id, call.session_id)  # the dead node's
    assert isinstance(given, Assignment) and given.new
    logged = [ev.Answered(agent_id=ALICE.id, agent_name="Alice", offer=1, wait_s=0.0),
              ev.ParticipantJoined(participant_id=KIOSK.principal, role="terminal",
                                   principal_id=KIOSK.id),
              ev.ParticipantJoined(participant_id=ALICE.principal, role="specialist",
                                   principal_id=ALICE.id, name="Alice"),
              ev.RecordingStarted(recorder=RECORDER.principal, segment=1)]
    await desk.db.append([ev.log_event(payload, desk.s.utcnow(), session_id=call.session_id,
                                       call_id=call_id) for payload in logged])
    rec.frames.clear()

    await desk.board.answer_again(call_id, ALICE.id, at)

    starts = [(f["call_id"], f["segment"]) for f in rec.frames if f["type"] == "record.start"]
    assert starts == [(call_id, 1)]
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None
    assert [e.type for e in detail.events].count("recording_started") == 1
    connected = [f for f in desk.sinks[KIOSK.principal].frames
                 if f["type"] == "call.connected"]
    assert RECORDER.principal in [p["id"] for p in connected[-1]["participants"]]
