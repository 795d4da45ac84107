"""The bench day's queue hours, read by the server's own hours code: the compressed lunch
is closed on the real clock, the appointment slot is bookable, and a weekend day of
the run is a working day of the bench's calendar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench.day_hours import (
    SLOT_H,
    TIMEZONE,
    Schedule,
    _plan,
    minute_of_day,
    plan,
    write_calendar,
)
from signaling.calendar import WorkingCalendar
from signaling.hours import OpeningHours

SUNDAY_EVENING = dt.datetime(2026, 12, 6, 13, 0, 17, tzinfo=dt.UTC).timestamp()  # 21:00 local


def _hours(schedule: Schedule, tmp_path: Path) -> OpeningHours:
    days = [schedule.local(schedule.t0).date()]
    calendar = WorkingCalendar.from_dir(write_calendar(tmp_path, days), timezone=TIMEZONE)
    return OpeningHours(calendar, {"tax": schedule.hours_text()})


def _at(when: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(when, dt.UTC)


@pytest.mark.parametrize("speed", [60.0, 120.0])
def test_a_day_with_lunch_is_closed_over_it_on_the_real_clock(speed: float,
                                                              tmp_path: Path) -> None:
    schedule = plan(SUNDAY_EVENING, speed, 8.0)
    assert schedule.t0 >= SUNDAY_EVENING and schedule.closure is not None
    start, end = schedule.closure
    assert start == schedule.t0 + 3 * 3600 / speed  # simulated 12:00, on a whole minute
    assert start % 60 == 0 and end - start >= 60
    hours = _hours(schedule, tmp_path)
    assert hours.is_open("tax", _at(schedule.t0))
    assert hours.is_open("tax", _at(start - 1))
    assert not hours.is_open("tax", _at(start))
    assert not hours.is_open("tax", _at(end - 1))
    assert hours.is_open("tax", _at(end))
    assert hours.next_opening("tax", _at(start + 1)) == _at(end)
    day = schedule.local(end).date()
    assert _at(end) in [a for a, _ in hours.slots_on("tax", day, 5)]  # the appointment slot
    assert schedule.slot == end


def test_a_short_day_has_its_slot_and_no_closure(tmp_path: Path) -> None:
    schedule = plan(SUNDAY_EVENING, 120.0, 2.0)
    assert schedule.closure is None
    assert schedule.slot % 60 == 0 and schedule.t0 < schedule.slot < schedule.t0 + 60
    hours = _hours(schedule, tmp_path)
    day = schedule.local(schedule.slot).date()
    assert day.weekday() == 6  # a Sunday: open because the bench's calendar says so
    assert all(hours.is_open("tax", _at(schedule.t0 + s)) for s in range(0, 120, 5))
    assert _at(schedule.slot) in [a for a, _ in hours.slots_on("tax", day, 5)]


@pytest.mark.parametrize("second", range(0, 60, 7))
def test_a_short_days_slot_is_the_first_whole_minute_in_its_span(second: int) -> None:
    """Whenever the setup ends, the day starts at once if a whole minute falls within
    `SLOT_H` of it, else as little later as puts one at the span's end."""
    earliest = SUNDAY_EVENING - 17 + second
    schedule = plan(earliest, 120.0, 2.0)
    slot_h = schedule.sim_hour(schedule.slot, schedule.t0)
    assert schedule.slot % 60 == 0 and SLOT_H[0] - 1e-9 <= slot_h <= SLOT_H[1] + 1e-9
    span_s = (SLOT_H[1] - SLOT_H[0]) * 3600 / 120
    assert earliest <= schedule.t0 <= earliest + 60 - span_s
    if schedule.t0 > earliest:
        assert abs(slot_h - SLOT_H[1]) < 1e-9


@pytest.mark.parametrize(("hours", "speed"), [(2.0, 120.0), (8.0, 60.0)])
@pytest.mark.parametrize("minutes_before", [12, 8, 5, 3, 1, 0])
def test_a_day_near_local_midnight_keeps_a_whole_slot_before_it(
        hours: float, speed: float, minutes_before: int, tmp_path: Path) -> None:
    """A day whose slot would fall within 5 minutes of local midnight starts late enough
    that its closure and its slot fall in the next local day: a 5-minute slot still fits
    before the span's end at 24:00, and it is bookable (the goal-size day started at 23:52
    local had its slot at 23:59 and every booking refused)."""
    midnight = dt.datetime(2026, 12, 8, tzinfo=ZoneInfo(TIMEZONE)).timestamp()
    offset = _plan(SUNDAY_EVENING, speed, hours).slot - SUNDAY_EVENING
    earliest = midnight - minutes_before * 60 - offset + 1
    unmoved = _plan(earliest, speed, hours)
    assert (not 1 <= minute_of_day(unmoved.local(unmoved.slot)) <= 24 * 60 - 5) == (
        minutes_before < 5)  # without the move, the near ones would have no whole slot
    schedule = plan(earliest, speed, hours)
    assert schedule.t0 >= earliest
    slot = schedule.local(schedule.slot)
    assert 1 <= minute_of_day(slot) <= 24 * 60 - 5
    hours_of = _hours(schedule, tmp_path)
    assert _at(schedule.slot) in [a for a, _ in hours_of.slots_on("tax", slot.date(), 5)]
    if schedule.closure is not None:
        assert not hours_of.is_open("tax", _at(schedule.closure[0]))
        assert hours_of.is_open("tax", _at(schedule.closure[1]))
