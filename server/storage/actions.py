"""Joint actions: one row per action, one per step, every change chained into the audit log.

A change (`change_action`) runs in one write transaction: the action row is
locked (`FOR UPDATE` on PostgreSQL; SQLite has one writer), rebuilt through
`JointAction.restore`, changed by the domain, written back, and its events
appended to the audit chain. A refusal raised by the domain rolls all of it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.auditlog import AuditLog
from server.storage.engine import require_aware
from server.storage.errors import InvalidRecord
from server.storage.schema import joint_action_steps, joint_actions
from signaling.actions import (
    ActionEvent,
    ActionRecord,
    ActionType,
    Enterprise,
    JointAction,
    StepState,
    get_action_type,
)
from signaling.joint_actions import ActionNotFound, Change, StoredAction

MAX_LIST: Final = 500  # one page of the managers' action list

_a = joint_actions.c
_st = joint_action_steps.c


def _stored(row: Any, steps: Sequence[Any]) -> StoredAction:
    record = ActionRecord(
        id=row.id, action=row.type,
        enterprise=Enterprise(name=row.enterprise_name, uscc=row.enterprise_uscc),
        fields=dict(row.fields), state=row.state,
        steps=tuple(StepState(id=s.step_id, department=s.department, signed_by=s.signed_by,
                              signed_at=s.signed_at) for s in steps),
        started_by=row.created_by, started_at=row.created_at, closed_at=row.closed_at,
        rejected_by=row.rejected_by, rejected_reason=row.rejected_reason,
    )
    return StoredAction(record=record, session_id=row.session_id, call_id=row.call_id)


async def _steps_of(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[Any]]:
    steps: dict[str, list[Any]] = {i: [] for i in ids}
    for start in range(0, len(ids), MAX_LIST):
        chunk = ids[start:start + MAX_LIST]
        query = (sa.select(joint_action_steps).where(_st.action_id.in_(chunk))
                 .order_by(_st.action_id, _st.position))
        for row in await conn.execute(query):
            steps[row.action_id].append(row)
    return steps


class ActionStore(AuditLog):
    """Create, change, read and list joint actions."""

    async def create_action(self, action: JointAction, event: ActionEvent, *,
                            session_id: str | None, call_id: str | None) -> StoredAction:
        """Store a newly started action and its `started` audit entry."""
        record = action.record
        async with self._write() as conn:
            await conn.execute(joint_actions.insert().values(
                id=record.id, type=record.action, state=record.state,
                enterprise_name=record.enterprise.name, enterprise_uscc=record.enterprise.uscc,
                fields=dict(record.fields), session_id=session_id, call_id=call_id,
                created_by=record.started_by, created_at=record.started_at,
            ))
            await conn.execute(joint_action_steps.insert(), [
                {"action_id": record.id, "step_id": s.id, "position": i,
                 "department": s.department}
                for i, s in enumerate(record.steps)
            ])
            await self._append_audit(conn, [event])
        return StoredAction(record=record, session_id=session_id, call_id=call_id)

    async def change_action(self, action_id: str, types: Mapping[str, ActionType],
                            change: Change) -> StoredAction:
        """Apply `change` to the stored action atomically; raises what the domain refuses."""
        async with self._write() as conn:
            query = sa.select(joint_actions).where(_a.id == action_id)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).first()
            if row is None:
                raise ActionNotFound(action_id)
            before = _stored(row, (await _steps_of(conn, [action_id]))[action_id])
            action = JointAction.restore(before.record, get_action_type(types, row.type))
            events = change(action)
            after = action.record
            await conn.execute(joint_actions.update().where(_a.id == action_id).values(
                state=after.state, closed_at=after.closed_at, rejected_by=after.rejected_by,
                rejected_reason=after.rejected_reason,
            ))
            for old, new in zip(before.record.steps, after.steps, strict=True):
                if old != new:
                    await conn.execute(joint_action_steps.update().where(
                        _st.action_id == action_id, _st.step_id == new.id,
                    ).values(signed_by=new.signed_by, signed_at=new.signed_at))
            await self._append_audit(conn, events)
        return StoredAction(record=after, session_id=before.session_id, call_id=before.call_id)

    async def get_action(self, action_id: str) -> StoredAction | None:
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(joint_actions).where(_a.id == action_id))).first()
            if row is None:
                return None
            return _stored(row, (await _steps_of(conn, [action_id]))[action_id])

    async def list_actions(
        self, *, action: str | None = None, state: str | None = None,
        start: dt.datetime | None = None, end: dt.datetime | None = None,
        department: str | None = None, limit: int = MAX_LIST,
    ) -> list[StoredAction]:
        """Newest first; `start`/`end` bound the start time; `department`: it signs a step."""
        require_aware(start=start, end=end)
        if not 1 <= limit <= MAX_LIST:
            raise InvalidRecord(f"limit must be between 1 and {MAX_LIST}")
        query = sa.select(joint_actions)
        if action:
            query = query.where(_a.type == action)
        if state:
            query = query.where(_a.state == state)
        if start is not None:
            query = query.where(_a.created_at >= start)
        if end is not None:
            query = query.where(_a.created_at < end)
        if department:
            query = query.where(_a.id.in_(
                sa.select(_st.action_id).where(_st.department == department)))
        query = query.order_by(_a.created_at.desc(), _a.id.desc()).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            steps = await _steps_of(conn, [r.id for r in rows])
        return [_stored(r, steps[r.id]) for r in rows]
