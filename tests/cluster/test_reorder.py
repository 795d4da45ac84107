"""The receiving node's reordering (`server/cluster/reorder.py`): gap held (past the short
hold while every node is alive), filled, timed out at the cap, the sending node dead; a
connection's line starts where it attached; memory bounded; states never take a
connection back in time; a line keeps nothing per message delivered."""

from __future__ import annotations

import itertools
import random
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from server.cluster.reorder import Reorder

HOLD_S = 0.25
CAP_S = 10.0
P = "specialist:alice"


def msg(n: int) -> bytes:
    return f"m{n}".encode()


def test_in_order_is_delivered_at_once() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    assert [buffer.event(P, n, [msg(n)], 0.0) for n in (1, 2, 3)] == [[msg(1)], [msg(2)], [msg(3)]]
    assert buffer.deadline() is None


def test_a_gap_is_held_until_it_is_filled() -> None:
    """Node B's offer (3) overtook node A's withdrawal (2): 3 waits for 2."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.event(P, 3, [msg(3)], 1.0) == []
    assert buffer.deadline() == 1.0 + CAP_S
    assert buffer.expire(1.1) == []
    assert buffer.event(P, 2, [msg(2)], 1.1) == [msg(2), msg(3)]
    assert buffer.deadline() is None
    assert buffer.event(P, 4, [msg(4)], 1.2) == [msg(4)]
    assert (buffer.gaps, buffer.late) == (0, 0)


def test_a_stalled_node_is_waited_for_past_the_short_hold() -> None:
    """Every node alive: number 2's node is stalled (a slow log append), not dead; 3 waits
    for it seconds after the short hold, and hears it first."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.event(P, 3, [msg(3)], 1.0) == []
    assert buffer.deadline() == 1.0 + CAP_S
    assert buffer.expire(1.0 + 5 * HOLD_S) == []
    assert buffer.event(P, 2, [msg(2)], 4.0) == [msg(2), msg(3)]
    assert (buffer.gaps, buffer.late, buffer.deadline()) == (0, 0, None)


def test_a_gap_that_is_not_filled_by_the_cap_is_given_up() -> None:
    """Every node alive, yet number 2 never comes (its publish failed): the rest waits
    the cap, no longer."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 3, [msg(3)], 1.0)
    buffer.event(P, 5, [msg(5)], 1.1)
    assert buffer.expire(1.0 + CAP_S - 0.001) == []
    assert buffer.expire(1.0 + CAP_S) == [(P, msg(3)), (P, msg(5))]
    assert buffer.gaps == 1 and buffer.deadline() is None
    assert buffer.event(P, 6, [msg(6)], 1.3) == [msg(6)]  # the line goes on, no waiting
    assert buffer.event(P, 2, [msg(2)], 1.4) == [msg(2)]  # late: delivered, not lost
    assert buffer.late == 1


def test_a_node_that_died_between_deciding_and_sending_stalls_nobody() -> None:
    """Number 2 was taken by a node that died before publishing: once its loss is known,
    3 and 4 are released (they waited the short hold already), and whatever comes next
    flows at once."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    assert buffer.expect(P, 2, 0.0) == []  # the connection was attached with 2 as the next
    assert buffer.event(P, 3, [msg(3)], 5.0) == []
    assert buffer.event(P, 4, [msg(4)], 5.1) == []
    assert buffer.expire(5.0 + 3.0) == []  # 3 s on, nobody known lost: still held
    buffer.lost(8.5)  # the node's watch: an instance's heartbeat lapsed
    assert buffer.deadline() == 5.0 + HOLD_S
    assert buffer.expire(8.5) == [(P, msg(3)), (P, msg(4))]
    assert buffer.event(P, 5, [msg(5)], 9.0) == [msg(5)]
    assert buffer.gaps == 1 and buffer.late == 0


