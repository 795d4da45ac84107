"""SQLite connections go back to the pool without a rollback when nothing is open.

Every store transaction ends with its own COMMIT or ROLLBACK; SQLAlchemy's
rollback-on-return was one more round trip to aiosqlite's thread per append, paid
by the session log's committer before the next group (the answer right after an
offer) could begin. One left open is still rolled back (its `BEGIN IMMEDIATE` holds
the database's write lock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
import pytest

from server.storage import Database
from signaling import events as ev
from signaling.events import LogEvent

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    db = await Database.connect(sqlite_url)
    await db.upgrade()
    yield db
    await db.close()


@pytest.fixture
def rollbacks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per rollback aiosqlite is asked for: whether a transaction was open."""
    seen: list[bool] = []
    rollback = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        seen.append(self.in_transaction)
        await rollback(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    return seen


def queued(sid: str) -> LogEvent:
    return LogEvent(type=ev.QUEUED, ts=T0, session_id=sid, call_id="c-" + sid,
                    data={"queue": "tax", "terminal_id": "t1"})


async def test_an_append_and_a_read_return_their_connection_without_a_rollback(
    database: Database, rollbacks: list[bool]
) -> None:
    await database.append([queued("s1")])
    await database.append([LogEvent(type=ev.OFFERED, ts=T0, session_id="s1", call_id="c-s1",
                                    data={"agent_id": "li", "offer": 1})])
    assert (await database.get_session("s1")) is not None
    assert rollbacks == []


async def test_a_transaction_left_open_is_rolled_back_on_return(
    database: Database, rollbacks: list[bool]
) -> None:
    engine: Any = database._engine
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: aiosqlite.Connection = raw.driver_connection
        await driver.execute("BEGIN IMMEDIATE")  # behind SQLAlchemy's back: the write lock
        assert driver.in_transaction
    assert rollbacks == [True]
    assert not driver.in_transaction
    await database.append([queued("s2")])  # the write lock is free again
    assert (await database.get_session("s2")) is not None
