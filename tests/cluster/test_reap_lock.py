"""A takeover that outlasts its lock's TTL keeps the lock (server/cluster/node.py): on the
bench day a killed node's 593 principals took longer than the 30 s TTL, and the restarted
node took the same dead instance over a second time beside the first survivor. Real
Redis, two `ClusterNode`s in process, the lock's TTL shortened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cluster import keys
from server.cluster.node import ClusterNode
from tests.helpers import WAIT_S, eventually

TTL_S = 1


class Survivor:
    """A node's events: its takeovers, held open until the test lets them end."""

    def __init__(self) -> None:
        self.taken: list[str] = []
        self.entered = asyncio.Event()
        self.finish = asyncio.Event()

    async def dead(self, instance: str, principals: set[str]) -> None:
        self.taken.append(instance)
        self.entered.set()
        await self.finish.wait()

    def reaped(self) -> None: ...
    def lost(self, instances: set[str]) -> None: ...
    async def recovered(self) -> None: ...


@pytest.fixture
async def survivors(redis: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[tuple[Survivor, Survivor]]:
    monkeypatch.setattr(keys, "REAP_LOCK_TTL_S", TTL_S)
    events = (Survivor(), Survivor())
    nodes = [ClusterNode(redis, key_prefix, name, {}, ev)
             for name, ev in zip("ab", events, strict=True)]
    for node in nodes:
        await node.start()
    yield events
    for ev in events:
        ev.finish.set()
    for node in nodes:
        await node.close()


async def test_a_long_takeover_is_not_started_twice(
        survivors: tuple[Survivor, Survivor], redis: Redis, key_prefix: str) -> None:
    await redis.hset(keys.nodes(key_prefix), "gone.0001", "gone")  # registered, no heartbeat
    a, b = survivors
    async with asyncio.timeout(WAIT_S):
        await asyncio.wait([asyncio.ensure_future(a.entered.wait()),
                            asyncio.ensure_future(b.entered.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
    started = time.monotonic()

    async def six_ttls_passed() -> bool:  # the other survivor sweeps every second meanwhile
        return time.monotonic() - started > 6 * TTL_S
    await eventually(six_ttls_passed)
    assert a.taken + b.taken == ["gone.0001"], "taken over once, by one survivor"
    assert await redis.get(keys.fence(key_prefix, "gone.0001")) is not None
