"""An answer logged twice: a fenced node's append already under way lands after the
survivor logged the same answer again (`offers.answer_again`). The log keeps one
`answered` for a specialist at an offer; the rest of the append lands."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.storage import Database
from server.storage.records import SessionDetail
from signaling import events as ev
from signaling.events import LogEvent

T0 = dt.datetime(2026, 3, 2, 2, 55, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def event(kind: str, sid: str, seconds: float, **data: Any) -> LogEvent:
    return LogEvent(type=kind, ts=at(seconds), session_id=sid, data=data)


def queued(sid: str) -> LogEvent:
    return LogEvent(type=ev.QUEUED, ts=at(0), session_id=sid, call_id=f"c-{sid}",
                    data={"queue": "tax", "terminal_id": "t1", "node_id": "n1"})


def answer(sid: str, seconds: float, agent: str = "sp0046", offer: int = 6
           ) -> list[LogEvent]:
    """What `offers._answer` logs: the answer, the caller's and the specialist's joins."""
    return [event(ev.ANSWERED, sid, seconds, agent_id=agent, agent_name=agent.upper(),
                  offer=offer),
            event(ev.PARTICIPANT_JOINED, sid, seconds, participant_id="terminal:t1",
                  role="terminal", principal_id="t1"),
            event(ev.PARTICIPANT_JOINED, sid, seconds, participant_id=f"specialist:{agent}",
                  role="specialist", principal_id=agent)]


async def offered(db: Database, sid: str = "s1") -> None:
    await db.append([queued(sid), event(ev.OFFERED, sid, 1, agent_id="sp0046", offer=6)])


async def detail(db: Database, sid: str = "s1") -> SessionDetail:
    found = await db.get_session(sid)
    assert found is not None
    return found


def answers(session: SessionDetail) -> list[tuple[str, int]]:
    return [(e.data["agent_id"], e.data["offer"]) for e in session.events
            if e.type == ev.ANSWERED]


@pytest.fixture
async def other(database: Database, database_url: str) -> AsyncIterator[Database]:
    """A second node's session log on the same database: its own engine and pool."""
    db = await Database.connect(database_url)
    try:
        yield db
    finally:
        await db.close()


async def test_the_same_answer_appended_again_is_logged_once(
        database: Database, caplog: pytest.LogCaptureFixture) -> None:
    await offered(database)
    await database.append(answer("s1", 57))  # the survivor's, at 02:55:57
    late = [*answer("s1", 40), event(ev.CHAT, "s1", 58, text="still lands")]
    with caplog.at_level("WARNING", logger="server.storage.group"):
        await database.append(late)  # the fenced node's, with its own (earlier) time
    assert "s1: sp0046's answer at offer 6 is logged already; left out" in caplog.text

    s1 = await detail(database)
    assert answers(s1) == [("sp0046", 6)]
    assert (s1.state, s1.answered_at, s1.specialist_id, s1.wait_s) == (
        "connected", at(57), "sp0046", 57)
    assert [e.type for e in s1.events].count(ev.PARTICIPANT_JOINED) == 2  # its joins too
    assert [e.data["text"] for e in s1.events if e.type == ev.CHAT] == ["still lands"]
    assert sorted(p.participant_id for p in s1.participants) == [
        "specialist:sp0046", "terminal:t1"]


async def test_a_repeated_answer_does_not_bring_back_a_specialist_who_left(
        database: Database) -> None:
    """The fenced node's late batch lands after the specialist left the call: its join,
    applied, would show them in it again."""
    await offered(database)
    await database.append(answer("s1", 57))
    await database.append([event(ev.PARTICIPANT_LEFT, "s1", 70,
                                 participant_id="specialist:sp0046", reason="left")])
    await database.append([*answer("s1", 40),
                           event(ev.RECORDING_STARTED, "s1", 40, recorder="recorder:r1",
                                 segment=1)])
    s1 = await detail(database)
    left = {p.participant_id: p.left_at for p in s1.participants}
    assert left["specialist:sp0046"] == at(70)
    assert [e.type for e in s1.events].count(ev.RECORDING_STARTED) == 0


