"""Pending matters and their history: who changed what, and when.

The due date is worked out by the caller (the working-day calendar) and
stored, so listing "overdue" is a plain comparison with today's local date.
Whether a resolution came in time is fixed when the matter is resolved
(`resolved_on_time`), so the on-time rate is a sum in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import AlreadyExists, InvalidRecord
from server.storage.schema import matter_history, pending_matters
from server.storage.units import ALL, Scope
from signaling.matters import CLASSES, STATES, MatterError, check_transition

MAX_LIST: Final = 500

_p = pending_matters.c
_h = matter_history.c


class Matter(msgspec.Struct, frozen=True, kw_only=True):
    """A pending matter as stored; `due` is a local calendar date."""

    id: str
    session_id: str | None
    enterprise_name: str
    enterprise_uscc: str | None
    description: str
    matter_class: str
    department: str
    state: str
    opened_by: str
    opened_at: dt.datetime
    due: dt.date
    updated_at: dt.datetime
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolution: str | None = None
    resolved_on_time: bool | None = None


class MatterChange(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a matter's history."""

    ts: dt.datetime
    actor: str
    old_state: str | None
    new_state: str
    note: str | None


class DepartmentMatters(msgspec.Struct, frozen=True, kw_only=True):
    """Where one department stands: unresolved, overdue, and resolutions in time."""

    department: str
    unresolved: int
    overdue: int
    resolved: int
    resolved_on_time: int


def _matter(row: Any) -> Matter:
    return Matter(**{name: getattr(row, name) for name in Matter.__struct_fields__})


class MatterStore(StoreBase):
    """Open, change, read and list pending matters."""

    async def open_matter(self, matter: Matter) -> Matter:
        """Store a new matter (state `open`) and the first line of its history."""
        require_aware(opened_at=matter.opened_at)
        if matter.matter_class not in CLASSES or matter.state != "open":
            raise InvalidRecord(f"a new matter is open and of class {CLASSES}")
        async with self._write() as conn:
            exists = await conn.scalar(sa.select(_p.id).where(_p.id == matter.id))
            if exists is not None:
                raise AlreadyExists(f"matter {matter.id} exists")
            await conn.execute(pending_matters.insert().values(msgspec.structs.asdict(matter)))
            await conn.execute(matter_history.insert().values(
                matter_id=matter.id, ts=matter.opened_at, actor=matter.opened_by,
                old_state=None, new_state="open", note=matter.description))
        return matter

    async def change_matter(
        self, matter_id: str, new_state: str, note: str | None, actor: str, now: dt.datetime,
        on_time: Callable[[Matter, dt.datetime], bool],
        allowed: Callable[[Matter], None] = lambda matter: None,
    ) -> Matter | None:
        """Move a matter to `new_state` and log it; None for an unknown matter.

        `allowed` may refuse (raise) after seeing the matter, e.g. another
        department's; `on_time` decides, when resolving, whether it was in time.
        """
        require_aware(now=now)
        async with self._write() as conn:
            query = sa.select(pending_matters).where(_p.id == matter_id)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            matter = _matter(row)
            allowed(matter)
            text = check_transition(matter.state, new_state, note)
            changes: dict[str, Any] = {"state": new_state, "updated_at": now}
            if new_state == "resolved":
                changes |= {"resolved_by": actor, "resolved_at": now, "resolution": text,
                            "resolved_on_time": on_time(matter, now)}
            await conn.execute(pending_matters.update().where(_p.id == matter_id).values(changes))
            await conn.execute(matter_history.insert().values(
                matter_id=matter_id, ts=now, actor=actor, old_state=matter.state,
                new_state=new_state, note=text))
        return msgspec.structs.replace(matter, **changes)

    async def get_matter(self, matter_id: str) -> tuple[Matter, list[MatterChange]] | None:
        """A matter with its whole history, oldest first."""
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(pending_matters).where(_p.id == matter_id))).first()
            if row is None:
                return None
            history = (await conn.execute(
                sa.select(matter_history).where(_h.matter_id == matter_id).order_by(_h.id))).all()
        return _matter(row), [
            MatterChange(ts=h.ts, actor=h.actor, old_state=h.old_state, new_state=h.new_state,
                         note=h.note) for h in history
        ]

    async def list_matters(
        self, *, department: str | None = None, state: str | None = None,
        overdue_on: dt.date | None = None, start: dt.datetime | None = None,
        end: dt.datetime | None = None, limit: int = MAX_LIST, scope: Scope = ALL,
    ) -> list[Matter]:
        """Matters by due date; `overdue_on` keeps unresolved ones due before that day."""
        require_aware(start=start, end=end)
        if state is not None and state not in STATES:
            raise MatterError("invalid_state", f"unknown state {state!r}; expected one of {STATES}")
        if not 1 <= limit <= MAX_LIST:
            raise InvalidRecord(f"limit must be between 1 and {MAX_LIST}")
        query = sa.select(pending_matters).where(
            *scope.where(scope.sessions_clause(_p.session_id)))
        if department:
            query = query.where(_p.department == department)
        if state:
            query = query.where(_p.state == state)
        if overdue_on is not None:
            query = query.where(_p.state != "resolved", _p.due < overdue_on)
        if start is not None:
            query = query.where(_p.opened_at >= start)
        if end is not None:
            query = query.where(_p.opened_at < end)
        query = query.order_by(_p.due, _p.opened_at, _p.id).limit(limit)
        async with self._read() as conn:
            return [_matter(r) for r in await conn.execute(query)]

    async def matters_by_department(self, today: dt.date,
                                    scope: Scope = ALL) -> list[DepartmentMatters]:
        """For the managers: every department's unresolved, overdue and on-time counts."""
        unresolved = _p.state != "resolved"

        def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        query = sa.select(
            _p.department,
            count(unresolved).label("unresolved"),
            count(sa.and_(unresolved, _p.due < today)).label("overdue"),
            count(_p.state == "resolved").label("resolved"),
            count(_p.resolved_on_time.is_(True)).label("on_time"),
        ).where(*scope.where(scope.sessions_clause(_p.session_id))
                ).group_by(_p.department).order_by(_p.department)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [DepartmentMatters(department=r.department, unresolved=int(r.unresolved),
                                  overdue=int(r.overdue), resolved=int(r.resolved),
                                  resolved_on_time=int(r.on_time)) for r in rows]
