"""The Redis router answers the same attempt again the same (`server/cluster/replay.py`):
a transaction whose reply was lost is run again by its step with the same attempt token
(`signaling.retry.again`) and gives the same result and numbers, changing nothing; another
attempt finds nothing to do, as before. Real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster import keys
from server.cluster.router import RedisRouter
from server.cluster.scheduler import RedisScheduler
from signaling import order, retry, timers
from signaling.model import Agent, AgentState, Call, CallState, QueueConfig
from signaling.order import Taken

QUEUE = [QueueConfig(id="tax", name="Tax")]
LI, WANG, T1 = "specialist:li", "specialist:wang", "terminal:T1"


async def twice(run: Callable[[], Awaitable[Any]]) -> tuple[Any, Taken, Any, Taken]:
    """`run` twice in one attempt (its first reply lost, say): both answers and numbers."""
    async def attempt() -> tuple[Any, Taken, Any, Taken]:
        first = await run()
        numbers = order.take_all()
        again = await run()
        return first, numbers, again, order.take_all()
    return await retry.again("test", attempt)


async def once(run: Callable[[], Awaitable[Any]]) -> tuple[Any, Taken]:
    """`run` as an attempt of its own."""
    result = await retry.again("test", run)
    return result, order.take_all()


@pytest.fixture
async def router(redis: Redis, key_prefix: str) -> RedisRouter:
    """Li and Wang logged in, only Li available; call c1 queued from T1."""
    made = RedisRouter(redis, key_prefix, QUEUE)
    await made.start()
    for agent in ("li", "wang"):
        await made.agent_join(Agent(id=agent, name=agent, skills={"tax": 1}), 1.0)
    await made.set_status("li", AgentState.AVAILABLE, 1.0)
    await made.enqueue(Call(id="c1", session_id="s-c1", queue="tax", terminal_id="T1",
                            enqueued_at=2.0))
    order.take_all()
    return made


async def ringing(router: RedisRouter) -> None:
    assert [o.agent_id for o in await router.dispatch(3.0)] == ["li"]
    order.take_all()


async def connected(router: RedisRouter) -> None:
    await ringing(router)
    await router.accept("c1", "li", 4.0, 1)
    order.take_all()


async def test_dispatch_again_answers_its_offers_and_makes_none(router: RedisRouter) -> None:
    first, numbers, again, numbers_again = await twice(lambda: router.dispatch(3.0))
    assert [(o.call_id, o.agent_id, o.offer) for o in first] == [("c1", "li", 1)]
    assert again == first and numbers_again == numbers == {LI: (2,)}
    call = await router.get_call("c1")
    assert call is not None and call.offer_number == 1 and call.ringing_agent == "li"
    await router.set_status("wang", AgentState.AVAILABLE, 3.5)
    order.take_all()
    assert await once(lambda: router.dispatch(4.0)) == ([], {})  # another attempt: nothing


async def test_a_ring_timeout_again_misses_once(router: RedisRouter) -> None:
    await ringing(router)
    first, numbers, again, numbers_again = await twice(lambda: router.timeout("c1", "li", 9.0, 1))
    assert first is not None and again == first and numbers_again == numbers == {LI: (3,)}
    agent = await router.get_agent("li")
    assert agent is not None and agent.missed_streak == 1
    assert agent.state == AgentState.AVAILABLE
    assert await once(lambda: router.timeout("c1", "li", 9.0, 1)) == (None, {})


async def test_a_withdrawal_again_answers_the_same(router: RedisRouter) -> None:
    await ringing(router)
    first, numbers, again, numbers_again = await twice(lambda: router.withdraw("c1", "li", 5.0))
    assert first is not None and first.state == CallState.QUEUED
    assert again == first and numbers_again == numbers == {LI: (3,)}
    assert await once(lambda: router.withdraw("c1", "li", 5.0)) == (None, {})


async def test_a_removal_again_answers_the_ended_call(router: RedisRouter) -> None:
    await ringing(router)
    first, numbers, again, numbers_again = await twice(lambda: router.remove("c1", 5.0))
    assert first is not None and first.state == CallState.ENDED and first.ringing_agent == "li"
    assert again == first and numbers_again == numbers == {LI: (3,), T1: (2,)}
    assert await router.get_call("c1") is None
    assert await once(lambda: router.remove("c1", 5.0)) == (None, {})


async def test_a_hangup_again_answers_the_ended_call(router: RedisRouter) -> None:
    await connected(router)
    first, numbers, again, numbers_again = await twice(lambda: router.hangup("c1", 10.0))
    assert first is not None and first.state == CallState.ENDED
    assert again == first and numbers_again == numbers == {T1: (3,), LI: (4,)}
    agent = await router.get_agent("li")
    assert agent is not None and agent.state == AgentState.WRAP_UP
    assert (await router.snapshot("tax", 10.0)).avg_handle_s == 6.0
    assert await once(lambda: router.hangup("c1", 10.0)) == (None, {})


async def test_a_requeue_again_answers_the_same_place(router: RedisRouter) -> None:
    await connected(router)
    first, numbers, again, numbers_again = await twice(lambda: router.requeue("c1", "li", 8.0))
    assert first is not None and first.state == CallState.QUEUED
    assert first.declined_by == ["li"]
    assert again == first and numbers_again == numbers == {T1: (3,)}
    assert await router.position("c1") == 1
    assert await router.waiting("tax") == [("c1", T1)]  # queued once
    assert await once(lambda: router.requeue("c1", "li", 8.0)) == (None, {})


async def test_a_leave_again_answers_the_same(router: RedisRouter) -> None:
    await connected(router)
    await router.set_status("wang", AgentState.AVAILABLE, 4.5)
    await router.enqueue(Call(id="i1", session_id="s-c1", queue="tax", terminal_id="T1",
                              enqueued_at=5.0, declined_by=["li"], joins="c1"))
    assert [o.agent_id for o in await router.dispatch(5.0)] == ["wang"]
    await router.join("i1", "wang", 6.0, 1)
    order.take_all()
    first, numbers, again, numbers_again = await twice(lambda: router.leave("c1", "li", 8.0))
    assert first is not None and first.agents == ["wang"]
    assert again == first and numbers == numbers_again
    assert set(numbers) == {LI, WANG, T1}  # the leaver, and the call
    assert await once(lambda: router.leave("c1", "li", 8.0)) == (None, {})


async def test_a_status_again_answers_the_old_one(router: RedisRouter) -> None:
    first, numbers, again, numbers_again = await twice(
        lambda: router.set_status("wang", AgentState.AVAILABLE, 5.0))
    assert first == again == AgentState.AWAY and numbers_again == numbers == {WANG: (1,)}
    assert await once(lambda: router.set_status("wang", AgentState.AVAILABLE, 5.0)
                      ) == (None, {})


async def test_the_end_of_a_wrapup_again_answers_the_same(router: RedisRouter) -> None:
    await connected(router)
    await router.hangup("c1", 10.0)
    order.take_all()
    first, numbers, again, numbers_again = await twice(lambda: router.wrapup_done("li", 12.0))
    assert first is again is True and numbers_again == numbers == {LI: (5,)}
    assert await once(lambda: router.wrapup_done("li", 12.0)) == (False, {})


async def test_outside_an_attempt_nothing_is_kept(router: RedisRouter, redis: Redis,
                                                  key_prefix: str) -> None:
    await ringing(router)
    assert await router.withdraw("c1", "li", 5.0) is not None
    assert await router.withdraw("c1", "li", 5.0) is None
    assert [k async for k in redis.scan_iter(match=f"{key_prefix}:rp:*")] == []


async def test_an_offer_nobody_was_told_of_still_rings_out(router: RedisRouter, redis: Redis,
                                                          key_prefix: str) -> None:
    """The dispatch's reply lost for good (or its node dead before the ring timer): the
    script set the offer's ring timer itself, `RING_FALLBACK_S` late, which the step would
    have replaced at once with the ring time."""
    await ringing(router)  # at 3.0; nobody sets the ring timer
    ring = timers.ring("c1", "li", 1, QUEUE[0].ring_timeout_s)
    due = 3.0 + ring.delay_s + keys.RING_FALLBACK_S
    assert await redis.zscore(keys.timers(key_prefix), ring.key) == due
    fired: list[tuple[str, dict[str, Any]]] = []

    async def handler(kind: str, payload: dict[str, Any]) -> None:
        fired.append((kind, payload))

    now = [due - 0.1]
    scheduler = RedisScheduler(redis, key_prefix, clock=lambda: now[0], handler=handler)
    assert await scheduler.poll() == 0
    now[0] = due
    assert await scheduler.poll() == 1
    await scheduler.close()
    assert fired == [(ring.kind, ring.payload)]  # what `offers.ring_timeout` withdraws


async def test_a_task_started_inside_an_attempt_is_not_that_attempt() -> None:
    """A callback scheduled inside an attempt copies its context; its transactions are
    its own (a dispatch there must not be answered as the attempt's)."""
    async def inside() -> tuple[str | None, str | None]:
        started = asyncio.get_running_loop().create_task(_token())
        return retry.attempt(), await started
    mine, theirs = await retry.again("test", inside)
    assert mine is not None and theirs is None


async def _token() -> str | None:
    return retry.attempt()
