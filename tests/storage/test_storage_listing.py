"""The manager's session list: filters, newest first, keyset pages that never skip or repeat."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.storage import BadCursor, Database, InvalidRecord, SessionSummary
from server.storage.sessionlog import encode_cursor
from signaling import events as ev
from signaling.events import LogEvent

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def queued(sid: str, seconds: float, **data: Any) -> LogEvent:
    return LogEvent(type=ev.QUEUED, ts=at(seconds), session_id=sid, call_id=f"c-{sid}",
                    data={"queue": "tax"} | data)  # fmt: skip


def event(kind: str, sid: str, seconds: float, **data: Any) -> LogEvent:
    return LogEvent(type=kind, ts=at(seconds), session_id=sid, data=data)


async def walk(db: Database, limit: int, **filters: Any) -> list[SessionSummary]:
    rows: list[SessionSummary] = []
    cursor: str | None = None
    while True:
        page, cursor = await db.list_sessions(limit=limit, cursor=cursor, **filters)
        assert len(page) <= limit
        rows.extend(page)
        if cursor is None:
            return rows


async def test_pages_over_equal_timestamps_never_skip_or_repeat(database: Database) -> None:
    # 70 sessions at the very same instant, 50 more a second apart, two queues.
    batch = [queued(f"same-{i:03d}", 0, queue="tax" if i % 2 else "registration")
             for i in range(70)]  # fmt: skip
    batch += [queued(f"later-{i:03d}", 1 + i, queue="tax") for i in range(50)]
    await database.append(batch)

    rows = await walk(database, limit=50)
    expected = sorted(batch, key=lambda e: (e.ts, e.session_id), reverse=True)
    assert [r.id for r in rows] == [e.session_id for e in expected]
    assert len({r.id for r in rows}) == 120

    tax = await walk(database, limit=7, queue="tax")
    assert len(tax) == 35 + 50 and all(r.queue == "tax" for r in tax)
    assert [r.id for r in tax] == [r.id for r in rows if r.queue == "tax"]

    first, cursor = await database.list_sessions(limit=50)
    assert cursor is not None and [r.id for r in first] == [r.id for r in rows[:50]]
    await database.append(
        [queued("newest", 9999)]
    )  # a call arriving while paging does not shift later pages
    second, _ = await database.list_sessions(limit=50, cursor=cursor)
    assert [r.id for r in second] == [r.id for r in rows[50:100]]


async def test_limit_is_capped_and_checked(database: Database) -> None:
    await database.append([queued(f"s{i:03d}", i) for i in range(505)])
    page, cursor = await database.list_sessions(limit=10_000)
    assert len(page) == 500 and cursor is not None
    rest, end = await database.list_sessions(limit=10_000, cursor=cursor)
    assert [r.id for r in rest] == ["s004", "s003", "s002", "s001", "s000"] and end is None
    with pytest.raises(InvalidRecord):
        await database.list_sessions(limit=0)
    with pytest.raises(InvalidRecord, match="start"):
        await database.list_sessions(start=T0.replace(tzinfo=None))


@pytest.mark.parametrize(
    "cursor",
    ["", "not a cursor", "bm9wZQ", encode_cursor(T0, "x")[:-3] + "!!!",
     "WyIyMDI2LTAzLTAyVDAxOjAwOjAwIiwieCJd"],  # naive timestamp inside
)  # fmt: skip
async def test_bad_cursor_is_a_clear_error(database: Database, cursor: str) -> None:
    with pytest.raises(BadCursor):
        await database.list_sessions(cursor=cursor)
    with pytest.raises(ValueError):
        await database.list_sessions(cursor=cursor)


async def test_every_filter(database: Database) -> None:
    await database.append(
        [
            queued("a", 0, site_id="park", terminal_id="t-park"),
            event(ev.ANSWERED, "a", 20, agent_id="alice"),
            event(ev.ENDED, "a", 200, reason="hangup"),
            event(ev.WRAPUP, "a", 210, outcome="resolved"),
            event(ev.RATING, "a", 220, score=5),
            queued("b", 3600, queue="registration", site_id="office", terminal_id="t-off"),
            event(ev.ANSWERED, "b", 3700, agent_id="bob"),
            event(ev.ENDED, "b", 3800, reason="hangup"),
            event(ev.WRAPUP, "b", 3810, outcome="follow_up"),
            event(ev.RATING, "b", 3820, score=2),
            queued("c", 7200, site_id="office", terminal_id="t-off"),
            event(ev.ABANDONED, "c", 7300, reason="cancelled"),
            queued("d", 10800, site_id="park", terminal_id="t-park"),
        ]
    )
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["d", "c", "b", "a"]),
        ({"start": at(3600)}, ["d", "c", "b"]),
        ({"end": at(3600)}, ["a"]),
        ({"start": at(3600), "end": at(10800)}, ["c", "b"]),
        ({"queue": "registration"}, ["b"]),
        ({"site": "park"}, ["d", "a"]),
        ({"terminal": "t-off"}, ["c", "b"]),
        ({"specialist": "bob"}, ["b"]),
        ({"outcome": "resolved"}, ["a"]),
        ({"rating": 2}, ["b"]),
        ({"state": "queued"}, ["d"]),
        ({"state": "abandoned", "site": "office"}, ["c"]),
        ({"site": "park", "queue": "registration"}, []),
    ]
    for filters, ids in cases:
        page, cursor = await database.list_sessions(**filters)
        assert ([s.id for s in page], cursor) == (ids, None), filters
