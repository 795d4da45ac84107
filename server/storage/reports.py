"""Managers' reports for a period, by site, queue, department or specialist, computed in SQL.

Sessions are counted by when they were queued (rejected ones excluded);
joint actions by when they were completed; pending matters by when they were
opened, and resolutions by when they were resolved. The 90th-percentile wait
is PostgreSQL's ``percentile_cont(0.9)``; SQLite has no such aggregate, so
the first query also counts each group's waits and `percentile_90` fetches
just the two waits around it (server/storage/percentile.py).

On SQLite both session queries read ``ix_sessions_report`` by name: once
ANALYZE has run the planner prefers a skip-scan of a narrower index plus a
table lookup per session, which is slower over a year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, get_args

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import TableClause

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import InvalidRecord
from server.storage.percentile import percentile_90
from server.storage.schema import (
    joint_action_steps,
    joint_actions,
    pending_matters,
    session_participants,
    sessions,
    sites,
    users,
)
from server.storage.units import ALL, Scope, buckets
from signaling import events as ev

Dimension = Literal["site", "queue", "department", "specialist", "unit"]
DIMENSIONS: Final[tuple[str, ...]] = get_args(Dimension)
DEFAULT_TARGET_S: Final = 900.0



class _ReportScan(TableClause):
    """The sessions table, read on SQLite through the reports' covering index."""

    inherit_cache = True
    index: Final = "ix_sessions_report"


@compiles(_ReportScan)
def _compile_report_scan(element: _ReportScan, compiler: SQLCompiler, **kw: Any) -> str:
    text = str(compiler.visit_table(element, **kw))  # type: ignore[no-untyped-call]
    if kw.get("asfrom") and compiler.dialect.name == "sqlite":
        text += f" INDEXED BY {element.index}"
    return text


_scan = _ReportScan("sessions", *(sa.column(c.name, c.type) for c in sessions.c))
_s = _scan.c
_a = joint_actions.c
_st = joint_action_steps.c
_p = pending_matters.c
_ANSWERED = _s.answered_at.is_not(None)
_WAITED = sa.and_(_ANSWERED, _s.wait_s.is_not(None))  # the waits of the percentile
_COUNTED = _s.state != ev.STATE_REJECTED  # the sessions of every other figure


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
    # Appointments (by queue or site; server/storage/appointments.py), by slot start
    appointments_booked: int = 0
    appointments_served: int = 0
    appointments_no_show: int = 0
    appointments_cancelled: int = 0
    avg_wait_appointment_s: float | None = None  # from the slot's start
    avg_wait_walk_in_s: float | None = None  # calls without appointment, from arrival
    handoffs: int = 0  # sessions a phone took over from the kiosk (`call.handoff`)


