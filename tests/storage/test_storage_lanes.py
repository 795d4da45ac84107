"""Groups of appends in flight together (`storage/lanes.py`, `groups_in_flight` > 1): on
PostgreSQL an append no longer waits for a group that shares none of its sessions, and a
session's batches still commit in the order they were appended; SQLite commits one group
at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server import keys
from server.config import ConfigError, load_settings
from server.storage import Database, UnknownSession
from server.storage.lanes import Lanes
from signaling import events as ev
from signaling.events import LogEvent
from tests.storage.test_storage_sessionlog import count_events, event, queued

WAIT_S = 30.0  # generous: a busy CI machine
LANES = 4  # groups in flight asked for (PostgreSQL; SQLite keeps one writer whatever is asked)


def chat(sid: str, text: str) -> LogEvent:
    return event(ev.CHAT, sid, 1, text=text)


def batch(*sids: str) -> tuple[list[LogEvent], asyncio.Future[None]]:
    return [chat(sid, "x") for sid in sids], asyncio.get_running_loop().create_future()


async def test_a_batch_held_back_holds_back_the_later_batches_of_its_sessions() -> None:
    lanes = Lanes(4)
    lanes.add(batch("a"))
    first = lanes.take()
    assert first is not None and lanes.in_flight == 1
    lanes.add(batch("a", "b"))  # waits for "a"
    lanes.add(batch("b"))  # after a batch on "b" that waits: waits too
    lanes.add(batch("c"))
    lanes.add(batch())  # no session: nothing to wait for
    second = lanes.take()
    assert second is not None and [len(b[0]) for b in second[1].batches] == [1, 0]
    assert lanes.take() is None and lanes.waiting == 2
    assert lanes.free(first[0]) and not lanes.free(first[0])
    third = lanes.take()
    assert third is not None and [len(b[0]) for b in third[1].batches] == [2, 1]


async def test_a_sessions_batches_commit_in_the_order_appended(database: Database) -> None:
    """Appends arriving one by one while groups commit: every session's events are in
    the order its batches were appended, whichever group each went in."""
    database.groups_in_flight = LANES
    sids = [f"s{k}" for k in range(5)]
    await database.append([queued(sid) for sid in sids])
    tasks = []
    most_in_flight = 0
    for n in range(60):
        one, other = sids[n % 5], sids[(n * 3 + 1) % 5]
        tasks.append(asyncio.create_task(database.append(
            [chat(one, str(n))] + ([chat(other, str(n))] if n % 4 == 0 else []))))
        await asyncio.sleep(0)  # this append is in its lane before the next one
        most_in_flight = max(most_in_flight, database._lanes.in_flight)
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    for sid in sids:
        detail = await database.get_session(sid)
        assert detail is not None
        said = [int(e.data["text"]) for e in detail.events if e.type == ev.CHAT]
        assert said == sorted(said) and len(said) >= 12
    if database.dialect == "sqlite":  # one writer: one group at a time
        assert most_in_flight == 1
    else:
        assert most_in_flight > 1


@contextlib.asynccontextmanager
async def row_locked(url: str, session_id: str) -> AsyncIterator[asyncpg.Connection]:
    """Another node's transaction holding a session's row (`FOR UPDATE`) until exit."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session_id)
            yield conn
    finally:
        await conn.close()


async def lock_waiters(conn: asyncpg.Connection) -> list[int]:
    """Until some backend of this database waits on a row lock: their pids."""
    async with asyncio.timeout(WAIT_S):
        while True:
            pids: list[int] = [row["pid"] for row in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")]
            if pids:
                return pids
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("storage_backend", ["postgresql"])
async def test_a_group_waiting_on_a_lock_holds_back_only_its_own_sessions(
        database: Database, database_url: str) -> None:
    """A group waits on a session's row lock (the other node's group): appends to other
    sessions commit meanwhile, a bad one among them fails alone, and the session's next
    batch waits for its earlier one."""
    database.groups_in_flight = LANES
    await database.append([queued("s1"), queued("s2")])
    before = await count_events(database_url)
    async with row_locked(database_url, "s1") as other:
        first = asyncio.create_task(database.append([chat("s1", "first")]))
        await lock_waiters(other)
        second = asyncio.create_task(database.append([chat("s1", "second")]))
        meanwhile = await asyncio.wait_for(asyncio.gather(
            database.append([chat("s2", "meanwhile")]),
            database.append([event(ev.ANSWERED, "ghost", 2, agent_id="li")]),
            return_exceptions=True), WAIT_S)
        assert meanwhile[0] is None and isinstance(meanwhile[1], UnknownSession)
        assert not first.done() and not second.done()
        assert await count_events(database_url) == before + 1
    await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)
    s1 = await database.get_session("s1")
    assert s1 is not None
    assert [e.data["text"] for e in s1.events if e.type == ev.CHAT] == ["first", "second"]


@pytest.mark.parametrize("storage_backend", ["postgresql"])
async def test_a_group_whose_connection_is_lost_runs_again_while_others_commit(
        database: Database, database_url: str) -> None:
    """The connection of a group in flight is closed by the server (a restart): that group
    runs again on a fresh connection and lands once; a group beside it is untouched."""
    database.groups_in_flight = LANES
    await database.append([queued("s1"), queued("s2")])
    before = await count_events(database_url)
    async with row_locked(database_url, "s1") as other:
        stuck = asyncio.create_task(database.append([chat("s1", "again")]))
        (pid,) = await lock_waiters(other)
        await asyncio.wait_for(database.append([chat("s2", "beside")]), WAIT_S)
        assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
    await asyncio.wait_for(stuck, WAIT_S)
    assert await count_events(database_url) == before + 2
    s1 = await database.get_session("s1")
    assert s1 is not None and [e.data["text"] for e in s1.events
                               if e.type == ev.CHAT] == ["again"]


@pytest.mark.parametrize("routing_backend", ["memory"])
async def test_the_app_takes_its_groups_in_flight_from_the_config(
        aiohttp_client: Any, make_app: Any, database_url: str, storage_backend: str) -> None:
    """`[storage] log_groups_in_flight` reaches the session log: several on PostgreSQL,
    one on SQLite whatever the file says (one writer)."""
    client = await aiohttp_client(make_app(database_url, storage={"log_groups_in_flight": 3}))
    assert client.app[keys.DB].groups_in_flight == (3 if storage_backend == "postgresql" else 1)


@pytest.mark.parametrize("value", ["0", "17"])
def test_groups_in_flight_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    """1 to 16 are taken (a key the settings did not know would be refused too: the
    accepted value is what shows the key exists)."""
    path = tmp_path / "vwin.toml"
    path.write_text("[storage]\nlog_groups_in_flight = 16\n")
    assert load_settings(path, env={}).storage.log_groups_in_flight == 16
    path.write_text(f"[storage]\nlog_groups_in_flight = {value}\n")
    with pytest.raises(ConfigError, match="log_groups_in_flight"):
        load_settings(path, env={})
