"""Queue figures for the manager dashboard, aggregated in SQL.

Definitions (contact-centre usage): offered = calls queued, rejected ones
excluded; answered = reached a specialist at least once; abandoned = gave
up before any answer; service level = answered within the queue's target
wait / (answered + abandoned), in %.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import InvalidRecord
from server.storage.records import HourlyWaits, QueueFigures
from server.storage.schema import sessions
from server.storage.units import ALL, Scope
from signaling import events as ev

DEFAULT_TARGET_S: Final = 900.0  # the domain's "average wait within 15 minutes"

_s = sessions.c
_ANSWERED = _s.answered_at.is_not(None)
_ABANDONED = sa.and_(_s.state == ev.STATE_ABANDONED, _s.answered_at.is_(None))
_REJECTED = _s.state == ev.STATE_REJECTED


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _figures(queue: str, row: Any | None) -> QueueFigures:
    if row is None:
        return QueueFigures(
            queue=queue, offered=0, answered=0, abandoned=0, rejected=0,
            avg_wait_s=None, answered_within_target=0, service_level=None,
        )  # fmt: skip
    answered, abandoned, within = int(row.answered), int(row.abandoned), int(row.within)
    handled = answered + abandoned
    return QueueFigures(
        queue=queue,
        offered=int(row.offered),
        answered=answered,
        abandoned=abandoned,
        rejected=int(row.rejected),
        avg_wait_s=None if row.avg_wait_s is None else float(row.avg_wait_s),
        answered_within_target=within,
        service_level=within / handled * 100 if handled else None,
    )


def _seen(scope: Scope) -> list[sa.ColumnElement[bool]]:
    clause = scope.sites_clause(_s.site_id)
    return [] if clause is None else [clause]


class FigureStore(StoreBase):
    """Aggregates over the session projection."""

    async def queue_figures(
        self,
        since: dt.datetime,
        targets: Mapping[str, float],
        default_target_s: float = DEFAULT_TARGET_S,
        scope: Scope = ALL,
    ) -> dict[str, QueueFigures]:
        """Figures per queue for sessions created at or after `since`.

        Every queue of `targets` is present (zeros when idle), plus any other
        queue found in the log, measured against `default_target_s`.
        """
        require_aware(since=since)
        if any(t < 0 for t in (*targets.values(), default_target_s)):
            raise InvalidRecord("target answer times must be >= 0")
        target: sa.ColumnElement[Any] = sa.literal(float(default_target_s), sa.Float)
        if targets:
            target = sa.case(
                {queue: float(t) for queue, t in targets.items()},
                value=_s.queue,
                else_=float(default_target_s),
            )
        query = (
            sa.select(
                _s.queue,
                _count(sa.not_(_REJECTED)).label("offered"),
                _count(_ANSWERED).label("answered"),
                _count(_ABANDONED).label("abandoned"),
                _count(_REJECTED).label("rejected"),
                sa.func.avg(sa.case((_ANSWERED, _s.wait_s))).label("avg_wait_s"),
                _count(sa.and_(_ANSWERED, _s.wait_s <= target)).label("within"),
            )
            .where(_s.created_at >= since, *_seen(scope))
            .group_by(_s.queue)
        )
        async with self._read() as conn:
            rows = {row.queue: row for row in await conn.execute(query)}
        queues = sorted(set(targets) | set(rows))
        return {queue: _figures(queue, rows.get(queue)) for queue in queues}

    async def hourly_waits(self, since: dt.datetime, tz: str,
                           scope: Scope = ALL) -> list[HourlyWaits]:
        """Calls since `since` by local hour of arrival in `tz`; hours without calls omitted."""
        require_aware(since=since)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRecord(f"unknown time zone {tz!r}") from None
        hour: sa.ColumnElement[int]
        if self.dialect == "sqlite":
            hour = sa.func.vwin_local_hour(_s.created_at, tz, type_=sa.Integer)
        else:
            hour = sa.cast(sa.extract("hour", sa.func.timezone(tz, _s.created_at)), sa.Integer)
        arrivals = (
            sa.select(hour.label("hour"), _s.answered_at, _s.wait_s)
            .where(_s.created_at >= since, sa.not_(_REJECTED), *_seen(scope))
            .subquery()
        )
        answered = arrivals.c.answered_at.is_not(None)
        query = (
            sa.select(
                arrivals.c.hour,
                sa.func.count().label("calls"),
                _count(answered).label("answered"),
                sa.func.avg(sa.case((answered, arrivals.c.wait_s))).label("avg_wait_s"),
            )
            .group_by(arrivals.c.hour)
            .order_by(arrivals.c.hour)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            HourlyWaits(
                hour=int(row.hour),
                calls=int(row.calls),
                answered=int(row.answered),
                avg_wait_s=None if row.avg_wait_s is None else float(row.avg_wait_s),
            )
            for row in rows
        ]
