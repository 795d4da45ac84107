"""Working-day calendar of mainland China, for pending-matter deadlines.

Mainland China moves weekends around public holidays: some weekdays are days
off and some Saturdays/Sundays become "make-up" working days. The schedule is
published each November for the next year, so it is data (one TOML file a
year under ``configs/calendar/``), never code. A year with no file is counted
with weekends only; ``has_data_for`` lets the server warn about it.

Deadlines follow the Putuo "matters not yet done" rule: simple matters are
resolved on the opening working day, general ones within 3 working days and
complex ones within 7 working days after it. The opening working day is the
day the matter is opened, unless that is a day off or the window has closed
(at or after the close time), in which case it is the next working day: a
matter opened at 18:00 gets the same deadline as one opened the next morning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

MatterClass = Literal["simple", "general", "complex"]

#: Working days after the opening working day within which a matter is due.
DUE_WORKING_DAYS: Mapping[MatterClass, int] = {"simple": 0, "general": 3, "complex": 7}
DEFAULT_TIMEZONE = "Asia/Shanghai"
#: Government service windows close at 17:30 local time.
DEFAULT_CLOSE = dt.time(17, 30)
#: How far outside its declared year a file's dates may fall: New Year
#: holidays sometimes begin in late December, make-up days in early January.
_YEAR_SLACK = dt.timedelta(days=31)


class CalendarError(ValueError):
    """A calendar file that cannot be trusted: the message names file and rule."""


class Holiday(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One public holiday: days off from ``first`` to ``last`` inclusive."""

    name_zh: str
    name_en: str
    first: dt.date
    last: dt.date
    makeup_days: list[dt.date] = []


class CalendarYear(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The contents of one ``<year>.toml`` file."""

    year: int
    holidays: list[Holiday] = []


def load_calendar_year(path: Path) -> CalendarYear:
    """Decode and check one calendar file; raise CalendarError naming the problem."""
    try:
        data = msgspec.toml.decode(path.read_bytes(), type=CalendarYear)
    except msgspec.ValidationError as exc:
        raise CalendarError(f"{path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise CalendarError(f"{path}: not valid TOML: {exc}") from exc
    _check_year(path, data)
    return data


def _check_year(path: Path, data: CalendarYear) -> None:
    earliest = dt.date(data.year, 1, 1) - _YEAR_SLACK
    latest = dt.date(data.year, 12, 31) + _YEAR_SLACK
    makeup = {day for holiday in data.holidays for day in holiday.makeup_days}
    for holiday in data.holidays:
        where = f"{path}: holiday {holiday.name_en!r}"
        if holiday.first > holiday.last:
            raise CalendarError(f"{where}: first {holiday.first} is after last {holiday.last}")
        for day in (holiday.first, holiday.last, *holiday.makeup_days):
            if not earliest <= day <= latest:
                raise CalendarError(f"{where}: {day} is not in or next to year {data.year}")
        for day in holiday.makeup_days:
            if day.weekday() < 5:
                raise CalendarError(
                    f"{where}: make-up day {day} is a {day:%A}; only a Saturday or "
                    "Sunday can be made a working day"
                )
        clash = sorted(d for d in makeup if holiday.first <= d <= holiday.last)
        if clash:
            raise CalendarError(f"{where}: {clash[0]} is both a day off and a make-up day")


class WorkingCalendar:
    """Which days are working days, and when a pending matter is due."""

    def __init__(
        self,
        years: Iterable[CalendarYear] = (),
        *,
        timezone: str = DEFAULT_TIMEZONE,
        close: dt.time = DEFAULT_CLOSE,
    ) -> None:
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(f"unknown time zone {timezone!r}") from exc
        if close.tzinfo is not None:
            raise CalendarError("close time must be a local time without a time zone")
        self._close = close
        self._holidays: dict[dt.date, str] = {}
        self._makeup: set[dt.date] = set()
        self._years: set[int] = set()
        for data in years:
            self._add_year(data)

    def _add_year(self, data: CalendarYear) -> None:
        if data.year in self._years:
            raise CalendarError(f"calendar data for {data.year} is given twice")
        self._years.add(data.year)
        for holiday in data.holidays:
            day = holiday.first
            while day <= holiday.last:
                self._holidays[day] = holiday.name_en
                day += dt.timedelta(days=1)
            self._makeup.update(holiday.makeup_days)
        clash = sorted(self._makeup & self._holidays.keys())
        if clash:
            raise CalendarError(f"{clash[0]} is both a day off and a make-up day")

    @classmethod
    def from_files(
        cls,
        paths: Iterable[Path | str],
        *,
        timezone: str = DEFAULT_TIMEZONE,
        close: dt.time = DEFAULT_CLOSE,
    ) -> WorkingCalendar:
        """Build a calendar from the given year files."""
        years = [load_calendar_year(Path(p)) for p in paths]
        return cls(years, timezone=timezone, close=close)

    @classmethod
    def from_dir(
        cls,
        directory: Path | str,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        close: dt.time = DEFAULT_CLOSE,
    ) -> WorkingCalendar:
        """Build a calendar from every ``*.toml`` file in ``directory``."""
        folder = Path(directory)
        if not folder.is_dir():
            raise CalendarError(f"calendar directory {folder} does not exist")
        return cls.from_files(sorted(folder.glob("*.toml")), timezone=timezone, close=close)

    @property
    def timezone(self) -> ZoneInfo:
        return self._tz

    @property
    def close(self) -> dt.time:
        return self._close

    @property
    def years(self) -> frozenset[int]:
        """Years for which holiday data was loaded."""
        return frozenset(self._years)

    def has_data_for(self, year: int) -> bool:
        """False when ``year`` is counted with weekends only (no file loaded)."""
        return year in self._years

    def holiday_name(self, day: dt.date) -> str | None:
        """English name of the public holiday ``day`` belongs to, if any."""
        return self._holidays.get(day)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._makeup:
            return True
        if day in self._holidays:
            return False
        return day.weekday() < 5

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        day += dt.timedelta(days=1)
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def local(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in the calendar's time zone; naive datetimes are refused."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
        return moment.astimezone(self._tz)

    def opening_day(self, moment: dt.datetime) -> dt.date:
        """The working day on which something received at ``moment`` is handled."""
        local = self.local(moment)
        day = local.date()
        if self.is_working_day(day) and local.time() < self._close:
            return day
        return self.next_working_day(day)

    def add_working_days(self, start: dt.datetime, n: int) -> dt.date:
        """The n-th working day after the opening working day of ``start`` (n=0: that day)."""
        if n < 0:
            raise ValueError(f"working days to add must be zero or more, got {n}")
        day = self.opening_day(start)
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def due_date(self, opened_at: dt.datetime, klass: MatterClass) -> dt.date:
        """Deadline of a pending matter of class ``klass`` opened at ``opened_at``."""
        if klass not in DUE_WORKING_DAYS:
            known = ", ".join(DUE_WORKING_DAYS)
            raise ValueError(f"unknown matter class {klass!r}; expected one of {known}")
        return self.add_working_days(opened_at, DUE_WORKING_DAYS[klass])

    def is_overdue(self, due: dt.date, now: dt.datetime) -> bool:
        """True once the due day has ended in local time without resolution."""
        return self.local(now).date() > due
