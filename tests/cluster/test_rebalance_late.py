"""A node whose event loop runs late sheds only when the split is lopsided
(`server/cluster/rebalance.py`): the survivor of a restart holds every socket through the
next peak, late because of them, and must not wait for a calm that never comes.

The rounds run on real Redis (the loads the nodes wrote with their beats); the node's
membership, sockets and terminals' calls are this test's own, so that "late" is given
rather than made by loading the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster import keys
from server.cluster.rebalance import LOOKS_AT_ONCE, SETTLE_ROUNDS, Rebalancer
from signaling.model import Call

OTHER = "b.0001"


class Node:
    instance = "a.0001"
    healthy = True

    def __init__(self, sockets: int) -> None:
        self.sockets = sockets

    @property
    def others(self) -> frozenset[str]:
        return frozenset({OTHER})

    def load(self) -> int:
        return self.sockets


class Sockets:
    """Idle kiosks on this node; a closed one leaves it (its load drops)."""

    def __init__(self, node: Node, count: int) -> None:
        self.node = node
        self.open = {f"terminal:K{i}" for i in range(count)}
        self.closed: list[tuple[str, int, str]] = []

    def connected(self) -> set[str]:
        return set(self.open)

    def is_local(self, principal: str) -> bool:
        return principal in self.open

    def close_local(self, principal: str, code: int, reason: str) -> None:
        self.open.discard(principal)
        self.node.sockets -= 1
        self.closed.append((principal, code, reason))


class NoCalls:
    async def calls_of_terminal(self, terminal_id: str) -> list[Call]:
        return []


async def settled(node_load: int, other_load: int, redis: Redis, prefix: str
                  ) -> tuple[Rebalancer, Sockets]:
    """A rebalancer past its settling rounds, the other node's load written as its beat."""
    await redis.hset(keys.loads(prefix), OTHER, other_load)
    node = Node(node_load)
    local = Sockets(node, node_load)
    rebalancer = Rebalancer(node, redis, prefix, local, NoCalls(), interval_s=0.001,
                            tolerance=0.1)
    assert await rebalancer.round(0.0) == 0  # the first round sees the members change
    rebalancer._quiet_until = 0.0  # as if `SETTLE_ROUNDS` rounds had passed
    assert SETTLE_ROUNDS > 0
    return rebalancer, local


async def test_a_late_node_holding_every_socket_sheds_anyway(redis: Redis, key_prefix: str
                                                              ) -> None:
    rebalancer, local = await settled(400, 0, redis, key_prefix)
    moved = await rebalancer.round(0.0, late=True)
    assert moved == 60  # 15 % of 400 a round (5 % when not lopsided)
    assert {(code, reason) for _, code, reason in local.closed} == {(1012, "rebalance")}


async def test_a_late_node_sheds_until_the_split_is_no_longer_lopsided(
        redis: Redis, key_prefix: str) -> None:
    rebalancer, local = await settled(400, 0, redis, key_prefix)
    for _ in range(40):
        moved = await rebalancer.round(0.0, late=True)
        await redis.hset(keys.loads(key_prefix), OTHER, len(local.closed))  # they came over
        if not moved:
            break
    here, there = 400 - len(local.closed), len(local.closed)
    assert here < 1.25 * (here + there) / 2 <= here + 60  # lopsided no more, by one step
    assert await rebalancer.round(0.0) > 0  # calm again: the rest of the excess moves


async def test_a_late_node_only_somewhat_over_its_share_waits(redis: Redis, key_prefix: str
                                                              ) -> None:
    rebalancer, local = await settled(240, 180, redis, key_prefix)  # 14 % over the mean
    assert await rebalancer.round(0.0, late=True) == 0
    assert local.closed == []
    assert await rebalancer.round(0.0) == 12  # not late: 5 % of 240, under its excess


