"""Per-address caps on signalling connections: all open ones, and those not authenticated yet.

One address cannot hold every socket the server has (a flood of silent
connections waiting out the `hello` deadline) while other sites are served.
Counted per node; the address is `request.remote`, the client's own behind
trusted proxies.
"""

from __future__ import annotations

from collections import Counter

from server.config import LimitsSettings


class AddressCaps:
    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self._open: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        """Take a slot for a new connection (not authenticated yet), or False when full."""
        if (self._open[address] >= self.limits.ws_per_address
                or self._waiting[address] >= self.limits.unauthenticated_per_address):
            return False
        self._open[address] += 1
        self._waiting[address] += 1
        return True

    def authenticated(self, address: str) -> None:
        """The connection sent a good `hello`: it no longer counts as waiting."""
        self._drop(self._waiting, address)

    def release(self, address: str, waiting: bool) -> None:
        """The connection closed."""
        self._drop(self._open, address)
        if waiting:
            self._drop(self._waiting, address)

    @staticmethod
    def _drop(counter: Counter[str], address: str) -> None:
        counter[address] -= 1
        if counter[address] <= 0:
            del counter[address]
