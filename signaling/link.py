"""What the switchboard needs to know of other nodes: the cluster link.

One node (`SingleNode`) has no others: everything is local and nothing is
announced. The Redis link (`server.cluster.link.RedisLink`) tells the other
nodes which queues and connected calls changed, and keeps this node's copy of
connected calls for the `rtc.*` relay check.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from .backend import MessageBus, Router
from .model import Call


class ClusterLink(Protocol):
    alone: bool
    """No other node routes calls: one this node queues is offered only by this node's
    steps, in this event loop (`call_request` then logs `queued` with the first offer)."""

    def announce_queues(self, queues: set[str]) -> None:
        """These queues changed here: the other nodes refresh their clients' figures."""

    def calls_changed(self, call_ids: list[str]) -> None:
        """The members of these connected calls changed: forget every node's copy. Called
        right after the routing transaction, before any message about the change."""

    def is_local(self, principal: str) -> bool:
        """The principal's connection is on this node (its figures are this node's to send)."""

    async def broadcast_local(self, roles: frozenset[str], payload: bytes) -> None:
        """To this node's own connections of these roles."""

    def connected(self) -> set[str]:
        """The principals connected to this node."""

    def relay_call(self, call_id: str) -> Awaitable[Call | None]:
        """The call for the `rtc.*` relay check only: may be this node's copy, lagging a
        change made elsewhere until that change's notice arrives (before any message about
        it); a refusal is confirmed with `Router.get_call`."""


class SingleNode:
    """The link of a node alone: all connections are its own, nobody to tell."""

    alone = True

    def __init__(self, router: Router, bus: MessageBus) -> None:
        self._router = router
        self._bus = bus

    def announce_queues(self, queues: set[str]) -> None:
        del queues

    def calls_changed(self, call_ids: list[str]) -> None:
        del call_ids

    def is_local(self, principal: str) -> bool:
        del principal
        return True

    async def broadcast_local(self, roles: frozenset[str], payload: bytes) -> None:
        await self._bus.broadcast(roles, payload)

    def connected(self) -> set[str]:
        return self._bus.connected()

    def relay_call(self, call_id: str) -> Awaitable[Call | None]:
        """The router's own look-up, not wrapped in a coroutine of this link's (every
        relayed frame awaits it)."""
        return self._router.get_call(call_id)
