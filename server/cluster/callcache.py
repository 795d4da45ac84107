"""`ConnectedCalls`: this node's copy of connected calls, so relaying `rtc.*` needs no Redis.

Relaying is most of the signalling traffic, and its check (are sender and addressee
two members of one connected call?) read the call hash from Redis for every message:
half of a node's CPU and a round trip per message (docs/benchmarks.md "Cluster").
A call is kept here while connected. Every step whose router transaction can change a
connected call's members drops it here at once and, through the bus, on the other
nodes; that notice is published before any message about the change, and a node's
subscription delivers in publish order, so a node refuses a departed member's relay
before that member (or anyone) hears of the departure. Only the relay check reads this
copy (`server.cluster.link.RedisLink.relay_call`), and `signaling.relay.relay` confirms
a refusal with Redis (a member who just joined is never refused).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from signaling.model import Call, CallState

from . import keys


class ConnectedCalls:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._calls: dict[str, tuple[Call, float]] = {}
        self._clock = clock
        self.generation = 0  # bumped by every change notice: a lookup that raced one is not kept

    def get(self, call_id: str) -> Call | None:
        entry = self._calls.get(call_id)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._calls[call_id]
            return None
        return entry[0]

    def put(self, call: Call, generation: int) -> None:
        """Keep a connected call read from Redis, unless a change notice came in meanwhile."""
        if generation != self.generation or call.state != CallState.CONNECTED:
            return
        now = self._clock()
        if len(self._calls) >= keys.CALL_CACHE_MAX:
            self._calls = {k: v for k, v in self._calls.items() if v[1] > now}
            if len(self._calls) >= keys.CALL_CACHE_MAX:
                self._calls.clear()
        self._calls[call.id] = (call, now + keys.CALL_CACHE_S)

    def forget(self, call_ids: Iterable[str]) -> None:
        self.generation += 1
        for call_id in call_ids:
            self._calls.pop(call_id, None)

    def clear(self) -> None:
        """Notices may have been lost (the subscription was down): trust nothing kept."""
        self.generation += 1
        self._calls.clear()
