"""An answer whose reply is lost after its transaction ran (issue 16: Redis restarted under
a busy day): the step tries again, the accept script knows the same attempt and answers
the same, so the call is `answered` once and both parties are told, with the numbers the
lost run took. Real Redis, reached through a proxy that drops one reply."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster import recorders
from server.cluster.router import RedisRouter
from signaling import messages as m
from signaling import order
from signaling.errors import Refused
from signaling.model import Agent, AgentState, Call, CallState, QueueConfig
from tests.cluster.losing import LosingProxy
from tests.switchboard.conftest import ALICE, KIOSK, RECORDER, Desk, Sink

LI, T1 = "specialist:li", "terminal:T1"


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


async def _offered(desk: Desk) -> tuple[Sink, Sink, dict[str, Any]]:
    """Alice available, the kiosk's call offered to her, 3 s later: (alice, kiosk, offer)."""
    alice = await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    kiosk = await desk.connect(KIOSK)
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    offered = alice.frames[-1]
    assert offered["type"] == "call.offered"
    desk.clock.now += 3.0
    return alice, kiosk, offered


async def test_an_answer_tried_again_after_its_recorder_was_assigned_starts_it_once(
        lossy_recorded_desk: Desk, proxy: LosingProxy) -> None:
    """The first attempt assigns the recorder and loses the assign script's reply: its
    outbox (`recording_started`, `record.start`) is never committed. The second attempt
    finds the recorder assigned and must still start it, once."""
    desk = lossy_recorded_desk
    recorder = await desk.connect(RECORDER)
    await desk.board.recorder_joined(RECORDER, 4)
    alice, kiosk, offered = await _offered(desk)
    proxy.arm(hashlib.sha1(recorders.ASSIGN.encode()).hexdigest())
    await desk.board.handle(ALICE, m.CallAccept(call_id=offered["call_id"],
                                                offer=offered["offer"]))
    assert len(proxy.lost) == 1  # the recorder was assigned; the answer never came back
    call = await desk.s.router.get_call(offered["call_id"])
    assert call is not None and call.state == CallState.CONNECTED
    starts = [f for f in recorder.frames if f["type"] == "record.start"]
    assert [(f["call_id"], f["segment"]) for f in starts] == [(call.id, 1)]
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None
    types = [e.type for e in detail.events]
    assert types.count("answered") == 1 and types.count("recording_started") == 1
    for party in (alice, kiosk):
        connected = [f for f in party.frames if f["type"] == "call.connected"]
        assert len(connected) == 1 and connected[0]["recording"] is True
        assert "recorder:rec1" in {p["id"] for p in connected[0]["participants"]}


@pytest.mark.parametrize("script", ["enqueue", "snapshot"])
async def test_a_request_whose_queueing_reply_was_lost_is_queued_once(
        lossy_desk: Desk, proxy: LosingProxy, script: str) -> None:
    """The CI-size faulted days' Redis restart: the enqueue script ran and its reply was
    lost, or the read of the wait right after it failed; the kiosk was told `internal`
    while its call waited in routing, and each later request was refused
    `call_in_progress` for a call it never heard of."""
    desk = lossy_desk
    await desk.connect(ALICE)  # logged in, not available: the call waits
    kiosk = await desk.connect(KIOSK)
    router = desk.s.router
    assert isinstance(router, RedisRouter)
    proxy.arm(router._scripts[script].sha)
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax"))
    assert len(proxy.lost) == 1
    [queued] = [f for f in kiosk.frames if f["type"] in ("call.queued", "error")]
    assert queued["type"] == "call.queued" and queued["position"] == 1
    call = await router.get_call(queued["call_id"])
    assert call is not None and call.state == CallState.QUEUED
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None and [e.type for e in detail.events] == ["queued"]
    await desk.board.handle(KIOSK, m.CallCancel(call_id=call.id))  # the kiosk can act on it
    assert await router.get_call(call.id) is None


async def test_an_answer_whose_reply_was_lost_is_answered_once(
        lossy_desk: Desk, proxy: LosingProxy, caplog: pytest.LogCaptureFixture) -> None:
    desk = lossy_desk
    alice, kiosk, offered = await _offered(desk)
    proxy.armed = True
    with caplog.at_level(logging.WARNING):
        await desk.board.handle(ALICE, m.CallAccept(call_id=offered["call_id"],
                                                    offer=offered["offer"]))
    assert len(proxy.lost) == 1  # the script ran and its answer never came back
    assert caplog.text.count(f"accepting {offered['call_id']} for specialist:alice failed") == 1
    call = await desk.s.router.get_call(offered["call_id"])
    assert call is not None and call.state == CallState.CONNECTED and call.agents == ["alice"]
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None
    assert [e.type for e in detail.events].count("answered") == 1
    assert alice.types().count("call.connected") == 1
    assert kiosk.types().count("call.connected") == 1
    agent = await desk.s.router.get_agent("alice")
    assert agent is not None and agent.calls_answered == 1


QUEUE = [QueueConfig(id="tax", name="Tax")]


@pytest.fixture
async def router(redis: Redis, key_prefix: str) -> RedisRouter:
    """Li and Wang logged in, only Li available; call c1 rings Li (offer 1)."""
    made = RedisRouter(redis, key_prefix, QUEUE)
    await made.start()
    for agent in ("li", "wang"):
        await made.agent_join(Agent(id=agent, name=agent, skills={"tax": 1}), 1.0)
    await made.set_status("li", AgentState.AVAILABLE, 1.0)
    await made.enqueue(Call(id="c1", session_id="s-c1", queue="tax", terminal_id="T1",
                            enqueued_at=2.0))
    assert [o.agent_id for o in await made.dispatch(3.0)] == ["li"]
    order.take_all()
    return made


async def test_the_same_answer_again_gives_the_same_call_and_numbers(
        router: RedisRouter) -> None:
    first = await router.accept("c1", "li", 6.0, 1)
    numbers = order.take_all()
    assert numbers == {T1: (2,), LI: (3,)}
    again = await router.accept("c1", "li", 6.0, 1)  # its reply lost: the step tries again
    assert again == first and again.state == CallState.CONNECTED
    assert order.take_all() == numbers  # the numbers the first run took, none new
    agent = await router.get_agent("li")
    assert agent is not None and agent.calls_answered == 1 and agent.call_id == "c1"


async def test_another_answer_of_a_connected_call_is_still_refused(
        router: RedisRouter) -> None:
    await router.accept("c1", "li", 6.0, 1)
    order.take_all()
    with pytest.raises(Refused) as by_wang:
        await router.accept("c1", "wang", 6.0, 1)
    with pytest.raises(Refused) as li_later:  # a second call.accept of Li's: not a retry
        await router.accept("c1", "li", 6.5, 1)
    assert by_wang.value.code == li_later.value.code == "offer_gone"
    assert order.take_all() == {}
    await router.hangup("c1", 7.0)
    order.take_all()
    with pytest.raises(Refused):  # the call is over: nothing to answer the same again
        await router.accept("c1", "li", 6.0, 1)
