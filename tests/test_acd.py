"""Unit tests of the routing core (signaling/acd.py): no I/O, an explicit clock."""

from __future__ import annotations

import pytest

from signaling.acd import MISSED_OFFERS_BEFORE_AWAY, CallCenter
from signaling.errors import Refused
from signaling.model import Agent, AgentState, Call, CallState, QueueConfig


def center(**tax: object) -> CallCenter:
    return CallCenter(
        [
            QueueConfig(id="tax", name="Tax", **tax),  # type: ignore[arg-type]
            QueueConfig(id="registration", name="Registration"),
        ]
    )


def join(cc: CallCenter, agent_id: str, now: float = 0.0, **skills: int) -> None:
    cc.agent_join(Agent(id=agent_id, name=agent_id, skills=skills or {"tax": 1}), now)
    cc.set_status(agent_id, AgentState.AVAILABLE, now)


def call(cc: CallCenter, call_id: str, now: float, queue: str = "tax") -> Call:
    c = Call(
        id=call_id,
        session_id="s" + call_id,
        queue=queue,
        terminal_id="t" + call_id,
        enqueued_at=now,
    )
    cc.enqueue(c)
    return c


def test_lowest_skill_level_first_then_longest_idle() -> None:
    cc = center()
    join(cc, "senior", 5.0, tax=2)
    join(cc, "idle_long", 1.0, tax=1)
    join(cc, "idle_short", 3.0, tax=1)
    call(cc, "c1", 10.0)
    call(cc, "c2", 11.0)
    call(cc, "c3", 12.0)
    offers = cc.dispatch(13.0)
    assert [(o.call_id, o.agent_id) for o in offers] == [
        ("c1", "idle_long"),
        ("c2", "idle_short"),
        ("c3", "senior"),
    ]


def test_fewest_calls_strategy() -> None:
    cc = center(strategy="fewest-calls")
    join(cc, "busy_bee", 0.0)
    join(cc, "fresh", 1.0)
    cc.agents["busy_bee"].calls_answered = 5
    call(cc, "c1", 2.0)
    assert [o.agent_id for o in cc.dispatch(3.0)] == ["fresh"]


def test_one_call_rings_one_agent_and_order_is_fifo() -> None:
    cc = center()
    call(cc, "c1", 1.0)
    call(cc, "c2", 2.0)
    assert cc.dispatch(3.0) == []
    join(cc, "a", 4.0)
    offers = cc.dispatch(5.0)
    assert [o.call_id for o in offers] == ["c1"]
    assert cc.agents["a"].state == AgentState.RINGING
    assert cc.position("c1") == 1 and cc.position("c2") == 2
    assert cc.dispatch(6.0) == []


def test_decline_excludes_the_decliner_for_that_call() -> None:
    cc = center()
    join(cc, "a", 0.0)
    call(cc, "c1", 1.0)
    cc.dispatch(2.0)
    cc.decline("c1", "a", 3.0)
    assert cc.agents["a"].state == AgentState.AVAILABLE
    assert cc.dispatch(4.0) == []
    call(cc, "c2", 5.0)
    assert [(o.call_id, o.agent_id) for o in cc.dispatch(6.0)] == [("c2", "a")]


def test_missed_offers_set_the_agent_away() -> None:
    cc = center()
    join(cc, "a", 0.0)
    call(cc, "c1", 1.0)
    for attempt in range(1, MISSED_OFFERS_BEFORE_AWAY + 1):
        [offer] = cc.dispatch(1.0 + attempt)
        result = cc.timeout(offer.call_id, "a", 2.0 + attempt)
        assert result is not None
        _, went_away = result
        assert went_away == (attempt == MISSED_OFFERS_BEFORE_AWAY)
    assert cc.agents["a"].state == AgentState.AWAY
    assert cc.calls["c1"].state == CallState.QUEUED


def test_timed_out_agent_is_tried_after_the_others() -> None:
    cc = center()
    join(cc, "a", 0.0)
    join(cc, "b", 1.0)
    call(cc, "c1", 2.0)
    [offer] = cc.dispatch(3.0)
    assert offer.agent_id == "a"
    cc.timeout("c1", "a", 4.0)
    [offer] = cc.dispatch(5.0)
    assert offer.agent_id == "b"


def test_overflow_reaches_the_other_queue_after_its_own() -> None:
    cc = CallCenter(
        [
            QueueConfig(id="dereg", name="D", overflow_to="registration"),
            QueueConfig(id="registration", name="R"),
        ]
    )
    join(cc, "reg", 0.0, registration=1)
    call(cc, "c1", 1.0, queue="dereg")
    cc.agent_join(Agent(id="nobody", name="n", skills={"dereg": 1}), 0.0)
    assert cc.dispatch(2.0) == []
    assert cc.overflow("c1")
    [offer] = cc.dispatch(3.0)
    assert offer.agent_id == "reg" and offer.via_overflow
    cc.accept("c1", "reg", 4.0)
    assert cc.position("c1") is None


