"""PostgreSQL writes a group in one statement (`storage/pg_write.py`); the sessions it
changes are found by index, whatever the size of the table (a year of calls)."""

from __future__ import annotations

import datetime as dt

import pytest

from server.storage import Database
from server.storage.pg_write import WRITE
from signaling import events as ev
from signaling.events import LogEvent

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def storage_backend() -> str:
    """The statement is PostgreSQL's own."""
    return "postgresql"


async def test_the_sessions_a_group_changes_are_found_by_index(database: Database) -> None:
    await database.append([LogEvent(type=ev.QUEUED, ts=T0, session_id=f"s{i:04d}",
                                    call_id=f"c{i}", data={"queue": "tax"})
                           for i in range(3000)])
    async with database._write() as conn:
        await conn.exec_driver_sql("ANALYZE sessions")
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        plan = "\n".join(row[0] for row in await driver.fetch(
            f"EXPLAIN {WRITE}", "[]", '[{"id": "s0005", "state": "ended"}]', ["s0005"], "[]",
            "[]", [], "[]"))
    assert "Seq Scan on sessions" not in plan and "sessions_pkey" in plan, plan
