"""Forms presented in a session: one row each, every change chained into the audit log.

Signing is a compare-and-set (`state = 'presented'` in the `WHERE`): of two signatures
racing, one row changes and the other is refused with `form_already_signed`, inside the same
transaction that appends the audit entry, so a form is signed once and its hash is in
the chain exactly when the row says it is signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from server.storage.auditlog import AuditLog
from server.storage.schema import forms
from signaling.actions import ActionEvent
from signaling.errors import Refused
from signaling.forms import FormRecord

_f = forms.c
_RECORD = [_f.id, _f.action_id, _f.session_id, _f.call_id, _f.terminal_id, _f.template, _f.state,
           _f.unsigned_sha256, _f.view_key, _f.presented_by, _f.presented_at, _f.sha256, _f.path,
           _f.closed_by, _f.closed_at]


def _record(row: Any) -> FormRecord:
    return FormRecord(
        id=row.id, action_id=row.action_id, session_id=row.session_id, call_id=row.call_id,
        terminal_id=row.terminal_id, template=row.template, state=row.state,
        unsigned_sha256=row.unsigned_sha256, view_key=row.view_key,
        presented_by=row.presented_by,
        presented_at=row.presented_at, sha256=row.sha256, path=row.path,
        closed_by=row.closed_by, closed_at=row.closed_at,
    )


class FormStore(AuditLog):
    """Create, close and read forms."""

    async def create_form(self, form: FormRecord, context: dict[str, Any], html: str,
                          event: ActionEvent) -> FormRecord:
        """Store a presented form and its `form_presented` audit entry."""
        async with self._write() as conn:
            await conn.execute(forms.insert().values(
                id=form.id, action_id=form.action_id, session_id=form.session_id,
                call_id=form.call_id, terminal_id=form.terminal_id, template=form.template,
                state=form.state, context=context, html=html,
                unsigned_sha256=form.unsigned_sha256, view_key=form.view_key,
                presented_by=form.presented_by,
                presented_at=form.presented_at,
            ))
            await self._append_audit(conn, [event])
        return form

    async def close_form(self, form_id: str, changes: dict[str, Any], event: ActionEvent
                         ) -> FormRecord:
        """Sign or decline a presented form once; Refused when it was closed meanwhile."""
        async with self._write() as conn:
            done = await conn.execute(forms.update().where(
                _f.id == form_id, _f.state == "presented").values(**changes))
            if done.rowcount != 1:
                raise Refused("form_already_signed", f"form {form_id} is no longer open to sign")
            await self._append_audit(conn, [event])
            row = (await conn.execute(sa.select(*_RECORD).where(_f.id == form_id))).one()
        return _record(row)

    async def get_form(self, form_id: str) -> FormRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(*_RECORD).where(_f.id == form_id))).first()
        return None if row is None else _record(row)

    async def form_content(self, form_id: str) -> tuple[dict[str, Any], str] | None:
        """(the template's context, the HTML as presented) of a form."""
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(_f.context, _f.html).where(_f.id == form_id))).first()
        return None if row is None else (dict(row.context), str(row.html))

    async def session_forms(self, session_ids: Sequence[str]) -> list[FormRecord]:
        """The forms of these sessions, oldest first."""
        if not session_ids:
            return []
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(*_RECORD).where(
                _f.session_id.in_(list(session_ids))).order_by(_f.presented_at, _f.id))).all()
        return [_record(r) for r in rows]
