"""Each routing step whose transaction's reply is lost after the script ran (issue 16:
Redis restarted under a busy day) tries again as one attempt, and the script answers the
same attempt the same (`server/cluster/replay.py`): the step's outcome is logged once, its
parties told once, with the numbers the lost run took (none left a gap, none sent twice).
Real Redis, reached through a proxy that drops the named script's reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling import messages as m
from signaling.model import AgentState, CallState
from signaling.outbox import Outbox
from tests.cluster.losing import LosingProxy, NumberingBus, issued
from tests.switchboard.conftest import ALICE, BOB, KIOSK, Desk


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


class Lossy:
    """The desk, the proxy and the Redis behind it, for one test."""

    def __init__(self, desk: Desk, proxy: LosingProxy, redis: Redis, prefix: str) -> None:
        self.desk, self.proxy, self.redis, self.prefix = desk, proxy, redis, prefix
        self.sessions: dict[str, str] = {}  # call -> its session (an ended call is gone)

    async def losing(self, script: str, act: Callable[[], Awaitable[Any]]) -> Any:
        """`act` with the reply of its `script` transaction lost once after it ran; the
        numbers the transactions took meanwhile were each sent once, none missing."""
        router = self.desk.s.router
        assert isinstance(router, RedisRouter)
        bus = self.desk.s.bus
        assert isinstance(bus, NumberingBus)
        before = await issued(self.redis, self.prefix)
        bus.numbers.clear()
        self.proxy.arm(router._scripts[script].sha)
        result = await act()
        assert len(self.proxy.lost) == 1, "the script ran and its answer never came back"
        after = await issued(self.redis, self.prefix)
        moved = {p: list(range(before.get(p, 0) + 1, n + 1)) for p, n in after.items()
                 if n != before.get(p, 0)}
        assert moved, "the transaction numbered nobody"
        assert bus.numbers == moved
        return result

    async def logged(self, call_id: str) -> list[str]:
        call = await self.desk.s.router.get_call(call_id)
        session = call.session_id if call else self.sessions[call_id]
        detail = await self.desk.db.get_session(session)
        assert detail is not None
        return [e.type for e in detail.events]


@pytest.fixture
def lossy(lossy_desk: Desk, proxy: LosingProxy, redis: Redis, key_prefix: str) -> Lossy:
    return Lossy(lossy_desk, proxy, redis, key_prefix)


async def queued(lossy: Lossy) -> str:
    kiosk = await lossy.desk.connect(KIOSK)
    await lossy.desk.drive(KIOSK, m.CallRequest(queue="tax"))
    call_id = next(str(f["call_id"]) for f in kiosk.frames if f["type"] == "call.queued")
    call = await lossy.desk.s.router.get_call(call_id)
    assert call is not None
    lossy.sessions[call_id] = call.session_id
    return call_id


async def offered(lossy: Lossy) -> str:
    """Alice is available and the kiosk's call rings her (offer 1)."""
    await lossy.desk.connect(ALICE)
    await lossy.desk.drive(ALICE, m.AgentStatus(status="available"))
    return await queued(lossy)


async def connected(lossy: Lossy) -> str:
    call_id = await offered(lossy)
    await lossy.desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    return call_id


def types(out: Outbox) -> list[str]:
    return [e.type for e in out.events]


async def test_a_dispatch_whose_reply_was_lost_offers_once(lossy: Lossy) -> None:
    desk = lossy.desk
    alice = await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    kiosk = await desk.connect(KIOSK)
    out = await lossy.losing("dispatch", lambda: desk.drive(KIOSK, m.CallRequest(queue="tax")))
    call_id = next(str(f["call_id"]) for f in kiosk.frames if f["type"] == "call.queued")
    assert (await lossy.logged(call_id)).count("offered") == 1
    assert alice.types().count("call.offered") == 1
    assert [t.key for t in out.durable_timers] == [f"ring:{call_id}:1"]  # its ring timer
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == CallState.RINGING and call.offer_number == 1


async def test_a_hangup_whose_reply_was_lost_ends_the_call_once(lossy: Lossy) -> None:
    call_id = await connected(lossy)
    desk = lossy.desk
    await lossy.losing("hangup", lambda: desk.board.handle(KIOSK, m.CallHangup(call_id=call_id)))
    logged = await lossy.logged(call_id)
    assert logged.count("ended") == 1 and logged.count("participant_left") == 2
    for sink in (desk.sinks[ALICE.principal], desk.sinks[KIOSK.principal]):
        assert sink.types().count("call.ended") == 1
    agent = await desk.s.router.get_agent("alice")
    assert agent is not None and agent.state == AgentState.WRAP_UP


async def test_a_requeue_whose_reply_was_lost_requeues_once(lossy: Lossy) -> None:
    call_id = await connected(lossy)
    desk = lossy.desk
    await desk.board.disconnect(ALICE, desk.epochs[ALICE.principal], desk.sinks[ALICE.principal])
    grace = {"identity": {"role": "specialist", "id": "alice", "name": ALICE.name,
                          "skills": {"tax": 1}}, "epoch": desk.epochs[ALICE.principal]}
    out = await lossy.losing("requeue", lambda: desk.fire("grace", grace))
    assert types(out).count("requeued") == 1
    logged = await lossy.logged(call_id)
    assert logged.count("requeued") == 1 and logged.count("participant_left") == 1
    assert desk.sinks[KIOSK.principal].types().count("call.requeued") == 1
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == CallState.QUEUED
    assert await desk.s.router.position(call_id) == 1


