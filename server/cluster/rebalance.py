"""Connection rebalancing: a node holding clearly more than its fair share of the live
nodes' sockets moves a few idle kiosks a round to the others.

Clients only change node when their socket closes, so after a node was killed and
restarted (or after a rolling upgrade) the node that took its clients over keeps them
all day, and carries the peak alone. Each node writes its count of open sockets with its
heartbeat (`node.py`, `<prefix>:ld`); every `[routing] rebalance_interval_s` a node
compares its own with the mean of the live nodes', and when it is over it by more than
`rebalance_tolerance` and `REBALANCE_MARGIN` sockets it closes the excess, at most
`REBALANCE_STEP` of its sockets a round, spread over the round, with the drain's close
code (1012, reason `rebalance`). The clients reconnect at once through the load balancer
and resume with their token (docs/cluster.md "After a restart or a rolling upgrade").

Who is moved: only terminals with no live call of their own (a kiosk at its home
screen, or whose visitor took the call to a phone). Never a party of a call, queued,
ringing or connected: its place would survive a resume, but its visitor would see the
socket go. Never a specialist: an available one may be offered a call at any moment,
and an offer made while the console reconnects rings out unheard (a "missed" on their
record); consoles are a few per cent of the sockets, the kiosks balance the load
alone. Never a recorder (its sessions would be handed over) or a phone (always in a
call). A terminal this node moved is not moved by it again for `REBALANCE_COOLDOWN_S`.

When not: for `SETTLE_ROUNDS` after the set of live nodes changed or this node's sockets
surged (`SURGE`: another node's clients arriving before its loss is known), and while this node's
event loop runs late (`BUSY_LAG_S`): a move costs the busy node a disconnect and the other
a hello. Except when the split is lopsided (`LOPSIDED`: this node holds a quarter more than
the mean, as the survivor of a restart holds every socket through the next peak): then its
loop is late *because* it carries the others' share, and waiting for calm keeps it so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from signaling.model import Call

from . import keys

log = logging.getLogger(__name__)

REASON = "rebalance"  # the close reason the clients see with DRAIN_CLOSE_CODE
CHECKS_PER_MOVE = 4  # terminals looked at per one to move: most kiosks are idle; a round
# that finds the rest busy stops there and tries again next round
LOOKS_AT_ONCE = 8  # a lopsided node's terminals looked up together (one loop turn, not 8)
SETTLE_ROUNDS = 6  # after a node joined or was lost, nobody is moved for this many rounds
# (30 s at 5 s): a lost node's clients resume first (a storm of hellos), a new one warms up
BUSY_LAG_S = 0.5  # this node's event loop ran a timer this late: it is busy (a peak, a
# take-over), and a move costs it a disconnect and the other node a hello; the round, or
# the rest of its batch, waits for the next
LOPSIDED = 1.25  # ... unless this node holds this many times the live nodes' mean: it sheds
# late too (module doc), and stops hurrying once it holds under this share
SURGE = 1.2  # this node's sockets grew this much since its last round: a storm of
# reconnections, another node just lost (the goal-size day's survivor, 2 s after node 1's
# kill and 2 s before its heartbeat lapsed, moved 321 kiosks towards the dead node by its
# last load): settle as after a change of the live nodes
LOPSIDED_STEP = 0.15  # the share of its sockets a lopsided node sheds a round: at 5 % the
# goal-size day's survivor (2,135 sockets, half of its moves sent straight back by their
# load balancer) carried the other node's share for 4.5 real minutes, its loop lagging
# over 50 ms in 31 % of samples, the other's in 6 %; the node they go to is the one
# holding few, so the hellos land where there is room


class Membership(Protocol):
    """What the rebalancer reads of its node (`ClusterNode`)."""

    instance: str

    @property
    def others(self) -> frozenset[str] | None: ...

    @property
    def healthy(self) -> bool: ...

    def load(self) -> int: ...


class Locals(Protocol):
    """This node's connections (`RedisBus`)."""

    def connected(self) -> set[str]: ...
    def is_local(self, principal: str) -> bool: ...
    def close_local(self, principal: str, code: int, reason: str) -> None: ...


class Counter(Protocol):
    def inc(self) -> None: ...


class RebalanceCounters(Protocol):
    """Where a node counts its rounds and moves (`server.metrics.Metrics`)."""

    @property
    def rebalance_rounds(self) -> Counter: ...

    @property
    def rebalanced(self) -> Counter: ...


def counted(counters: RebalanceCounters | None) -> dict[str, Callable[[], None]]:
    """The `Rebalancer`'s hooks that count into `counters` (none: nothing counted)."""
    if counters is None:
        return {}
    return {"on_round": counters.rebalance_rounds.inc, "on_moved": counters.rebalanced.inc}


class TerminalCalls(Protocol):
    async def calls_of_terminal(self, terminal_id: str) -> list[Call]: ...


def to_move(own: int, loads: Sequence[int], tolerance: float,
            step: float = keys.REBALANCE_STEP) -> int:
    """How many sockets a node holding `own` sheds this round, `loads` being every live
    node's (its own included): none unless it is over the mean by `tolerance` and by
    `REBALANCE_MARGIN`; else its excess over the mean, at most `step` of its sockets."""
    if len(loads) < 2:
        return 0
    mean = sum(loads) / len(loads)
    excess = own - mean
    if own <= mean * (1 + tolerance) or excess < keys.REBALANCE_MARGIN:
        return 0
    return min(int(excess), max(1, math.ceil(own * step)))


