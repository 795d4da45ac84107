"""A resume that crosses a hang-up, on a cluster's parts: the real Redis router and the
real Redis bus with its reorder buffer. The hang-up is numbered after the re-sync took
its number, so the party hears the call connected, then ended; never ended, then
connected again (`tests/switchboard/test_resume_crossing.py` on one node)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cluster.bus import RedisBus
from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling.identity import Identity
from tests.cluster.conftest import REDIS_URL
from tests.cluster.test_bus_order import Unheeded
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, make_desk
from tests.switchboard.test_resume_crossing import (
    Crossing,
    heard,
    never_connected_after_ended,
    request_again_across_hangup,
    resume_across_hangup,
)


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


class CrossingRedisRouter(Crossing, RedisRouter):
    pass


@pytest.fixture
async def crossing(redis: Redis, key_prefix: str, database: Database) -> AsyncIterator[Desk]:
    """One node's switchboard on Redis: routing, and the bus that numbers and reorders
    (a gap would be held 10 s: longer than the test)."""
    router = CrossingRedisRouter(redis, key_prefix, QUEUES)
    await router.start()
    binary = Redis.from_url(REDIS_URL)
    bus = RedisBus(binary, key_prefix, "node-a", Unheeded(), reorder_hold_s=0.25,
                   reorder_cap_s=10.0)
    await bus.start()
    try:
        async for made in make_desk(database, router=router, bus=bus):  # type: ignore[arg-type]
            made.s.link.alone = False  # as on a cluster
            yield made
    finally:
        await bus.close()
        await binary.aclose()


@pytest.mark.parametrize(("back", "other", "reads"), [(KIOSK, ALICE, 1), (ALICE, KIOSK, 2)])
async def test_a_resume_crossing_a_hangup_hears_it_connected_then_ended(
        crossing: Desk, back: Identity, other: Identity, reads: int) -> None:
    call_id, sink = await resume_across_hangup(crossing, back, other, reads)
    seen = heard(sink, call_id)
    never_connected_after_ended(seen)
    assert seen == [("call.connected", True), ("call.ended", None)]  # in the cluster's order
    assert crossing.s.bus.reorder.gaps == 0  # type: ignore[attr-defined]


async def test_a_request_sent_again_crossing_a_hangup_hears_it_connected_then_ended(
        crossing: Desk) -> None:
    call_id, sink = await request_again_across_hangup(crossing)
    assert heard(sink, call_id) == [("call.connected", True), ("call.ended", None)]
