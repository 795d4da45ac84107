"""The compressed day on the server's own clock: queue hours, lunch closure, appointment slot.

The server has no simulated clock: opening hours, appointment slots and no-shows are
read from the real time (`time.time`) in `[server] timezone` (Asia/Shanghai), on the
working days of `[joint] calendar_dir`; a span starts on a whole minute and a slot
lasts at least 5 minutes. So the bench decides, before it writes the nodes'
configuration, when its compressed day will start (`t0`, after a setup margin), and
writes every queue's `hours` in real local time:

- the lunch closure is the whole real minutes from simulated 12:00 (`t0` is moved so
  that 12:00 falls on a minute) to the minute nearest 13:30, at least one (at x120 the
  90 simulated minutes are 45 real seconds: the closure is one real minute, 12:00 to
  14:00 simulated); only in a day that reaches 14:00;
- the appointment slot is a span start: the reopening after lunch, or, in a shorter
  day, the first real minute within simulated `SLOT_H` (`t0` moved later only when
  none falls in it); its span runs to 24:00 so that a whole 5-minute slot fits;
- the arrival window (`early_s`, `late_s`) is the default 10 and 15 simulated minutes,
  never under `MIN_WINDOW_S` real seconds (the loaded machine's latency);
- a calendar directory where the run's local day is a working day (a weekend day is
  added as a make-up day to the shipped calendar), else the hours would close it.

A day that starts later than planned keeps the real times: its lunch and slot then fall
earlier in simulated time, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import ROOT
from bench.day_plan import DAY_START_H, LUNCH

TIMEZONE = "Asia/Shanghai"  # the server's default `[server] timezone`
SLOT_H = (9.5, 10.5)  # the appointment slot in a day without lunch: a whole real minute in
# this span (the first after the setup; at 2 h x120 the span is 30 s, and a day that had to
# start with its slot on one hour waited up to a minute for it). Its arrivals (`ON_TIME`,
# `LATE` of bench.day_visits) stay within the day's hours
EARLY_S, LATE_S = 600.0, 900.0  # simulated: the default arrival window around the slot
MIN_WINDOW_S = 15.0  # real seconds: the window is never shorter
NO_SHOW_CHECK_S = 1.0  # real seconds between two no-show sweeps
SEATS = 100  # bookings one slot holds per queue (the configuration's maximum)
SLOT_MINUTES = 5  # the queues' `slot_minutes`: the shortest the server allows


@dataclass(frozen=True)
class Schedule:
    """Real (epoch) times of the day's start, its appointment slot and its lunch closure."""

    t0: float
    speed: float
    slot: float
    closure: tuple[float, float] | None

    @property
    def early_s(self) -> float:
        return max(MIN_WINDOW_S, EARLY_S / self.speed)

    @property
    def late_s(self) -> float:
        return max(MIN_WINDOW_S, LATE_S / self.speed)

    def local(self, when: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(when, ZoneInfo(TIMEZONE))

    def hours_text(self) -> str:
        """Every queue's `hours`: open all day but over the closure; a span starts at the slot."""
        def hhmm(when: float) -> str:
            return self.local(when).strftime("%H:%M")

        if self.closure is None:
            return f"00:00-{hhmm(self.slot)},{hhmm(self.slot)}-24:00"
        return f"00:00-{hhmm(self.closure[0])},{hhmm(self.closure[1])}-24:00"

    def toml(self, calendar_dir: Path) -> str:
        """The `[appointments]` and `[joint]` sections of the nodes' configuration."""
        return (f"[appointments]\nearly_s = {self.early_s:.3f}\nlate_s = {self.late_s:.3f}\n"
                f"no_show_check_s = {NO_SHOW_CHECK_S}\nbookings_per_hour = 100000\n"
                f'[joint]\ncalendar_dir = "{calendar_dir}"\n')

    def queue_keys(self) -> str:
        """What each `[[queues]]` table adds: its hours and appointment slots."""
        return (f'hours = "{self.hours_text()}"\nslot_minutes = {SLOT_MINUTES}\n'
                f"appointments_per_slot = {SEATS}\n")

    def sim_hour(self, when: float, t0: float) -> float:
        return DAY_START_H + (when - t0) * self.speed / 3600

    def describe(self, t0: float) -> str:
        late = t0 - self.t0
        text = (f"queues' hours (real, {TIMEZONE}): {self.hours_text()}; appointment slot at "
                f"{self.local(self.slot):%H:%M} (h{self.sim_hour(self.slot, t0):.2f}), arrival "
                f"window -{self.early_s:.0f} s / +{self.late_s:.0f} s real")
        if self.closure is not None:
            a, b = (self.sim_hour(w, t0) for w in self.closure)
            text += f"; closed for lunch h{a:.2f}-h{b:.2f}"
        if late > 0.5:
            text += f"; the day started {late:.1f} s later than planned"
        return text


def plan(earliest: float, speed: float, hours: float) -> Schedule:
    """The day's real schedule: it starts at or after `earliest` (epoch seconds), a minute
    later at a time while its closure or slot would touch local midnight: a span ends at
    24:00, and a slot starting in the last `SLOT_MINUTES` before it would not fit (a goal
    day started at 23:52 local had every booking refused)."""
    schedule = _plan(earliest, speed, hours)
    while not all(1 <= minute_of_day(schedule.local(when)) <= 24 * 60 - SLOT_MINUTES
                  for when in (schedule.slot, *(schedule.closure or ()))):
        earliest += 60
        schedule = _plan(earliest, speed, hours)
    return schedule


def minute_of_day(when: dt.datetime) -> int:
    return when.hour * 60 + when.minute


def _plan(earliest: float, speed: float, hours: float) -> Schedule:
    def at(t0: float, hour: float) -> float:
        return t0 + (hour - DAY_START_H) * 3600 / speed

    lunch = DAY_START_H + hours >= LUNCH[1] + 0.5
    if not lunch:
        first = math.ceil(at(earliest, SLOT_H[0]) / 60) * 60
        t0 = max(earliest, first - (SLOT_H[1] - DAY_START_H) * 3600 / speed)
        return Schedule(t0, speed, float(first), None)
    anchor = LUNCH[0]
    first = math.ceil(at(earliest, anchor) / 60) * 60  # the anchor on a whole real minute
    t0 = first - (anchor - DAY_START_H) * 3600 / speed
    minutes = max(1, round((LUNCH[1] - LUNCH[0]) * 60 / speed))
    closure = (float(first), float(first + 60 * minutes))
    return Schedule(t0, speed, closure[1], closure)


def write_calendar(work: Path, days: list[dt.date]) -> Path:
    """A copy of the shipped calendar where the run's weekend days are make-up working days."""
    out = work / "calendar"
    out.mkdir(exist_ok=True)
    shipped = ROOT / "configs" / "calendar"
    for path in shipped.glob("*.toml"):
        (out / path.name).write_text(path.read_text())
    for day in {d for d in days if d.weekday() >= 5}:
        path = out / f"{day.year}.toml"
        text = path.read_text() if path.exists() else f"year = {day.year}\n"
        # a "holiday" of one day that is already a day off (1 January), with our make-up day
        holiday = dt.date(day.year, 1, 1)
        text += (f'\n[[holidays]]\nname_zh = "模拟工作日"\nname_en = "bench day"\n'
                 f"first = {holiday}\nlast = {holiday}\nmakeup_days = [{day}]\n")
        path.write_text(text)
    return out


def opens_at_matches(opens_at: str, schedule: Schedule) -> bool:
    """Whether a `call.rejected` closed's `opens_at` is the reopening after the closure."""
    if schedule.closure is None or not re.match(r"^\d{4}-\d\d-\d\dT", opens_at or ""):
        return False
    return dt.datetime.fromisoformat(opens_at).timestamp() == schedule.closure[1]
