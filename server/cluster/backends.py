"""The Redis pieces of one node, built, started and closed together (one cleanup_ctx entry).

`app._switchboard` builds a `ClusterBackends`, hands its router, bus, scheduler,
presences, link, queue status and recorder pool to the switchboard's `Services`, then
`bind`s the switchboard, which dead nodes' principals are handed to. The pieces are
wired at construction: the bus reports the other nodes' notices here (`Notices`), the
node its watch (`NodeEvents`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.config import Settings
from signaling import handoff
from signaling.hours import OpeningHours
from signaling.identity import Identity, Role
from signaling.queue_status import QueueStatus
from signaling.switchboard import Switchboard

from . import keys
from .bus import RedisBus
from .callcache import ConnectedCalls
from .link import RedisLink
from .node import ClusterNode
from .presence import RedisPresences
from .priority import RESERVED, PriorityPool, takeover_first
from .rebalance import RebalanceCounters, Rebalancer, counted
from .recorders import RedisRecorderPool
from .router import RedisRouter
from .scheduler import RedisScheduler
from .traced import TracedRedis

log = logging.getLogger(__name__)

TAKEOVER_IN_FLIGHT = 16  # a dead node's principals settled at once: one at a time, a
# survivor took 1.5 min over 1,466 (each a few Redis round trips and a log append) while
# its clients waited; well under the pool's connections (`keys.POOL_MAX_CONNECTIONS`)


def connect_redis(
    url: str, name: str, *, binary: bool = False, connections: int = keys.POOL_MAX_CONNECTIONS,
    reserved: int = 0
) -> Redis:
    """A client that retries with backoff when the connection drops (Redis restarted).

    Connections are named (CLIENT SETNAME) after the key prefix and node instance, so an
    operator (or a test) sees, and can kill, exactly one node's connections. The pool is
    bounded and blocking: a burst of commands waits for a free connection (at most
    `POOL_WAIT_S`) instead of failing with "Too many connections". `reserved` more are
    kept for a takeover's first stages (`priority.takeover_first`)."""
    pool = (PriorityPool if reserved else BlockingConnectionPool).from_url(
        url,
        **({"reserved": reserved} if reserved else {}),
        max_connections=connections,
        timeout=keys.POOL_WAIT_S,
        client_name=name,
        decode_responses=not binary,
        socket_timeout=keys.SOCKET_TIMEOUT_S,
        socket_connect_timeout=keys.SOCKET_TIMEOUT_S,
        # No command retried by the client: the heartbeat, sweep and bus loops retry with
        # their own backoff, and a heartbeat the client kept retrying through a Redis freeze
        # landed after the other nodes had taken this one for dead (test_failover, frozen).
        # (redis-py < 8.2 ignored the synchronous Retry given here before: the same in effect.)
        retry=Retry(ExponentialBackoff(cap=keys.RECONNECT_MAX_S, base=keys.RECONNECT_MIN_S), 0),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=keys.CONNECTION_CHECK_S,
        driver_info=None,  # no CLIENT SETINFO on each (re)connect: Redis 7.0 does not know it
    )
    return TracedRedis.from_pool(pool)


class _Gone:
    """The sink of a socket that was on a dead node: nothing to send to or close."""

    def send(self, payload: bytes) -> None:
        del payload

    def close(self, code: int, reason: str) -> None:
        del code, reason


