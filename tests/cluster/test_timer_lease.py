"""A claimed timer survives the death of the node that claimed it (`RedisScheduler` leases).

Claiming moves a timer to a lease; the handler's completion acknowledges it. A claimer
that dies (a killed process, or an abandoned scheduler whose handler never returns)
leaves a lease that runs out, and then another scheduler fires the timer, once; an
acknowledged timer never fires again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.exc import OperationalError

from server.cluster import keys
from server.cluster.backends import connect_redis
from server.cluster.scheduler import RedisScheduler
from signaling.timers import Timer
from tests.cluster.conftest import REDIS_URL
from tests.cluster.procs import ROOT
from tests.cluster.timer_victim import OWNER as VICTIM
from tests.helpers import WAIT_S, eventually

LEASE_S = 2.0
RING = {"call_id": "c1", "agent_id": "li"}


class Fired:
    """A handler that records what it ran."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.runs.append((kind, payload))


@pytest.fixture
async def client(key_prefix: str, redis: Redis) -> AsyncIterator[Redis]:
    del redis  # flushes the prefix afterwards
    made = connect_redis(REDIS_URL, f"{key_prefix}:test")
    try:
        yield made
    finally:
        await made.aclose()


async def leases(redis: Redis, prefix: str) -> dict[str, float]:
    return {str(claim): float(deadline) for claim, deadline
            in await redis.zrange(keys.timer_leases(prefix), 0, -1, withscores=True)}


async def nothing_left(redis: Redis, prefix: str) -> None:
    """No timer pending, claimed or leased: nothing can fire any more."""
    for key in (keys.timers(prefix), keys.timer_payloads(prefix), keys.timer_leases(prefix),
                keys.timer_claims(prefix)):
        assert not await redis.exists(key), key


async def test_abandoned_claim_fires_once_elsewhere_after_its_lease(
        client: Redis, redis: Redis, key_prefix: str) -> None:
    now = [1_000_000.0]

    def clock() -> float:
        return now[0]

    started = asyncio.Event()
    hung: list[asyncio.Task[Any] | None] = []

    async def hangs(kind: str, payload: dict[str, Any]) -> None:
        del kind, payload
        hung.append(asyncio.current_task())
        started.set()
        await asyncio.Event().wait()

    dead = RedisScheduler(client, key_prefix, clock, owner="dead", lease_s=LEASE_S,
                          handler=hangs)
    try:
        await dead.change([], [Timer(key="ring:c1", delay_s=1.0, kind="ring", payload=RING)])
        await dead.change([], [Timer(
            key="wrapup:li", delay_s=2.0, kind="wrapup", payload={"agent_id": "li"})])
        now[0] += 1.0
        assert await dead.poll() == 1  # the ring timer only: the wrap-up is not due yet
        await asyncio.wait_for(started.wait(), WAIT_S)
        claimed = await leases(redis, key_prefix)
        assert [c.split(keys.SEP)[:2] for c in claimed] == [["ring:c1", "dead"]]
        assert list(claimed.values()) == [now[0] + LEASE_S]
        # `dead` never polls or acknowledges again: it is gone, its handler halfway.

        fired = Fired()
        live = RedisScheduler(client, key_prefix, clock, owner="live", lease_s=LEASE_S,
                              handler=fired)
        now[0] += 1.0
        assert await live.poll() == 1  # the wrap-up; the ring timer is still leased to `dead`
        now[0] += LEASE_S - 1.0 - 0.01
        assert await live.poll() == 0
        now[0] += 0.02
        assert await live.poll() == 1  # the lease ran out: `live` fires the ring timer
        await live.close()  # its handlers finish and acknowledge
        assert fired.runs == [("wrapup", {"agent_id": "li"}), ("ring", RING)]

        later = RedisScheduler(client, key_prefix, clock, owner="later", lease_s=LEASE_S,
                               handler=fired)
        for _ in range(3):
            now[0] += 10 * LEASE_S
            assert await later.poll() == 0
        assert len(fired.runs) == 2
        await nothing_left(redis, key_prefix)
    finally:
        for task in hung:  # the dead scheduler's handler, still hanging in this process
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_killed_process_mid_handler_hands_its_timer_on(
        client: Redis, redis: Redis, key_prefix: str) -> None:
    await RedisScheduler(client, key_prefix).change([], [Timer(
        key="ring:c1", delay_s=0.0, kind="ring", payload=RING)])
    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cluster.timer_victim", REDIS_URL, key_prefix,
        str(LEASE_S), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        assert victim.stdout is not None
        line = await asyncio.wait_for(victim.stdout.readline(), 60)
        assert line.decode().split() == ["running", "ring"]
        (claim, deadline), = (await leases(redis, key_prefix)).items()
        assert claim.split(keys.SEP)[:2] == ["ring:c1", VICTIM]

        async def renewed() -> bool:  # alive, its handler running: the lease is extended
            return (await leases(redis, key_prefix)).get(claim, 0.0) > deadline

        await eventually(renewed)
    finally:
        victim.kill()
        await victim.wait()

    fired = Fired()
    survivor = RedisScheduler(client, key_prefix, owner="survivor", lease_s=LEASE_S,
                              handler=fired)
    survivor.start()
    try:
        async def ran() -> bool:
            return bool(fired.runs)

        await eventually(ran, WAIT_S + LEASE_S)
    finally:
        await survivor.close()
    assert fired.runs == [("ring", RING)]
    later = RedisScheduler(client, key_prefix, lambda: time.time() + 3600, owner="later",
                           handler=fired)
    assert await later.poll() == 0
    assert fired.runs == [("ring", RING)]
    await nothing_left(redis, key_prefix)


