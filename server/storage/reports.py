"""Managers' reports for a period, by site, queue, department or specialist, computed in SQL.

Sessions are counted by when they were queued (rejected ones excluded);
joint actions by when they were completed; pending matters by when they were
opened, and resolutions by when they were resolved. The 90th-percentile wait
is PostgreSQL's ``percentile_cont(0.9)``; SQLite has no such aggregate, so
the same linear interpolation is done with window functions: each answered
wait is numbered within its group and the two neighbours of rank
``0.9 * (n - 1)`` are picked out (integer arithmetic, so no rounding slips).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

import msgspec
import sqlalchemy as sa

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import InvalidRecord
from server.storage.schema import (
    joint_action_steps,
    joint_actions,
    pending_matters,
    sessions,
    users,
)
from signaling import events as ev

Dimension = Literal["site", "queue", "department", "specialist"]
DIMENSIONS: Final[tuple[str, ...]] = get_args(Dimension)
DEFAULT_TARGET_S: Final = 900.0

_s = sessions.c
_a = joint_actions.c
_st = joint_action_steps.c
_p = pending_matters.c
_ANSWERED = _s.answered_at.is_not(None)


class ReportRow(msgspec.Struct, kw_only=True):
    """The figures of one site, queue, department or specialist (key None: not known)."""

    key: str | None
    label: str | None
    sessions: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0
    avg_wait_s: float | None = None
    p90_wait_s: float | None = None
    avg_talk_s: float | None = None
    rated: int = 0
    avg_rating: float | None = None
    actions_completed: dict[str, int] = msgspec.field(default_factory=dict)
    matters_opened: int = 0
    matters_resolved: int = 0
    matters_resolved_on_time: int = 0


class Report(msgspec.Struct, kw_only=True):
    by: str
    start: dt.datetime
    end: dt.datetime
    rows: list[ReportRow]
    actions_completed: dict[str, int]


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _session_key(by: str) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """(key, label) columns of a session row for the dimension."""
    if by == "site":
        return _s.site_id, sa.func.max(_s.site_name)
    if by == "queue":
        return _s.queue, sa.func.max(_s.queue)
    if by == "specialist":
        return _s.specialist_id, sa.func.max(_s.specialist_name)
    return users.c.department, sa.func.max(users.c.department)


def _from_sessions(by: str) -> Any:
    if by == "department":
        return sessions.outerjoin(users, users.c.id == _s.specialist_id)
    return sessions


def _target(targets: Mapping[str, float]) -> sa.ColumnElement[Any]:
    if not targets:
        return sa.literal(DEFAULT_TARGET_S, sa.Float)
    return sa.case({q: float(t) for q, t in targets.items()}, value=_s.queue,
                   else_=DEFAULT_TARGET_S)


class ReportStore(StoreBase):
    """The figures behind the managers' report pages and CSV."""

    async def report(self, by: str, start: dt.datetime, end: dt.datetime,
                     targets: Mapping[str, float]) -> Report:
        """Every figure of the period [start, end), one row per key of `by`."""
        require_aware(start=start, end=end)
        if by not in DIMENSIONS:
            raise InvalidRecord(f"by must be one of {DIMENSIONS}, got {by!r}")
        if end <= start:
            raise InvalidRecord("the period must end after it starts")
        rows: dict[str | None, ReportRow] = {}

        def row(key: str | None, label: str | None = None) -> ReportRow:
            if key not in rows:
                rows[key] = ReportRow(key=key, label=label or key)
            return rows[key]

        async with self._read() as conn:
            for r in await conn.execute(self._session_query(by, start, end, targets)):
                item = row(r.key, r.label)
                item.sessions, item.answered = int(r.sessions), int(r.answered)
                item.answered_within_target = int(r.within)
                item.abandoned, item.rated = int(r.abandoned), int(r.rated)
                item.avg_wait_s, item.avg_talk_s = _float(r.avg_wait), _float(r.avg_talk)
                item.avg_rating = _float(r.avg_rating)
            for r in await conn.execute(self._p90_query(by, start, end)):
                row(r.key).p90_wait_s = _float(r.p90)
            totals: dict[str, int] = {}
            for r in await conn.execute(self._actions_query(by, start, end)):
                row(r.key).actions_completed[r.type] = int(r.completed)
            for r in await conn.execute(
                sa.select(_a.type, sa.func.count().label("n"))
                .where(_a.state == "completed", _a.closed_at >= start, _a.closed_at < end)
                .group_by(_a.type)
            ):
                totals[r.type] = int(r.n)
            for r in await conn.execute(self._matters_query(by, _p.opened_at, start, end)):
                row(r.key).matters_opened = int(r.n)
            for r in await conn.execute(self._matters_query(by, _p.resolved_at, start, end)):
                item = row(r.key)
                item.matters_resolved, item.matters_resolved_on_time = int(r.n), int(r.on_time)
        ordered = sorted(rows.values(), key=lambda x: (x.key is None, x.key or ""))
        return Report(by=by, start=start, end=end, rows=ordered, actions_completed=totals)

    def _session_query(self, by: str, start: dt.datetime, end: dt.datetime,
                       targets: Mapping[str, float]) -> sa.Select[Any]:
        key, label = _session_key(by)
        return (
            sa.select(
                key.label("key"), label.label("label"),
                sa.func.count().label("sessions"),
                _count(_ANSWERED).label("answered"),
                _count(sa.and_(_ANSWERED, _s.wait_s <= _target(targets))).label("within"),
                _count(sa.and_(_s.state == ev.STATE_ABANDONED, _s.answered_at.is_(None)))
                .label("abandoned"),
                sa.func.avg(sa.case((_ANSWERED, _s.wait_s))).label("avg_wait"),
                sa.func.avg(sa.case((_ANSWERED, _s.talk_s))).label("avg_talk"),
                sa.func.count(_s.rating).label("rated"),
                sa.func.avg(_s.rating).label("avg_rating"),
            )
            .select_from(_from_sessions(by))
            .where(_s.created_at >= start, _s.created_at < end,
                   _s.state != ev.STATE_REJECTED)
            .group_by(key)
        )

    def _p90_query(self, by: str, start: dt.datetime, end: dt.datetime) -> sa.Select[Any]:
        key, _ = _session_key(by)
        where = (_s.created_at >= start, _s.created_at < end, _ANSWERED, _s.wait_s.is_not(None))
        if self.dialect == "postgresql":
            cont = sa.func.percentile_cont(0.9).within_group(_s.wait_s.asc())
            return (sa.select(key.label("key"), cont.label("p90"))
                    .select_from(_from_sessions(by)).where(*where).group_by(key))
        # One sort: the rank and the group size share the window, so SQLite sorts once.
        rank = sa.func.row_number().over(partition_by=key, order_by=_s.wait_s, rows=(None, None))
        size = sa.func.count().over(partition_by=key, order_by=_s.wait_s, rows=(None, None))
        ranked = (
            sa.select(
                key.label("key"), _s.wait_s.label("wait"),
                (rank - 1).label("rn"), (9 * (size - 1)).label("tenths"),
            )
            .select_from(_from_sessions(by)).where(*where).subquery()
        )
        rn, tenths = ranked.c.rn, ranked.c.tenths  # tenths: 10 x the rank of the 90th pct
        low = sa.func.min(sa.case((rn == tenths // 10, ranked.c.wait)))
        high = sa.func.min(sa.case((rn == tenths // 10 + 1, ranked.c.wait)))
        fraction = sa.func.max((tenths % 10) / 10.0)
        p90 = low + fraction * (sa.func.coalesce(high, low) - low)
        return (sa.select(ranked.c.key, p90.label("p90"))
                .where(sa.or_(rn == tenths // 10, rn == tenths // 10 + 1))
                .group_by(ranked.c.key))

    def _actions_query(self, by: str, start: dt.datetime, end: dt.datetime) -> sa.Select[Any]:
        done = (_a.state == "completed", _a.closed_at >= start, _a.closed_at < end)
        key: sa.ColumnElement[Any]
        if by in ("department", "specialist"):
            key = _st.department if by == "department" else _st.signed_by
            source: Any = joint_actions.join(joint_action_steps, _st.action_id == _a.id)
        else:
            key = _s.site_id if by == "site" else _s.queue
            source = joint_actions.outerjoin(sessions, _s.id == _a.session_id)
        return (sa.select(key.label("key"), _a.type.label("type"),
                          sa.func.count(sa.distinct(_a.id)).label("completed"))
                .select_from(source).where(*done).group_by(key, _a.type))

    def _matters_query(self, by: str, when: sa.ColumnElement[Any], start: dt.datetime,
                       end: dt.datetime) -> sa.Select[Any]:
        key: sa.ColumnElement[Any]
        source: Any = pending_matters
        if by == "department":
            key = _p.department
        elif by == "specialist":
            key = _p.opened_by if when is _p.opened_at else _p.resolved_by
        else:
            key = _s.site_id if by == "site" else _s.queue
            source = pending_matters.outerjoin(sessions, _s.id == _p.session_id)
        return (sa.select(key.label("key"), sa.func.count().label("n"),
                          _count(_p.resolved_on_time.is_(True)).label("on_time"))
                .select_from(source).where(when >= start, when < end).group_by(key))
