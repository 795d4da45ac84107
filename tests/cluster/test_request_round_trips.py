"""`call.request` waits for routing as few times as it can: on a busy node every round trip
to Redis is a turn of the event loop, and the goal-size day's requests took seconds. Its
checks' reads go together, and the queue's figures for the estimate are read beside the
enqueue. Real Redis router; only the moments of its scripts are noted."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling import messages as m
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, make_desk


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


class NotedRouter(RedisRouter):
    """A Redis router that notes when each of its round trips began and ended."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ticks = itertools.count()
        self.spans: list[tuple[str, int, int]] = []

    async def _noted(self, name: str, work: Any) -> Any:
        start = next(self.ticks)
        try:
            return await work
        finally:
            self.spans.append((name, start, next(self.ticks)))

    async def _run(self, name: str, now: float, *args: Any) -> Any:
        return await self._noted(name, super()._run(name, now, *args))

    async def check_open(self, queue: str) -> str | None:
        result: str | None = await self._noted("check_open", super().check_open(queue))
        return result

    def overlapped(self, a: str, b: str) -> bool:
        return any(s1 < e2 and s2 < e1 for n1, s1, e1 in self.spans if n1 == a
                   for n2, s2, e2 in self.spans if n2 == b)


@pytest.fixture
async def desk(redis: Redis, key_prefix: str, database: Database) -> AsyncIterator[Desk]:
    """One node's switchboard on a real Redis router whose round trips are noted."""
    noted = NotedRouter(redis, key_prefix, QUEUES)
    await noted.start()
    async for made in make_desk(database, router=noted):
        made.s.link.alone = False  # as on a cluster: another node may offer the call
        yield made


async def test_a_request_reads_routing_together(desk: Desk) -> None:
    """On a cluster (a node alone keeps its step unsuspended up to its dispatch:
    `tests/test_concurrency.py` on memory)."""
    router = desk.s.router
    assert isinstance(router, NotedRouter)
    await desk.connect(ALICE)  # logged in, away: the call waits
    kiosk = await desk.connect(KIOSK)
    router.spans.clear()
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax"))
    [queued] = [f for f in kiosk.frames if f["type"] == "call.queued"]
    assert queued["position"] == 1 and queued["estimated_wait_s"] == 300.0
    assert router.overlapped("calls_of_terminal", "check_open")  # the checks' reads
    assert router.overlapped("enqueue", "snapshot")  # the estimate's figures
