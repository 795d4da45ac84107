"""The append-only audit log of joint actions, hash-chained (``signaling.audit``).

Appends are serialized so that ``seq`` and the previous hash never race:
SQLite writers already queue on ``BEGIN IMMEDIATE`` (and the in-process write
lock); on PostgreSQL an advisory lock held to the end of the transaction makes
concurrent writers, on any node, take their turn. The lock is taken inside the
caller's transaction, so an action's change and its audit entries commit or
roll back together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.engine import StoreBase
from server.storage.schema import audit_log
from signaling.actions import ActionEvent
from signaling.audit import GENESIS, AuditEntry, ChainProblem, next_entry, verify_chain

#: pg_advisory_xact_lock key of the audit chain ("vWAU"); distinct from the migration lock.
AUDIT_LOCK: Final = 0x76574155
#: Entries read per query while walking the chain.
VERIFY_PAGE: Final = 2000


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=int(row.seq), ts=row.ts, actor=row.actor, action_id=row.action_id,
                      event=row.event, data=dict(row.data), hash=row.hash)


class AuditLog(StoreBase):
    """Append to and walk the audit chain."""

    async def _append_audit(
        self, conn: AsyncConnection, events: Sequence[ActionEvent]
    ) -> list[AuditEntry]:
        """Chain ``events`` after the newest entry, inside the caller's write transaction."""
        if not events:
            return []
        if self.dialect == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK})
        row = (
            await conn.execute(sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(1))
        ).first()
        prev = None if row is None else _entry(row)
        written: list[AuditEntry] = []
        for event in events:
            entry = next_entry(prev, ts=event.at, actor=event.actor, action_id=event.action_id,
                               event=event.event, data=event.data)
            await conn.execute(audit_log.insert().values(
                seq=entry.seq, ts=entry.ts, actor=entry.actor, action_id=entry.action_id,
                event=entry.event, data=entry.data,
                prev_hash=GENESIS if prev is None else prev.hash, hash=entry.hash,
            ))
            written.append(entry)
            prev = entry
        return written

    async def audit_entries(self, action_id: str | None = None) -> AsyncIterator[AuditEntry]:
        """Every entry in ``seq`` order (of one action when given), page by page."""
        after = 0
        while True:
            query = sa.select(audit_log).where(audit_log.c.seq > after)
            if action_id is not None:
                query = query.where(audit_log.c.action_id == action_id)
            async with self._read() as conn:
                rows = (await conn.execute(
                    query.order_by(audit_log.c.seq).limit(VERIFY_PAGE))).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < VERIFY_PAGE:
                return
            after = int(rows[-1].seq)

    async def verify_audit(
        self, expected_last: int | None = None
    ) -> tuple[int, ChainProblem | None]:
        """(entries read, first problem or None) over the whole chain."""
        count = 0
        entries: list[AuditEntry] = []
        async for entry in self.audit_entries():
            entries.append(entry)
            count += 1
        return count, verify_chain(entries, expected_last=expected_last)
