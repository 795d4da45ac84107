"""The day's RSS slope is what issue 16 asks for: after each life's first simulated hour,
up to closing, per process; judged at steady load (a life's connections or sessions within a
tenth of their highest), with the fits after the first hour and over the whole life beside."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.day_monitor import Life, life_fits, life_slope, segments_held, steady_since

MB = 1024  # kB


def _life(points: list[tuple[float, float]]) -> Life:
    return Life(pid=1, started=0.0, rss=[(h, int(mb * MB)) for h, mb in points])


def test_the_first_hour_and_the_drain_are_not_in_the_slope() -> None:
    warm_up = [(h / 4, 100 + 20 * h / 4) for h in range(4)]  # +20 MB/h while warming
    working = [(1 + h / 4, 120 + 0.5 * h / 4) for h in range(29)]  # +0.5 MB/h to 8:00
    drain = [(8.25, 300.0), (8.5, 400.0)]
    slope = life_slope(_life(warm_up + working + drain), hours=8)
    assert slope == pytest.approx(0.5, abs=0.01)


def test_a_restarted_life_warms_up_from_its_own_start() -> None:
    restarted = [(0.55 + h / 4, 90 + 30 * min(h / 4, 1) + 0.2 * h / 4) for h in range(31)]
    slope = life_slope(_life(restarted), hours=8)
    assert slope == pytest.approx(0.2, abs=0.01)


def test_a_life_too_short_after_its_warm_up_has_no_slope() -> None:
    late = [(1.6 + h / 4, 110 + 10 * h / 4) for h in range(6)]  # joined at 1.6 of 2 h
    assert life_slope(_life(late), hours=2) is None


def test_samples_drifting_late_still_count_at_the_bounds() -> None:
    # a node restarted at 9:32 of a 2-hour day, sampled a little later each quarter hour
    restarted = [(0.53 + k * 0.2505, 100 + (20 if k >= 2 else 0) + 0.4 * k) for k in range(7)]
    slope = life_slope(_life(restarted), hours=2)
    assert slope is not None
    assert slope == pytest.approx(1.6, abs=0.01)


def _quarters(start: float, end: float) -> list[float]:
    return [start + k / 4 for k in range(int((end - start) * 4) + 1)]


def test_a_restarted_node_filling_with_returning_kiosks_is_judged_once_they_are_back() -> None:
    """Node 1 of the goal-size day: restarted at h1.5, its kiosks coming back over hours
    (RSS rising with them, ~58 KB a socket), then all of them at once at the Redis restart
    (h5.8), flat after: not a leak."""
    def sockets(h: float) -> float:
        return 1000.0 if h >= 5.8 else 25 * (h - 1.5)

    hours = _quarters(1.5, 8.0)
    life = _life([(h, 110 + 0.058 * sockets(h)) for h in hours])
    held = [(h, sockets(h)) for h in _quarters(1.5, 8.0)]
    fits = life_fits(life, 8, held)
    assert fits.steady_from == pytest.approx(5.8, abs=0.25)
    assert fits.steady == pytest.approx(0.0, abs=0.01)
    assert fits.verdict == fits.steady
    assert fits.after_first is not None and fits.after_first > 5  # the old rule: MISSED
    assert fits.whole is not None and fits.whole > 5  # printed beside: the rise is not hidden


def test_growth_at_a_steady_load_is_still_a_slope() -> None:
    """A replacement recorder that fills with sessions in its first two hours, then leaks
    2 MB an hour at the same load: the steady fit shows the leak."""
    def sessions(h: float) -> float:
        return min(20.0, 10 * (h - 3.6))

    life = _life([(h, 114 + 0.4 * sessions(h) + 2.0 * max(0.0, h - 5.6))
                  for h in _quarters(3.6, 8.0)])
    fits = life_fits(life, 8, [(h, sessions(h)) for h in _quarters(3.6, 8.0)])
    assert fits.steady_from == pytest.approx(5.4, abs=0.25)
    assert fits.steady is not None and fits.steady > 1.5


def test_a_load_rising_until_closing_is_judged_after_the_first_hour() -> None:
    hours = _quarters(1.5, 8.0)
    life = _life([(h, 110 + 3 * h) for h in hours])
    fits = life_fits(life, 8, [(h, 100 * h) for h in hours])  # 90 % of 800 only at h7.2
    assert fits.steady is None and fits.steady_from is None
    assert fits.verdict == fits.after_first == pytest.approx(3.0, abs=0.01)


def test_without_load_samples_the_verdict_is_after_the_first_hour() -> None:
    hours = _quarters(0.0, 8.0)
    fits = life_fits(_life([(h, 120 + 0.5 * h) for h in hours]), 8, [])
    assert fits.steady is None and fits.verdict == pytest.approx(0.5, abs=0.01)


def test_the_steady_load_starts_at_its_first_sample_near_the_highest() -> None:
    held = [(0.0, 0.0), (1.0, 50.0), (2.0, 95.0), (3.0, 100.0), (4.0, 60.0), (9.0, 500.0)]
    assert steady_since(held, hours=8) == 2.0  # the drain's sample is not the day's
    assert steady_since([], hours=8) is None


def test_a_recorders_load_is_its_open_segments() -> None:
    at = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)

    def seg(recorder: str, opened: int, ended: int | None) -> dict[str, object]:
        return {"recorder": recorder, "created_at": at + dt.timedelta(seconds=opened),
                "ended_at": None if ended is None else at + dt.timedelta(seconds=ended)}

    held = segments_held([seg("rec1", 0, 10), seg("rec1", 5, None), seg("rec2", 3, 4),
                          seg("rec1", 10, 20)])
    t0 = at.timestamp()
    assert [(t - t0, n) for t, n in held["rec1"]] == [(0, 1), (5, 2), (10, 1), (10, 2),
                                                      (20, 1)]
    assert [(t - t0, n) for t, n in held["rec2"]] == [(3, 1), (4, 0)]
