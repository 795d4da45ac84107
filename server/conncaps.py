"""Per-address caps on signalling connections: all open ones, and those not authenticated yet.

One address cannot hold every socket the server has (a flood of silent
connections waiting out the `hello` deadline) while other sites are served.
Counted per node; the address is `request.remote`, the client's own behind
trusted proxies.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from server.config import LimitsSettings


class AddressCaps:
    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self._open: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()

    def admit(self, address: str) -> Slot | None:
        """A slot for a new connection (not authenticated yet), or None when full."""
        if (self._open[address] >= self.limits.ws_per_address
                or self._waiting[address] >= self.limits.unauthenticated_per_address):
            return None
        self._open[address] += 1
        self._waiting[address] += 1
        return Slot(self, address)

    @staticmethod
    def _drop(counter: Counter[str], address: str) -> None:
        counter[address] -= 1
        if counter[address] <= 0:
            del counter[address]


class Slot:
    """One admitted connection's place in the counts."""

    def __init__(self, caps: AddressCaps, address: str) -> None:
        self._caps = caps
        self._address = address
        self._waiting = True
        self._open = True

    def authenticated(self) -> None:
        """The connection sent a good `hello`: it no longer counts as waiting."""
        if self._waiting:
            self._waiting = False
            self._caps._drop(self._caps._waiting, self._address)

    def release(self) -> None:
        """The connection closed; safe to call twice."""
        self.authenticated()
        if self._open:
            self._open = False
            self._caps._drop(self._caps._open, self._address)


CAPS = web.AppKey("caps", AddressCaps)
