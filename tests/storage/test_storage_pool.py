"""A busy node's PostgreSQL connections stay open between bursts: on the goal-size day the
pool's default (5 kept, more opened for a moment and closed again on return) had node 2
spend ~2 % of its busy time at the peak opening and closing connections, each several round
trips and its statements prepared anew."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from server.storage import Database
from server.storage.engine import PG_POOL_KEPT


@pytest.fixture
def storage_backend() -> str:
    """SQLite has one file and no connection set-up to speak of."""
    return "postgresql"


async def test_connections_of_a_burst_are_kept_for_the_next(database: Database) -> None:
    opened: list[object] = []
    event.listen(database._engine.sync_engine, "connect", lambda *_: opened.append(1))
    together = PG_POOL_KEPT - 1  # besides the one the fixture's set-up left in the pool

    async def burst() -> None:
        go, held = asyncio.Event(), []

        async def hold() -> None:
            async with database._read():
                held.append(1)
                if len(held) == together:
                    go.set()
                await go.wait()

        await asyncio.wait_for(asyncio.gather(*(hold() for _ in range(together))), 30)

    await burst()
    first = len(opened)
    await burst()
    assert first >= together - 1 and len(opened) == first  # none opened again
