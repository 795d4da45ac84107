"""PostgreSQL closes the log's pooled connections (a restart, `pg_terminate_backend`):
the next append runs again on a fresh connection instead of failing."""

from __future__ import annotations

import asyncio
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


async def test_a_call_step_after_the_connections_were_terminated_lands(
        database: Database, database_url: str) -> None:
    """The steps that lock their session and read its participants (`pg_rows.LOAD`, a
    statement asyncpg prepared on the connection now gone) run again on a fresh one,
    alone and in a shared commit."""
    await database.append([queued("s1"), queued("s2")])
    assert await terminate_others(database_url) >= 1
    await database.append([joined("s1", "specialist:alice")])
    assert await terminate_others(database_url) >= 1
    await asyncio.gather(database.append([joined("s2", "specialist:li")]),
                         database.append([LogEvent(type=ev.ENDED, ts=T0, session_id="s1",
                                                   data={"reason": "hangup"})]))
    s1, s2 = await database.get_session("s1"), await database.get_session("s2")
    assert s1 is not None and s1.state == "ended"
    assert [p.participant_id for p in s1.participants] == ["specialist:alice"]
    assert s2 is not None and [p.participant_id for p in s2.participants] == ["specialist:li"]


def queued(sid: str) -> LogEvent:
    return LogEvent(type=ev.QUEUED, ts=T0, session_id=sid, call_id=f"c-{sid}",
                    data={"queue": "tax"})


def joined(sid: str, who: str) -> LogEvent:
    return LogEvent(type=ev.PARTICIPANT_JOINED, ts=T0, session_id=sid,
                    data={"participant_id": who, "role": "specialist", "principal_id": who})
