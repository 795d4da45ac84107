"""The session log: what a manager reads back after calls went through the switchboard."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from bench import trips
from server.storage import (
    AlreadyExists,
    Database,
    InvalidEvent,
    SessionClosed,
    UnknownSession,
)
from server.storage.engine import make_engine
from signaling import events as ev
from signaling.backend import CallEnd
from signaling.events import LogEvent

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
SH = dt.timezone(dt.timedelta(hours=8))


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def event(kind: str, sid: str, seconds: float, **data: Any) -> LogEvent:
    return LogEvent(type=kind, ts=at(seconds), session_id=sid, data=data)


def queued(sid: str, seconds: float = 0, queue: str = "tax", **extra: Any) -> LogEvent:
    data: dict[str, Any] = {
        "queue": queue,
        "terminal_id": "t1",
        "terminal_name": "Lobby screen",
        "site_id": "jd-mr",
        "site_name": "Jiading market office",
        "node_id": "n1",
    } | extra
    return LogEvent(type=ev.QUEUED, ts=at(seconds), session_id=sid, call_id=f"c-{sid}", data=data)


async def count_events(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text("SELECT count(*) FROM session_events")) or 0)
    finally:
        await engine.dispose()


async def test_whole_call_lifecycle(database: Database) -> None:
    uscc = "91310114MA1GT5X22H"
    await database.append([queued("s1", enterprise={"name": "嘉定小店", "uscc": uscc})])
    for e in [
        event(ev.OFFERED, "s1", 1, agent_id="alice", queue="tax"),
        event(ev.ANSWERED, "s1", 42, agent_id="alice", agent_name="Alice Wang"),
        event(
            ev.PARTICIPANT_JOINED,
            "s1",
            42,
            participant_id="p-t",
            role="terminal",
            principal_id="t1",
            name="Lobby screen",
        ),
        event(
            ev.PARTICIPANT_JOINED,
            "s1",
            43,
            participant_id="p-a",
            role="specialist",
            principal_id="alice",
            name="Alice Wang",
        ),
        event(ev.CHAT, "s1", 60, **{"from": "p-t", "name": "Lobby", "text": "你好, tax question"}),
        event(ev.PARTICIPANT_LEFT, "s1", 342, participant_id="p-a", reason="hangup"),
        event(ev.ENDED, "s1", 342, reason="hangup", by="p-a"),
        event(ev.WRAPUP, "s1", 350, agent_id="alice", outcome="resolved", notes="VAT explained"),
        event(ev.RATING, "s1", 355, score=5, comment="很好"),
    ]:
        await database.append([e])  # one at a time, as the switchboard logs them

    detail = await database.get_session("s1")
    assert detail is not None
    assert (detail.state, detail.queue, detail.call_id) == ("ended", "tax", "c-s1")
    assert (detail.enterprise_name, detail.enterprise_uscc) == ("嘉定小店", uscc)
    assert (detail.site_id, detail.terminal_id, detail.node_id) == ("jd-mr", "t1", "n1")
    assert (detail.specialist_id, detail.specialist_name) == ("alice", "Alice Wang")
    assert (detail.created_at, detail.answered_at, detail.ended_at) == (at(0), at(42), at(342))
    assert (detail.wait_s, detail.talk_s, detail.end_reason) == (42.0, 300.0, "hangup")
    assert (detail.outcome, detail.notes) == ("resolved", "VAT explained")
    assert (detail.rating, detail.rating_comment) == (5, "很好")
    assert detail.created_at.tzinfo is not None
    people = {p.participant_id: p for p in detail.participants}
    assert people["p-a"].left_at == at(342) and people["p-a"].left_reason == "hangup"
    assert people["p-t"].left_at is None and people["p-t"].principal_id == "t1"
    assert [e.type for e in detail.events] == [
        "queued", "offered", "answered", "participant_joined", "participant_joined",
        "chat", "participant_left", "ended", "wrapup", "rating",
    ]  # fmt: skip
    assert [e.id for e in detail.events] == sorted({e.id for e in detail.events})
    assert all(e.call_id == "c-s1" for e in detail.events)
    assert detail.events[5].data["text"] == "你好, tax question"
    page, cursor = await database.list_sessions()
    assert [s.id for s in page] == ["s1"] and cursor is None
    assert page[0].talk_s == 300.0
    assert await database.session_members("s1") == {"p-t", "p-a"}
    assert await database.session_members("ghost") is None
    # the end a resumed client missed: told to the call's terminal and its parties only
    assert await database.call_end("c-s1", "terminal:t1") == CallEnd("s1", "hangup")
    assert await database.call_end("c-s1", "p-a") == CallEnd("s1", "hangup")
    assert await database.call_end("c-s1", "terminal:t2") is None
    assert await database.call_end("c-ghost", "terminal:t1") is None
    await database.append([queued("s2", 400)])  # routing has it gone, the log not yet over
    assert await database.call_end("c-s2", "terminal:t1") == CallEnd("s2", "ended")


async def test_requeue_keeps_first_answer_and_finds_both_specialists(database: Database) -> None:
    await database.append(
        [
            queued("s1"),
            event(ev.ANSWERED, "s1", 10, agent_id="alice", agent_name="Alice"),
            event(
                ev.PARTICIPANT_JOINED,
                "s1",
                10,
                participant_id="p-a",
                role="specialist",
                principal_id="alice",
            ),
            event(ev.PARTICIPANT_LEFT, "s1", 70, participant_id="p-a", reason="lost"),
            event(ev.REQUEUED, "s1", 70, agent_id="alice", reason="agent_lost"),
        ]
    )
    mid = await database.get_session("s1")
    assert mid is not None and mid.state == "queued" and mid.answered_at == at(10)
    await database.append(
        [
            event(ev.ANSWERED, "s1", 100, agent_id="bob", agent_name="Bob", wait_s=30),
            event(
                ev.PARTICIPANT_JOINED,
                "s1",
                100,
                participant_id="p-b",
                role="specialist",
                principal_id="bob",
            ),
            event(ev.ENDED, "s1", 160, reason="hangup", by="p-b"),
        ]
    )
    done = await database.get_session("s1")
    assert done is not None
    assert (done.state, done.specialist_id, done.wait_s, done.talk_s) == ("ended", "alice", 10, 150)
    for who in ("alice", "bob"):
        page, _ = await database.list_sessions(specialist=who)
        assert [s.id for s in page] == ["s1"], who
    assert (await database.list_sessions(specialist="carol"))[0] == []


async def test_abandon_and_reject_close_without_talk(database: Database) -> None:
    await database.append([queued("s1"), event(ev.ABANDONED, "s1", 30, reason="cancelled")])
    await database.append([queued("s2"), event(ev.REJECTED, "s2", 0, reason="closed")])
    s1, s2 = await database.get_session("s1"), await database.get_session("s2")
    assert s1 is not None and s2 is not None
    assert (s1.state, s1.ended_at, s1.end_reason, s1.wait_s, s1.talk_s) == (
        "abandoned", at(30), "cancelled", None, None,
    )  # fmt: skip
    assert (s2.state, s2.end_reason) == ("rejected", "closed")


async def test_unknown_session_writes_nothing(database: Database, database_url: str) -> None:
    await database.append([queued("s1")])
    before = await count_events(database_url)
    with pytest.raises(UnknownSession):
        await database.append(
            [
                queued("s2"),
                event(ev.ANSWERED, "s2", 5, agent_id="alice"),
                event(ev.ANSWERED, "ghost", 5, agent_id="alice"),
            ]
        )
    assert await database.get_session("s2") is None
    assert await count_events(database_url) == before
    page, _ = await database.list_sessions()
    assert [s.id for s in page] == ["s1"]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (event(ev.ANSWERED, "s1", 5), InvalidEvent),  # no agent_id
        (event(ev.RATING, "s1", 5, score=7), InvalidEvent),
        (event(ev.RATING, "s1", 5, score="5"), InvalidEvent),
        (event(ev.PARTICIPANT_LEFT, "s1", 5, reason="left"), InvalidEvent),  # nobody named
        (LogEvent(type=ev.CHAT, ts=T0.replace(tzinfo=None), session_id="s1"), InvalidEvent),
        (LogEvent(type=ev.ENDED, ts=T0), InvalidEvent),  # call event without session
        (LogEvent(type="", ts=T0, session_id="s1"), InvalidEvent),
        (event(ev.CHAT, "s1", 5, text=object()), InvalidEvent),
        (queued("s1"), AlreadyExists),
        (
            LogEvent(type=ev.QUEUED, ts=T0, session_id="s9", call_id="c-s1", data={"queue": "tax"}),
            AlreadyExists,
        ),
        (LogEvent(type=ev.QUEUED, ts=T0, session_id="s9", call_id="c9", data={}), InvalidEvent),
    ],
)
async def test_bad_events_are_refused_and_change_nothing(
    database: Database, database_url: str, bad: LogEvent, error: type[Exception]
) -> None:
    await database.append([queued("s1")])
    before = (await database.get_session("s1"), await count_events(database_url))
    with pytest.raises(error):
        await database.append([event(ev.CHAT, "s1", 1, text="first of the batch"), bad])
    assert (await database.get_session("s1"), await count_events(database_url)) == before
    assert await database.get_session("s9") is None


async def test_final_sessions_refuse_lifecycle_but_take_feedback(database: Database) -> None:
    await database.append([queued("s1"), event(ev.ABANDONED, "s1", 9, reason="cancelled")])
    for kind, data in [(ev.ENDED, {}), (ev.INTERRUPTED, {})]:
        with pytest.raises(SessionClosed):
            await database.append([event(kind, "s1", 10, **data)])
    # An accept that raced the hang-up is logged but does not reopen the session.
    await database.append([event(ev.ANSWERED, "s1", 10, agent_id="a")])
    await database.append([event(ev.RATING, "s1", 20, score=2)])
    s1 = await database.get_session("s1")
    assert s1 is not None and (s1.state, s1.ended_at, s1.rating) == ("abandoned", at(9), 2)


async def test_a_leave_committed_before_its_join_is_kept(database: Database) -> None:
    """Across nodes a hang-up can commit before the racing accept's join: both are kept."""
    await database.append([queued("s1")])
    await database.append([event(ev.ENDED, "s1", 9, reason="hangup"),
                           event(ev.PARTICIPANT_LEFT, "s1", 9, participant_id="specialist:li",
                                 reason="hangup")])
    await database.append([event(ev.ANSWERED, "s1", 8, agent_id="li"),
                           event(ev.PARTICIPANT_JOINED, "s1", 8, participant_id="specialist:li",
                                 role="specialist", principal_id="li", name="Li")])
    s1 = await database.get_session("s1")
    assert s1 is not None and (s1.state, s1.specialist_id) == ("ended", "li")
    [li] = s1.participants
    assert (li.participant_id, li.left_at, li.left_reason) == ("specialist:li", at(9), "hangup")


