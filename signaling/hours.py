"""Opening hours of the queues on the working-day calendar, with no I/O.

A queue's `hours` ("09:00-12:00,13:30-17:30") apply on working days of the calendar
(`signaling/calendar.py`: public holidays closed, make-up Saturdays and Sundays open), in
its time zone. A queue without `hours` is open at every hour of every day. An interval
includes its start and excludes its end: at 17:30 a queue open until 17:30 is closed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from .calendar import WorkingCalendar

Interval = tuple[dt.time, dt.time]
_PART = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
#: How far ahead `next_opening` looks: past the longest run of days off (Spring Festival).
SEARCH_DAYS = 60


class HoursError(ValueError):
    """An `hours` value that cannot be read; the message says what is wrong."""


def parse_hours(text: str) -> tuple[Interval, ...]:
    """ "09:00-12:00,13:30-17:30" -> ((09:00, 12:00), (13:30, 17:30)); ascending, apart."""
    out: list[Interval] = []
    for raw in text.split(","):
        match = _PART.match(raw.strip())
        if match is None:
            raise HoursError(f"{raw.strip()!r} is not a span such as 09:00-12:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start = dt.time(h1, m1)
        end = dt.time.max if (h2, m2) == (24, 0) else dt.time(h2 % 24, m2)
        if (h2, m2) > (24, 0) or end <= start:
            raise HoursError(f"{raw.strip()!r} must end after it starts, by 24:00")
        if out and start < out[-1][1]:
            raise HoursError(f"{raw.strip()!r} starts before the span ahead of it ends")
        out.append((start, end))
    return tuple(out)


def format_hours(spans: tuple[Interval, ...]) -> str:
    """The spans as written in the configuration (what pages show)."""
    def hhmm(t: dt.time) -> str:
        return "24:00" if t == dt.time.max else t.strftime("%H:%M")
    return ",".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in spans)


class OpeningHours:
    """When each queue is open: its spans on the calendar's working days."""

    def __init__(self, calendar: WorkingCalendar, hours: Mapping[str, str | None]) -> None:
        self.calendar = calendar
        self._spans: dict[str, tuple[Interval, ...]] = {
            queue: parse_hours(text) for queue, text in hours.items() if text}

    def has_hours(self, queue: str) -> bool:
        """False: the queue is open at every hour of every day."""
        return queue in self._spans

    def text(self, queue: str) -> str | None:
        spans = self._spans.get(queue)
        return format_hours(spans) if spans else None

    def spans_on(self, queue: str, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The queue's open spans on local day `day`, as aware datetimes (none: a day off)."""
        tz = self.calendar.timezone
        spans = self._spans.get(queue)
        if spans is None:
            start = dt.datetime.combine(day, dt.time(), tz)
            return [(start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz))]
        if not self.calendar.is_working_day(day):
            return []
        return [(dt.datetime.combine(day, a, tz), _end(day, b, tz)) for a, b in spans]

    def slots_on(self, queue: str, day: dt.date, minutes: int
                 ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Appointment slots of `minutes` on local day `day`: whole slots within each span."""
        step = dt.timedelta(minutes=minutes)
        out = []
        for a, b in self.spans_on(queue, day):
            while a + step <= b:
                out.append((a, a + step))
                a += step
        return out

    def is_open(self, queue: str, moment: dt.datetime) -> bool:
        if queue not in self._spans:
            return True
        local = self.calendar.local(moment)
        return any(a <= local < b for a, b in self.spans_on(queue, local.date()))

    def next_opening(self, queue: str, moment: dt.datetime) -> dt.datetime | None:
        """The first opening at or after `moment` (`moment` itself when open); None when
        the queue has hours but no working day within `SEARCH_DAYS`."""
        if queue not in self._spans:
            return moment
        local = self.calendar.local(moment)
        day = local.date()
        for _ in range(SEARCH_DAYS):
            for a, b in self.spans_on(queue, day):
                if local < b:
                    return max(a, local)
            day += dt.timedelta(days=1)
        return None

    def open_seconds(self, queue: str, start: dt.datetime, end: dt.datetime) -> float:
        """Seconds of [start, end) the queue was open: the part of a wait that counts."""
        if queue not in self._spans or end <= start:
            return max(0.0, (end - start).total_seconds())
        first, last = self.calendar.local(start), self.calendar.local(end)
        total = 0.0
        day = first.date()
        while day <= last.date():
            for a, b in self.spans_on(queue, day):
                lo, hi = max(a, first), min(b, last)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += dt.timedelta(days=1)
        return total


def _end(day: dt.date, end: dt.time, tz: dt.tzinfo) -> dt.datetime:
    if end == dt.time.max:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    return dt.datetime.combine(day, end, tz)
