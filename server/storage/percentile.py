"""The 90th percentile of a value per group on SQLite, which has no ``percentile_cont``.

PostgreSQL's ``percentile_cont(0.9)`` interpolates between the values ranked
``0.9 * (n - 1)`` rounded down and the next one (ranks from 0). The caller
already knows each group's n, so only those two neighbours are fetched, picked
out with ``row_number`` over the values sorted per group from the largest down
(the rank from below is then n - 1 - row number, no group count needed). The
sort is what costs, so a first pass ranks only the values at or above a floor;
a group whose neighbours lie below it is ranked again in full. Integer ranks
and the same floating-point steps as before: the figures do not change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

Key = str | None


def low_rank(count: int) -> int:
    """The rank (from 0) of the value just below the 90th percentile of `count` values."""
    return 9 * (count - 1) // 10


async def percentile_90(conn: AsyncConnection, key: sa.ColumnElement[Any],
                        value: sa.ColumnElement[Any], source: Any,
                        where: Sequence[sa.ColumnElement[bool]], counts: Mapping[Key, int],
                        floor: float | None) -> dict[Key, float]:
    """percentile_cont(0.9) of `value` per `key` over `counts[key]` rows each (all of `where`).

    `floor` should lie under most groups' 90th percentile (a low group mean does):
    a higher one costs a second pass, never a wrong figure.
    """
    wanted = {k: n for k, n in counts.items() if n > 0}
    if not wanted:
        return {}
    found = await conn.execute(_neighbours(key, value, source, where, wanted, floor, None))
    result = _interpolate(wanted, found)
    missing = wanted.keys() - result.keys()
    if missing and floor is not None:
        again = await conn.execute(_neighbours(key, value, source, where, wanted, None, missing))
        result |= _interpolate({k: wanted[k] for k in missing}, again)
    return result


def _is(column: sa.ColumnElement[Any], key: Key) -> sa.ColumnElement[bool]:
    return column.is_(None) if key is None else column == key


def _among(column: sa.ColumnElement[Any], keys: Collection[Key]) -> sa.ColumnElement[bool]:
    known = [k for k in keys if k is not None]
    either = [column.in_(known)] if known else []
    return sa.or_(*either, *([column.is_(None)] if None in keys else []))


def _neighbours(key: sa.ColumnElement[Any], value: sa.ColumnElement[Any], source: Any,
                where: Sequence[sa.ColumnElement[bool]], counts: Mapping[Key, int],
                floor: float | None, only: Collection[Key] | None) -> sa.Select[Any]:
    """Each group's two values around its 90th percentile, numbered from its largest."""
    conditions = list(where)
    if floor is not None:
        conditions.append(value >= floor)
    if only is not None:
        conditions.append(_among(key, only))
    # Numbered from the top, so no window has to count the group (n is known).
    ranked = (
        sa.select(key.label("key"), value.label("value"),
                  (sa.func.row_number().over(partition_by=key, order_by=value.desc()) - 1)
                  .label("rn"))
        .select_from(source).where(*conditions).subquery()
    )
    tops = {k: n - 1 - low_rank(n) for k, n in counts.items() if only is None or k in only}
    top = sa.case(*((_is(ranked.c.key, k), t) for k, t in tops.items()))  # lower one's rn
    # The band first: cheap, and it spares most rows the comparisons with every key.
    band = ranked.c.rn.between(min(tops.values()) - 1, max(tops.values()))
    return (sa.select(ranked.c.key, ranked.c.value, ranked.c.rn)
            .where(band, (top - ranked.c.rn).in_([0, 1])))


def _interpolate(counts: Mapping[Key, int], rows: Iterable[Any]) -> dict[Key, float]:
    """percentile_cont(0.9) of each group whose lower neighbour was among `rows`."""
    found: dict[tuple[Key, int], float] = {}
    for r in rows:
        if r.key in counts:
            found[(r.key, counts[r.key] - 1 - int(r.rn))] = float(r.value)
    result = {}
    for key, n in counts.items():
        rank = low_rank(n)
        if (key, rank) not in found:
            continue
        low = found[(key, rank)]
        high = found.get((key, rank + 1), low)
        result[key] = low + (9 * (n - 1) % 10) / 10.0 * (high - low)
    return result
