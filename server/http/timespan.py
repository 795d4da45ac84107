"""Dates and periods in query strings: a day (`2026-03-02`, local) or an ISO-8601 instant."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from server.http.auth import fail
from signaling import limits as lim


def parse_when(value: str | None, tz: str, end: bool) -> dt.datetime | None:
    """A bound of a period in UTC; a bare date is local midnight (the next one for `end`).

    Years outside `signaling.limits` (2000..2100) are refused: they are typos or probes,
    and the far ends of the calendar overflow date arithmetic.
    """
    if not value:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            _check_year(day.year, value)
            day += dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).astimezone(dt.UTC)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(web.HTTPBadRequest, "invalid_query", f"not an ISO-8601 date or datetime: {value!r}")
    _check_year(when.year, value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return when.astimezone(dt.UTC)


def local_period(start: dt.datetime | None, end: dt.datetime | None, tz: str,
                 now: dt.datetime) -> str:
    """`20261201-20261203`: the local days of [start, end) for an export's file name
    (an open start reads `start`; an open end is today)."""
    zone = ZoneInfo(tz)
    first = f"{start.astimezone(zone):%Y%m%d}" if start else "start"
    last = ((end or now) - dt.timedelta(microseconds=1)).astimezone(zone)
    return f"{first}-{last:%Y%m%d}"


def _check_year(year: int, value: str) -> None:
    if not lim.YEAR_MIN <= year <= lim.YEAR_MAX:
        fail(web.HTTPBadRequest, "invalid_query",
             f"{value!r} is outside the years {lim.YEAR_MIN}..{lim.YEAR_MAX}")


def period(start: str | None, end: str | None, tz: str,
           now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[from, to) in UTC; by default this local year so far (the domain counts per year)."""
    local = now.astimezone(ZoneInfo(tz))
    year_start = dt.datetime(local.year, 1, 1, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
    first = parse_when(start, tz, end=False) or year_start
    last = parse_when(end, tz, end=True) or now
    if last <= first:
        fail(web.HTTPBadRequest, "invalid_query", "`to` must be after `from`")
    return first, last
