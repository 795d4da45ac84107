"""Dashboard figures, checked against numbers worked out by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.storage import Database, InvalidRecord, QueueFigures
from signaling import events as ev
from signaling.events import LogEvent

SINCE = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai


def at(minutes: float) -> dt.datetime:
    return SINCE + dt.timedelta(minutes=minutes)


Step = tuple[str, float, dict[str, Any]]


def call(sid: str, queue: str, minute: float, *steps: Step) -> list[LogEvent]:
    first = LogEvent(type=ev.QUEUED, ts=at(minute), session_id=sid, call_id=f"c-{sid}",
                     data={"queue": queue})  # fmt: skip
    rest = [LogEvent(type=k, ts=at(minute + m), session_id=sid, data=d) for k, m, d in steps]
    return [first, *rest]


def answered(after_s: float) -> Step:
    return (ev.ANSWERED, after_s / 60, {"agent_id": "alice"})


ABANDON: Step = (ev.ABANDONED, 2.0, {"reason": "cancelled"})


async def test_queue_figures_match_hand_counts(database: Database) -> None:
    events = [
        *call("old", "tax", -60, answered(1)),  # before `since`: not counted
        *call("a", "tax", 0, answered(30)),
        *call("b", "tax", 1, answered(90)),
        *call("c", "tax", 2, answered(60)),  # exactly on target: within
        *call("d", "tax", 3, ABANDON),
        *call("e", "tax", 4, (ev.REJECTED, 0, {"reason": "closed"})),
        *call("f", "tax", 5),  # still waiting
        *call("g", "tax", 6, answered(10), (ev.REQUEUED, 1, {}), ABANDON),
        *call("r", "registration", 7, ABANDON),
        *call("x", "general", 8, answered(800)),
    ]
    await database.append(events)
    figures = await database.queue_figures(
        SINCE, {"tax": 60, "registration": 120, "deregistration": 900}
    )
    assert figures == {
        # offered a b c d f g; answered a b c g; waits 30 90 60 10; within a c g; SL 3/(4+1)
        "tax": QueueFigures(queue="tax", offered=6, answered=4, abandoned=1, rejected=1,
                            avg_wait_s=47.5, answered_within_target=3, service_level=60.0),
        "registration": QueueFigures(queue="registration", offered=1, answered=0, abandoned=1,
                                     rejected=0, avg_wait_s=None, answered_within_target=0,
                                     service_level=0.0),
        "deregistration": QueueFigures(queue="deregistration", offered=0, answered=0,
                                       abandoned=0, rejected=0, avg_wait_s=None,
                                       answered_within_target=0, service_level=None),
        # not configured: measured against the default 900 s target
        "general": QueueFigures(queue="general", offered=1, answered=1, abandoned=0, rejected=0,
                                avg_wait_s=800.0, answered_within_target=1, service_level=100.0),
    }  # fmt: skip
    with pytest.raises(InvalidRecord):
        await database.queue_figures(SINCE, {"tax": -1})


async def test_hourly_waits_in_local_hours(database: Database) -> None:
    await database.append(
        [
            *call("a", "tax", 10, answered(30)),  # 01:10 UTC
            *call("b", "tax", 50, ABANDON),  # 01:50 UTC
            *call("r", "tax", 20, (ev.REJECTED, 0, {})),  # rejected: no wait to show
            *call("c", "tax", 90, answered(90)),  # 02:30 UTC
            *call("d", "tax", 100, answered(150)),  # 02:40 UTC
        ]
    )
    shanghai = await database.hourly_waits(SINCE, "Asia/Shanghai")
    assert [(h.hour, h.calls, h.answered, h.avg_wait_s) for h in shanghai] == [
        (9, 2, 1, 30.0),
        (10, 2, 2, 120.0),
    ]
    kolkata = await database.hourly_waits(SINCE, "Asia/Kolkata")  # UTC+05:30
    assert [(h.hour, h.calls) for h in kolkata] == [(6, 1), (7, 1), (8, 2)]
    assert await database.hourly_waits(at(200), "Asia/Shanghai") == []
    with pytest.raises(InvalidRecord):
        await database.hourly_waits(SINCE, "Mars/Olympus")
