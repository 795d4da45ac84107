"""`RedisBus`: delivers messages to principals connected to any node.

It holds a local bus (`LocalBus`, this node's sinks) and adds the multi-node parts,
as LiveKit's Redis router embeds its local router: a message for a principal
connected elsewhere is published on the owning node's channel (the owner comes
from the principal's presence; the last one known while Redis is away); broadcasts,
kicks, "replaced" and "queue changed" notices go on the channel every node listens to.
One writer task (`publisher.py`) publishes everything in order, pipelined, so messages
to one connection arrive in the order they were sent, one `PUBLISH` per burst for a
channel; a batch whose publish fails is published again for a while (Redis restarting).
A node's subscription is one connection, so it receives every channel's
messages in the order they were published: a "call changed" notice
(`callcache.py`) reaches every node before the messages about the change.
Messages that two nodes decided one after the other may still cross; those a
routing transaction numbered (`send_numbered(..., seq=n)`, or a state `as_of=n`) are put
back in the transactions' order on the node that holds the connection, local
ones included (`reorder.py`; docs/cluster.md, "Order across nodes"): a gap is held
while every node is alive (its message is only late), briefly once one was lost
(`nodes_lost`, from the node's watch); a connection's line starts with the re-sync's
number, taken when it attached (`baseline`). Numbered messages for another
node's connection are also kept briefly in the principal's list in Redis: a node whose
subscription was lost reads those it missed when it subscribes again (`_fill`). An unnumbered event
(`send_numbered` with neither; `["e", ..., n]`) is heard after the principal's number
`n` (its counter when the event was sent) and what is held before it; relayed frames
(`send`, `["m", ...]`) never wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signaling import order
from signaling.backend import Sink
from signaling.identity import Role
from signaling.memory import LocalBus

from . import fill, keys
from .publisher import Publisher
from .reorder import Released, Reorder

log = logging.getLogger(__name__)

RESYNC_ROLES = frozenset({Role.TERMINAL.value, Role.VISITOR.value, Role.SPECIALIST.value})
RESYNC_REASON = "resync"  # the close reason with DRAIN_CLOSE_CODE (the pages resume)
_encode = msgspec.msgpack.encode
_decode = msgspec.msgpack.Decoder(list[Any]).decode


class Notices(Protocol):
    """What the other nodes announce, as this node's bus hears it."""

    def queues_changed(self, queues: set[str]) -> None: ...
    def calls_changed(self, call_ids: list[str]) -> None: ...
    def resubscribed(self) -> None:
        """Subscribed (again): notices may have been missed meanwhile."""