class ClusterBackends:
    def __init__(self, settings: Settings, node_id: str, health: dict[str, str],
                 hours: OpeningHours | None = None, *, sockets: Callable[[], int] = lambda: 0,
                 rebalance_counters: RebalanceCounters | None = None) -> None:
        routing = settings.routing
        self.prefix = routing.key_prefix
        self.node = ClusterNode(None, self.prefix, node_id, health, self, load=sockets)
        name = f"{self.prefix}:{self.node.instance}"
        self.redis = connect_redis(routing.redis_url, name, reserved=RESERVED)
        self._binary = connect_redis(routing.redis_url, name, binary=True)
        # Its own connections: a node busy enough to drain the main pool is alive, and
        # its heartbeat must not wait behind the commands that keep it busy.
        self.node.redis = connect_redis(routing.redis_url, name, connections=2)
        self.router = RedisRouter(self.redis, self.prefix, settings.queues, self.node.instance)
        self.presences = RedisPresences(self.redis, self.prefix, self.node.instance)
        self.scheduler = RedisScheduler(self.redis, self.prefix, owner=self.node.instance,
                                        handler=self._timer_fired)
        self.calls = ConnectedCalls()
        self.bus = RedisBus(self._binary, self.prefix, self.node.instance, self,
                            reorder_hold_s=routing.reorder_hold_s,
                            reorder_cap_s=routing.reorder_cap_s)
        self.link = RedisLink(self.router, self.bus, self.calls)
        self.status = QueueStatus({q.id: q for q in settings.queues}, self.router, self.bus,
                                  time.time, self.link, hours)
        self.recorders = RedisRecorderPool(self.redis, self.prefix)
        self.rebalancer = Rebalancer(self.node, self.redis, self.prefix, self.bus, self.router,
                                     interval_s=routing.rebalance_interval_s,
                                     tolerance=routing.rebalance_tolerance,
                                     **counted(rebalance_counters))
        self._board: Switchboard | None = None
        self._state_lost = False

    async def start(self) -> None:
        """Join the cluster: publish the queue set-up, listen, heartbeat."""
        self._state_lost = not await self.redis.exists(keys.state_marker(self.prefix))
        await self.router.start()
        await self.bus.start()
        await self.node.start()
        with takeover_first():  # opened now: not while a storm keeps the loop busy
            await asyncio.gather(*(self.redis.ping() for _ in range(RESERVED)))

    async def interrupted_node_ids(self) -> set[str] | None:
        """Whose open sessions a crash interrupted: nobody's while Redis still holds the
        routing state (the survivors settle the calls by the rules), everyone's (None)
        when Redis lost it and no other node runs, else this node's own."""
        if not self._state_lost:
            return set()
        others = await self.node.live_node_ids() - {self.node.node_id}
        return {self.node.node_id} if others else None

    def bind(self, board: Switchboard) -> None:
        """The switchboard dead nodes' principals and fired timers go to; timers start
        firing, and connections are rebalanced."""
        self._board = board
        self.scheduler.start()
        self.rebalancer.start()

    async def _timer_fired(self, kind: str, payload: dict[str, Any]) -> None:
        """The scheduler's handler (polling starts in `bind`, so the board is there)."""
        assert self._board is not None
        await self._board.on_timer(kind, payload)

    # ---- Notices: what the other nodes announce ------------------------------------------

    def queues_changed(self, queues: set[str]) -> None:
        self.status.remote_changed(queues)

    def calls_changed(self, call_ids: list[str]) -> None:
        self.calls.forget(call_ids)

    def resubscribed(self) -> None:
        self.calls.clear()

    # ---- NodeEvents: the node's watch ---------------------------------------------------

    async def dead(self, instance: str, principals: set[str]) -> None:
        """A dead node's principals: their sockets are gone, their resume grace starts.

        Its recorders first: their media went with them, and until they are gone from the
        pool new calls are still given to them; their sessions go to other recorders at
        once. Then the answers it may not have logged (a resumed party, a cancel, waits
        for those: `parties.settled_answer`), then the ends and the hand-overs to phones
        it may not have logged (closed as they ended: `resume.ends_again`;
        `handoff.handoffs_again`; nobody waits on those, so not ahead of the hellos), then
        everyone else. Each stage
        runs `TAKEOVER_IN_FLIGHT` at a time: one by one, the goal-size day's survivor was
        still logging answers when the killed node's recorder came back, 4 s later, and
        had not handed on its sessions nor kept new calls from it."""
        board = self._board
        if board is None:
            return
        recorders = {p for p in principals if p.startswith(f"{Role.RECORDER.value}:")}
        limit = asyncio.Semaphore(TAKEOVER_IN_FLIGHT)

        async def each(work: list[Awaitable[None]]) -> None:
            async def bounded(one: Awaitable[None]) -> None:
                async with limit:
                    await one
            failed = [r for r in await asyncio.gather(*map(bounded, work),
                                                      return_exceptions=True)
                      if isinstance(r, BaseException)]
            if failed:  # the rest are settled; the sweep logs it, the fence stays up
                raise failed[0]

        with takeover_first():  # not behind the dead node's kiosks' hellos (priority.py)
            await each([self._gone(board, instance, p) for p in sorted(recorders)])
            await each([self._answer_again(board, instance, *answer)
                        for answer in await self.router.answered_by(instance)])
            await self.router.forget_answers_of(instance)
        await self._ends_again(board, instance)  # not first: nobody waits on it to resume
        await self._handoffs_again(board, instance)
        await each([self._gone(board, instance, p) for p in sorted(principals - recorders)])

    async def _answer_again(self, board: Switchboard, instance: str, call_id: str,
                            agent_id: str, at: float) -> None:
        try:
            await board.answer_again(call_id, agent_id, at)
        except Exception:
            log.exception("logging the answer of %s by dead node %s failed", call_id,
                          instance)

    async def _ends_again(self, board: Switchboard, instance: str) -> None:
        try:
            await board.ends_again(await self.router.ended_by(instance))
        except Exception:  # the sessions stay open: a party's resume closes them later
            log.exception("logging the ends of dead node %s failed", instance)
        else:
            await self.router.forget_ends_of(instance)

    async def _handoffs_again(self, board: Switchboard, instance: str) -> None:
        try:
            await board.handoffs_again(await self.router.handed_off_by(instance))
        except Exception:  # the log lacks the hand-over; routing and the phone still have it
            log.exception("logging the hand-overs of dead node %s failed", instance)
        else:
            await self.router.forget_handoffs_of(instance)

    async def _gone(self, board: Switchboard, instance: str, principal: str) -> None:
        """One principal of a dead instance: its socket is gone (unless it has resumed on
        a live node since)."""
        presence = await self.presences.get(principal)
        if presence is None or not presence.connected or presence.node != instance:
            return
        role, _, raw_id = principal.partition(":")
        if role not in set(Role):
            return
        if role == Role.VISITOR:
            who = await handoff.phone_of(board.services, raw_id)
        else:
            name = raw_id
            if role == Role.SPECIALIST:
                agent = await self.router.get_agent(raw_id)
                name = agent.name if agent is not None else raw_id
            who = Identity(role=Role(role), id=raw_id, name=name)
        await board.disconnect(who, presence.epoch, _Gone())

    def lost(self, instances: set[str]) -> None:
        """Other nodes are gone: the reorder buffer stops waiting for what they decided."""
        log.info("node(s) %s gone: holding gaps %.1f s only", sorted(instances),
                 self.bus.reorder.hold_s)
        self.bus.nodes_lost()

    async def recovered(self) -> None:
        """Redis is back: drop every pooled connection, some of which it closed meanwhile,
        so that no request fails on a stale one."""
        for client in (self.redis, self._binary, self.node.redis):
            await client.connection_pool.disconnect(inuse_connections=False)

    def reaped(self) -> None:
        """The others took this node for dead and settled its principals: its clients must
        reconnect (and resume) to be part of the service again."""
        for principal in self.bus.connected():
            self.bus.close_local(principal, keys.DRAIN_CLOSE_CODE, "reconnect")

    async def close(self) -> None:
        """Stop firing timers and listening, leave the cluster, close the clients."""
        await self.rebalancer.close()
        await self.scheduler.close()
        await self.bus.close()
        await self.node.close()
        await self.node.redis.aclose()
        await self.redis.aclose()
        await self._binary.aclose()

    def describe(self) -> dict[str, Any]:
        return {"instance": self.node.instance, "prefix": self.prefix}
