"""A node of the cluster: its heartbeat, and taking dead nodes over.

Each node instance (`node_id` + a random suffix, new at every start) refreshes
a heartbeat key with a TTL. Every node sweeps the registry; an instance whose
heartbeat expired is dead: one survivor (a lock) hands its principals to
`NodeEvents.dead`, which starts their resume grace as if their sockets had closed.
A failing heartbeat means Redis is unreachable: the health turns `degraded`
until it succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import keys, versions

log = logging.getLogger(__name__)

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
        self._last_beat = 0.0  # monotonic time of the last heartbeat Redis took
        self._events = events
        self._others: set[str] | None = None  # other instances alive at the last sweep
        self._mixed: set[str] = set()  # instances of another protocol, reported already
        self.load = load  # open sockets, written with each beat

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
        return not self._failing and self._others is not None

    def report(self, ok: bool) -> None:
        """Redis answered (or not): log the change once and update `/healthz`."""
        if ok and (self._failing or not self._healthy_since):
            self._healthy_since = time.monotonic()
        if ok and self._failing:
            log.warning("redis reachable again; node %s back to ok", self.instance)
        elif not ok and not self._failing:
            log.error("redis unreachable; node %s degraded, retrying", self.instance)
        self._failing = not ok
        self._health["status"] = "ok" if ok else "degraded"

    async def _beat(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.nodes(self._prefix), self.instance, self.node_id)
            pipe.set(keys.heartbeat(self._prefix, self.instance), self.node_id,
                     ex=keys.HEARTBEAT_TTL_S)
            pipe.hset(keys.protocols(self._prefix), self.instance, versions.PROTOCOL)
            pipe.hset(keys.loads(self._prefix), self.instance, self.load())
            added, *_ = await pipe.execute()
        now = time.monotonic()
        if self._last_beat and now - self._last_beat > keys.HEARTBEAT_DEADLINE_S:
            # A gap (Redis frozen, this process stalled): the others' heartbeats may have
            # lapsed meanwhile too, so this node must not judge them before a whole TTL.
            self._healthy_since = now
        self._last_beat = now
        if added and self._healthy_since:
            log.error("node %s was taken for dead by the others; closing its connections",
                      self.instance)
            self._events.reaped()

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

        Only once this node has itself reached Redis for a whole heartbeat TTL: after an
        outage every node's heartbeat has lapsed, and the others need time to beat again."""
        now = time.monotonic()
        if (self._failing or now - self._healthy_since < keys.HEARTBEAT_TTL_S
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
            principals = {str(p) for p in await self.redis.smembers(
                keys.node_principals(self._prefix, instance))}
            log.warning("node %s is dead: taking over %d principal(s)", instance,
                        len(principals))
            await self._events.dead(instance, principals)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.node_principals(self._prefix, instance))
                pipe.hdel(keys.nodes(self._prefix), instance)
                pipe.hdel(keys.protocols(self._prefix), instance)
                pipe.hdel(keys.loads(self._prefix), instance)
                await pipe.execute()

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
