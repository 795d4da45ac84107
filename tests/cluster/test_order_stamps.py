"""The sending side of the order across nodes (issue 17): each routing transaction, on
whichever node it runs, numbers every principal it tells in the order Redis ran the
transactions, and a step's messages carry the number of the transaction that caused them.
Two `RedisRouter`s on one real Redis prefix stand for two nodes."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling import messages as m
from signaling import order
from signaling.errors import Refused
from signaling.model import Agent, AgentState, Call, CallState, QueueConfig
from signaling.outbox import Outbox

QUEUES = [QueueConfig(id="tax", name="Tax")]
LI, WANG, T1 = "specialist:li", "specialist:wang", "terminal:T1"


def call(call_id: str, **more: object) -> Call:
    return Call(id=call_id, session_id="s-" + call_id, queue="tax", terminal_id="T1",
                enqueued_at=2.0, **more)  # type: ignore[arg-type]


@pytest.fixture
async def nodes(redis: Redis, key_prefix: str) -> tuple[RedisRouter, RedisRouter]:
    a, b = (RedisRouter(redis, key_prefix, QUEUES) for _ in range(2))
    await a.start()
    for agent in ("li", "wang"):
        await a.agent_join(Agent(id=agent, name=agent, skills={"tax": 1}), 1.0)
    assert order.take_all() == {}  # logging in tells nobody of a decision
    return a, b


async def test_a_specialist_is_numbered_in_the_order_the_nodes_decided(
        nodes: tuple[RedisRouter, RedisRouter]) -> None:
    a, b = nodes
    await a.set_status("li", AgentState.AVAILABLE, 1.0)
    assert order.take_all() == {LI: (1,)}
    await b.enqueue(call("c1"))
    assert order.take_all() == {T1: (1,)}
    assert [o.agent_id for o in await a.dispatch(3.0)] == ["li"]
    assert order.take_all() == {LI: (2,)}
    assert await b.timeout("c1", "li", 4.0, 1) is not None  # node b withdraws offer 1
    assert order.take_all() == {LI: (3,)}
    assert [o.offer for o in await a.dispatch(5.0)] == [2]  # node a offers again: after it
    assert order.take_all() == {LI: (4,)}
    await b.accept("c1", "li", 6.0, 2)
    assert order.take_all() == {T1: (2,), LI: (5,)}  # connected: the caller after queued
    with pytest.raises(Refused):
        await a.accept("c1", "li", 6.5, 2)
    assert order.take_all() == {}  # a refusal decides nothing
    assert await a.hangup("c1", 7.0) is not None
    assert order.take_all() == {T1: (3,), LI: (6,)}  # ended after connected, for both
    assert await b.wrapup_done("li", 8.0)
    assert order.take_all() == {LI: (7,)}


async def test_every_member_of_a_session_is_numbered_when_it_changes(
        nodes: tuple[RedisRouter, RedisRouter]) -> None:
    a, b = nodes
    for agent in ("li", "wang"):
        await a.set_status(agent, AgentState.AVAILABLE, 1.0)
    await a.enqueue(call("c1"))
    [offer] = await a.dispatch(2.0)
    first = offer.agent_id
    await b.accept("c1", first, 3.0)
    other = "wang" if first == "li" else "li"
    order.take_all()
    await b.enqueue(call("i1", joins="c1", target_agent=other, declined_by=[first]))
    await a.dispatch(4.0)
    assert order.take_all()["specialist:" + other] == (2,)  # available, then offered
    joined = await b.join("i1", other, 5.0)
    assert joined.state == CallState.CONNECTED and len(joined.agents) == 2
    took = order.take_all()
    assert set(took) == {T1, LI, WANG}  # the caller and both specialists hear of the join
    assert await a.leave("c1", other, 6.0) is not None
    after = order.take_all()
    assert set(after) == {T1, LI, WANG}
    assert all(after[p][-1] > took[p][-1] for p in after)


async def test_a_position_is_as_of_the_number_its_read_saw(
        nodes: tuple[RedisRouter, RedisRouter]) -> None:
    a, b = nodes
    await a.enqueue(call("c1"))
    order.take_all()
    assert await b.waiting("tax") == [("c1", "terminal:T1")]
    assert order.as_of(T1) == 1


async def test_the_outbox_stamps_a_message_with_the_transaction_that_caused_it() -> None:
    out = Outbox(lambda: 0.0)
    out.send(LI, m.Pong())  # nothing numbered LI yet: as it comes
    order.took([(LI, 7), (T1, 3)])
    out.send(LI, m.Pong())
    order.took([(LI, 9)])
    out.send_all([LI, T1], m.Pong())
    assert out.numbered == {1: 7, 2: 9, 3: 3}
    assert order.take_all() == {LI: (7, 9), T1: (3,)} and order.latest(LI) is None


async def test_a_hand_off_numbers_the_terminal_and_the_phone(
        nodes: tuple[RedisRouter, RedisRouter]) -> None:
    """The kiosk hears `call.handed_off` after its `call.queued` (a position read before it
    is stale); the phone's line starts with the hand-off."""
    a, b = nodes
    await a.enqueue(call("c1"))
    assert order.take_all() == {T1: (1,)}
    taken = await b.hand_off("c1", "T1", "v1")
    assert taken.visitor == "v1"
    assert order.take_all() == {T1: (2,), "visitor:v1": (1,)}
    with pytest.raises(Refused):
        await a.hand_off("c1", "T1", "v2")
    assert order.take_all() == {}
