"""A node of the cluster: its heartbeat, and taking dead nodes over.

Each node instance (`node_id` + a random suffix, new at every start) refreshes
a heartbeat key with a TTL. Every node sweeps the registry; an instance whose
heartbeat expired is dead: one survivor (a lock) hands its principals to
`NodeEvents.dead`, which starts their resume grace as if their sockets had closed.
A failing heartbeat means Redis is unreachable: the health turns `degraded`
until it succeeds again.

A node taken for dead may only have stalled (a frozen VM, a loop blocked for seconds):
woken up, it must not act for principals the survivor now holds. So the survivor first
fences it (`keys.fence`): from then on Redis refuses the instance's routing transactions,
presences, timer claims and heartbeat, whatever reply it lost meanwhile. The fenced node
closes its connections (its clients reconnect and resume) and, once the takeover is
over, lifts its fence and joins again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import keys, versions

log = logging.getLogger(__name__)

TAKEOVER_OVER = "over"  # the fence's value once its survivor has settled its principals
# KEYS: nodes, heartbeat, protocols, loads, fence. ARGV: instance, node id, heartbeat TTL,
# protocol, load, "1" to lift a fence whose takeover is over. Returns 1 registered anew,
# 0 refreshed, 2 rejoined (fence lifted), -1 fenced with the takeover over, -2 fenced
# while it runs.
BEAT = f"""
local instance = ARGV[1]
local rejoined = 0
local fence = redis.call("GET", KEYS[5])
if fence then
  if fence ~= "{TAKEOVER_OVER}" then return -2 end
  if ARGV[6] ~= "1" then return -1 end
  redis.call("DEL", KEYS[5])
  rejoined = 2
end
local added = redis.call("HSET", KEYS[1], instance, ARGV[2])
redis.call("SET", KEYS[2], ARGV[2], "EX", ARGV[3])
redis.call("HSET", KEYS[3], instance, ARGV[4])
redis.call("HSET", KEYS[4], instance, ARGV[5])
if rejoined > 0 then return rejoined end
return added
"""
# KEYS: heartbeat, fence of the instance a survivor takes over. ARGV: fence TTL, survivor
# (the fence's value until the takeover is over: then "over").
# Returns 1 fenced, 0 alive again (its heartbeat came back since the sweep read it).
FENCE = """
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
redis.call("SET", KEYS[2], ARGV[2], "EX", ARGV[1])
return 1
"""
FENCED_TAKEOVER, FENCED_OVER = -2, -1
# KEYS: a reap lock. ARGV: its holder, TTL. Renewed only while it is still the holder's.
RENEW_LOCK = """
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call("EXPIRE", KEYS[1], ARGV[2])
"""


class NodeEvents(Protocol):
    """What a node's watch reports to the node's owner."""

    async def dead(self, instance: str, principals: set[str]) -> None:
        """This survivor took a dead instance over: its principals' sockets are gone."""

    def reaped(self) -> None:
        """The others took this node for dead and settled its principals."""

    def lost(self, instances: set[str]) -> None:
        """Instances alive at the last sweep are gone (heartbeat lapsed, or left)."""

    async def recovered(self) -> None:
        """Redis answers again after failing."""


