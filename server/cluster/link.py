"""`RedisLink`: the switchboard's cluster link over the Redis bus (`signaling.link`).

It announces this node's queue changes to the others (one notice per loop iteration),
tells them when a connected call's members change, and keeps this node's copy of
connected calls for the `rtc.*` relay check (`callcache.py`).
"""

from __future__ import annotations

import asyncio

from signaling.backend import Router
from signaling.model import Call

from .bus import RedisBus
from .callcache import ConnectedCalls


class RedisLink:
    alone = False  # another node may offer a call as soon as this one queues it

    def __init__(self, router: Router, bus: RedisBus, calls: ConnectedCalls) -> None:
        self._router = router
        self._bus = bus
        self._calls = calls
        self._announced: set[str] = set()

    def announce_queues(self, queues: set[str]) -> None:
        """Coalesce this loop iteration's changes into one notice to the other nodes."""
        if not self._announced:
            asyncio.get_running_loop().call_soon(self._flush_announce)
        self._announced |= queues

    def _flush_announce(self) -> None:
        queues, self._announced = self._announced, set()
        self._bus.announce_queues(queues)

    def calls_changed(self, call_ids: list[str]) -> None:
        """Drop this node's copies before anything else runs, then tell the others."""
        self._calls.forget(call_ids)
        self._bus.calls_changed(call_ids)

    def is_local(self, principal: str) -> bool:
        return self._bus.is_local(principal)

    async def broadcast_local(self, roles: frozenset[str], payload: bytes) -> None:
        await self._bus.broadcast_local(roles, payload)

    def connected(self) -> set[str]:
        return self._bus.connected()

    async def relay_call(self, call_id: str) -> Call | None:
        """This node's copy while connected, else the router's (kept if connected)."""
        call = self._calls.get(call_id)
        if call is None:
            generation = self._calls.generation
            call = await self._router.get_call(call_id)
            if call is not None:
                self._calls.put(call, generation)
        return call
