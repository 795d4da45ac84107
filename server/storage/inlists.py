"""`IN (...)` lists of a few lengths only: each length is another statement to the driver.

SQLAlchemy expands `column.in_(values)` into one bound parameter per value, so a list of
another length is another SQL text. On PostgreSQL each text is prepared once per pooled
connection and kept there (the asyncpg adapter's cache: 100 statements a connection, with
its SQL, parameter types and row description; SQLite's module keeps its own cache per
connection the same way). The lists that change length all day are the node's own
rounds over its connected principals (`revoked_among` and `touch_terminals` every 5 and
30 s, `lapsed_users` every 5 s) and the hellos of a reconnect batch
(`terminals_by_token_hashes`): on a node whose socket count moves (kiosks coming and going,
moved by the rebalancer) nearly every round sent a length not seen on that connection,
and the 15 connections' caches filled with statements of up to 500 parameters each, about
20 KB a statement (issue 16: the restarted node's RSS slope at a steady load). A list is
now padded to the next of `LENGTHS` by repeating its last value: a value listed twice
matches as once, and each query has at most `len(LENGTHS)` texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

T = TypeVar("T")

LENGTHS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 500)
"""The lengths a list is padded to (the last: the longest batch, `sites.TOUCH_BATCH`)."""


def padded(values: Sequence[T]) -> list[T]:
    """`values` with its last one repeated up to the next of `LENGTHS` (as they are when
    empty or longer than the longest)."""
    out = list(values)
    if not out:
        return out
    length = next((n for n in LENGTHS if n >= len(out)), len(out))
    return out + [out[-1]] * (length - len(out))


def batches(values: Sequence[T]) -> Iterator[list[T]]:
    """`values` in lists of at most the longest of `LENGTHS`, each `padded`."""
    for start in range(0, len(values), LENGTHS[-1]):
        yield padded(values[start:start + LENGTHS[-1]])