async def test_agent_events_are_logged_without_a_session(
    database: Database, database_url: str
) -> None:
    status = LogEvent(type=ev.AGENT_STATUS, ts=T0, actor="alice",
                      data={"old": "away", "new": "available", "reason": "user"})  # fmt: skip
    await database.append([status])
    assert await count_events(database_url) == 1
    assert await database.list_sessions() == ([], None)


async def test_timestamps_in_any_zone_order_as_instants(database: Database) -> None:
    # 09:30 in Shanghai is 01:30 UTC: older than 02:00 UTC, newer than 01:00 UTC.
    shanghai = LogEvent(type=ev.QUEUED, ts=dt.datetime(2026, 3, 2, 9, 30, tzinfo=SH),
                        session_id="sh", call_id="c-sh", data={"queue": "tax"})  # fmt: skip
    await database.append([queued("early", 0), queued("late", 3600), shanghai])
    page, _ = await database.list_sessions()
    assert [s.id for s in page] == ["late", "sh", "early"]
    assert page[1].created_at == at(1800) and page[1].created_at.utcoffset() == dt.timedelta(0)
    window, _ = await database.list_sessions(start=at(1800), end=at(3600))
    assert [s.id for s in window] == ["sh"]


async def test_concurrent_appends_all_land(database: Database) -> None:
    async def call(i: int) -> None:
        sid = f"s{i:02d}"
        await database.append([queued(sid, i)])
        await database.append([event(ev.ANSWERED, sid, i + 5, agent_id=f"a{i}")])
        await database.append([event(ev.ENDED, sid, i + 65, reason="hangup")])

    async def chat(i: int) -> None:
        await database.append([event(ev.CHAT, "shared", 1 + i, text=str(i))])

    await database.append([queued("shared")])
    await asyncio.wait_for(
        asyncio.gather(*(call(i) for i in range(20)), *(chat(i) for i in range(20))), 60
    )
    page, _ = await database.list_sessions(state="ended", limit=100)
    assert len(page) == 20 and all(s.talk_s == 60 and s.wait_s == 5 for s in page)
    shared = await database.get_session("shared")
    assert shared is not None
    assert sorted(int(e.data["text"]) for e in shared.events[1:]) == list(range(20))