def test_a_loss_known_when_the_gap_opens_gives_the_short_hold_only() -> None:
    """The missing number's node may have died before the gap opened: within the cap of
    a loss, gaps wait the short hold; long after it, they wait for stalled nodes again."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.lost(1.0)
    buffer.event(P, 3, [msg(3)], 2.0)
    assert buffer.deadline() == 2.0 + HOLD_S
    assert buffer.expire(2.0 + HOLD_S) == [(P, msg(3))]
    buffer.event(P, 5, [msg(5)], 1.0 + CAP_S)
    assert buffer.deadline() == 1.0 + 2 * CAP_S
    assert buffer.gaps == 1


def test_a_lost_subscription_gives_every_gap_up() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 3, [msg(3)], 0.1)
    assert buffer.give_up_all("subscription lost") == [(P, msg(3))]
    assert buffer.deadline() is None and buffer.gaps == 1


def test_a_connection_starts_its_line_where_it_attached() -> None:
    """Resumed on this node while numbers 5 and 4 (decided before) and 7 are on their way,
    7 first: 4 and 5 are heard first, in order, before the re-sync; 7 waits for 6; a
    number decided before that arrives after the re-sync is stale."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.open(P)
    assert buffer.event(P, 7, [msg(7)], 0.0) == []
    assert buffer.event(P, 5, [msg(5)], 0.0) == []
    assert buffer.event(P, 4, [msg(4)], 0.0) == []
    assert buffer.state(P, 5, b"pos@5", 0.0) == []
    assert buffer.state(P, 4, b"pos@4", 0.0) == []
    assert buffer.expect(P, 6, 0.1) == [msg(4), msg(5), b"pos@5"]  # the counter stood at 5
    assert buffer.event(P, 6, [msg(6)], 0.2) == [msg(6), msg(7)]
    assert buffer.event(P, 3, [msg(3)], 0.3) == []  # decided before, arriving only now
    assert (buffer.stale, buffer.gaps, buffer.late) == (1, 0, 0)


def test_a_connection_whose_counter_is_unknown_starts_with_what_it_holds() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.open(P)
    buffer.event(P, 4, [msg(4)], 0.0)
    buffer.event(P, 3, [msg(3)], 0.0)
    assert buffer.expect(P, None, 0.1) == [msg(3), msg(4)]
    buffer.open("terminal:T1")
    assert buffer.state("terminal:T1", 2, b"pos@2", 0.0) == []
    assert buffer.expect("terminal:T1", None, 0.1) == [b"pos@2"]
    assert buffer.deadline() is None


def test_held_messages_are_bounded() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 3)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert [buffer.event(P, n, [msg(n)], 0.0) for n in (3, 4, 5)] == [[], [], []]
    assert buffer.event(P, 6, [msg(6)], 0.0) == [msg(3), msg(4), msg(5), msg(6)]
    assert buffer.deadline() is None and buffer.gaps == 1


def test_an_opening_line_is_bounded_too() -> None:
    """More arrive before the counter is read than may be held: delivered in order, and
    the counter read afterwards takes nothing back."""
    buffer = Reorder(HOLD_S, CAP_S, 3)
    buffer.open(P)
    assert [buffer.event(P, n, [msg(n)], 0.0) for n in (9, 7, 8)] == [[], [], []]
    assert buffer.event(P, 10, [msg(10)], 0.0) == [msg(7), msg(8), msg(9), msg(10)]
    assert buffer.expect(P, 7, 0.1) == []
    assert buffer.event(P, 11, [msg(11)], 0.2) == [msg(11)]
    assert buffer.event(P, 6, [msg(6)], 0.2) == []  # decided before the attach: stale


def test_principals_are_ordered_apart() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 3, [msg(3)], 0.0)
    assert buffer.event("terminal:T1", 7, [b"t7"], 0.0) == [b"t7"]
    buffer.forget(P)  # the connection went: nothing kept for it
    assert buffer.deadline() is None


