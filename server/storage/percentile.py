"""The 90th percentile of a value per group on SQLite, which has no ``percentile_cont``.

PostgreSQL's ``percentile_cont(0.9)`` interpolates between the values ranked
``0.9 * (n - 1)`` rounded down and the next one (ranks from 0). The caller
already knows each group's n, so only those two neighbours are fetched, picked
out with ``row_number`` over the values sorted per group. The sort is what
costs, so a first pass ranks only the values at or above a floor (the waits
below it are counted, not sorted); a group whose neighbours lie below the floor
is ranked again in full. Integer ranks and the same floating-point steps as
PostgreSQL: the figures are the same.
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
    """Each group's two values around its 90th percentile, with their rank among the ranked."""
    conditions = list(where)
    if floor is not None:
        conditions.append(value >= floor)
    if only is not None:
        conditions.append(_among(key, only))
    # One window for both: SQLite sorts the group's values once.
    window: dict[str, Any] = {"partition_by": key, "order_by": value, "rows": (None, None)}
    ranked = (
        sa.select(key.label("key"), value.label("value"),
                  (sa.func.row_number().over(**window) - 1).label("rn"),
                  sa.func.count().over(**window).label("size"))
        .select_from(source).where(*conditions).subquery()
    )
    # rank among all = rn + (n - size), the values under the floor being n - size
    above = sa.case(*((_is(ranked.c.key, k), n - low_rank(n)) for k, n in counts.items()
                      if only is None or k in only))
    return (sa.select(ranked.c.key, ranked.c.value, ranked.c.rn, ranked.c.size)
            .where((ranked.c.rn - ranked.c.size + above).in_([0, 1])))


def _interpolate(counts: Mapping[Key, int], rows: Iterable[Any]) -> dict[Key, float]:
    """percentile_cont(0.9) of each group whose lower neighbour was among `rows`."""
    found: dict[tuple[Key, int], float] = {}
    for r in rows:
        if r.key in counts:
            found[(r.key, int(r.rn) + counts[r.key] - int(r.size))] = float(r.value)
    result = {}
    for key, n in counts.items():
        rank = low_rank(n)
        if (key, rank) not in found:
            continue
        low = found[(key, rank)]
        high = found.get((key, rank + 1), low)
        result[key] = low + (9 * (n - 1) % 10) / 10.0 * (high - low)
    return result