class RedisBus:
    def __init__(self, redis: Redis, prefix: str, instance: str, notices: Notices, *,
                 reorder_hold_s: float, reorder_cap_s: float) -> None:
        self._local = LocalBus()  # this node's connections
        self._redis = redis
        self._prefix = prefix
        self.instance = instance
        self._mine = keys.node_channel(prefix, instance).encode()
        self._all = keys.all_channel(prefix).encode()
        self._attached_at: dict[str, float] = {}
        self._owners: dict[str, tuple[str, float]] = {}  # principal -> (node, cached until)
        self._owners_swept = 0.0  # expired entries dropped at most once per OWNER_CACHE_S
        self.publisher = Publisher(redis, prefix, self._all)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._closing = False  # redis-py may swallow a cancel mid-command: the loops check this
        self._notices = notices
        self.reorder = Reorder(reorder_hold_s, reorder_cap_s, keys.REORDER_MAX_HELD)
        self._wake: asyncio.TimerHandle | None = None  # at the reorder buffer's deadline

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(
            self.publisher.run(lambda: self._closing))]
        await asyncio.wait_for(self._subscribed.wait(), keys.SOCKET_TIMEOUT_S)

    async def close(self) -> None:
        self._closing = True
        if self._wake is not None:
            self._wake.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- MessageBus ---------------------------------------------------------------

    def attach(self, principal: str, role: str, sink: Sink) -> None:
        self._local.attach(principal, role, sink)
        now = time.time()
        self._attached_at[principal] = now
        self._owners.pop(principal, None)
        self.reorder.open(principal)
        self._publish(self._all, ["r", principal, now, self.instance])

    def detach(self, principal: str, sink: Sink) -> None:
        self._local.detach(principal, sink)
        if self._local.sink(principal) is None:
            self._attached_at.pop(principal, None)
            self.reorder.forget(principal)

    async def baseline(self, principal: str) -> None:
        """Start the attached connection's line with the re-sync that follows: its number
        (`resync`) is the first; numbered messages decided before and held since the
        attach are heard now, in order; arriving later they are stale (the re-sync tells
        where it stands); those decided after go in their order, after the re-sync."""
        first = await self._take(principal)
        if self._local.sink(principal) is None:
            return
        self._release([(principal, p) for p in self.reorder.expect(
            principal, first, asyncio.get_running_loop().time())])
        self._arm()

    async def resync(self, principal: str) -> None:
        await self._take(principal)

    async def _take(self, principal: str) -> int | None:
        """The principal's next number, for the re-sync's messages (`order.took`; None:
        Redis did not answer, the re-sync goes unnumbered and checks what it read)."""
        try:
            taken = int(await self._redis.hincrby(keys.sequences(self._prefix), principal, 1))
        except (RedisError, OSError) as exc:
            log.warning("bus: no number for %s's re-sync (%s)", principal, exc)
            return None
        order.took([(principal, taken)])
        return taken

    async def _counter(self, principal: str) -> int | None:
        """The principal's last number taken (0: none yet; None: Redis did not say)."""
        try:
            last = await self._redis.hget(keys.sequences(self._prefix), principal)
        except (RedisError, OSError) as exc:
            log.warning("bus: where %s's sequence stands is unknown (%s)", principal, exc)
            return None
        return int(last or 0)

    def nodes_lost(self) -> None:
        """The node's watch found another node gone: what it decided and had not sent
        never comes, so the gaps held for it are given up after the short hold."""
        loop = asyncio.get_running_loop()
        self.reorder.lost(loop.time())
        self._expire()

    async def send(self, principal: str, payload: bytes) -> None:
        """To the principal's connection on any node, as it comes (every relayed frame:
        a connection of this node gets it straight from here)."""
        sink = self._local.sink(principal)
        if sink is not None:
            sink.send(payload)
            return
        await self._to(principal, ["m", principal, payload])

    async def send_numbered(self, principal: str, payloads: Sequence[bytes], *,
                            seq: int | None = None, as_of: int | None = None) -> None:
        """In the principal's sequence: the messages a routing transaction numbered `seq`
        (an empty list fills the number), a state as of the principal's number `as_of`, or
        (neither) unnumbered events, heard after what is held for the connection."""
        if seq is not None:
            await self._to(principal, ["s", principal, list(payloads), seq])
        elif as_of is not None:
            for payload in payloads:
                await self._to(principal, ["a", principal, payload, as_of])
        else:
            after = await self._counter(principal)
            for payload in payloads:
                await self._to(principal, ["e", principal, payload, after])

    async def _to(self, principal: str, message: list[Any]) -> None:
        if self._local.sink(principal) is not None:
            self._handle(message)
            return
        owner = await self._owner(principal)
        if owner and owner != self.instance:
            self._publish(keys.node_channel(self._prefix, owner).encode(), message)

    async def broadcast(self, roles: frozenset[str], payload: bytes) -> None:
        self._publish(self._all, ["b", sorted(roles), payload, self.instance])
        await self._local.broadcast_in_slices(roles, payload)

    async def broadcast_local(self, roles: frozenset[str], payload: bytes) -> None:
        """To this node's sinks only (each node sends queue status to its own clients),
        a slice at a time (`LocalBus.broadcast_in_slices`)."""
        await self._local.broadcast_in_slices(roles, payload)

    async def kick(self, principal: str, code: int, reason: str) -> None:
        self._local.close_local(principal, code, reason)
        self._publish(self._all, ["k", principal, code, reason, self.instance])

    def announce_queues(self, queues: set[str]) -> None:
        """Tell the other nodes that these queues changed (their callers' positions)."""
        self._publish(self._all, ["q", sorted(queues), self.instance])

    def calls_changed(self, call_ids: list[str]) -> None:
        """Tell the other nodes to drop their copies of these calls (`callcache.py`)."""
        self._publish(self._all, ["i", call_ids, self.instance])

    def close_local(self, principal: str, code: int, reason: str) -> None:
        self._local.close_local(principal, code, reason)

    def connected(self) -> set[str]:
        return self._local.connected()

    def is_local(self, principal: str) -> bool:
        return self._local.sink(principal) is not None

    # ---- internals ------------------------------------------------------------------

    async def _owner(self, principal: str) -> str | None:
        now = time.monotonic()
        cached = self._owners.get(principal)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            node = await self._redis.hget(keys.presence(self._prefix, principal), "node")
        except (RedisError, OSError):
            if cached is None:
                raise
            return cached[0]  # Redis away: the owner last known (its message waits to go)
        owner = node.decode() if isinstance(node, bytes) else node
        if owner:
            self._cache_owner(principal, owner, now)
        return owner

    def _cache_owner(self, principal: str, node: str, now: float) -> None:
        """Remember where `principal` is connected for a while; entries past their time
        are dropped now and then (every attach on every node is cached here: visitors'
        principals are new each hand-off, and a cache nobody reads again must not grow)."""
        if now - self._owners_swept >= keys.OWNER_CACHE_S:
            self._owners_swept = now
            self._owners = {p: cached for p, cached in self._owners.items() if cached[1] > now}
        self._owners[principal] = (node, now + keys.OWNER_CACHE_S)

    def _publish(self, channel: bytes, message: list[Any]) -> None:
        self.publisher.put(channel, message)

    async def _listen(self) -> None:
        delay = keys.RECONNECT_MIN_S
        lost = False
        while not self._closing:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._mine, self._all)
                self._subscribed.set()
                self._notices.resubscribed()
                while not self._closing:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    if msg["type"] == "message":
                        self._deliver(msg["channel"], msg["data"])
                    elif msg["type"] == "subscribe" and msg["data"] == 2:  # both confirmed
                        delay = keys.RECONNECT_MIN_S
                        if lost:
                            lost = False
                            log.warning("bus: subscribed again after losing Redis")
                            await self._fill()
                            self._arm()
            except (RedisError, OSError) as exc:
                lost = True
                log.warning("bus: lost the Redis subscription (%s); retrying in %.2f s",
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, keys.RECONNECT_MAX_S)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def _fill(self) -> None:
        """Subscribed again: numbered messages published for this node's connections
        meanwhile never come on the channel; those still in their principals' lists
        (`keys.fill`) are put in their lines now, for each connection whose counter in
        Redis is at or past the number its line waits for; the gaps still open are given
        up, and a line still short of its counter waits for the rest `TAKEN_HOLD_S` at
        most (`Reorder.taken`). A restarted Redis takes subscriptions while it still reads
        its append-only file back, and answers reads only after (5.35 s for 64 MB on the
        goal-size day): the read waits for it."""
        missed = await fill.read_missed(self._redis, self._prefix,
                                        sorted(self._local.connected()), self.reorder.next_of)
        for principal, next_seq, _, entries in missed or []:
            for seq, payloads in sorted((_decode(entry) for entry in entries),
                                        key=lambda entry: int(entry[0])):
                if int(seq) >= next_seq:
                    self._to_sink(["s", principal, payloads, int(seq)])
        self._release(self.reorder.give_up_all("subscription lost"))
        now = asyncio.get_running_loop().time()
        for principal, _, counter, _ in missed or []:
            self.reorder.taken(principal, counter, now)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        try:
            message = _decode(data)
            if message[0] != "n":
                self._handle(message)
                return
            for one in message[1]:
                self._handle(one)
        except (msgspec.DecodeError, IndexError, TypeError, ValueError):
            log.warning("bus: undecodable message on %r", channel)

    def _handle(self, message: list[Any]) -> None:
        op = message[0]
        if op in ("m", "s", "a", "e"):
            self._to_sink(message)
        elif message[-1] == self.instance:
            return
        elif op == "b":
            self._local.broadcast_now(frozenset(message[1]), message[2])
        elif op == "i":
            self._notices.calls_changed(message[1])
        elif op == "r":
            self._replaced(message[1], message[3], message[2])
        elif op == "k":
            self._local.close_local(message[1], message[2], message[3])
        elif op == "q":
            self._notices.queues_changed(set(message[1]))

    def _to_sink(self, message: list[Any]) -> None:
        """A message for one principal: now ("m"), in its sequence ("s", "a"), or behind
        what is held for it ("e")."""
        op, principal, payload = message[0], message[1], message[2]
        sink = self._local.sink(principal)
        if sink is None:
            return
        if op == "m":
            sink.send(payload)
            return
        now = asyncio.get_running_loop().time()
        if op == "s":
            released = self.reorder.event(principal, int(message[3]), payload, now)
        elif op == "a":
            released = self.reorder.state(principal, int(message[3]), payload, now)
        else:
            released = self.reorder.behind(principal, payload, message[3], now)
        for one in released:
            sink.send(one)
        self._resync()
        self._arm()

    def _release(self, released: Released) -> None:
        for principal, payload in released:
            sink = self._local.sink(principal)
            if sink is not None:
                sink.send(payload)
        self._resync()

    def _resync(self) -> None:
        """A line that gave a gap up delivered past messages its connection never heard (a
        `call.connected`, an offer, an end): the connection is closed as a move is (1012),
        and the client's resuming hello names its call and hears where it stands, the
        end of that call included. A recorder is left as it is: its reconnection would
        hand every session it records on."""
        if not self.reorder.resync:
            return
        for principal in sorted(self.reorder.resync):
            if self._local.role(principal) in RESYNC_ROLES:
                log.warning("bus: %s missed messages: closed to resume", principal)
                self._local.close_local(principal, keys.DRAIN_CLOSE_CODE, RESYNC_REASON)
        self.reorder.resync.clear()

    def _arm(self) -> None:
        """Wake at the reorder buffer's deadline (one timer for every held message)."""
        deadline = self.reorder.deadline()
        if self._wake is not None and (deadline is None or self._wake.when() != deadline):
            self._wake.cancel()
            self._wake = None
        if deadline is not None and self._wake is None:
            self._wake = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._wake = None
        self._release(self.reorder.expire(asyncio.get_running_loop().time()))
        self._arm()

    def _replaced(self, principal: str, node: str, at: float) -> None:
        """The principal connected to `node`: close an older connection here."""
        self._cache_owner(principal, node, time.monotonic())
        if (self._local.sink(principal) is not None
                and self._attached_at.get(principal, 0.0) <= at):
            sink = self._local.release(principal)
            self._attached_at.pop(principal, None)
            self.reorder.forget(principal)
            if sink is not None:
                sink.close(keys.REPLACED_CLOSE_CODE, "replaced by a newer connection")
