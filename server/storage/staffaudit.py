"""The account audit trail: who created, changed, reset, disabled or enabled an account,
and when. Written in the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.engine import StoreBase
from server.storage.records import AccountChange
from server.storage.schema import account_audit

AUDIT_PAGE: Final = 200  # the Staff page shows the newest changes; older ones stay stored


class AccountAuditStore(StoreBase):
    """Appends to and reads the account audit trail."""

    async def _audit(self, conn: AsyncConnection, actor: str, username: str, action: str,
                     data: Mapping[str, Any]) -> None:
        await conn.execute(account_audit.insert().values(
            ts=self._clock(), actor=actor, username=username, action=action, data=dict(data)))

    async def account_changes(self, username: str | None = None,
                              limit: int = AUDIT_PAGE) -> list[AccountChange]:
        """The newest changes first, of one account or of all."""
        query = sa.select(account_audit).order_by(account_audit.c.id.desc()).limit(limit)
        if username is not None:
            query = query.where(account_audit.c.username == username)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [AccountChange(id=r.id, ts=r.ts, actor=r.actor, username=r.username,
                              action=r.action, data=dict(r.data)) for r in rows]
