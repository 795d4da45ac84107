"""How many sockets a node sheds a round, and which terminals count as busy
(`server/cluster/rebalance.py`; the rounds themselves: tests/cluster/test_rebalance.py)."""

from __future__ import annotations

from server.cluster.rebalance import busy, lopsided, to_move
from signaling.model import Call


def call(visitor: str | None = None) -> Call:
    return Call(id="c1", session_id="s1", queue="tax", terminal_id="T1", enqueued_at=0.0,
                visitor=visitor)


def test_a_node_over_its_share_sheds_its_excess_a_step_at_a_time() -> None:
    assert to_move(2136, [2136, 20], 0.1) == 107  # 5 % of 2,136, under its excess of 1,058
    assert to_move(150, [150, 100], 0.1) == 8  # 5 % of 150, under its excess of 25
    assert to_move(130, [130, 100], 0.1) == 7  # 5 % of 130, under its excess of 15


def test_within_the_tolerance_or_the_margin_nobody_moves() -> None:
    assert to_move(1100, [1100, 1000], 0.1) == 0  # 4.8 % over the mean
    assert to_move(24, [24, 6], 0.1) == 0  # 9 over the mean of 15: under the margin (10)
    assert to_move(100, [100, 100], 0.1) == 0
    assert to_move(20, [20, 100], 0.1) == 0  # under its share: the other node sheds


def test_one_node_alone_moves_nobody() -> None:
    assert to_move(2000, [2000], 0.0) == 0


def test_the_step_is_at_most_the_excess() -> None:
    assert to_move(1000, [1000, 960, 960], 0.0) == 26  # excess 26.7 under the step of 50


def test_a_terminal_is_busy_with_a_call_of_its_own_not_one_handed_off() -> None:
    assert not busy([])
    assert busy([call()])
    assert not busy([call(visitor="visitor:v1")])


def test_a_split_is_lopsided_from_a_quarter_over_the_mean() -> None:
    assert lopsided(2142, [2142, 0])  # the survivor of a restart, through the next peak
    assert lopsided(1250, [1250, 750])  # 1.25 times the mean of 1,000
    assert not lopsided(1240, [1240, 760])
    assert not lopsided(2000, [2000])  # alone: nobody to shed to