def test_accept_hangup_wrapup_cycle() -> None:
    cc = center()
    join(cc, "a", 0.0)
    call(cc, "c1", 1.0)
    cc.dispatch(2.0)
    with pytest.raises(Refused) as exc:
        cc.accept("c1", "b", 3.0)
    assert exc.value.code == "offer_gone"
    connected = cc.accept("c1", "a", 3.0)
    assert connected.state == CallState.CONNECTED and connected.answered_at == 3.0
    with pytest.raises(Refused):
        cc.set_status("a", AgentState.AWAY, 4.0)
    ended = cc.hangup("c1", 63.0)
    assert ended is not None and "c1" not in cc.calls
    assert cc.agents["a"].state == AgentState.WRAP_UP
    assert cc.handle_times.get("tax") == 60.0
    assert cc.wrapup_done("a", 64.0)
    assert cc.agents["a"].state == AgentState.AVAILABLE


def test_requeue_puts_the_call_at_the_head() -> None:
    cc = center()
    join(cc, "a", 0.0)
    call(cc, "c1", 1.0)
    cc.dispatch(2.0)
    cc.accept("c1", "a", 3.0)
    call(cc, "c0", 0.5)  # enqueued earlier than c1 but still waiting
    requeued = cc.requeue("c1", "a", 10.0)
    assert requeued is not None and requeued.state == CallState.QUEUED
    assert cc.position("c1") == 1 and cc.position("c0") == 2
    assert cc.agents["a"].state == AgentState.AWAY


def test_remove_a_ringing_call_frees_the_agent() -> None:
    cc = center()
    join(cc, "a", 0.0)
    call(cc, "c1", 1.0)
    cc.dispatch(2.0)
    removed = cc.remove("c1", 3.0)
    assert removed is not None and removed.ringing_agent == "a"
    assert cc.agents["a"].state == AgentState.AVAILABLE
    assert cc.remove("c1", 4.0) is None


def test_rejection_reasons() -> None:
    cc = CallCenter([QueueConfig(id="tax", name="T"), QueueConfig(id="x", name="X", open=False)])
    assert cc.check_open("tax") == "no_specialist"
    assert cc.check_open("x") == "closed"
    join(cc, "a", 0.0)
    assert cc.check_open("tax") is None
    with pytest.raises(Refused) as exc:
        cc.check_open("nope")
    assert exc.value.code == "unknown_queue"


def test_disconnected_agent_is_not_offered() -> None:
    cc = center()
    join(cc, "a", 0.0)
    cc.set_connected("a", False)
    call(cc, "c1", 1.0)
    assert cc.dispatch(2.0) == []
    cc.set_connected("a", True)
    assert len(cc.dispatch(3.0)) == 1


def test_snapshot_counts() -> None:
    cc = center()
    join(cc, "a", 0.0)
    join(cc, "b", 0.0)
    cc.agent_join(Agent(id="c", name="c", skills={"tax": 1}), 0.0)
    call(cc, "c1", 10.0)
    call(cc, "c2", 20.0)
    cc.dispatch(21.0)
    snap = cc.snapshot("tax", 30.0)
    assert (snap.waiting, snap.available, snap.busy, snap.away, snap.logged_in) == (2, 0, 2, 1, 3)
    assert snap.longest_wait_s == 20.0


def test_an_answer_naming_an_older_offer_is_refused() -> None:
    """A call offered to the same specialist twice: the answer to the first offer, come
    late, must not take the second (their console may not show it yet)."""
    cc = center()
    join(cc, "alice", 0.0)
    call(cc, "c1", 1.0)
    (first,) = cc.dispatch(2.0)
    assert cc.timeout("c1", "alice", 3.0, offer=first.offer + 1) is None  # not that offer
    assert cc.timeout("c1", "alice", 3.0, offer=first.offer) is not None
    (second,) = cc.dispatch(3.0)
    assert (second.agent_id, first.offer, second.offer) == ("alice", 1, 2)
    assert cc.timeout("c1", "alice", 3.5, offer=first.offer) is None  # a late timer
    for answer in (cc.accept, cc.decline):
        with pytest.raises(Refused) as refused:
            answer("c1", "alice", 4.0, first.offer)
        assert refused.value.code == "offer_gone"
    assert cc.calls["c1"].ringing_agent == "alice"
    assert cc.accept("c1", "alice", 4.0, second.offer).state == CallState.CONNECTED


def test_a_decline_ends_with_its_block() -> None:
    cc = center(decline_block_s=30.0)
    join(cc, "a", 0.0)
    call(cc, "c1", 1.0)
    cc.dispatch(2.0)
    cc.decline("c1", "a", 3.0)
    assert cc.dispatch(32.9) == []
    assert [(o.agent_id, o.offer) for o in cc.dispatch(33.0)] == [("a", 2)]
