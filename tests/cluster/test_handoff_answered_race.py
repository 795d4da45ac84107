"""A phone opening its hand-off ticket while the specialist answers the call (two nodes on
one Redis, `bench.node_memory`): the step's check saw the call waiting, the router's
`hand_off` refused it (answered meanwhile). The kiosk and the desk talk; the phone is told
its call was answered at the kiosk (`ticket_answered`), not that it is over; the log has the
answer and one participant per party, never the visitor."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling import messages as m
from signaling.errors import Refused
from signaling.model import Call
from signaling.switchboard import Switchboard
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, make_desk
from tests.switchboard.test_steps import offered_call


class AnsweredFirst(RedisRouter):
    """The real Redis router; its next `hand_off` lets `rival` (the desk's answer, on the
    other node) run to its end first."""

    rival: Callable[[], Awaitable[Any]] | None = None

    async def hand_off(self, call_id: str, terminal_id: str, visitor_id: str,
                       now: float = 0.0) -> Call:
        rival, self.rival = self.rival, None
        if rival is not None:
            await rival()
        return await super().hand_off(call_id, terminal_id, visitor_id, now)


@pytest.fixture
async def racing(database: Database, redis: Redis, key_prefix: str) -> AsyncIterator[Desk]:
    router = AnsweredFirst(redis, key_prefix, QUEUES, instance="n1.1")
    await router.start()
    async for made in make_desk(database, router=router):
        board = Switchboard(dataclasses.replace(made.board.services, handoffs=database))
        yield dataclasses.replace(made, board=board)


async def test_a_ticket_opened_as_the_call_is_answered(racing: Desk) -> None:
    desk = racing
    call_id = await offered_call(desk)
    await desk.drive(KIOSK, m.CallHandoff(call_id=call_id))
    kiosk, alice = desk.sinks[KIOSK.principal], desk.sinks[ALICE.principal]
    ready = next(f for f in kiosk.frames if f["type"] == "call.handoff_ready")
    router = desk.s.router
    assert isinstance(router, AnsweredFirst)
    router.rival = lambda: desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))

    with pytest.raises(Refused) as refused:
        await desk.board.open_ticket(str(ready["url"]).removeprefix("/m/"), None)

    assert refused.value.code == "ticket_answered"
    assert [f["type"] for f in kiosk.frames if f["type"].startswith("call.")][-1] == \
        "call.connected"
    assert "call.connected" in [f["type"] for f in alice.frames]
    call = await router.get_call(call_id)
    assert call is not None and call.visitor is None
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None and detail.state == "connected"
    assert sorted(p.participant_id for p in detail.participants) == [
        ALICE.principal, KIOSK.principal]
    assert "handed_off" not in [e.type for e in detail.events]
