"""A kiosk and its specialist leave a connected call together (issue 16's goal-size day: at
closing time every socket closes, and the resume graces run out together on both nodes).

The kiosk's release read the call connected; the specialist's release put it back in the
queue before the kiosk's hang-up ran, which then found nothing connected and did nothing:
the call stayed `queued` for ever with its caller gone (the day's one lost call,
`c_c039c8e15c3be80b`). Real Redis router, the two graces fired in that order.

And a specialist's resume that read its call connected just before the kiosk hung up (a
CI-size faulted day: the resume of a desk that lost its node took 1.8 s on the loaded
survivor). It found the call without a recorder (the hang-up had released it) and gave it
one: `recording_started` logged after `ended`, `record.start` sent after `record.stop`, and
the recorder held the ended call in the shared pool for ever, counted in its load. Real
Redis router and recorder pool; the hang-up run between the resume's read and its use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from server.cluster.recorders import RedisRecorderPool
from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling import messages as m
from signaling import timers
from signaling.backend import Ending
from signaling.identity import Identity, encode_identity
from signaling.model import AgentState, Call
from signaling.recorders import RecordingSetup
from tests.switchboard.conftest import (
    ALICE,
    KIOSK,
    QUEUES,
    RECORDER,
    Desk,
    make_desk,
    offered_recorded,
)


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


class InterleavedRouter(RedisRouter):
    """A Redis router that lets another step run just before the next hang-up's script, or
    right after a given read of one call (the `skip` reads before it go on as usual): the
    moment another node's step lands between a read and what follows it."""

    before_hangup: Callable[[], Awaitable[object]] | None = None
    after_read: tuple[str, int, Callable[[], Awaitable[object]]] | None = None

    async def hangup(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        step, self.before_hangup = self.before_hangup, None
        if step is not None:
            await step()
        return await super().hangup(call_id, now, ending)

    async def get_call(self, call_id: str) -> Call | None:
        found = await super().get_call(call_id)
        if self.after_read is not None and self.after_read[0] == call_id:
            _, skip, step = self.after_read
            self.after_read = None if skip == 0 else (call_id, skip - 1, step)
            if skip == 0:
                await step()
        return found


@pytest.fixture
async def router(redis: Redis, key_prefix: str) -> InterleavedRouter:
    made = InterleavedRouter(redis, key_prefix, QUEUES)
    await made.start()
    return made


@pytest.fixture
async def desk(router: InterleavedRouter, database: Database) -> AsyncIterator[Desk]:
    async for made in make_desk(database, router=router):
        yield made


@pytest.fixture
def pool(redis: Redis, key_prefix: str) -> RedisRecorderPool:
    return RedisRecorderPool(redis, key_prefix)


@pytest.fixture
async def recorded_desk(router: InterleavedRouter, pool: RedisRecorderPool,
                        database: Database) -> AsyncIterator[Desk]:
    async for made in make_desk(database, router=router, recording=RecordingSetup(pool=pool)):
        yield made


async def _gone(desk: Desk, who: Identity) -> dict[str, object]:
    """The socket closes; the grace timer's payload (the test fires it by hand)."""
    await desk.board.disconnect(who, desk.epochs[who.principal], desk.sinks[who.principal])
    return {"identity": encode_identity(who), "epoch": desk.epochs[who.principal]}


async def test_a_call_requeued_as_its_kiosk_is_released_is_abandoned_not_left_queued(
        desk: Desk, router: InterleavedRouter) -> None:
    alice = await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    await desk.connect(KIOSK)
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    offered = alice.frames[-1]
    await desk.drive(ALICE, m.CallAccept(call_id=offered["call_id"], offer=offered["offer"]))
    call = await router.get_call(offered["call_id"])
    assert call is not None
    kiosk_grace = await _gone(desk, KIOSK)
    alice_grace = await _gone(desk, ALICE)

    router.before_hangup = lambda: desk.fire(timers.GRACE, alice_grace)
    await desk.fire(timers.GRACE, kiosk_grace)

    assert router.before_hangup is None  # the specialist's release did land in between
    assert await router.get_call(call.id) is None  # not left queued without its caller
    assert await router.calls_of_terminal(KIOSK.id) == []
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None
    types = [e.type for e in detail.events]
    assert types.count("requeued") == 1 and types[-1] == "abandoned"
    assert detail.state == "abandoned"
    agent = await router.get_agent(ALICE.id)
    assert agent is None or agent.state != AgentState.IN_CALL


async def test_a_resume_that_read_its_call_before_the_hangup_gives_it_no_recorder(
        recorded_desk: Desk, router: InterleavedRouter, pool: RedisRecorderPool) -> None:
    desk = recorded_desk
    recorder, alice, offered = await offered_recorded(desk)
    call_id = str(offered["call_id"])
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=offered["offer"]))
    call = await router.get_call(call_id)
    assert call is not None and await pool.recorder_of(call_id) == RECORDER.id
    await desk.board.disconnect(ALICE, desk.epochs[ALICE.principal], alice)

    # The resume reads the specialist's call, then again as it tells it (`_connected_again`):
    # the hang-up lands after that second read.
    hangup = m.CallHangup(call_id=call_id)
    router.after_read = (call_id, 1, lambda: desk.drive(KIOSK, hangup))
    await desk.connect(ALICE, resume=desk.resumes[ALICE.principal])

    assert router.after_read is None  # the hang-up did land between the read and its use
    assert await pool.recorder_of(call_id) is None
    assert [load.calls for load in await pool.recorders()] == [()]
    told = [f["type"] for f in recorder.frames if f.get("call_id") == call_id]
    assert told == ["record.start", "record.stop"]
    session = await desk.db.get_session(call.session_id)
    assert session is not None and session.state == "ended"
    types = [e.type for e in session.events]
    assert "recording_started" not in types[types.index("ended"):]
