"""A busy node's PostgreSQL connections stay open between bursts, and its statements are
prepared once: on the goal-size day the pool's default (5 kept, more opened for a moment and
closed again on return) had node 2 spend ~2 % of its busy time at the peak opening and
closing connections, each several round trips and its statements prepared anew."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import event

from bench.trips import observed
from server.storage import Database
from server.storage.engine import PG_POOL_KEPT
from signaling import events as ev
from signaling.events import LogEvent


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


async def test_a_group_reads_its_sessions_with_one_statement_whatever_its_size(
        database: Database) -> None:
    """The ids go as one array: an `IN ($1, $2...)` list was another statement for each
    length, prepared again by every pooled connection."""
    t0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
    texts: set[str] = set()

    def seen(statement: str) -> None:
        if "FOR UPDATE" in statement:
            texts.add(statement)

    async with observed(database, seen):
        for size in (1, 2, 5):
            sids = [f"s{size}-{i}" for i in range(size)]
            await database.append([LogEvent(type=ev.QUEUED, ts=t0, session_id=sid,
                                            call_id="c" + sid, data={"queue": "tax"})
                                   for sid in sids])
            await database.append([LogEvent(type=ev.ENDED, ts=t0, session_id=sid,
                                            data={"reason": "hangup"}) for sid in sids])
    assert len(texts) == 1
