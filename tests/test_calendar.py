"""Working-day calendar: deadlines around the 2026 holidays, worked out by hand.

2026 reference (from configs/calendar/2026.toml): Qingming off Sat 04-04 to
Mon 04-06; Labour Day off Fri 05-01 to Tue 05-05, Sat 05-09 worked; Spring
Festival off Sun 02-15 to Mon 02-23, Sat 02-14 and Sat 02-28 worked;
Mid-Autumn off Fri 09-25 to Sun 09-27; National Day off Thu 10-01 to Wed 10-07,
Sun 09-20 and Sat 10-10 worked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from signaling.calendar import (
    CalendarError,
    MatterClass,
    WorkingCalendar,
    load_calendar_year,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "calendar"
SHANGHAI = ZoneInfo("Asia/Shanghai")
D = dt.date


def at(text: str) -> dt.datetime:
    """A Shanghai local time, as a specialist at a window would read the clock."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar.from_dir(CONFIG_DIR)


def test_shipped_2026_data_loads(calendar: WorkingCalendar) -> None:
    assert calendar.has_data_for(2026)
    assert not calendar.has_data_for(2027)
    assert calendar.holiday_name(D(2026, 10, 3)) == "National Day"
    assert calendar.holiday_name(D(2026, 10, 10)) is None


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 1, 1), False),  # New Year, a Thursday
        (D(2026, 1, 4), True),  # make-up Sunday
        (D(2026, 2, 14), True),  # make-up Saturday before Spring Festival
        (D(2026, 2, 23), False),  # Monday, last day of Spring Festival
        (D(2026, 2, 28), True),  # make-up Saturday after Spring Festival
        (D(2026, 4, 6), False),  # Qingming Monday
        (D(2026, 5, 5), False),  # Labour Day Tuesday
        (D(2026, 9, 20), True),  # make-up Sunday for National Day
        (D(2026, 10, 10), True),  # make-up Saturday
        (D(2026, 10, 11), False),  # ordinary Sunday
        (D(2026, 10, 12), True),  # ordinary Monday
    ],
)
def test_is_working_day(calendar: WorkingCalendar, day: dt.date, working: bool) -> None:
    assert calendar.is_working_day(day) is working


@pytest.mark.parametrize(
    ("opened", "simple", "general", "complex_"),
    [
        # Wednesday morning before National Day: 3 working days are
        # Thu 10-08, Fri 10-09, Sat 10-10 (make-up); 7 run to Thu 10-15.
        ("2026-09-30T10:00", D(2026, 9, 30), D(2026, 10, 10), D(2026, 10, 15)),
        # Same Wednesday after the window closed: the opening day is Thu 10-08.
        ("2026-09-30T18:00", D(2026, 10, 8), D(2026, 10, 12), D(2026, 10, 16)),
        # Friday before Qingming: Tue 04-07, Wed 04-08, Thu 04-09 ...
        # then Fri 04-10, Mon 04-13, Tue 04-14, Wed 04-15.
        ("2026-04-03T09:00", D(2026, 4, 3), D(2026, 4, 9), D(2026, 4, 15)),
        # Make-up Saturday 10-10 is a full working day.
        ("2026-10-10T10:00", D(2026, 10, 10), D(2026, 10, 14), D(2026, 10, 20)),
        # Make-up Saturday 02-28: Mon 03-02, Tue 03-03, Wed 03-04; 7 -> Tue 03-10.
        ("2026-02-28T15:00", D(2026, 2, 28), D(2026, 3, 4), D(2026, 3, 10)),
        # Friday before Spring Festival: Sat 02-14 is worked, then nine days
        # off: 02-14, 02-24, 02-25 (general) then 02-26, 02-27, Sat 02-28
        # (make-up), Mon 03-02 (complex).
        ("2026-02-13T16:00", D(2026, 2, 13), D(2026, 2, 25), D(2026, 3, 2)),
        # Late on the Friday before make-up Saturday 05-09: opening day is 05-09.
        ("2026-05-08T17:45", D(2026, 5, 9), D(2026, 5, 13), D(2026, 5, 19)),
        # In the middle of National Day: counted from Thu 10-08.
        ("2026-10-03T11:00", D(2026, 10, 8), D(2026, 10, 12), D(2026, 10, 16)),
        # On Qingming Monday: counted from Tue 04-07.
        ("2026-04-06T09:00", D(2026, 4, 7), D(2026, 4, 10), D(2026, 4, 16)),
    ],
)
def test_due_dates_around_holidays(
    calendar: WorkingCalendar,
    opened: str,
    simple: dt.date,
    general: dt.date,
    complex_: dt.date,
) -> None:
    expected: dict[MatterClass, dt.date] = {
        "simple": simple,
        "general": general,
        "complex": complex_,
    }
    for klass, due in expected.items():
        assert calendar.due_date(at(opened), klass) == due, klass


def test_close_time_boundary(calendar: WorkingCalendar) -> None:
    assert calendar.due_date(at("2026-03-10T17:29:59"), "simple") == D(2026, 3, 10)
    assert calendar.due_date(at("2026-03-10T17:30:00"), "simple") == D(2026, 3, 11)
    assert calendar.due_date(at("2026-03-10T00:00:00"), "simple") == D(2026, 3, 10)


