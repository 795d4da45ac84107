"""A step's timers changed at once (`Scheduler.change`), on both schedulers: the local one
and Redis's (one MULTI, one round trip)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.cluster.backends import connect_redis
from server.cluster.scheduler import RedisScheduler
from signaling.backend import Scheduler
from signaling.memory import LocalScheduler
from signaling.timers import Timer
from tests.cluster.fixtures import REDIS_URL

TIMEOUT_S = 30.0


@pytest.fixture
async def fired_by(routing_backend: str, request: pytest.FixtureRequest
                   ) -> AsyncIterator[tuple[Scheduler, asyncio.Queue[tuple[str, Any]]]]:
    """A scheduler of the backend, started, and the timers it fires (kind, payload)."""
    fired: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def handler(kind: str, payload: dict[str, Any]) -> None:
        await fired.put((kind, payload))

    if routing_backend == "memory":
        local = LocalScheduler(handler)
        yield local, fired
        await local.close()
        return
    prefix = request.getfixturevalue("redis_key_prefix")
    client = connect_redis(REDIS_URL, f"{prefix}:change")
    shared = RedisScheduler(client, prefix, handler=handler)
    shared.start()
    try:
        yield shared, fired
    finally:
        await shared.close()
        await client.aclose()


def ring(call: str, delay_s: float) -> Timer:
    return Timer(key=f"ring:{call}:1", delay_s=delay_s, kind="ring", payload={"call_id": call})


async def test_cancels_go_before_the_timers_set_and_only_the_set_ones_fire(
    fired_by: tuple[Scheduler, asyncio.Queue[tuple[str, Any]]]
) -> None:
    scheduler, fired = fired_by
    await scheduler.change([], [ring("c1", 1.5), ring("c2", 60), ring("c3", 1.5)])
    # c1 cancelled; c2 cancelled and set again, sooner: the set comes after the cancel
    await scheduler.change(["ring:c1:1", "ring:c2:1"], [ring("c2", 0.05), ring("c4", 0.1)])
    await scheduler.change(["ring:c3:1"], [ring("c5", 3.0)])  # c5: after c1 and c3 were due
    await scheduler.change([], [])  # nothing to change: nothing done
    got = [(await asyncio.wait_for(fired.get(), TIMEOUT_S))[1]["call_id"] for _ in range(3)]
    assert sorted(got[:2]) == ["c2", "c4"] and got[2] == "c5"  # c1 and c3 never fired
    assert fired.empty()