async def test_claim_superseded_by_the_same_key_scheduled_again_is_dropped(
        client: Redis, redis: Redis, key_prefix: str) -> None:
    """A ring timeout whose run died after offering the call again (same key, new timer)."""
    now = [1_000_000.0]

    def clock() -> float:
        return now[0]

    dead = RedisScheduler(client, key_prefix, clock, owner="dead", lease_s=LEASE_S)
    await dead.change([], [Timer(key="ring:c1", delay_s=0.0, kind="ring", payload=RING)])
    assert await dead.poll() == 1  # no handler: claimed, never acknowledged (a death)
    assert len(await leases(redis, key_prefix)) == 1
    again = {"call_id": "c1", "agent_id": "wang"}
    await dead.change([], [Timer(key="ring:c1", delay_s=3 * LEASE_S, kind="ring", payload=again)])

    fired = Fired()
    live = RedisScheduler(client, key_prefix, clock, owner="live", lease_s=LEASE_S,
                          handler=fired)
    now[0] += LEASE_S + 0.01
    assert await live.poll() == 0  # the old claim is dropped: the newer timer replaces it
    assert await leases(redis, key_prefix) == {}
    now[0] += 3 * LEASE_S
    assert await live.poll() == 1
    await live.close()
    assert fired.runs == [("ring", again)]
    await nothing_left(redis, key_prefix)


async def test_a_timer_whose_handler_lost_the_database_runs_again_after_its_lease(
        client: Redis, redis: Redis, key_prefix: str) -> None:
    """The session log's connection closed under the handler (a database restart): the
    timer is not acknowledged, so it is not lost; it runs again once its lease ends."""
    now = [1_000_000.0]
    runs: list[str] = []

    async def loses_the_database_once(kind: str, payload: dict[str, Any]) -> None:
        del payload
        runs.append(kind)
        if len(runs) == 1:
            raise OperationalError("INSERT INTO session_events ...", {}, ConnectionError(
                "connection was closed in the middle of operation"))

    scheduler = RedisScheduler(client, key_prefix, lambda: now[0], owner="node",
                               lease_s=LEASE_S, handler=loses_the_database_once)
    await scheduler.change([], [Timer(key="ring:c1", delay_s=0.0, kind="ring", payload=RING)])
    assert await scheduler.poll() == 1

    async def failed_once() -> bool:
        return runs == ["ring"] and not scheduler._running  # ended, not acknowledged

    await eventually(failed_once)
    assert list(await leases(redis, key_prefix)) != []
    now[0] += LEASE_S + 0.01
    assert await scheduler.poll() == 1
    await scheduler.close()
    assert runs == ["ring", "ring"]
    await nothing_left(redis, key_prefix)
