"""The staffing estimate: specialists on duty per hour from status changes, and the
Erlang C need beside it, computed from a day's arrivals."""

from __future__ import annotations

import datetime as dt

import pytest

from server import erlangc
from server.staffing import Arrival, StatusChange, estimate, on_duty

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
END = START + dt.timedelta(hours=3)


def at(minutes: float) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


def test_on_duty_counts_working_time_not_away_or_offline() -> None:
    changes = [
        StatusChange("ann", at(-30), "available"),  # signed in before the period
        StatusChange("ann", at(30), "in_call"),
        StatusChange("ann", at(60), "away"),  # a break: not on duty
        StatusChange("ann", at(90), "available"),
        StatusChange("ann", at(150), "offline"),
        StatusChange("bob", at(60), "available"),
    ]
    worked = on_duty(changes, {"ann": ["tax"], "bob": ["tax", "registration"]}, START, END)
    assert worked[("tax", at(0))] == pytest.approx(1.0)  # ann all hour
    assert worked[("tax", at(60))] == pytest.approx(0.5 + 1.0)  # ann half, bob all
    assert worked[("tax", at(120))] == pytest.approx(0.5 + 1.0)
    assert worked[("registration", at(60))] == pytest.approx(1.0)
    assert ("registration", at(0)) not in worked


def test_estimate_needs_erlang_c_staff_for_each_hour() -> None:
    # 200 calls in the first hour, 170 s talk + 10 s wrap-up: 10 Erlangs; a 20 s target
    arrivals = [Arrival("tax", at(i * 0.3), 170.0) for i in range(200)]
    arrivals.append(Arrival("tax", at(70), None))  # abandoned: counts, no talk time
    changes = [StatusChange(f"s{i}", at(-1), "available") for i in range(12)]
    skills = {f"s{i}": ["tax"] for i in range(12)}
    [reg, tax] = estimate(arrivals, changes, skills, {"tax": 20.0, "registration": 900.0},
                          {"tax": 10.0}, START, END, "Asia/Shanghai")
    first, second, third = tax.hours
    assert (first.hour, first.arrivals, first.handle_s, first.erlangs) == (9, 200, 180.0, 10.0)
    assert first.needed == erlangc.needed(200, 180.0, 20.0) == 13
    assert first.on_duty == 12.0
    # no answered call in the second hour: the day's handle time
    assert (second.hour, second.arrivals, second.handle_s, second.needed) == (10, 1, 180.0, 1)
    assert (third.arrivals, third.needed, third.on_duty) == (0, 0, 12.0)
    assert reg.queue == "registration" and reg.hours == []


def test_an_hour_with_arrivals_but_no_handle_time_needs_no_guess() -> None:
    [tax] = estimate([Arrival("tax", at(5), None)], [], {}, {"tax": 900.0}, {}, START, END,
                     "Asia/Shanghai")
    assert [(h.arrivals, h.handle_s, h.needed, h.on_duty) for h in tax.hours] == [
        (1, None, None, 0.0)]
