"""Estimated wait: from the queue's recent handle times and its staffed specialists."""

from __future__ import annotations

import math

DEFAULT_HANDLE_S = 300.0  # assumed handle time before a queue has any history
EWMA_ALPHA = 0.2  # weight of the newest call: recent calls matter, one outlier doesn't dominate


class HandleTimes:
    """Exponentially weighted mean handle time (talk + wrap-up) per queue."""

    def __init__(self) -> None:
        self._mean: dict[str, float] = {}

    def add(self, queue: str, seconds: float) -> None:
        old = self._mean.get(queue)
        self._mean[queue] = seconds if old is None else old + EWMA_ALPHA * (seconds - old)

    def get(self, queue: str) -> float | None:
        return self._mean.get(queue)


def estimated_wait(position: int, available: int, staffed: int, handle_s: float | None) -> float:
    """Seconds until a caller at `position` is answered.

    The first `available` callers ring at once; the rest wait for busy
    specialists to free up, `staffed` of them working in parallel.
    """
    ahead = position - available
    if ahead <= 0:
        return 0.0
    mean = handle_s if handle_s is not None else DEFAULT_HANDLE_S
    return float(math.ceil(ahead / max(1, staffed)) * mean)
