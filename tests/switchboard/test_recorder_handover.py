"""A lost recorder's sessions are handed on one by one (issue 16's goal-size day: rec1 was
killed holding 33 sessions; their hand-overs went out as one outbox after every session's
log and catalog work, 12-14 s later under load, and the calls that ended meanwhile had no
second segment). The first session's new recorder and parties are told before the next
session is even read. A party's resume that gives a session a recorder before its hand-over
comes to it is not undone by the hand-over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.storage.db import Database
from signaling import messages as m
from signaling import recording
from signaling.identity import Identity, Role
from signaling.memory import MemoryRouter
from signaling.model import Call
from signaling.recorders import MemoryRecorderPool, RecordingSetup
from tests.switchboard.conftest import ALICE, BOB, KIOSK, QUEUES, RECORDER, SITE, Desk, make_desk

KIOSK2 = Identity(role=Role.TERMINAL, id="T2", name="二号机", site=SITE)
SUCCESSOR = Identity(role=Role.RECORDER, id="rec2", name="rec2")


class WatchedRouter(MemoryRouter):
    """The memory router; while `watched`, each read of one of them notes how many
    `record.start` the successor recorder had heard by then."""

    def __init__(self) -> None:
        super().__init__(QUEUES)
        self.watched: set[str] = set()
        self.heard_by_read: list[tuple[str, int]] = []
        self.successor: list[dict[str, object]] = []
        self.on_read: Callable[[], Awaitable[None]] | None = None  # once, at the next read

    async def get_call(self, call_id: str) -> Call | None:
        if call_id in self.watched:
            starts = sum(f["type"] == "record.start" for f in self.successor)
            self.heard_by_read.append((call_id, starts))
            if self.on_read is not None:
                run, self.on_read = self.on_read, None
                await run()
        return await super().get_call(call_id)


@pytest.fixture
async def router() -> WatchedRouter:
    return WatchedRouter()


@pytest.fixture
async def desk(router: WatchedRouter, database: Database) -> AsyncIterator[Desk]:
    setup = RecordingSetup(pool=MemoryRecorderPool(router))
    async for made in make_desk(database, router=router, recording=setup):
        yield made


async def _connected(desk: Desk, kiosk: Identity, agent: Identity, queue: str) -> str:
    sink = await desk.connect(agent)
    await desk.board.handle(agent, m.AgentStatus(status="available"))
    await desk.connect(kiosk)
    await desk.board.handle(kiosk, m.CallRequest(queue=queue))
    offered = sink.frames[-1]
    assert offered["type"] == "call.offered"
    await desk.board.handle(agent, m.CallAccept(call_id=offered["call_id"],
                                                offer=offered["offer"]))
    return str(offered["call_id"])


@pytest.mark.parametrize(("at_once", "starts_by_read"), [(1, [0, 1]), (8, [0, 0])])
async def test_each_session_of_a_lost_recorder_is_handed_on_before_the_next_batch_is_read(
        desk: Desk, router: WatchedRouter, monkeypatch: pytest.MonkeyPatch, at_once: int,
        starts_by_read: list[int]) -> None:
    """`HAND_ON_AT_ONCE` sessions are handed on together, each told as soon as its own
    hand-over is decided: one at a time, the first is told before the second is read;
    together, both are read before either is told (no session waits for the other's
    round trips: one by one, a reconnected rec1's hand-over took 7.7 s)."""
    monkeypatch.setattr(recording, "HAND_ON_AT_ONCE", at_once)
    await desk.connect(RECORDER)
    await desk.board.recorder_joined(RECORDER, 4)
    calls = [await _connected(desk, KIOSK, ALICE, "tax"),
             await _connected(desk, KIOSK2, BOB, "general")]
    router.successor = (await desk.connect(SUCCESSOR)).frames
    await desk.board.recorder_joined(SUCCESSOR, 4)
    router.watched = set(calls)

    await desk.board.disconnect(RECORDER, desk.epochs[RECORDER.principal],
                                desk.sinks[RECORDER.principal])

    first_reads: dict[str, int] = {}  # a hand-over reads its call again as it assigns it
    for call_id, heard in router.heard_by_read:
        first_reads.setdefault(call_id, heard)
    assert list(first_reads) == calls
    assert list(first_reads.values()) == starts_by_read
    starts = [f for f in router.successor if f["type"] == "record.start"]
    assert [(f["call_id"], f["segment"]) for f in starts] == [(c, 2) for c in calls]
    for kiosk, call_id in ((KIOSK, calls[0]), (KIOSK2, calls[1])):
        joined = [f for f in desk.sinks[kiosk.principal].frames
                  if f["type"] == "participant.joined" and f["call_id"] == call_id]
        assert [f["participant"]["id"] for f in joined] == ["recorder:rec2"]
    for call_id in calls:
        call = await router.get_call(call_id)
        assert call is not None
        detail = await desk.db.get_session(call.session_id)
        assert detail is not None
        types = [e.type for e in detail.events]
        assert types.count("recording_interrupted") == 1
        assert types.count("recording_started") == 2


async def test_a_resume_that_gave_the_call_a_recorder_first_is_not_undone_by_the_hand_over(
        desk: Desk, router: WatchedRouter) -> None:
    """rec1's socket comes back (its node died): its hello lets go of its sessions and hands
    them on one by one. The kiosk resumed first (the CI day's `c_bb9856bae91f9519`, 1 s
    before the hand-over came to its call) and gave the call segment 2 on rec1. The
    hand-over names segment 1 cut and tells the parties to offer again (rec1 closed its
    links as its socket went), but rec1 is told segment 2 once, and the log starts it once.
    Told again, rec1 heard segment 2 twice and the log named no gap a reader could place."""
    await desk.connect(RECORDER)
    await desk.board.recorder_joined(RECORDER, 4)
    call_id = await _connected(desk, KIOSK, ALICE, "tax")
    back = await desk.connect(RECORDER)

    async def kiosk_resumes() -> None:
        await desk.connect(KIOSK, resume=desk.resumes[KIOSK.principal])
    router.watched, router.on_read = {call_id}, kiosk_resumes
    await desk.board.recorder_joined(RECORDER, 4)

    assert router.on_read is None  # the kiosk did resume within the hand-over
    starts = [f["segment"] for f in back.frames
              if f["type"] == "record.start" and f["call_id"] == call_id]
    assert starts == [2]
    call = await router.get_call(call_id)
    assert call is not None
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None
    recording = [(e.type, e.data) for e in detail.events if e.type.startswith("recording_")]
    assert recording == [
        ("recording_started", {"recorder": "recorder:rec1", "segment": 1}),
        ("recording_started", {"recorder": "recorder:rec1", "segment": 2}),
        ("recording_interrupted", {"recorder": "recorder:rec1",
                                   "reason": "recorder_reconnected", "segment": 1}),
    ]
    told = [(f["type"], f["participant"] if f["type"] == "participant.left"
             else f["participant"]["id"]) for f in desk.sinks[ALICE.principal].frames
            if f["type"] in ("participant.left", "participant.joined")]
    assert told[-2:] == [("participant.left", "recorder:rec1"),
                         ("participant.joined", "recorder:rec1")]
