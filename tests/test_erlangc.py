"""Erlang C against values published for it (M/M/N queues)."""

from __future__ import annotations

import math

import pytest

from server import erlangc


def test_erlang_b_by_hand() -> None:
    # B(1, 1) = 1/2; B(2, 1) = (1 x 1/2) / (2 + 1/2) = 1/5
    assert erlangc.erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlangc.erlang_b(2, 1.0) == pytest.approx(0.2)


def test_erlang_c_textbook_queues() -> None:
    # M/M/1: the probability of waiting is the utilisation
    assert erlangc.erlang_c(1, 0.5) == pytest.approx(0.5)
    # M/M/3 at 2 Erlangs: P(wait) = 4/9
    assert erlangc.erlang_c(3, 2.0) == pytest.approx(4 / 9)


@pytest.mark.parametrize(("agents", "p_wait", "asa_s"), [
    (11, 0.6821, 122.8), (12, 0.4494, 40.4), (13, 0.2853, 17.1), (14, 0.1741, 7.8),
])
def test_the_classic_ten_erlang_example(agents: int, p_wait: float, asa_s: float) -> None:
    """100 calls in half an hour, 180 s handle time: 10 Erlangs (the worked example
    of the Erlang C literature: 68.2 % wait with 11 agents, ASA 122.8 s)."""
    erlangs = erlangc.traffic(200, 180)
    assert erlangs == pytest.approx(10.0)
    assert erlangc.erlang_c(agents, erlangs) == pytest.approx(p_wait, abs=5e-5)
    assert erlangc.average_wait(agents, erlangs, 180) == pytest.approx(asa_s, abs=0.05)


def test_service_level_rises_with_staff() -> None:
    levels = [erlangc.service_level(n, 10.0, 180, 20) for n in range(11, 16)]
    assert levels == sorted(levels)
    assert levels[2] == pytest.approx(1 - 0.2853 * math.exp(-3 * 20 / 180), abs=1e-4)


def test_needed_is_the_fewest_meeting_the_average_wait() -> None:
    assert erlangc.needed(200, 180, 20) == 13  # ASA 17.1 s; 12 give 40.4 s
    assert erlangc.needed(200, 180, 900) == 11  # any N > A waits under 15 minutes here
    assert erlangc.needed(0, 600, 900) == 0
    assert erlangc.needed(1, 600, 0) >= 1


def test_an_overloaded_queue_waits_forever() -> None:
    assert erlangc.erlang_c(10, 10.0) == 1.0
    assert erlangc.average_wait(10, 10.0, 180) == math.inf
    assert erlangc.service_level(9, 10.0, 180, 60) == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        erlangc.traffic(-1, 10)
    with pytest.raises(ValueError):
        erlangc.needed(10, 10, -1)
