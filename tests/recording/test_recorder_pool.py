"""The recorder pool (`RecorderPool`): its memory and Redis implementations, the same
tests on both, each with a real router whose calls it asks about."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cluster.recorders import RedisRecorderPool
from server.cluster.router import RedisRouter
from signaling.backend import Router
from signaling.memory import MemoryRouter
from signaling.model import Agent, AgentState, Call, QueueConfig
from signaling.recorders import (
    Assignment,
    MemoryRecorderPool,
    RecorderPool,
    Released,
    Unassigned,
)
from tests.cluster.fixtures import REDIS_URL

POOL_QUEUES = [QueueConfig(id="tax", name="Tax")]


@dataclasses.dataclass
class Pooled:
    """The routing backend's pool and the router whose calls it asks about."""

    pool: RecorderPool
    router: Router

    async def connect(self, call_id: str) -> None:
        """A call of its own (session `s-<call id>`), answered by a specialist of its own."""
        now = 1000.0
        agent = Agent(id=f"a-{call_id}", name=call_id, skills={"tax": 1})
        await self.router.agent_join(agent, now)
        await self.router.set_status(agent.id, AgentState.AVAILABLE, now)
        await self.router.enqueue(Call(id=call_id, session_id=f"s-{call_id}", queue="tax",
                                       terminal_id=f"t-{call_id}", enqueued_at=now))
        await self.router.dispatch(now)
        await self.router.accept(call_id, agent.id, now)


@pytest.fixture
async def pooled(routing_backend: str, request: pytest.FixtureRequest
                 ) -> AsyncIterator[Pooled]:
    """The pool of the routing backend and its router (Redis: this test's key prefix)."""
    if routing_backend == "memory":
        memory = MemoryRouter(POOL_QUEUES)
        yield Pooled(MemoryRecorderPool(memory), memory)
        return
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = request.getfixturevalue("redis_key_prefix")
    try:
        shared = RedisRouter(client, prefix, POOL_QUEUES)
        await shared.start()
        yield Pooled(RedisRecorderPool(client, prefix), shared)
    finally:
        await client.aclose()


async def test_pool_gives_each_call_to_the_least_loaded_recorder(pooled: Pooled) -> None:
    pool = pooled.pool
    for i in range(7):
        await pooled.connect(f"c{i}")
    await pool.join("a", 2)
    await pool.join("b", 4)
    picks = [(await pool.assign(f"c{i}", f"s-c{i}")) for i in range(6)]
    assert [p.recorder for p in picks if isinstance(p, Assignment)] == [
        "a", "b", "b", "a", "b", "b"]
    assert await pool.assign("c6", "s-c6") is Unassigned.NO_ROOM
    assert not await pool.available()
    assert [(r.name, r.capacity, sorted(r.calls)) for r in await pool.recorders()] == [
        ("a", 2, ["c0", "c3"]), ("b", 4, ["c1", "c2", "c4", "c5"])]
    assert await pool.release("c0") == Released(recorder="a") and await pool.available()
    assert await pool.release("c0") == Released()
    # each call with the segment it was on: its hand-over names that one
    assert await pool.leave("b") == {"c1": 1, "c2": 1, "c4": 1, "c5": 1}
    assert await pool.recorder_of("c1") is None and await pool.recorder_of("c3") == "a"
    again = await pool.assign("c1", "s-c1")
    assert isinstance(again, Assignment) and again.recorder == "a" and again.segment == 2
    assert again.new and isinstance(picks[1], Assignment) and picks[1].new
    # asked again: the same assignment, given before (whoever gave it tells the recorder)
    assert await pool.assign("c1", "s-c1") == Assignment(recorder="a", segment=2, new=False)
    assert await pool.assignment_of("c1") == Assignment(recorder="a", segment=2)
    assert await pool.assignment_of("c5") is None  # its recorder left: none until handed on
    for call_id in ("c2", "c4", "c2"):
        await pool.wait(call_id)
    assert await pool.take_waiting() == ["c2", "c4"] and await pool.take_waiting() == []
    assert await pool.join("a", 1) == {"c1": 2, "c3": 1}


async def test_pool_assigns_only_a_call_connected_in_that_session(pooled: Pooled) -> None:
    """Checked in the assignment itself (no read of the call after it: a round trip on
    every recorded answer), so an old read cannot give an ended call a recorder."""
    pool, router = pooled.pool, pooled.router
    await pool.join("a", 4)
    await pooled.connect("c0")
    assert await pool.assign("c0", "s-other") is Unassigned.GONE
    assert await pool.assign("nope", "s-nope") is Unassigned.GONE
    await router.enqueue(Call(id="c1", session_id="s-c1", queue="tax", terminal_id="t-c1",
                              enqueued_at=1000.0))
    assert await pool.assign("c1", "s-c1") is Unassigned.GONE  # queued, not connected
    held = await pool.assign("c0", "s-c0")
    assert isinstance(held, Assignment)
    await router.hangup("c0", 1001.0)
    assert await pool.assign("c0", "s-c0") is Unassigned.GONE  # its recorder not handed back
    assert [load.calls for load in await pool.recorders()] == [("c0",)]  # ended's to release
    assert await pool.release("c0") == Released(recorder="a")
    assert [load.calls for load in await pool.recorders()] == [()]


async def test_pool_says_which_waiting_call_ends_with_its_gap_not_logged(pooled: Pooled) -> None:
    """A call that waited for a recorder (`wait_s`) and ended before one came: its end
    must log the gap; one whose log says so already (`named`) must not log it twice."""
    pool = pooled.pool
    await pool.wait("c0")
    await pool.wait("c1")
    await pool.wait("c1", named=True)
    await pool.wait("c1")  # named stays named
    await pool.wait("c2", named=True)
    assert sorted(await pool.take_waiting()) == ["c0", "c1", "c2"]
    for call_id, named in (("c0", False), ("c1", True), ("c2", True)):
        await pool.wait(call_id, named=named)
    assert await pool.release("c0") == Released(unnamed=True)
    assert await pool.release("c1") == Released()
    assert await pool.release("c2") == Released()
    assert await pool.release("c0") == Released()  # released once
