"""Sites and their terminals; a terminal authenticates with a device token's hash."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import AlreadyExists, InvalidRecord, NotFound, UnknownSite
from server.storage.inlists import padded
from server.storage.records import SITE_KINDS, Site, Terminal
from server.storage.schema import sites, terminals, units
from server.storage.units import ALL, Scope

TOUCH_BATCH: Final = 500  # ids per UPDATE: stays under every driver's parameter limit

_TERMINAL_QUERY = sa.select(
    terminals.c.id,
    terminals.c.name,
    terminals.c.created_at,
    terminals.c.revoked_at,
    terminals.c.last_seen_at,
    sites.c.id.label("site_id"),
    sites.c.name.label("site_name"),
    sites.c.kind.label("site_kind"),
    sites.c.created_at.label("site_created_at"),
    sites.c.unit_id.label("site_unit_id"),
).join(sites, sites.c.id == terminals.c.site_id)


def _site(row: Any) -> Site:
    return Site(id=row.id, name=row.name, kind=row.kind, created_at=row.created_at,
                unit_id=row.unit_id)


def _terminal(row: Any) -> Terminal:
    site = Site(
        id=row.site_id, name=row.site_name, kind=row.site_kind, created_at=row.site_created_at,
        unit_id=row.site_unit_id,
    )
    return Terminal(
        id=row.id,
        name=row.name,
        site=site,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_seen_at=row.last_seen_at,
    )


def _check_id(kind: str, value: str) -> None:
    if not value or value != value.strip():
        raise InvalidRecord(f"bad {kind} id {value!r}")


class SiteStore(StoreBase):
    """Sites and terminals."""

    async def add_site(self, site_id: str, name: str, kind: str,
                       unit_id: str | None = None) -> Site:
        """Create a site (in a unit). Raises `AlreadyExists`, `InvalidRecord` for a bad kind,
        `NotFound` for an unknown unit."""
        _check_id("site", site_id)
        if kind not in SITE_KINDS:
            raise InvalidRecord(f"site kind must be one of {sorted(SITE_KINDS)}, got {kind!r}")
        site = Site(id=site_id, name=name or site_id, kind=kind, created_at=self._clock(),
                    unit_id=unit_id)
        try:
            async with self._write() as conn:
                if unit_id is not None and await conn.scalar(
                        sa.select(units.c.id).where(units.c.id == unit_id)) is None:
                    raise NotFound(f"no unit {unit_id!r}")
                await conn.execute(
                    sites.insert().values(
                        id=site.id, name=site.name, kind=site.kind, created_at=site.created_at,
                        unit_id=unit_id,
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"site {site_id!r} already exists") from None
        return site

    async def get_site(self, site_id: str) -> Site | None:
        """The site with that id."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(sites).where(sites.c.id == site_id))).first()
        return None if row is None else _site(row)

    async def list_sites(self, scope: Scope = ALL) -> list[Site]:
        """All sites `scope` sees, by id."""
        query = sa.select(sites).order_by(sites.c.id)
        if (seen := scope.sites_clause(sites.c.id)) is not None:
            query = query.where(seen)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_site(row) for row in rows]

    async def add_terminal(
        self, terminal_id: str, site_id: str, name: str, token_hash: str
    ) -> Terminal:
        """Provision a terminal. Raises `UnknownSite`, `AlreadyExists` (id or token)."""
        _check_id("terminal", terminal_id)
        if not token_hash:
            raise InvalidRecord("token_hash is empty")
        now = self._clock()
        try:
            async with self._write() as conn:
                row = (await conn.execute(sa.select(sites).where(sites.c.id == site_id))).first()
                if row is None:
                    raise UnknownSite(f"unknown site {site_id!r}")
                await conn.execute(
                    terminals.insert().values(
                        id=terminal_id,
                        site_id=site_id,
                        name=name or terminal_id,
                        token_hash=token_hash,
                        created_at=now,
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"terminal {terminal_id!r} or its token already exists") from None
        return Terminal(
            id=terminal_id,
            name=name or terminal_id,
            site=_site(row),
            created_at=now,
            revoked_at=None,
            last_seen_at=None,
        )

    async def get_terminal(self, terminal_id: str) -> Terminal | None:
        """The terminal with that id, revoked or not."""
        async with self._read() as conn:
            row = (await conn.execute(_TERMINAL_QUERY.where(terminals.c.id == terminal_id))).first()
        return None if row is None else _terminal(row)

    async def terminal_by_token_hash(self, token_hash: str) -> Terminal | None:
        """The terminal a device token opens; None when unknown or revoked."""
        query = _TERMINAL_QUERY.where(
            terminals.c.token_hash == token_hash, terminals.c.revoked_at.is_(None)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _terminal(row)

    async def terminals_by_token_hashes(self, hashes: Iterable[str]) -> dict[str, Terminal]:
        """`terminal_by_token_hash` for many tokens in few queries (a reconnect storm)."""
        wanted = sorted(set(hashes))
        found: dict[str, Terminal] = {}
        async with self._read() as conn:
            for start in range(0, len(wanted), TOUCH_BATCH):
                query = _TERMINAL_QUERY.add_columns(terminals.c.token_hash).where(
                    terminals.c.token_hash.in_(padded(wanted[start : start + TOUCH_BATCH])),
                    terminals.c.revoked_at.is_(None))
                for row in await conn.execute(query):
                    found[row.token_hash] = _terminal(row)
        return found

    async def revoke_terminal(self, terminal_id: str) -> bool:
        """Disable a terminal for good; True if it exists (the first revocation time stays)."""
        async with self._write() as conn:
            known = await conn.scalar(
                sa.select(terminals.c.id).where(terminals.c.id == terminal_id)
            )
            if known is None:
                return False
            await conn.execute(
                terminals.update()
                .where(terminals.c.id == terminal_id, terminals.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
        return True

    async def touch_terminals(self, terminal_ids: Iterable[str], now: dt.datetime) -> None:
        """Record that these terminals were online at `now`, in a few statements."""
        require_aware(now=now)
        ids = sorted(set(terminal_ids))
        if not ids:
            return
        async with self._write() as conn:
            for start in range(0, len(ids), TOUCH_BATCH):
                batch = ids[start : start + TOUCH_BATCH]
                await conn.execute(
                    terminals.update().where(terminals.c.id.in_(padded(batch)))
                    .values(last_seen_at=now)
                )

    async def revoked_among(self, terminal_ids: Iterable[str]) -> set[str]:
        """Those of these terminals that are revoked or no longer exist."""
        ids = sorted(set(terminal_ids))
        active: set[str] = set()
        async with self._read() as conn:
            for start in range(0, len(ids), TOUCH_BATCH):
                batch = ids[start : start + TOUCH_BATCH]
                rows = await conn.execute(
                    sa.select(terminals.c.id).where(
                        terminals.c.id.in_(padded(batch)), terminals.c.revoked_at.is_(None)
                    )
                )
                active.update(row.id for row in rows)
        return set(ids) - active

    async def list_terminals(self, site_id: str | None = None,
                             scope: Scope = ALL) -> list[Terminal]:
        """All terminals `scope` sees (optionally of one site) with their site, by id."""
        query = _TERMINAL_QUERY.order_by(terminals.c.id)
        if (seen := scope.sites_clause(terminals.c.site_id)) is not None:
            query = query.where(seen)
        if site_id is not None:
            query = query.where(terminals.c.site_id == site_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_terminal(row) for row in rows]
