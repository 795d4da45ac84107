"""Several sorted lists walked as one, each left out once its owner says so: the
dispatch's walk over every queue's waiting calls (`acd.CallCenter.dispatch`; the Lua
twin is in `server/cluster/dispatch.py`)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

K = TypeVar("K")


def merged_while(lists: Iterable[tuple[str, Iterable[K]]], live: Callable[[str], bool],
                 wanted: Callable[[K], bool]) -> Iterator[K]:
    """The `wanted` items of `(owner, sorted list)` pairs in one order (ties: the earlier
    pair first); a list is left for good when its next item comes up and `live(owner)` no
    longer holds (a queue with nobody available: the rest of its calls wait). `live` and
    `wanted` are asked as the walk goes, so what the caller does between two items counts;
    an item once `wanted` may be yielded after it stopped being (the caller checks again).
    Each list is filtered on its own, so the merge only orders the lists' candidates: a
    queue's head of ringing calls costs what a walk of that queue alone costs."""
    heads: list[tuple[Any, int, str, Iterator[K]]] = []

    def advance(number: int, owner: str, rest: Iterator[K]) -> None:
        for item in rest:  # its next item, if any (any value, None included)
            heapq.heappush(heads, (item, number, owner, rest))
            return

    for number, (owner, items) in enumerate(lists):
        advance(number, owner, filter(wanted, items))
    while heads:
        item, number, owner, rest = heapq.heappop(heads)
        if live(owner):
            yield item
            advance(number, owner, rest)