async def test_a_late_answer_does_not_move_a_requeued_session(database: Database) -> None:
    """Logged again after the specialist was lost and the call went back to its queue,
    the answer would connect a call that waits; another offer's answer still connects."""
    await offered(database)
    await database.append(answer("s1", 5))
    await database.append([event(ev.PARTICIPANT_LEFT, "s1", 30,
                                 participant_id="specialist:sp0046", reason="lost"),
                           event(ev.REQUEUED, "s1", 30, agent_id="sp0046",
                                 reason="agent_lost")])
    await database.append(answer("s1", 5)[:1])
    assert (await detail(database)).state == ev.STATE_QUEUED

    await database.append(answer("s1", 60, offer=7))  # answered again, at the next offer
    await database.append(answer("s1", 90, agent="sp0012", offer=7))  # another's is another
    s1 = await detail(database)
    assert answers(s1) == [("sp0046", 6), ("sp0046", 7), ("sp0012", 7)]
    assert (s1.state, s1.answered_at, s1.specialist_id) == ("connected", at(5), "sp0046")


async def test_an_answer_twice_in_one_commit_is_logged_once(database: Database) -> None:
    """Appends that share a commit (group commit): the second of the same answer is left
    out, a batch refused beside them takes its own answer back, the others land."""
    await offered(database)
    await offered(database, "s2")
    await database.append([event(ev.ABANDONED, "s2", 3, reason="cancelled")])
    results = await asyncio.gather(
        database.append([*answer("s2", 4, agent="sp0012", offer=1),
                         event(ev.ENDED, "s2", 4, reason="hangup")]),  # s2 closed: refused
        database.append(answer("s1", 5)),
        database.append([*answer("s1", 5), event(ev.CHAT, "s1", 6, text="kept")]),
        database.append(answer("s2", 7, agent="sp0012", offer=1)),
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == [
        "SessionClosed", "NoneType", "NoneType", "NoneType"]
    s1, s2 = await detail(database), await detail(database, "s2")
    assert answers(s1) == [("sp0046", 6)] and s1.state == "connected"
    assert [e.type for e in s1.events].count(ev.CHAT) == 1
    assert answers(s2) == [("sp0012", 1)]
    assert (s2.state, s2.answered_at) == ("abandoned", at(7))


async def test_two_nodes_appending_the_same_answer_log_it_once(
    database: Database, other: Database, database_url: str
) -> None:
    """The survivor and the fenced node append at once, each on its own engine. On
    PostgreSQL both wait on a session row locked elsewhere, so the second to take the lock
    reads after the first committed (its LOAD's snapshot is older than that commit)."""
    await offered(database)
    if database.dialect != "postgresql":
        results = await asyncio.gather(database.append(answer("s1", 57)),
                                       other.append(answer("s1", 40)))
    else:
        holder = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1 FROM sessions WHERE id = 's1' FOR UPDATE")
                appends = asyncio.gather(database.append(answer("s1", 57)),
                                         other.append(answer("s1", 40)))
                await _waiting_on_locks(holder, 2)
            results = await asyncio.wait_for(appends, 30)
        finally:
            await holder.close()
    assert results == [None, None]
    s1 = await detail(database)
    assert answers(s1) == [("sp0046", 6)]
    assert s1.state == "connected" and s1.answered_at in (at(57), at(40))
    assert [e.type for e in s1.events].count(ev.PARTICIPANT_JOINED) == 2


async def test_answers_without_an_offer_are_always_logged(database: Database) -> None:
    """Logged before answers carried their offer: never taken for the same answer, and
    read back without failing the append of one that has it."""
    await offered(database)
    bare = event(ev.ANSWERED, "s1", 5, agent_id="sp0046")
    await database.append([bare])
    await database.append([bare])
    await database.append(answer("s1", 6))
    await database.append(answer("s1", 7))
    assert [e.data.get("offer") for e in (await detail(database)).events
            if e.type == ev.ANSWERED] == [None, None, 6]


async def _waiting_on_locks(conn: asyncpg.Connection, count: int) -> None:
    for _ in range(300):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'")
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} appends never waited on the session's lock")
