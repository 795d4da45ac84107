"""PostgreSQL closes the log's pooled connections (a restart, `pg_terminate_backend`):
the next append runs again on a fresh connection instead of failing."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from server.storage import Database
from signaling import events as ev
from signaling.events import LogEvent
from tests.storage.test_storage_sessionlog import count_events

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def storage_backend() -> str:
    """Only PostgreSQL closes a connection from the server's side."""
    return "postgresql"


def status(new: str) -> LogEvent:
    return LogEvent(type=ev.AGENT_STATUS, ts=T0, actor="alice",
                    data={"old": "away", "new": new, "reason": "user"})


async def terminate_others(url: str) -> int:
    """Every other connection to this database, ended by the server."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return len(await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await conn.close()


async def test_an_append_after_the_connections_were_terminated_lands(
        database: Database, database_url: str) -> None:
    await database.append([status("available")])  # the pool now holds a connection
    assert await terminate_others(database_url) >= 1
    await database.append([status("away")])
    assert await count_events(database_url) == 2
