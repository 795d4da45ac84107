"""The day's RSS slope is what issue 16 asks for: after each life's first simulated hour,
up to closing, per process."""

from __future__ import annotations

import pytest

from bench.day_monitor import Life, life_slope

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
