"""Opening hours on the 2026 working-day calendar (configs/calendar/2026.toml)."""

from __future__ import annotations

import datetime as dt

import pytest

from server.config import ConfigError, load_settings
from signaling.calendar import WorkingCalendar
from signaling.hours import HoursError, OpeningHours, parse_hours
from signaling.link import SingleNode
from signaling.memory import LocalBus, MemoryRouter
from signaling.model import QueueConfig
from signaling.queue_status import QueueStatus
from tests.joint.conftest import local

HOURS = "09:00-12:00,13:30-17:30"


@pytest.fixture(scope="module")
def hours() -> OpeningHours:
    calendar = WorkingCalendar.from_dir("configs/calendar")
    return OpeningHours(calendar, {"tax": HOURS, "general": None})


def test_make_up_saturday_is_open(hours: OpeningHours) -> None:
    # 2026-02-14 is a Saturday made a working day for the Spring Festival
    assert hours.is_open("tax", local(2026, 2, 14, 10, 0))
    # an ordinary Saturday is closed: the next opening is Monday morning
    assert not hours.is_open("tax", local(2026, 3, 7, 10, 0))
    assert hours.next_opening("tax", local(2026, 3, 7, 10, 0)) == local(2026, 3, 9, 9, 0)


def test_public_holiday_is_closed(hours: OpeningHours) -> None:
    # National Day: 10-01..10-07 off; 10-10 (Saturday) is a make-up day, 10-08 a Thursday
    assert not hours.is_open("tax", local(2026, 10, 5, 10, 0))
    assert hours.next_opening("tax", local(2026, 10, 1, 9, 0)) == local(2026, 10, 8, 9, 0)
    # Spring Festival: from the Friday evening before to the make-up Saturday after
    assert hours.next_opening("tax", local(2026, 2, 14, 18, 0)) == local(2026, 2, 24, 9, 0)


def test_lunch_break(hours: OpeningHours) -> None:
    assert hours.is_open("tax", local(2026, 3, 10, 11, 59))
    assert not hours.is_open("tax", local(2026, 3, 10, 12, 0))
    assert not hours.is_open("tax", local(2026, 3, 10, 13, 29))
    assert hours.next_opening("tax", local(2026, 3, 10, 12, 30)) == local(2026, 3, 10, 13, 30)
    assert hours.is_open("tax", local(2026, 3, 10, 13, 30))


def test_closing_minute(hours: OpeningHours) -> None:
    assert hours.is_open("tax", local(2026, 3, 10, 17, 29) + dt.timedelta(seconds=59))
    assert not hours.is_open("tax", local(2026, 3, 10, 17, 30))
    assert hours.next_opening("tax", local(2026, 3, 10, 17, 30)) == local(2026, 3, 11, 9, 0)


def test_without_hours_always_open(hours: OpeningHours) -> None:
    for moment in (local(2026, 10, 1, 3, 0), local(2026, 3, 7, 23, 59)):
        assert hours.is_open("general", moment)
        assert hours.next_opening("general", moment) == moment


def test_slots_within_hours(hours: OpeningHours) -> None:
    slots = hours.slots_on("tax", dt.date(2026, 3, 10), 45)
    assert slots[0] == (local(2026, 3, 10, 9, 0), local(2026, 3, 10, 9, 45))
    assert slots[3] == (local(2026, 3, 10, 11, 15), local(2026, 3, 10, 12, 0))
    assert slots[4][0] == local(2026, 3, 10, 13, 30)  # 11:15 + 45 = 12:00; none over lunch
    assert all(b <= local(2026, 3, 10, 17, 30) for _, b in slots)
    assert hours.slots_on("tax", dt.date(2026, 10, 2), 15) == []


def test_open_seconds_skip_closed_time(hours: OpeningHours) -> None:
    # waiting from 17:20 to 09:05 next morning counts 10 + 5 minutes of open time
    waited = hours.open_seconds("tax", local(2026, 3, 10, 17, 20), local(2026, 3, 11, 9, 5))
    assert waited == 15 * 60


@pytest.mark.parametrize("bad", ["9-12", "12:00-09:00", "09:00-12:00,11:00-13:00",
                                 "25:00-26:00", ""])
def test_bad_hours_refused(bad: str) -> None:
    with pytest.raises(HoursError):
        parse_hours(bad)
    with pytest.raises(ConfigError, match=r"queues\.tax\.hours"):
        load_settings(env={}, overrides={"queues": [{"id": "tax", "name": "税务", "hours": bad}]})


def test_parse_hours_to_midnight() -> None:
    assert parse_hours("18:00-24:00") == ((dt.time(18), dt.time.max),)


def test_answered_wait_counts_open_time_only(hours: OpeningHours) -> None:
    """The wait a session logs (and the service level counts) skips the closed night."""
    queues = [QueueConfig(id="tax", name="税务", hours=HOURS),
              QueueConfig(id="general", name="综合")]
    router, bus = MemoryRouter(queues), LocalBus()
    status = QueueStatus({q.id: q for q in queues}, router, bus, lambda: 0.0,
                         SingleNode(router, bus), hours)
    queued = local(2026, 3, 10, 17, 20).timestamp()
    answered = local(2026, 3, 11, 9, 5).timestamp()
    assert status.open_wait("tax", queued, answered) == 15 * 60
    assert status.open_wait("general", queued, answered) == answered - queued
