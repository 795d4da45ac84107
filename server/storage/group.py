"""Appends to the session log that share one commit (group commit, `sessionlog.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from signaling.events import LogEvent

Batch = tuple[Sequence[LogEvent], asyncio.Future[None]]  # one append and its waiter


class Group:
    """Appends sharing one commit. Settled as soon as the COMMIT returned (`_write`'s
    `committed`): not after the connection's return to the pool, one more round trip
    before each step's messages could go out."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches
        self.failed: dict[int, BaseException] = {}  # batch index -> why it alone failed
        self.settled = False

    def settle(self) -> None:
        self.settled = True
        for index, (_, waiter) in enumerate(self.batches):
            if waiter.done():
                continue
            if index in self.failed:
                waiter.set_exception(self.failed[index])
            else:
                waiter.set_result(None)