async def test_batches_sharing_a_commit_fail_alone_and_the_rest_lands(
    database: Database, database_url: str
) -> None:
    """Appends that wait together share one commit (group commit): a batch a rule refuses
    fails alone, leaving nothing of itself, and the others of the same commit land."""
    await database.append([queued("s1"), queued("s2"),
                           event(ev.ABANDONED, "s2", 9, reason="cancelled")])
    before = await count_events(database_url)
    results = await asyncio.gather(  # added before the committer runs: one group
        database.append([event(ev.ANSWERED, "s1", 5, agent_id="li"),
                         event(ev.PARTICIPANT_JOINED, "s1", 5, participant_id="specialist:li",
                               role="specialist", principal_id="li", name="Li")]),
        database.append([event(ev.CHAT, "s1", 6, text="lost with its batch"),
                         event(ev.ENDED, "s2", 10, reason="hangup")]),  # s2 is closed
        database.append([queued("s3", 7)]),
        database.append([event(ev.CHAT, "s3", 8, text="kept")]),  # s3 from the batch before
        database.append([queued("s1", 8)]),  # queued twice
        database.append([event(ev.ANSWERED, "ghost", 8, agent_id="li")]),
        database.append([event(ev.ENDED, "s1", 65, reason="hangup"),
                         event(ev.PARTICIPANT_LEFT, "s1", 65, participant_id="specialist:li",
                               reason="hangup")]),
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == [
        "NoneType", "SessionClosed", "NoneType", "NoneType", "AlreadyExists", "UnknownSession",
        "NoneType"]
    assert await count_events(database_url) == before + 2 + 1 + 1 + 2
    s1, s2, s3 = [await database.get_session(s) for s in ("s1", "s2", "s3")]
    assert s1 is not None and (s1.state, s1.wait_s, s1.talk_s) == ("ended", 5, 60)
    assert [(p.participant_id, p.left_at) for p in s1.participants] == [
        ("specialist:li", at(65))]
    assert all(e.type != ev.CHAT for e in s1.events)
    assert s2 is not None and (s2.state, s2.end_reason) == ("abandoned", "cancelled")
    assert s3 is not None and s3.state == "queued" and [e.type for e in s3.events] == [
        ev.QUEUED, ev.CHAT]


async def test_a_shared_commit_is_a_few_statements_and_no_savepoint(database: Database) -> None:
    """A group's batches are written together without a SAVEPOINT: two round trips less a
    commit, one of them (its RELEASE) while the group holds its sessions' row locks, which
    the other node's group waits for. Only a conflict the database sees runs the batches
    one SAVEPOINT each (the test below)."""
    await database.append([queued("s1"), queued("s2")])
    statements: list[str] = []
    async with trips.observed(database, lambda statement: statements.append(trips.kind(statement))):
        await asyncio.gather(  # added before the committer runs: one group
            database.append([event(ev.ANSWERED, "s1", 5, agent_id="li")]),
            database.append([event(ev.ANSWERED, "s2", 5, agent_id="wang")]),
            database.append([event(ev.CHAT, "s1", 6, text="hello")]))
    # the sessions locked, updated, the events inserted (SQLite: its BEGIN IMMEDIATE too);
    # on PostgreSQL every write in one statement (`pg_write`)
    writes = ["WITH"] if database.dialect == "postgresql" else ["UPDATE", "INSERT"]
    assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == ["SELECT", *writes]


async def test_a_batch_the_database_refuses_in_a_shared_commit_fails_alone(
    database: Database, database_url: str
) -> None:
    """A conflict only the database sees (a call id already logged under another session)
    fails its own batch; the others of the commit land all the same."""
    await database.append([queued("s1")])
    before = await count_events(database_url)
    duplicate = LogEvent(type=ev.QUEUED, ts=T0, session_id="s9", call_id="c-s1",
                         data={"queue": "tax"})
    results = await asyncio.gather(
        database.append([queued("s2", 1)]),
        database.append([duplicate]),
        database.append([event(ev.ANSWERED, "s1", 5, agent_id="li")]),
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "AlreadyExists", "NoneType"]
    assert await count_events(database_url) == before + 2
    assert await database.get_session("s9") is None
    s1, s2 = await database.get_session("s1"), await database.get_session("s2")
    assert s1 is not None and s1.state == "connected" and s2 is not None


async def test_a_session_queued_again_in_a_shared_commit_fails_alone(
    database: Database, database_url: str
) -> None:
    """A group does not read a session its first event opens (`group.Reads`): a retried
    `queued` of a session already logged is refused by the database, and the other batch
    of the commit, a later step of that same session, lands on the logged row."""
    await database.append([queued("s1")])
    before = await count_events(database_url)
    results = await asyncio.gather(
        database.append([queued("s1", 1)]),
        database.append([event(ev.ENDED, "s1", 9, reason="hangup")]),
        return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["AlreadyExists", "NoneType"]
    assert await count_events(database_url) == before + 1
    s1 = await database.get_session("s1")
    assert s1 is not None and s1.state == "ended" and s1.created_at == at(0)


async def test_a_phone_handed_the_call_twice_is_one_participant(database: Database) -> None:
    """A phone that never attached may open its ticket again (signaling/handoff.py): the
    second `handed_off` joins the same visitor again and must not fail on its row (the
    goal-size day: a duplicate key, the phone refused with a server error)."""
    await database.append([queued("s1"), event(ev.OFFERED, "s1", 1, agent_id="alice"),
                           event(ev.ANSWERED, "s1", 2, agent_id="alice", agent_name="A")])
    handed = {"terminal_id": "t1", "participant_id": "visitor:v1", "visitor_id": "v1"}
    await database.append([event(ev.HANDED_OFF, "s1", 3, **handed)])
    await database.append([event(ev.HANDED_OFF, "s1", 4, **handed)])
    detail = await database.get_session("s1")
    assert detail is not None
    assert [p.participant_id for p in detail.participants].count("visitor:v1") == 1
    assert [e.type for e in detail.events].count(ev.HANDED_OFF) == 2