class Report(msgspec.Struct, kw_only=True):
    by: str
    start: dt.datetime
    end: dt.datetime
    rows: list[ReportRow]
    actions_completed: dict[str, int]


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    """Rows meeting `condition` (count skips the NULLs: no sum to coalesce)."""
    return sa.func.count(sa.case((condition, 1)))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class _Ask(msgspec.Struct, frozen=True, kw_only=True):
    """What a report is asked for: the dimension, what the manager sees, and (by unit) the
    unit each site's unit rolls up to."""

    by: str
    scope: Scope
    rollup: dict[str, str] = msgspec.field(default_factory=dict)

    def bucket(self, unit_id: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The roll-up unit of a site's unit (NULL: a site in no unit the manager has)."""
        if not self.rollup:
            return sa.null()
        return sa.case(self.rollup, value=unit_id, else_=sa.null())

    def seen(self, site_id: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        return self.scope.where(self.scope.sites_clause(site_id))

    def seen_session(self, session_id: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        """Actions and matters count when their session's site is seen."""
        return self.scope.where(self.scope.sessions_clause(session_id))


def _session_key(ask: _Ask) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """(key, label) columns of a session row for the dimension."""
    by = ask.by
    if by == "unit":
        key = ask.bucket(sites.c.unit_id)
        return key, sa.func.max(sa.case((_COUNTED, key)))
    if by == "site":
        return _s.site_id, _label(_s.site_name)
    if by == "queue":
        return _s.queue, _label(_s.queue)
    if by == "specialist":
        return _s.specialist_id, _label(_s.specialist_name)
    return users.c.department, _label(users.c.department)


def _label(name: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.max(sa.case((_COUNTED, name)))


def _from_sessions(by: str) -> Any:
    if by == "unit":
        return _scan.outerjoin(sites, sites.c.id == _s.site_id)
    if by == "department":
        return _scan.outerjoin(users, users.c.id == _s.specialist_id)
    return _scan


def _target(targets: Mapping[str, float]) -> sa.ColumnElement[Any]:
    if not targets:
        return sa.literal(DEFAULT_TARGET_S, sa.Float)
    return sa.case({q: float(t) for q, t in targets.items()}, value=_s.queue,
                   else_=DEFAULT_TARGET_S)


def _with_site(table: sa.Table, session_id: sa.ColumnElement[Any]) -> Any:
    """An action or matter joined to its session's site (for the unit of the site)."""
    return (table.outerjoin(sessions, sessions.c.id == session_id)
            .outerjoin(sites, sites.c.id == sessions.c.site_id))


class ReportStore(StoreBase):
    """The figures behind the managers' report pages and CSV."""

    async def report(self, by: str, start: dt.datetime, end: dt.datetime,
                     targets: Mapping[str, float], scope: Scope = ALL) -> Report:
        """Every figure of the period [start, end) at the sites `scope` sees, one row per
        key of `by`. By unit, a row is a unit one level below the manager's (the city's
        districts, a district's sub-districts), the sites below it rolled up into it."""
        require_aware(start=start, end=end)
        if by not in DIMENSIONS:
            raise InvalidRecord(f"by must be one of {DIMENSIONS}, got {by!r}")
        if end <= start:
            raise InvalidRecord("the period must end after it starts")
        ask, names = await self._ask(by, scope)
        rows: dict[str | None, ReportRow] = {}

        def row(key: str | None, label: str | None = None) -> ReportRow:
            if key not in rows:
                rows[key] = ReportRow(key=key, label=label or key)
            return rows[key]

        async with self._read() as conn:
            await self._session_figures(conn, ask, start, end, targets, row)
            for r in await conn.execute(self._handoffs_query(ask, start, end)):
                row(r.key).handoffs = int(r.n)
            totals = await self._action_and_matter_figures(conn, ask, start, end, row)
        if by in ("queue", "site"):
            await self._appointment_figures(by, start, end, scope, row)
        for item in rows.values():
            if item.key in names:
                item.label = names[item.key]
        ordered = sorted(rows.values(), key=lambda x: (x.key is None, x.key or ""))
        return Report(by=by, start=start, end=end, rows=ordered, actions_completed=totals)

    async def _action_and_matter_figures(self, conn: AsyncConnection, ask: _Ask,
                                         start: dt.datetime, end: dt.datetime,
                                         row: Callable[..., ReportRow]) -> dict[str, int]:
        """Joint actions completed and pending matters into the rows; the actions' totals."""
        totals: dict[str, int] = {}
        for r in await conn.execute(self._actions_query(ask, start, end)):
            row(r.key).actions_completed[r.type] = int(r.completed)
        for r in await conn.execute(
            sa.select(_a.type, sa.func.count().label("n"))
            .where(_a.state == "completed", _a.closed_at >= start, _a.closed_at < end,
                   *ask.seen_session(_a.session_id))
            .group_by(_a.type)
        ):
            totals[r.type] = int(r.n)
        for r in await conn.execute(self._matters_query(ask, _p.opened_at, start, end)):
            row(r.key).matters_opened = int(r.n)
        for r in await conn.execute(self._matters_query(ask, _p.resolved_at, start, end)):
            item = row(r.key)
            item.matters_resolved, item.matters_resolved_on_time = int(r.n), int(r.on_time)
        return totals

    async def _appointment_figures(self, by: str, start: dt.datetime, end: dt.datetime,
                                   scope: Scope, row: Callable[..., ReportRow]) -> None:
        """Bookings by queue or site (server/storage/appointments.py) into the rows."""
        booked = await self.appointment_report(  # type: ignore[attr-defined]
            by, start, end, scope)
        for key, fig in booked.items():
            item = row(key)
            item.appointments_booked, item.appointments_served = fig.booked, fig.served
            item.appointments_no_show, item.appointments_cancelled = fig.no_show, fig.cancelled
            item.avg_wait_appointment_s = fig.avg_wait_from_slot_s
            item.avg_wait_walk_in_s = fig.avg_wait_walk_in_s

    async def _ask(self, by: str, scope: Scope) -> tuple[_Ask, dict[str, str]]:
        """The question, and (by unit) the units' names for the rows' labels."""
        if by != "unit":
            return _Ask(by=by, scope=scope), {}
        units = await self.list_units()  # type: ignore[attr-defined]
        base = scope.root
        tops = [u.id for u in units if u.parent_id is None]
        if base is None and len(tops) == 1:
            base = tops[0]  # the city: its districts are the rows
        return (_Ask(by=by, scope=scope, rollup=buckets(units, base)),
                {u.id: u.name for u in units})

    async def _session_figures(self, conn: AsyncConnection, ask: _Ask, start: dt.datetime,
                               end: dt.datetime, targets: Mapping[str, float],
                               row: Callable[..., ReportRow]) -> None:
        """Fill in the session figures and the 90th-percentile wait of each group."""
        waits: dict[str | None, int] = {}
        means: list[float] = []
        by = ask.by
        for r in await conn.execute(self._session_query(ask, start, end, targets)):
            if int(r.waits):
                waits[r.key] = int(r.waits)
            if not int(r.sessions) and not int(r.waits):
                continue  # only rejected sessions, none answered: no row
            item = row(r.key, r.label)
            item.sessions, item.answered = int(r.sessions), int(r.answered)
            item.answered_within_target = int(r.within)
            item.abandoned, item.rated = int(r.abandoned), int(r.rated)
            item.avg_wait_s, item.avg_talk_s = _float(r.avg_wait), _float(r.avg_talk)
            item.avg_rating = _float(r.avg_rating)
            if r.avg_wait is not None:
                means.append(float(r.avg_wait))
        if self.dialect == "postgresql":
            for r in await conn.execute(self._p90_query(ask, start, end)):
                row(r.key).p90_wait_s = _float(r.p90)
        else:  # the lowest group mean: under nearly every group's 90th percentile
            key, _ = _session_key(ask)
            where = (_s.created_at >= start, _s.created_at < end, _WAITED, *ask.seen(_s.site_id))
            p90s = await percentile_90(conn, key, _s.wait_s, _from_sessions(by), where, waits,
                                       min(means, default=None))
            for group, p90 in p90s.items():
                row(group).p90_wait_s = p90

    def _session_query(self, ask: _Ask, start: dt.datetime, end: dt.datetime,
                       targets: Mapping[str, float]) -> sa.Select[Any]:
        """Every session figure, and the count of waits behind the percentile, in one scan."""
        key, label = _session_key(ask)
        return (
            sa.select(
                key.label("key"), label.label("label"),
                _count(_COUNTED).label("sessions"),
                _count(sa.and_(_COUNTED, _ANSWERED)).label("answered"),
                _count(sa.and_(_COUNTED, _ANSWERED, _s.wait_s <= _target(targets)))
                .label("within"),
                _count(sa.and_(_s.state == ev.STATE_ABANDONED, _s.answered_at.is_(None)))
                .label("abandoned"),
                sa.func.avg(sa.case((sa.and_(_COUNTED, _ANSWERED), _s.wait_s)))
                .label("avg_wait"),
                sa.func.avg(sa.case((sa.and_(_COUNTED, _ANSWERED), _s.talk_s)))
                .label("avg_talk"),
                sa.func.count(sa.case((_COUNTED, _s.rating))).label("rated"),
                sa.func.avg(sa.case((_COUNTED, _s.rating))).label("avg_rating"),
                _count(_WAITED).label("waits"),
            )
            .select_from(_from_sessions(ask.by))
            .where(_s.created_at >= start, _s.created_at < end, *ask.seen(_s.site_id))
            .group_by(key)
        )

    def _handoffs_query(self, ask: _Ask, start: dt.datetime, end: dt.datetime
                        ) -> sa.Select[Any]:
        """Sessions a phone took over: the projection made the phone a `visitor` participant."""
        key, _ = _session_key(ask)
        handed = sa.select(session_participants.c.session_id).where(
            session_participants.c.role == "visitor")
        return (sa.select(key.label("key"), sa.func.count().label("n"))
                .select_from(_from_sessions(ask.by))
                .where(_s.created_at >= start, _s.created_at < end, _s.id.in_(handed),
                       *ask.seen(_s.site_id)).group_by(key))

    def _p90_query(self, ask: _Ask, start: dt.datetime, end: dt.datetime) -> sa.Select[Any]:
        """PostgreSQL: the 90th-percentile wait of each group."""
        key, _ = _session_key(ask)
        cont = sa.func.percentile_cont(0.9).within_group(_s.wait_s.asc())
        return (sa.select(key.label("key"), cont.label("p90"))
                .select_from(_from_sessions(ask.by))
                .where(_s.created_at >= start, _s.created_at < end, _WAITED,
                       *ask.seen(_s.site_id)).group_by(key))

    def _actions_query(self, ask: _Ask, start: dt.datetime, end: dt.datetime
                       ) -> sa.Select[Any]:
        by = ask.by
        done = (_a.state == "completed", _a.closed_at >= start, _a.closed_at < end,
                *ask.seen_session(_a.session_id))
        key: sa.ColumnElement[Any]
        if by == "unit":
            key = ask.bucket(sites.c.unit_id)
            source: Any = _with_site(joint_actions, _a.session_id)
        elif by in ("department", "specialist"):
            key = _st.department if by == "department" else _st.signed_by
            source = joint_actions.join(joint_action_steps, _st.action_id == _a.id)
        else:
            key = sessions.c.site_id if by == "site" else sessions.c.queue
            source = joint_actions.outerjoin(sessions, sessions.c.id == _a.session_id)
        return (sa.select(key.label("key"), _a.type.label("type"),
                          sa.func.count(sa.distinct(_a.id)).label("completed"))
                .select_from(source).where(*done).group_by(key, _a.type))

    def _matters_query(self, ask: _Ask, when: sa.ColumnElement[Any], start: dt.datetime,
                       end: dt.datetime) -> sa.Select[Any]:
        by = ask.by
        key: sa.ColumnElement[Any]
        source: Any = pending_matters
        if by == "unit":
            key = ask.bucket(sites.c.unit_id)
            source = _with_site(pending_matters, _p.session_id)
        elif by == "department":
            key = _p.department
        elif by == "specialist":
            key = _p.opened_by if when is _p.opened_at else _p.resolved_by
        else:
            key = sessions.c.site_id if by == "site" else sessions.c.queue
            source = pending_matters.outerjoin(sessions, sessions.c.id == _p.session_id)
        return (sa.select(key.label("key"), sa.func.count().label("n"),
                          _count(_p.resolved_on_time.is_(True)).label("on_time"))
                .select_from(source)
                .where(when >= start, when < end, *ask.seen_session(_p.session_id))
                .group_by(key))