async def test_a_leave_whose_reply_was_lost_is_heard_once(lossy: Lossy) -> None:
    call_id = await connected(lossy)
    desk = lossy.desk
    bob = await desk.connect(BOB)
    await desk.drive(BOB, m.AgentStatus(status="available"))
    await desk.drive(ALICE, m.CallInvite(call_id=call_id, queue="general"))
    invitation = next(f for f in bob.frames if f["type"] == "call.offered")
    await desk.drive(BOB, m.CallAccept(call_id=invitation["call_id"], offer=invitation["offer"]))
    await lossy.losing("leave", lambda: desk.board.handle(ALICE, m.CallHangup(call_id=call_id)))
    logged = await lossy.logged(call_id)
    assert logged.count("participant_left") == 1 and "ended" not in logged
    assert desk.sinks[ALICE.principal].types().count("call.ended") == 1
    for principal in (BOB.principal, KIOSK.principal):
        assert desk.sinks[principal].types().count("participant.left") == 1
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.agents == ["bob"]


async def test_a_ring_timeout_whose_reply_was_lost_misses_once(lossy: Lossy) -> None:
    call_id = await offered(lossy)
    desk = lossy.desk
    out = await lossy.losing("timeout", lambda: desk.fire(
        "ring", {"call_id": call_id, "agent_id": "alice", "offer": 1}))
    assert types(out).count("missed") == 1
    logged = await lossy.logged(call_id)
    assert logged.count("missed") == 1 and logged.count("withdrawn") == 1
    assert desk.sinks[ALICE.principal].types().count("call.withdrawn") == 1
    agent = await desk.s.router.get_agent("alice")
    assert agent is not None and agent.missed_streak == 1


async def test_a_withdrawal_whose_reply_was_lost_is_logged_once(lossy: Lossy) -> None:
    call_id = await offered(lossy)
    desk = lossy.desk
    await lossy.losing("withdraw", lambda: desk.board.disconnect(
        ALICE, desk.epochs[ALICE.principal], desk.sinks[ALICE.principal]))
    assert (await lossy.logged(call_id)).count("withdrawn") == 1
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == CallState.QUEUED and call.ringing_agent is None


async def test_a_cancel_whose_reply_was_lost_abandons_once(lossy: Lossy) -> None:
    call_id = await offered(lossy)
    desk = lossy.desk
    await lossy.losing("remove", lambda: desk.board.handle(KIOSK, m.CallCancel(call_id=call_id)))
    logged = await lossy.logged(call_id)
    assert logged.count("abandoned") == 1 and logged.count("withdrawn") == 1
    assert desk.sinks[KIOSK.principal].types().count("call.ended") == 1
    assert desk.sinks[ALICE.principal].types().count("call.withdrawn") == 1
    assert await desk.s.router.get_call(call_id) is None


async def test_a_status_whose_reply_was_lost_is_logged_once(lossy: Lossy) -> None:
    desk = lossy.desk
    alice = await desk.connect(ALICE)
    told = len(alice.frames)
    out = await lossy.losing("set_status", lambda: desk.drive(
        ALICE, m.AgentStatus(status="available")))
    assert [(e.type, e.data["new"]) for e in out.events] == [("agent_status", "available")]
    assert [f["status"] for f in alice.frames[told:] if f["type"] == "agent.status"] == [
        "available"]


async def test_the_end_of_a_wrapup_whose_reply_was_lost_is_logged_once(lossy: Lossy) -> None:
    call_id = await connected(lossy)
    desk = lossy.desk
    await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
    alice = desk.sinks[ALICE.principal]
    told = len(alice.frames)
    out = await lossy.losing("wrapup_done", lambda: desk.drive(ALICE, m.AgentWrapupDone()))
    assert [(e.type, e.data["new"]) for e in out.events] == [("agent_status", "available")]
    assert [f["status"] for f in alice.frames[told:] if f["type"] == "agent.status"] == [
        "available"]


async def test_a_decline_whose_reply_was_lost_is_logged_once(lossy: Lossy) -> None:
    call_id = await offered(lossy)
    desk = lossy.desk
    out = await lossy.losing("decline", lambda: desk.drive(
        ALICE, m.CallDecline(call_id=call_id, offer=1)))
    assert types(out).count("declined") == 1
    assert (await lossy.logged(call_id)).count("declined") == 1
    withdrawn = [f for f in desk.sinks[ALICE.principal].frames if f["type"] == "call.withdrawn"]
    assert [f["reason"] for f in withdrawn] == ["declined"]
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == CallState.QUEUED and "alice" in call.blocked
    agent = await desk.s.router.get_agent("alice")
    assert agent is not None and agent.state == AgentState.AVAILABLE


async def test_a_join_whose_reply_was_lost_is_heard_once(lossy: Lossy) -> None:
    call_id = await connected(lossy)
    desk = lossy.desk
    bob = await desk.connect(BOB)
    await desk.drive(BOB, m.AgentStatus(status="available"))
    await desk.drive(ALICE, m.CallInvite(call_id=call_id, queue="general"))
    invitation = next(f for f in bob.frames if f["type"] == "call.offered")
    await lossy.losing("join", lambda: desk.drive(
        BOB, m.CallAccept(call_id=invitation["call_id"], offer=invitation["offer"])))
    assert (await lossy.logged(call_id)).count("participant_joined") == 3  # kiosk, alice, bob
    assert bob.types().count("call.connected") == 1
    for principal in (ALICE.principal, KIOSK.principal):
        assert desk.sinks[principal].types().count("participant.joined") == 1
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.agents == ["alice", "bob"]