def lopsided(own: int, loads: Sequence[int]) -> bool:
    """This node holds `LOPSIDED` times the live nodes' mean (`loads`, its own included)
    or more: it sheds even while its loop runs late."""
    return len(loads) > 1 and own >= LOPSIDED * sum(loads) / len(loads)


def busy(calls: Sequence[Call]) -> bool:
    """A terminal with a live call of its own (not one it handed off to a phone)."""
    return any(c.visitor is None for c in calls)


class Rebalancer:
    """One node's rounds (see the module doc); `close()` stops them."""

    def __init__(self, node: Membership, redis: Redis, prefix: str, local: Locals,
                 router: TerminalCalls, *, interval_s: float, tolerance: float,
                 on_round: Callable[[], None] = lambda: None,
                 on_moved: Callable[[], None] = lambda: None) -> None:
        self._node, self._redis, self._prefix = node, redis, prefix
        self._local, self._router = local, router
        self._interval, self._tolerance = interval_s, tolerance
        self._moved: dict[str, float] = {}  # principal -> monotonic time this node moved it
        self._others: frozenset[str] | None = None  # the live nodes of the last round...
        self._quiet_until = 0.0  # ... and until when nobody is moved since they changed
        self._held = 0  # this node's sockets at the last round
        self._task: asyncio.Task[None] | None = None
        self.on_round = on_round  # a round compared the loads (metrics)
        self.on_moved = on_moved  # one socket closed to move it (metrics)

    def start(self) -> None:
        """Rounds every `interval_s`; none at 0 (disabled)."""
        if self._interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self._interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            late = loop.time() - next_at
            next_at = loop.time() + self._interval
            try:
                await self.round(self._interval, late=late > BUSY_LAG_S)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("rebalance round failed: %r", exc)
            except Exception:
                log.exception("rebalance round failed")

    async def round(self, spread_s: float, *, late: bool = False) -> int:
        """Compare this node's sockets with the live nodes' and move its excess (spread
        over `spread_s`); returns how many it closed. `late`: this node's loop runs late,
        so only a lopsided split is evened out (module doc)."""
        others = self._node.others
        if others is None or not self._node.healthy:
            return 0
        now = time.monotonic()
        if others != self._others:
            self._others = others
            self._quiet_until = now + SETTLE_ROUNDS * self._interval
        before, self._held = self._held, self._node.load()
        if self._held > before * SURGE and self._held - before > keys.REBALANCE_MARGIN:
            log.info("rebalance: %d socket(s) here, %d a round ago: settling first",
                     self._held, before)
            self._quiet_until = now + SETTLE_ROUNDS * self._interval
        if now < self._quiet_until:
            return 0
        written = await self._redis.hgetall(keys.loads(self._prefix))
        if self._node.others != others:  # a sweep ran meanwhile: a node died or joined
            return 0  # (a dead node's last load would still be read here)
        own = self._node.load()
        loads = [own] + [int(written[i]) for i in others if i in written]
        self.on_round()
        hurried = lopsided(own, loads)
        wanted = to_move(own, loads, self._tolerance,
                         LOPSIDED_STEP if hurried else keys.REBALANCE_STEP)
        if not wanted or (late and not hurried):
            if wanted:
                log.debug("rebalance: this node's loop runs late; not now")
            return 0
        log.info("rebalance: %d socket(s) here, fair share %.0f over %d nodes: moving %d%s",
                 own, sum(loads) / len(loads), len(loads), wanted,
                 " (lopsided: although late)" if late else "")
        return await self._shed(wanted, spread_s, hurried)

    async def _shed(self, wanted: int, spread_s: float, hurried: bool) -> int:
        """Close up to `wanted` idle terminals' sockets, one every `spread_s / wanted`;
        fewer if this node's loop runs late meanwhile, unless `hurried` (lopsided): then
        `LOOKS_AT_ONCE` terminals are looked up together and a move overdue goes at once,
        so that a late loop's round still ends near its interval (one look-up and one
        sleep a move, each as late as the loop, the goal-size day's rounds took 15-58 s
        instead of 5)."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        self._moved = {p: at for p, at in self._moved.items()
                       if now - at < keys.REBALANCE_COOLDOWN_S}
        candidates = [p for p in self._local.connected()
                      if p.startswith("terminal:") and p not in self._moved]
        random.shuffle(candidates)
        candidates = candidates[:CHECKS_PER_MOVE * wanted]
        at_once = LOOKS_AT_ONCE if hurried else 1
        gap = 0.9 * spread_s / wanted
        due = loop.time()
        moved = 0
        for start in range(0, len(candidates), at_once):
            chunk = candidates[start:start + at_once]
            looks = await asyncio.gather(*(self._router.calls_of_terminal(
                principal.split(":", 1)[1]) for principal in chunk))
            for principal, calls in zip(chunk, looks, strict=True):
                if busy(calls) or not self._local.is_local(principal):
                    continue
                # Closed as soon as the look answers: a call needs a request, an offer and
                # an answer to connect, far more than the round trips since.
                self._local.close_local(principal, keys.DRAIN_CLOSE_CODE, REASON)
                self._moved[principal] = time.monotonic()
                self.on_moved()
                moved += 1
                if moved >= wanted:
                    return moved
                due = due + gap if hurried else loop.time() + gap
                await asyncio.sleep(max(0.0, due - loop.time()))
                if loop.time() - due > BUSY_LAG_S and not hurried:
                    return moved
        return moved