class Dying(Node):
    """The other node dies while this one reads the loads: the sweep that notices it
    runs during that read (the goal-size day: 107 sockets moved towards a killed node,
    its last written load 1,070, at the takeover)."""

    reads = 0

    @property
    def others(self) -> frozenset[str]:
        self.reads += 1
        return frozenset({OTHER}) if self.reads <= 2 else frozenset()


async def test_a_node_that_died_during_the_round_gets_nobody(redis: Redis, key_prefix: str
                                                             ) -> None:
    await redis.hset(keys.loads(key_prefix), OTHER, 0)
    node = Dying(400)
    local = Sockets(node, 400)
    rebalancer = Rebalancer(node, redis, key_prefix, local, NoCalls(), interval_s=0.001,
                            tolerance=0.1)
    assert await rebalancer.round(0.0) == 0  # reads 1: the members change (settling)
    rebalancer._quiet_until = 0.0
    assert node.reads == 1
    assert await rebalancer.round(0.0) == 0  # read 2, the loads, read 3: it died meanwhile
    assert local.closed == []


class SlowLooks(NoCalls):
    """Each terminal's look-up takes `delay_s` (a late loop, a slow Redis)."""

    def __init__(self, delay_s: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.delay_s, self.sleep = delay_s, sleep
        self.running = self.most = 0

    async def calls_of_terminal(self, terminal_id: str) -> list[Call]:
        self.running += 1
        self.most = max(self.most, self.running)
        await self.sleep(self.delay_s)
        self.running -= 1
        return []


async def test_a_lopsided_round_does_not_sleep_behind_its_moves(
        redis: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each look-up takes longer than the moves it serves (a late loop, a slow Redis): a
    lopsided node looks `LOOKS_AT_ONCE` terminals up together and its overdue moves go
    at once (every sleep of the round is 0), so its round ends near its interval; looked
    up and slept one by one, 18 moves took 18 look-ups and 17 gaps. A node that is not
    lopsided still looks one terminal up at a time, a gap after each move."""
    original = asyncio.sleep
    waits: list[float] = []

    async def sleep(delay: float, result: Any = None) -> Any:
        waits.append(delay)
        return await original(delay, result)

    rebalancer, _ = await settled(120, 0, redis, key_prefix)
    looks = SlowLooks(0.3, original)  # more than LOOKS_AT_ONCE gaps of 25 ms
    rebalancer._router = looks
    monkeypatch.setattr(asyncio, "sleep", sleep)
    assert await rebalancer.round(0.5, late=True) == 18  # 15 % of 120; gap 25 ms
    assert len(waits) == 17 and max(waits) == 0.0 and looks.most == LOOKS_AT_ONCE
    waits.clear()
    calm, _ = await settled(120, 80, redis, key_prefix)  # over its share, not lopsided
    looks = SlowLooks(0.05, original)
    calm._router = looks
    assert await calm.round(0.5) == 6  # 5 % of 120; gap 75 ms, slept after each look-up
    assert len(waits) == 5 and min(waits) > 0.05 and looks.most == 1


async def test_a_surge_of_sockets_settles_before_anything_moves(
        redis: Redis, key_prefix: str) -> None:
    """The other node was just killed and its clients are arriving here, its heartbeat not
    lapsed yet, so its last load is still read (the goal-size day: 2,136 here, the dead
    node's 1,072 written 2 s before): nobody is moved towards it for the settling rounds;
    then, the sockets steady, the excess moves as usual."""
    rebalancer, local = await settled(1000, 1000, redis, key_prefix)
    assert await rebalancer.round(0.0) == 0  # balanced
    local.node.sockets = 2000  # the other node's clients resumed here
    assert await rebalancer.round(0.0, late=True) == 0 and local.closed == []
    rebalancer._quiet_until = 0.0  # as if `SETTLE_ROUNDS` rounds had passed
    assert await rebalancer.round(0.0, late=True) == 300  # steady: 15 % of 2,000