class ClusterNode:
    def __init__(self, redis: Redis | None, prefix: str, node_id: str,
                 health: dict[str, str], events: NodeEvents,
                 load: Callable[[], int] = lambda: 0) -> None:
        self._client = redis
        self._prefix = prefix
        self.node_id = node_id
        self.instance = f"{node_id}.{secrets.token_hex(4)}"
        self._health = health
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False  # redis-py may swallow a cancel mid-command: the loops check this
        self._failing = False
        self._healthy_since = 0.0
        self._judge_after = float(keys.HEARTBEAT_TTL_S)  # from `_healthy_since` (`sweep`)
        self._last_beat = 0.0  # monotonic time of the last heartbeat Redis took
        self._recovering_until = 0.0  # back from an outage: beats live longer (`RECOVERY_S`)
        self._events = events
        self._others: set[str] | None = None  # other instances alive at the last sweep
        self._mixed: set[str] = set()  # instances of another protocol, reported already
        self.load = load  # open sockets, written with each beat
        self.fenced = False  # taken for dead by the others; connections closed, not rejoined

    @property
    def redis(self) -> Redis:
        if self._client is None:
            raise RuntimeError("node has no Redis client yet")
        return self._client

    @redis.setter
    def redis(self, client: Redis) -> None:
        self._client = client

    async def start(self) -> None:
        await self._beat()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat()), loop.create_task(self._sweeper())]

    async def live_node_ids(self) -> set[str]:
        """Configured node ids of the instances alive now (this one included)."""
        registry = await self.redis.hgetall(keys.nodes(self._prefix))
        alive: set[str] = set()
        for instance, node_id in registry.items():
            if await self.redis.exists(keys.heartbeat(self._prefix, str(instance))):
                alive.add(str(node_id))
        return alive

    @property
    def others(self) -> frozenset[str] | None:
        """The other instances alive at the last sweep (None: none made yet)."""
        return None if self._others is None else frozenset(self._others)

    @property
    def healthy(self) -> bool:
        """Redis took the last beat and no sweep is held back: the sweep's view is current."""
        return not self._failing and self._others is not None and not self.fenced

    def report(self, ok: bool) -> None:
        """Redis answered (or not): log the change once and update `/healthz`."""
        if ok and (self._failing or not self._healthy_since):
            self._settle(outage=self._failing)
        if ok and self._failing:
            self._recovering_until = time.monotonic() + keys.RECOVERY_S
            log.warning("redis reachable again; node %s back to ok", self.instance)
        elif not ok and not self._failing:
            log.error("redis unreachable; node %s degraded, retrying", self.instance)
        self._failing = not ok
        self._health["status"] = "ok" if ok and not self.fenced else "degraded"

    async def _beat(self) -> None:
        p, me = self._prefix, self.instance
        recovering = self._failing or time.monotonic() < self._recovering_until
        ttl = keys.RECOVERY_TTL_S if recovering else keys.HEARTBEAT_TTL_S
        status = int(await self.redis.eval(
            BEAT, 5, keys.nodes(p), keys.heartbeat(p, me), keys.protocols(p), keys.loads(p),
            keys.fence(p, me), me, self.node_id, ttl, versions.PROTOCOL,
            self.load(), "1" if self.fenced else "0"))
        if status in (FENCED_TAKEOVER, FENCED_OVER):
            if not self.fenced:
                self.fenced = True
                log.error("node %s was taken for dead by the others (fenced); closing its "
                          "connections", me)
            self._events.reaped()  # again each beat: a hello under way at the fence too
            return
        now = time.monotonic()
        rejoined = self.fenced  # this beat lifted the fence (or one whose reply was lost did)
        if rejoined:
            self.fenced = False
            log.warning("node %s joins the cluster again after its takeover", me)
        if rejoined or (self._last_beat and now - self._last_beat > keys.HEARTBEAT_DEADLINE_S):
            # A gap (Redis frozen, this process stalled): the others' heartbeats may have
            # lapsed meanwhile too, so this node must not judge them before a whole TTL
            # (its own stall is no outage of theirs: not `OUTAGE_GRACE_S`, a loaded
            # survivor's gaps would hold a dead node's takeover back).
            self._settle(outage=False)
        self._last_beat = now
        if status == 1 and self._healthy_since and not rejoined:
            log.error("node %s was taken for dead by the others; closing its connections",
                      self.instance)
            self._events.reaped()

    def _settle(self, outage: bool) -> None:
        """This node reaches Redis again (or for the first time): the others are judged
        a whole TTL later; after an outage, once they too have had time to reconnect."""
        self._healthy_since = time.monotonic()
        self._judge_after = max(float(keys.HEARTBEAT_TTL_S),
                                keys.OUTAGE_GRACE_S if outage else 0.0)

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(keys.HEARTBEAT_INTERVAL_S)
            if self._closing:
                return
            try:
                await asyncio.wait_for(self._beat(), keys.HEARTBEAT_DEADLINE_S)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("heartbeat failed: %r", exc)
                self.report(False)
            else:
                recovered = self._failing
                self.report(True)
                if recovered:
                    await self._events.recovered()

    async def _sweeper(self) -> None:
        while not self._closing:
            await asyncio.sleep(keys.SWEEP_INTERVAL_S)
            if self._closing:
                return
            try:
                await self.sweep()
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("sweep failed: %r", exc)
            except Exception:
                log.exception("taking a dead node over failed")

    async def sweep(self) -> None:
        """Take over every registered instance whose heartbeat has expired.

        Only once this node has itself reached Redis for a whole heartbeat TTL, and after
        an outage for `OUTAGE_GRACE_S`: every node's heartbeat lapsed meanwhile, and the
        others need time to reconnect and beat again."""
        now = time.monotonic()
        if (self._failing or self.fenced or now - self._healthy_since < self._judge_after
                or now - self._last_beat > keys.HEARTBEAT_DEADLINE_S):
            return
        dead: list[str] = []
        alive: set[str] = set()
        for raw in await self.redis.hkeys(keys.nodes(self._prefix)):
            instance = str(raw)
            if instance == self.instance:
                continue
            if await self.redis.exists(keys.heartbeat(self._prefix, instance)):
                alive.add(instance)
            else:
                dead.append(instance)
        gone = (self._others or set()) - alive
        if alive - (self._others or set()):
            await self._check_versions()
        self._others = alive
        if gone:
            self._events.lost(gone)
        for instance in dead:
            lock = keys.reap_lock(self._prefix, instance)
            if not await self.redis.set(lock, self.instance, nx=True, ex=keys.REAP_LOCK_TTL_S):
                continue
            if not await self.redis.eval(
                    FENCE, 2, keys.heartbeat(self._prefix, instance),
                    keys.fence(self._prefix, instance), keys.FENCE_TTL_S, self.instance):
                await self.redis.delete(lock)  # it beat again meanwhile: alive after all
                continue
            principals = {str(p) for p in await self.redis.smembers(
                keys.node_principals(self._prefix, instance))}
            log.warning("node %s is dead: taking over %d principal(s)", instance,
                        len(principals))
            await self._holding(lock, self._events.dead(instance, principals))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.node_principals(self._prefix, instance))
                pipe.hdel(keys.nodes(self._prefix), instance)
                pipe.hdel(keys.protocols(self._prefix), instance)
                pipe.hdel(keys.loads(self._prefix), instance)
                pipe.set(keys.fence(self._prefix, instance), TAKEOVER_OVER, xx=True,
                         keepttl=True)
                await pipe.execute()

    async def _holding(self, lock: str, takeover: Awaitable[None]) -> None:
        """Run a takeover, renewing its lock each third of its TTL: on a loaded machine
        a thousand principals take longer than the TTL, and another survivor would start
        the same takeover beside this one (the bench day's second reap of a killed node)."""
        task = asyncio.ensure_future(takeover)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=keys.REAP_LOCK_TTL_S / 3)
                if not task.done():
                    with contextlib.suppress(RedisError, OSError):
                        await self.redis.eval(RENEW_LOCK, 1, lock, self.instance,
                                              keys.REAP_LOCK_TTL_S)
        finally:
            task.cancel()
        task.result()

    async def _check_versions(self) -> None:
        """Other instances joined: an error for each that speaks another protocol (its
        messages and ours are lost between us: `versions.py`), once per instance."""
        mixed = versions.others(await versions.live_levels(self.redis, self._prefix),
                                self.node_id)
        new = {i: v for i, v in mixed.items() if i not in self._mixed}
        self._mixed |= set(new)
        if new:
            log.error("node %s (protocol %d) runs beside %s: messages between them are lost; "
                      "stop every node and start them on one version (docs/cluster.md)",
                      self.instance, versions.PROTOCOL, versions.describe(new))

    async def close(self) -> None:
        """Leave the cluster; principals still here are taken over by the survivors."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.redis.delete(keys.heartbeat(self._prefix, self.instance))
            await self.redis.hdel(keys.loads(self._prefix), self.instance)
            if not await self.redis.scard(keys.node_principals(self._prefix, self.instance)):
                await self.redis.hdel(keys.nodes(self._prefix), self.instance)
                await self.redis.hdel(keys.protocols(self._prefix), self.instance)
        except (RedisError, OSError) as exc:
            log.warning("could not unregister node %s: %s", self.instance, exc)
