"""Round trips to aiosqlite's thread: what the durable steps of a call wait for.

One per statement (`server.storage.sqlite_trips`), not a cursor opened, run, fetched
and closed in three or four; and none for the pool's rollback-on-return when every
transaction ended with its own COMMIT or ROLLBACK (`engine._on_sqlite_reset`). One left
open is still rolled back (its `BEGIN IMMEDIATE` holds the database's write lock)."""

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


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each call made in aiosqlite's thread."""
    seen: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", "?"))
        return await execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


def joined(sid: str, who: str) -> LogEvent:
    return LogEvent(type=ev.PARTICIPANT_JOINED, ts=T0, session_id=sid, call_id="c-" + sid,
                    data={"participant_id": who, "role": who.split(":")[0],
                          "principal_id": who.split(":")[1], "name": who})


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


async def test_each_step_of_a_call_s_appends_is_one_round_trip(
    database: Database, trips: list[str]
) -> None:
    """`queued` with the offer: BEGIN with two INSERTs, COMMIT. The answer: BEGIN with
    two SELECTs; an UPDATE and two INSERTs; COMMIT (`sqlite_rows`). (Were 11 and 22, then
    a trip a statement: 4 and 7.)"""
    offered = LogEvent(type=ev.OFFERED, ts=T0, session_id="s1", call_id="c-s1",
                       data={"agent_id": "li", "offer": 1})
    await database.append([queued("s1"), offered])
    assert len(trips) == 2, trips
    trips.clear()
    await database.append([
        LogEvent(type=ev.ANSWERED, ts=T0, session_id="s1", call_id="c-s1",
                 data={"agent_id": "li", "offer": 1}),
        joined("s1", "terminal:t1"), joined("s1", "specialist:li")])
    assert len(trips) == 3, trips
    session = await database.get_session("s1")
    assert session is not None and session.state == "connected"
    assert [p.participant_id for p in session.participants] == ["specialist:li", "terminal:t1"]