def test_a_state_is_dropped_when_stale_and_waits_for_its_event() -> None:
    """A caller's position as of event 1 after event 2 (connected) was delivered would
    take the kiosk back in time; one as of event 3 waits for 3."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.state(P, 1, b"pos@1", 0.0) == [b"pos@1"]
    buffer.event(P, 2, [msg(2)], 0.0)
    assert buffer.state(P, 1, b"pos@1", 0.1) == []
    assert buffer.state(P, 3, b"pos@3", 0.2) == []
    assert buffer.event(P, 3, [msg(3)], 0.3) == [msg(3), b"pos@3"]


@given(st.integers(1, 40), st.randoms(use_true_random=False), st.sets(st.integers(2, 40)))
def test_every_message_is_delivered_once_and_in_order_unless_late(
        n: int, rng: random.Random, lost: set[int]) -> None:
    """Any arrival order, some never arriving: each arrived one is delivered exactly once,
    and the delivered ones are in sequence apart from those counted late."""
    buffer = Reorder(HOLD_S, CAP_S, 8)
    arriving = [i for i in range(1, n + 1) if i not in lost]
    rng.shuffle(arriving)
    out: list[bytes] = []
    now = 0.0
    for i in arriving:
        now += rng.choice([0.0, 0.1, 0.3])
        out += [p for _, p in buffer.expire(now)]
        out += buffer.event(P, i, [msg(i)], now)
    out += [p for _, p in buffer.expire(now + CAP_S)]
    assert sorted(out) == sorted(msg(i) for i in arriving)
    numbers = [int(p[1:]) for p in out]
    inversions = sum(a > b for a, b in itertools.pairwise(numbers))
    assert inversions <= buffer.late


def test_an_unnumbered_event_behind_a_held_gap_waits_for_it_to_fill() -> None:
    """`call.connected` (3) waits for 2; the `participant.joined` sent after it (no
    transaction numbered it) is heard right after it, not before; a second one after
    that."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.event(P, 3, [b"connected"], 0.1) == []
    assert buffer.behind(P, b"joined", 3, 0.2) == []
    assert buffer.behind(P, b"left", 3, 0.3) == []
    assert buffer.event(P, 2, [msg(2)], 0.4) == [msg(2), b"connected", b"joined", b"left"]
    assert buffer.deadline() is None
    assert buffer.behind(P, b"joined again", 3, 0.5) == [b"joined again"]


def test_an_unnumbered_event_keeps_its_place_among_later_numbers() -> None:
    """Sent after 3 and before 4: heard between them, whatever order they fill in."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 3, [msg(3)], 0.1)
    buffer.behind(P, b"joined", 3, 0.2)
    buffer.event(P, 4, [msg(4)], 0.3)
    assert buffer.event(P, 2, [msg(2)], 0.4) == [msg(2), msg(3), b"joined", msg(4)]


def test_an_unnumbered_event_behind_a_gap_that_never_fills_is_released_with_it() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 3, [b"connected"], 1.0)
    assert buffer.behind(P, b"joined", 3, 1.5) == []
    assert buffer.deadline() == 1.0 + CAP_S  # the gap's own timer, no new one
    assert buffer.expire(1.0 + CAP_S) == [(P, b"connected"), (P, b"joined")]
    assert buffer.gaps == 1 and buffer.deadline() is None
    assert buffer.event(P, 2, [msg(2)], 12.0) == [msg(2)]  # late, as before


def test_an_unnumbered_event_goes_straight_through_when_nothing_is_held() -> None:
    """No gap, no connection known here, or only a state waiting: nothing to keep behind."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    assert buffer.behind(P, b"joined", 0, 0.0) == [b"joined"]
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.behind(P, b"left", 1, 0.1) == [b"left"]
    assert buffer.state(P, 3, b"pos@3", 0.2) == []
    assert buffer.behind(P, b"record", 1, 0.3) == [b"record"]
    assert buffer.deadline() == 0.2 + CAP_S  # the state's hold only


def test_unnumbered_events_count_towards_the_bound() -> None:
    """Never dropped: past the bound the gap is given up and everything goes, in order."""
    buffer = Reorder(HOLD_S, CAP_S, 3)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.event(P, 3, [msg(3)], 0.0) == []
    assert [buffer.behind(P, e, None, 0.1) for e in (b"e1", b"e2")] == [[], []]
    assert buffer.behind(P, b"e3", None, 0.2) == [msg(3), b"e1", b"e2", b"e3"]
    assert buffer.gaps == 1 and buffer.deadline() is None


def test_an_unnumbered_event_while_the_line_opens_follows_what_is_held() -> None:
    """Held before the counter is read: numbers decided before (4) are heard first with
    the event behind them; one behind a number decided after (7) waits for 6."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.open(P)
    buffer.event(P, 4, [msg(4)], 0.0)
    assert buffer.behind(P, b"after4", 4, 0.0) == []
    assert buffer.expect(P, 5, 0.1) == [msg(4), b"after4"]
    buffer.open("terminal:T1")
    buffer.event("terminal:T1", 7, [b"t7"], 0.0)
    assert buffer.behind("terminal:T1", b"after7", None, 0.0) == []
    assert buffer.expect("terminal:T1", 6, 0.1) == []
    assert buffer.event("terminal:T1", 6, [b"t6"], 0.2) == [b"t6", b"t7", b"after7"]


def test_an_unnumbered_event_waits_for_the_numbers_taken_before_it_was_sent() -> None:
    """Node B connected the call (3) and is still logging it when node A, having read it
    connected, replaces the recorder (`participant.joined`, sent with the counter at 3):
    nothing is held yet, and the event still waits for 2 and 3."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.behind(P, b"joined", 3, 0.1) == []
    assert buffer.deadline() == 0.1 + CAP_S
    assert buffer.event(P, 2, [msg(2)], 0.2) == [msg(2)]
    assert buffer.event(P, 3, [b"connected"], 0.3) == [b"connected", b"joined"]
    assert buffer.event(P, 3 + 1, [], 0.4) == [] and buffer.deadline() is None


