"""Hand-off tickets (`signaling.handoff`): a phone takes a terminal's waiting call over.

Kept in the database every node shares, so a ticket opens on whichever node the phone
reaches; "used" is set by one conditional UPDATE, so a ticket opens once, whichever
nodes race for it. Only the ticket's SHA-256 is stored.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from server.storage.engine import StoreBase, require_aware
from server.storage.schema import UTCDateTime, metadata
from signaling.backend import Ticket

handoff_tickets = sa.Table(
    "handoff_tickets",
    metadata,
    sa.Column("ticket_hash", sa.String, primary_key=True),
    sa.Column("call_id", sa.String, nullable=False),
    sa.Column("terminal_id", sa.String, nullable=False),
    sa.Column("visitor_id", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("welcomed_at", UTCDateTime),  # the phone that opened it got its `welcome`
    sa.Index("ix_handoff_tickets_expires_at", "expires_at"),
    sa.Index("ix_handoff_tickets_visitor_id", "visitor_id"),
)

KEEP_USED = dt.timedelta(days=1)  # a used ticket still lets its phone resume; a call is shorter


class HandoffStore(StoreBase):
    async def add_handoff_ticket(self, ticket_hash: str, ticket: Ticket) -> None:
        require_aware(expires_at=ticket.expires_at)
        async with self._write() as conn:
            await conn.execute(handoff_tickets.insert().values(
                ticket_hash=ticket_hash, call_id=ticket.call_id, terminal_id=ticket.terminal_id,
                visitor_id=ticket.visitor_id, created_at=self._clock(),
                expires_at=ticket.expires_at))

    async def handoff_ticket(self, ticket_hash: str) -> Ticket | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(handoff_tickets).where(
                handoff_tickets.c.ticket_hash == ticket_hash))).first()
        if row is None:
            return None
        return Ticket(call_id=row.call_id, terminal_id=row.terminal_id,
                      visitor_id=row.visitor_id, expires_at=row.expires_at,
                      used=row.used_at is not None, welcomed=row.welcomed_at is not None)

    async def welcome_handoff_ticket(self, ticket_hash: str) -> None:
        async with self._write() as conn:
            await conn.execute(handoff_tickets.update().where(
                handoff_tickets.c.ticket_hash == ticket_hash,
                handoff_tickets.c.welcomed_at.is_(None)).values(welcomed_at=self._clock()))

    async def visitor_call(self, visitor_id: str) -> str | None:
        async with self._read() as conn:
            return (await conn.execute(sa.select(handoff_tickets.c.call_id).where(
                handoff_tickets.c.visitor_id == visitor_id,
                handoff_tickets.c.used_at.is_not(None)))).scalar()

    async def use_handoff_ticket(self, ticket_hash: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(handoff_tickets.update().where(
                handoff_tickets.c.ticket_hash == ticket_hash,
                handoff_tickets.c.used_at.is_(None)).values(used_at=self._clock()))
        return bool(result.rowcount == 1)

    async def purge_handoff_tickets(self, now: dt.datetime) -> int:
        """Forget tickets expired unused, and used ones a day past their expiry."""
        require_aware(now=now)
        async with self._write() as conn:
            result = await conn.execute(handoff_tickets.delete().where(sa.or_(
                sa.and_(handoff_tickets.c.used_at.is_(None),
                        handoff_tickets.c.expires_at <= now),
                handoff_tickets.c.expires_at <= now - KEEP_USED)))
        return int(result.rowcount or 0)
