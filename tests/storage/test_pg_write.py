"""PostgreSQL writes a group in one statement (`storage/pg_write.py`); the sessions it
changes are found by index, whatever the size of the table (a year of calls)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

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
        plan = "\n".join(row[0] for row in await conn.execute(sa.text(f"EXPLAIN {WRITE.text}"), {
            "new_sessions": "[]", "changed_sessions": '[{"id": "s0005", "state": "ended"}]',
            "changed_sessions_ids": ["s0005"], "new_people": "[]", "changed_people": "[]",
            "changed_people_ids": [], "events": "[]"}))
    assert "Seq Scan on sessions" not in plan and "sessions_pkey" in plan, plan