def test_an_unnumbered_event_waiting_for_a_dead_nodes_number_goes_after_the_short_hold(
        ) -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    assert buffer.behind(P, b"joined", 2, 1.0) == []
    buffer.lost(1.5)
    assert buffer.deadline() == 1.0 + HOLD_S
    assert buffer.expire(1.0 + HOLD_S) == [(P, b"joined")]
    assert buffer.event(P, 3, [msg(3)], 1.6) == [msg(3)]  # the line goes on past 2


def test_an_unnumbered_event_while_the_line_opens_waits_for_the_counter() -> None:
    """Sent with the counter at 4 before this connection read it (5 next): heard when the
    line starts; with the counter unknown, when the line starts too."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.open(P)
    assert buffer.behind(P, b"joined", 4, 0.0) == []
    assert buffer.expect(P, 5, 0.1) == [b"joined"]
    buffer.open("terminal:T1")
    assert buffer.behind("terminal:T1", b"left", 2, 0.0) == []
    assert buffer.expect("terminal:T1", None, 0.1) == [b"left"]
    assert buffer.deadline() is None


@given(st.integers(1, 30), st.randoms(use_true_random=False), st.sets(st.integers(2, 30)),
       st.lists(st.integers(0, 30), max_size=8))
def test_every_unnumbered_event_is_heard_once_after_the_number_it_was_sent_at(
        n: int, rng: random.Random, lost: set[int], events: list[int]) -> None:
    """Numbers arriving in any order, some never; events sent with the counter at some
    number, arriving among them: each event is heard exactly once, after its number when
    that arrived and no gap was given up."""
    buffer = Reorder(HOLD_S, CAP_S, 8)
    buffer.event(P, 1, [msg(1)], 0.0)
    arriving: list[bytes | int] = [i for i in range(2, n + 1) if i not in lost]
    arriving += [f"e{after}.{k}".encode() for k, after in enumerate(events)]
    rng.shuffle(arriving)
    out: list[bytes] = [msg(1)]
    now = 0.0
    for item in arriving:
        now += rng.choice([0.0, 0.1, 0.3])
        out += [p for _, p in buffer.expire(now)]
        if isinstance(item, int):
            out += buffer.event(P, item, [msg(item)], now)
        else:
            out += buffer.behind(P, item, int(item[1:].split(b".")[0]), now)
    out += [p for _, p in buffer.expire(now + CAP_S)]
    assert sorted(out) == sorted([msg(1)] + [i if isinstance(i, bytes) else msg(i)
                                            for i in arriving])
    if buffer.gaps == 0 and buffer.late == 0:
        for k, after in enumerate(events):
            at = out.index(f"e{after}.{k}".encode())
            if msg(after) in out:
                assert out.index(msg(after)) < at


def test_a_number_that_comes_again_is_dropped_a_given_up_one_still_comes_late() -> None:
    """A retried publish or a gap filled from Redis brings a number again: heard once. A
    number given up on and arriving after is still heard (late), as before."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    assert buffer.event(P, 1, [msg(1)], 0.0) == [msg(1)]
    assert buffer.event(P, 3, [msg(3)], 0.1) == []
    assert buffer.event(P, 3, [msg(3)], 0.2) == []  # held already
    assert buffer.event(P, 1, [msg(1)], 0.3) == []  # delivered already
    assert buffer.twice == 2
    assert buffer.give_up_all("subscription lost") == [(P, msg(3))]
    assert buffer.event(P, 2, [msg(2)], 0.4) == [msg(2)]  # late, not lost
    assert buffer.event(P, 2, [msg(2)], 0.5) == []
    assert (buffer.late, buffer.twice, buffer.next_of(P)) == (1, 3, 4)


