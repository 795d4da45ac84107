"""The city's units (city > district > sub-district > village) and what a manager may see.

A manager sees the sites of their unit's subtree (`Scope`); a manager of the city
unit, or with no unit, sees everything. Units are few (about 1,500 centres in
Shanghai), so a subtree is computed from one read of the table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.engine import StoreBase
from server.storage.errors import AlreadyExists, InvalidRecord, NotFound
from server.storage.records import UNIT_LEVELS, Unit, User
from server.storage.schema import sessions, sites, units


@dataclasses.dataclass(frozen=True)
class Scope:
    """The units whose sites a manager sees; `units` None means every site (and none)."""

    units: frozenset[str] | None = None
    root: str | None = None  # the manager's own unit (None: the city)

    @property
    def everything(self) -> bool:
        return self.units is None

    def sites_clause(self, site_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool] | None:
        """A condition on a site id column; None when nothing is to be filtered."""
        if self.units is None:
            return None
        in_units = sa.select(sites.c.id).where(sites.c.unit_id.in_(sorted(self.units)))
        return site_id.in_(in_units)

    def sessions_clause(self, session_id: sa.ColumnElement[Any]
                        ) -> sa.ColumnElement[bool] | None:
        """A condition on a session id column (of an action, a matter): its site is seen."""
        clause = self.sites_clause(sessions.c.site_id)
        return None if clause is None else session_id.in_(sa.select(sessions.c.id).where(clause))

    def where(self, clause: sa.ColumnElement[bool] | None) -> list[sa.ColumnElement[bool]]:
        """`clause` as a list for `.where(*...)`: empty when everything is seen."""
        return [] if clause is None else [clause]


ALL = Scope()


def _unit(row: Any) -> Unit:
    return Unit(id=row.id, name=row.name, level=row.level, parent_id=row.parent_id,
                created_at=row.created_at)


def subtree(parents: Mapping[str, str | None], root: str) -> frozenset[str]:
    """`root` and every unit below it."""
    children: dict[str | None, list[str]] = {}
    for unit, parent in parents.items():
        children.setdefault(parent, []).append(unit)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return frozenset(found)


def buckets(all_units: Iterable[Unit], base: str | None) -> dict[str, str]:
    """unit id -> the child of `base` it lies under (a unit of `base` itself: `base`);
    `base` None: the top-level units are the buckets. Units outside `base` are left out."""
    parent = {u.id: u.parent_id for u in all_units}
    out: dict[str, str] = {}
    for unit in parent:
        chain = [unit]  # the unit, its parent, ... up to the top
        while (up := parent.get(chain[-1])) is not None and up not in chain:
            chain.append(up)
        if base is None:
            out[unit] = chain[-1]
        elif base in chain:
            at = chain.index(base)
            out[unit] = chain[at - 1] if at > 0 else base
    return out


class UnitStore(StoreBase):
    """Units, the unit of a site, and the scope of a manager."""

    async def add_unit(self, unit_id: str, name: str, level: str,
                       parent_id: str | None = None) -> Unit:
        """Create a unit below `parent_id` (a higher level). Raises `AlreadyExists`,
        `NotFound` (parent), `InvalidRecord`."""
        if not unit_id or unit_id != unit_id.strip():
            raise InvalidRecord(f"bad unit id {unit_id!r}")
        if level not in UNIT_LEVELS:
            raise InvalidRecord(f"level must be one of {', '.join(UNIT_LEVELS)}, got {level!r}")
        unit = Unit(id=unit_id, name=name or unit_id, level=level, parent_id=parent_id,
                    created_at=self._clock())
        try:
            async with self._write() as conn:
                if parent_id is not None:
                    parent = (await conn.execute(
                        sa.select(units).where(units.c.id == parent_id))).first()
                    if parent is None:
                        raise NotFound(f"no unit {parent_id!r}")
                    if UNIT_LEVELS.index(parent.level) >= UNIT_LEVELS.index(level):
                        raise InvalidRecord(
                            f"a {level} cannot sit below the {parent.level} {parent_id!r}")
                await conn.execute(units.insert().values(
                    id=unit.id, name=unit.name, level=unit.level, parent_id=parent_id,
                    created_at=unit.created_at))
        except IntegrityError:
            raise AlreadyExists(f"unit {unit_id!r} already exists") from None
        return unit

    async def list_units(self) -> list[Unit]:
        """Every unit, by level then id."""
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(units).order_by(units.c.id))).all()
        return sorted((_unit(r) for r in rows), key=lambda u: (UNIT_LEVELS.index(u.level), u.id))

    async def get_unit(self, unit_id: str) -> Unit | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(units).where(units.c.id == unit_id))).first()
        return None if row is None else _unit(row)

    async def scope_of(self, user: User) -> Scope:
        """What `user` (a manager) may see."""
        if user.unit_id is None:
            return ALL
        all_units = await self.list_units()
        unit = next((u for u in all_units if u.id == user.unit_id), None)
        if unit is None:
            return Scope(units=frozenset(), root=user.unit_id)  # a unit gone: nothing
        if unit.level == "city":
            return Scope(units=None, root=unit.id)
        return Scope(units=subtree({u.id: u.parent_id for u in all_units}, unit.id),
                     root=unit.id)

    async def set_site_unit(self, site_id: str, unit_id: str | None) -> None:
        """Place a site in a unit. Raises `NotFound` for an unknown site or unit."""
        async with self._write() as conn:
            if unit_id is not None and await conn.scalar(
                    sa.select(units.c.id).where(units.c.id == unit_id)) is None:
                raise NotFound(f"no unit {unit_id!r}")
            result = await conn.execute(
                sites.update().where(sites.c.id == site_id).values(unit_id=unit_id))
        if result.rowcount == 0:
            raise NotFound(f"no site {site_id!r}")

    async def session_in_scope(self, session_id: str | None, scope: Scope) -> bool:
        """Whether the session (of an action, a matter, a recording) is one `scope` sees."""
        if scope.units is None:
            return True
        if session_id is None:
            return False
        async with self._read() as conn:
            site = await conn.scalar(
                sa.select(sessions.c.site_id).where(sessions.c.id == session_id))
        return await self.site_in_scope(site, scope)

    async def site_in_scope(self, site_id: str | None, scope: Scope) -> bool:
        """Whether a site (of a session, a terminal) is one `scope` sees."""
        if scope.units is None:
            return True
        if site_id is None:
            return False
        async with self._read() as conn:
            unit = await conn.scalar(sa.select(sites.c.unit_id).where(sites.c.id == site_id))
        return unit in scope.units
