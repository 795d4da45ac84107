"""Two nodes' appends that both join one participant, racing (the phone hand-off and the
specialist's answer both log the visitor joining): one participant row, joined at the first
join, and neither append fails (`bench.node_memory`: the answer's append failed on the
participants' primary key, so the call stayed answered with nobody told)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from server.storage import Database
from signaling import events as ev
from tests.storage.test_storage_sessionlog import at, event, queued

VISITOR = "visitor:v1"
HANDED = {"terminal_id": "t1", "participant_id": VISITOR, "visitor_id": "v1", "name": "V"}
JOINED = {"participant_id": VISITOR, "role": "visitor", "principal_id": "v1", "name": "V"}


async def _waiting(conn: asyncpg.Connection, count: int) -> None:
    """Until `count` other transactions wait for a lock (the appends, blocked)."""
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
           " AND wait_event_type = 'Lock'")
    async with asyncio.timeout(10):
        while await conn.fetchval(sql) < count:
            await asyncio.sleep(0.01)


@asynccontextmanager
async def _session_locked(url: str) -> AsyncIterator[asyncpg.Connection | None]:
    """PostgreSQL: the session's row locked, as by another node's append in flight, until
    the block ends; each append started meanwhile reads under a snapshot taken before it
    waited. SQLite: one writer at a time, nothing to hold (None)."""
    if not url.startswith("postgresql"):
        yield None
        return
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            await conn.execute("SELECT id FROM sessions WHERE id = 's1' FOR UPDATE")
            yield conn
    finally:
        await conn.close()


async def test_a_hand_off_and_an_answer_joining_the_visitor_on_two_nodes(
    database: Database, database_url: str
) -> None:
    """The hand-off's `handed_off` and the answer's `participant_joined` of the same
    visitor, each appended by its own node while the other's is under way: both land, one
    row for the visitor, joined when the hand-off joined it. Without the fix: PostgreSQL,
    the second append read the participants before the first committed and inserted the
    row again (`UniqueViolation`); SQLite, the row kept the later join, committed first."""
    other = await Database.connect(database_url)
    hand_off = [event(ev.HANDED_OFF, "s1", 3, **HANDED)]
    answer = [event(ev.ANSWERED, "s1", 4, agent_id="alice", agent_name="A", offer=1),
              event(ev.PARTICIPANT_JOINED, "s1", 4, **JOINED),
              event(ev.PARTICIPANT_JOINED, "s1", 4, participant_id="specialist:alice",
                    role="specialist", principal_id="alice", name="A")]
    try:
        await database.append([queued("s1"), event(ev.OFFERED, "s1", 1, agent_id="alice")])
        async with _session_locked(database_url) as holder:
            if holder is None:  # SQLite: one after the other, the later join first
                await database.append(answer)
                await other.append(hand_off)
            else:  # both read before either committed; the hand-off first
                handing = asyncio.create_task(other.append(hand_off))
                await _waiting(holder, 1)
                answering = asyncio.create_task(database.append(answer))
                await _waiting(holder, 2)
        if holder is not None:
            results = await asyncio.gather(handing, answering, return_exceptions=True)
            assert results == [None, None]
        detail = await database.get_session("s1")
        assert detail is not None and detail.state == ev.STATE_CONNECTED
        visitors = [p for p in detail.participants if p.participant_id == VISITOR]
        assert len(visitors) == 1
        assert visitors[0].joined_at == at(3) and visitors[0].left_at is None
        assert [e.type for e in detail.events].count(ev.HANDED_OFF) == 1
    finally:
        await other.close()
