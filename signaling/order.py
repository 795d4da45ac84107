"""The cluster's order per principal: the numbers routing transactions took, as one task
sees them between a step and its commit.

On several nodes each routing transaction (one Lua script) takes the next number of
every principal it will tell (docs/cluster.md, "Order across nodes"): Redis runs one
script at a time, so one principal's numbers follow the order of the decisions,
whichever node made them. The Redis router records here what a transaction took;
`Outbox.send` stamps each message with its principal's latest number (the transaction
that caused it ran just before), and `commit` sends the numbers no message carried as
empty fillers, so the receiving connection never waits for them. A state (a caller's
position) is stamped with the number its read saw (`saw`, `as_of`).

Per task (a `ContextVar`), so steps stay plain functions and concurrent steps never
see each other's numbers; the mapping is replaced, never changed in place, so a task
started meanwhile cannot share it. One node (the memory router) takes no numbers:
nothing is stamped and every message goes as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar

Taken = Mapping[str, tuple[int, ...]]  # principal -> the numbers taken for it, in order

_taken: ContextVar[Taken | None] = ContextVar("order_taken", default=None)
_seen: ContextVar[Mapping[str, int] | None] = ContextVar("order_seen", default=None)


def took(numbers: Iterable[tuple[str, int]]) -> None:
    """A routing transaction of this task took these (principal, number) pairs (a number
    already taken is not taken twice: a transaction answered again, `retry.again`)."""
    taken = dict(_taken.get() or {})
    for principal, number in numbers:
        if number not in taken.get(principal, ()):
            taken[principal] = (*taken.get(principal, ()), number)
    if taken:
        _taken.set(taken)


def latest(principal: str) -> int | None:
    """The number of the last transaction of this task that tells `principal`."""
    taken = _taken.get()
    if taken is None:
        return None
    numbers = taken.get(principal)
    return numbers[-1] if numbers else None


def pending() -> bool:
    return _taken.get() is not None


def take_all() -> Taken:
    """Every number taken since the last call (a commit sends them), forgotten here."""
    taken = _taken.get()
    if taken is None:
        return {}
    _taken.set(None)
    return taken


def saw(numbers: Iterable[tuple[str, int]]) -> None:
    """A read of routing state saw these principals' last numbers (what a state is as of)."""
    _seen.set({**(_seen.get() or {}), **dict(numbers)})


def as_of(principal: str) -> int | None:
    """The last number of `principal` that this task's reads saw, if any."""
    seen = _seen.get()
    return seen.get(principal) if seen is not None else None