def test_utc_timestamps_are_converted_to_shanghai_time(calendar: WorkingCalendar) -> None:
    # 09:45 UTC is 17:45 in Shanghai: after close on the Wednesday.
    opened = dt.datetime(2026, 9, 30, 9, 45, tzinfo=dt.UTC)
    assert calendar.due_date(opened, "simple") == D(2026, 10, 8)
    # 23:00 UTC on a Sunday is 07:00 Monday in Shanghai.
    assert calendar.due_date(dt.datetime(2026, 3, 8, 23, 0, tzinfo=dt.UTC), "simple") == D(
        2026, 3, 9
    )


def test_configurable_close_time_and_zone() -> None:
    late = WorkingCalendar.from_dir(CONFIG_DIR, timezone="Asia/Urumqi", close=dt.time(19, 0))
    opened = dt.datetime(2026, 3, 10, 18, 30, tzinfo=ZoneInfo("Asia/Urumqi"))
    assert late.due_date(opened, "simple") == D(2026, 3, 10)


def test_year_without_data_counts_weekends_only(calendar: WorkingCalendar) -> None:
    # 2027-01-01 is a Friday; without a 2027 file it is a working day.
    assert not calendar.has_data_for(2027)
    assert calendar.is_working_day(D(2027, 1, 1))
    assert calendar.due_date(at("2026-12-31T10:00"), "general") == D(2027, 1, 5)


def test_bad_input_is_refused(calendar: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        calendar.due_date(dt.datetime(2026, 3, 10, 9, 0), "simple")
    with pytest.raises(ValueError, match="unknown matter class 'urgent'"):
        calendar.due_date(at("2026-03-10T09:00"), "urgent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zero or more"):
        calendar.add_working_days(at("2026-03-10T09:00"), -1)
    with pytest.raises(CalendarError, match="unknown time zone"):
        WorkingCalendar(timezone="Mars/Olympus")


def test_overdue_after_the_due_day_ends(calendar: WorkingCalendar) -> None:
    due = D(2026, 10, 10)
    assert not calendar.is_overdue(due, at("2026-10-10T23:59"))
    assert calendar.is_overdue(due, at("2026-10-11T00:00"))


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


HOLIDAY = 'name_zh = "元旦"\nname_en = "New Year"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            f"year = 2027\n[[holidays]]\n{HOLIDAY}first = 2027-01-01\nlast = 2027-01-01\n"
            "make_up = []\n",
            "unknown field `make_up`",
        ),
        (
            f"year = 2027\n[[holidays]]\n{HOLIDAY}first = 2027-01-03\nlast = 2027-01-01\n",
            "first 2027-01-03 is after last 2027-01-01",
        ),
        (
            f"year = 2027\n[[holidays]]\n{HOLIDAY}first = 2072-01-01\nlast = 2072-01-01\n",
            "2072-01-01 is not in or next to year 2027",
        ),
        (
            f"year = 2027\n[[holidays]]\n{HOLIDAY}first = 2027-01-01\nlast = 2027-01-01\n"
            "makeup_days = [2027-01-04]\n",
            "make-up day 2027-01-04 is a Monday",
        ),
        (
            f"year = 2027\n[[holidays]]\n{HOLIDAY}first = 2027-01-01\nlast = 2027-01-03\n"
            "makeup_days = [2027-01-02]\n",
            "2027-01-02 is both a day off and a make-up day",
        ),
        ("year = 2027\n[[holidays]\n", "not valid TOML"),
        (f'year = 2027\n[[holidays]]\n{HOLIDAY}first = "soon"\n', "Expected `date`"),
    ],
)
def test_bad_calendar_files_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, "2027.toml", body)
    with pytest.raises(CalendarError, match=message) as info:
        load_calendar_year(path)
    assert str(path) in str(info.value)


def test_operator_adds_next_year(tmp_path: Path) -> None:
    (tmp_path / "2026.toml").write_bytes((CONFIG_DIR / "2026.toml").read_bytes())
    _write(
        tmp_path,
        "2027.toml",
        f"year = 2027\n[[holidays]]\n{HOLIDAY}first = 2027-01-01\nlast = 2027-01-03\n"
        "makeup_days = [2027-01-09]\n",
    )
    calendar = WorkingCalendar.from_dir(tmp_path)
    assert calendar.years == {2026, 2027}
    assert not calendar.is_working_day(D(2027, 1, 1))
    assert calendar.is_working_day(D(2027, 1, 9))
    # Thu 2026-12-31: Mon 01-04, Tue 01-05, Wed 01-06.
    assert calendar.due_date(at("2026-12-31T10:00"), "general") == D(2027, 1, 6)


def test_same_year_twice_is_refused(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.toml", "year = 2027\n")
    second = _write(tmp_path, "b.toml", "year = 2027\n")
    with pytest.raises(CalendarError, match="2027 is given twice"):
        WorkingCalendar.from_files([first, second])


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="does not exist"):
        WorkingCalendar.from_dir(tmp_path / "nowhere")