def test_a_line_keeps_nothing_per_message_delivered_in_order() -> None:
    """Issue 16: a connection hears hundreds of numbered messages a day; its line held the
    latest 512 numbers taken in (~35 KB a busy desk, growing with each message), now only
    the numbers given up on. Traced memory after 2,000 more messages: as before them."""
    buffer = Reorder(HOLD_S, CAP_S, 256)
    payload = [b"m"]
    for n in range(1, 101):
        buffer.event(P, n, payload, 0.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(101, 2101):
            buffer.event(P, n, payload, 0.0)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2048, f"{grown} bytes kept for 2,000 messages delivered in order"


def test_a_number_delivered_long_ago_that_comes_again_is_still_dropped() -> None:
    buffer = Reorder(HOLD_S, CAP_S, 16)
    for n in range(1, 1001):
        assert buffer.event(P, n, [msg(n)], 0.0) == [msg(n)]
    assert buffer.event(P, 5, [msg(5)], 0.1) == []
    assert (buffer.twice, buffer.late) == (1, 0)


def test_a_line_that_gives_a_gap_up_is_to_resync() -> None:
    """Delivered past number 2, the connection never heard it: the bus is told to re-sync
    it; a gap filled in time asks for nothing."""
    buffer = Reorder(HOLD_S, CAP_S, 16)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 3, [msg(3)], 1.0)
    buffer.event(P, 2, [msg(2)], 1.5)
    assert buffer.resync == set()
    buffer.event(P, 5, [msg(5)], 2.0)
    assert buffer.expire(2.0 + CAP_S) == [(P, msg(5))]
    assert buffer.resync == {P}


def test_numbers_taken_that_no_list_held_are_given_up_after_the_taken_hold() -> None:
    """After a lost subscription's fill the counter stands at 3 and the line still waits
    for 2 with nothing held (the kiosk's `call.connected`, its last message): it waits
    `taken_hold_s`, then 2 and 3 are given up, the connection is to re-sync, and 4 goes
    straight through; late, 3 is still heard."""
    buffer = Reorder(HOLD_S, CAP_S, 16, taken_hold_s=2.0)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.taken(P, 1, 0.5)
    assert buffer.deadline() is None  # nothing taken past the line
    buffer.taken(P, 3, 1.0)
    assert buffer.deadline() == 3.0 and buffer.expire(2.9) == [] and buffer.resync == set()
    assert buffer.expire(3.0) == []
    assert (buffer.gaps, buffer.resync, buffer.next_of(P)) == (1, {P}, 4)
    assert buffer.event(P, 4, [msg(4)], 3.1) == [msg(4)]
    assert buffer.event(P, 3, [msg(3)], 3.2) == [msg(3)] and buffer.late == 1
    assert buffer.event(P, 3, [msg(3)], 3.3) == [] and buffer.twice == 1


def test_numbers_taken_that_arrive_within_the_hold_are_heard_in_order() -> None:
    """The numbers' node was still logging them: they come within the hold, in order,
    and nothing is given up; the line closes once past the counter."""
    buffer = Reorder(HOLD_S, CAP_S, 16, taken_hold_s=2.0)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.taken(P, 3, 1.0)
    assert buffer.event(P, 2, [msg(2)], 1.5) == [msg(2)]
    assert buffer.deadline() is not None  # 3 still awaited
    assert buffer.event(P, 3, [msg(3)], 1.6) == [msg(3)]
    assert (buffer.deadline(), buffer.gaps, buffer.resync) == (None, 0, set())


def test_numbers_taken_deliver_what_the_line_held_after_them() -> None:
    """The line held 5 behind the missing 2 to 4 (taken through 3): given up at the
    hold's end, 5 is delivered; a line not started yet, or already past the counter, is
    left alone."""
    buffer = Reorder(HOLD_S, CAP_S, 16, taken_hold_s=2.0)
    buffer.event(P, 1, [msg(1)], 0.0)
    buffer.event(P, 5, [msg(5)], 0.5)
    buffer.taken(P, 3, 1.0)
    assert buffer.expire(2.5) == [(P, msg(5))] and buffer.next_of(P) == 6
    buffer.open("terminal:t2")
    buffer.taken("terminal:t2", 9, 3.0)
    buffer.taken(P, 4, 3.0)
    assert buffer.deadline() is None and buffer.resync == {P}
