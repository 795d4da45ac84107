"""An arrived appointment waits ahead of walk-ins queued before it, and behind a call
that lost its specialist: the same order on the memory and the Redis router."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling.acd import APPOINTMENT_PRIORITY
from signaling.model import Agent, AgentState, Call, QueueConfig
from tests.cluster.test_router_rules import make_router

QUEUES = [QueueConfig(id="q", name="Q")]


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_appointment_before_earlier_walk_ins(redis: Redis, key_prefix: str,
                                                   backend: str) -> None:
    router = make_router(backend, redis, key_prefix, QUEUES)
    if isinstance(router, RedisRouter):
        await router.start()
    await router.agent_join(Agent(id="a", name="a", skills={"q": 1}), 0.0)
    await router.agent_join(Agent(id="b", name="b", skills={"q": 1}), 0.0)
    await router.set_status("b", AgentState.AVAILABLE, 0.5)
    await router.enqueue(Call(id="lost", session_id="s0", queue="q", terminal_id="t_lost",
                              enqueued_at=0.6))
    (offer,) = await router.dispatch(0.7)
    await router.accept("lost", "b", 0.8)
    positions = []
    for i, priority in enumerate([0, 0, APPOINTMENT_PRIORITY, APPOINTMENT_PRIORITY]):
        positions.append(await router.enqueue(Call(
            id=f"c{i}", session_id=f"s{i}", queue="q", terminal_id=f"t{i}",
            enqueued_at=1.0 + i, priority=priority)))
    assert positions == [1, 2, 1, 2]  # each appointment after the earlier ones, before walk-ins
    await router.requeue("lost", "b", 5.0)  # its specialist is gone: ahead of everyone
    assert [c for c, _ in await router.waiting("q")] == ["lost", "c2", "c3", "c0", "c1"]
    await router.set_status("a", AgentState.AVAILABLE, 6.0)
    answered = []
    for step in range(5):
        (offer,) = await router.dispatch(7.0 + step)
        await router.accept(offer.call_id, "a", 7.0 + step)
        await router.hangup(offer.call_id, 7.5 + step)
        await router.wrapup_done("a", 7.6 + step)
        answered.append(offer.call_id)
    assert answered == ["lost", "c2", "c3", "c0", "c1"]
