"""The staffing estimate of a day: per queue and hour, the specialists the wait target
needs (Erlang C, server/erlangc.py) beside those who were on duty.

Inputs are the day's arrivals (sessions by when they were queued, rejected ones
excluded) with their talk times, and the specialists' status changes from the
session log. The handle time of an hour is the mean talk time of its answered
calls plus the queue's wrap-up time (the day's mean when an hour has no answered
call). On duty is the mean number of specialists with the queue's skill who were
signed in and not away during the hour (available, ringing, in a call or in
wrap-up): 1.5 means one all hour and another half of it. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

import msgspec

from server import erlangc

WORKING: Final = frozenset({"available", "ringing", "in_call", "wrap_up"})
HOUR: Final = dt.timedelta(hours=1)


class Arrival(NamedTuple):
    queue: str
    at: dt.datetime
    talk_s: float | None  # None: not answered


class StatusChange(NamedTuple):
    agent_id: str
    at: dt.datetime
    status: str


class StaffingHour(msgspec.Struct, kw_only=True):
    start: dt.datetime
    hour: int  # local hour of day
    arrivals: int
    handle_s: float | None
    erlangs: float
    needed: int | None  # None: no handle time known yet
    on_duty: float


class StaffingQueue(msgspec.Struct, kw_only=True):
    queue: str
    target_s: float
    hours: list[StaffingHour]


def hours_of(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The hour starts of [start, end), stepped in absolute time."""
    out = []
    at = start
    while at < end:
        out.append(at)
        at += HOUR
    return out


def on_duty(changes: Iterable[StatusChange], skills: Mapping[str, Iterable[str]],
            start: dt.datetime, end: dt.datetime) -> dict[tuple[str, dt.datetime], float]:
    """Specialist-hours worked per (queue, hour start) over [start, end). Changes before
    `start` give the status each specialist had when the period began."""
    by_agent: dict[str, list[StatusChange]] = defaultdict(list)
    for change in changes:
        by_agent[change.agent_id].append(change)
    starts = hours_of(start, end)
    worked: dict[tuple[str, dt.datetime], float] = defaultdict(float)
    for agent, timeline in by_agent.items():
        queues = list(skills.get(agent, ()))
        timeline.sort(key=lambda c: c.at)
        for here, after in zip(timeline, [*timeline[1:], None], strict=True):
            if here.status not in WORKING:
                continue
            since = max(here.at, start)
            until = min(after.at if after else end, end)
            for hour in starts:
                overlap = (min(until, hour + HOUR) - max(since, hour)).total_seconds()
                if overlap > 0:
                    for queue in queues:
                        worked[(queue, hour)] += overlap / 3600
    return dict(worked)


def estimate(arrivals: Iterable[Arrival], changes: Iterable[StatusChange],
             skills: Mapping[str, Iterable[str]], targets: Mapping[str, float],
             wrapups: Mapping[str, float], start: dt.datetime, end: dt.datetime,
             tz: str) -> list[StaffingQueue]:
    """Every queue of `targets`, with the hours that had arrivals or someone on duty."""
    zone = ZoneInfo(tz)
    starts = hours_of(start, end)
    count: dict[tuple[str, dt.datetime], int] = defaultdict(int)
    talks: dict[tuple[str, dt.datetime], list[float]] = defaultdict(list)
    for a in arrivals:
        hour = next((h for h in reversed(starts) if h <= a.at), None)
        if hour is None or a.at >= end:
            continue
        count[(a.queue, hour)] += 1
        if a.talk_s is not None:
            talks[(a.queue, hour)].append(a.talk_s)
    duty = on_duty(changes, skills, start, end)
    out = []
    for queue, target in sorted(targets.items()):
        day_talks = [t for (q, _), ts in talks.items() if q == queue for t in ts]
        day_mean = sum(day_talks) / len(day_talks) if day_talks else None
        rows = []
        for hour in starts:
            n, staff = count.get((queue, hour), 0), duty.get((queue, hour), 0.0)
            if not n and not staff:
                continue
            hour_talks = talks.get((queue, hour))
            talk = sum(hour_talks) / len(hour_talks) if hour_talks else day_mean
            handle = None if talk is None else talk + wrapups.get(queue, 0.0)
            erlangs = erlangc.traffic(n, handle) if handle is not None else 0.0
            rows.append(StaffingHour(
                start=hour, hour=hour.astimezone(zone).hour, arrivals=n, handle_s=handle,
                erlangs=round(erlangs, 3), on_duty=round(staff, 2),
                needed=None if handle is None else erlangc.needed(n, handle, target)))
        out.append(StaffingQueue(queue=queue, target_s=target, hours=rows))
    return out
