"""What the staffing estimate reads from the log: a period's arrivals, the specialists'
status changes, and their skills (server/staffing.py does the sums)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from server.staffing import Arrival, StatusChange
from server.storage.engine import StoreBase, require_aware
from server.storage.schema import session_events, sessions, users
from server.storage.units import ALL, Scope
from signaling import events as ev

LOOKBACK = dt.timedelta(days=1)
"""Status changes this long before the period: who was already signed in when it began."""


class StaffingStore(StoreBase):
    async def staffing_inputs(self, start: dt.datetime, end: dt.datetime, scope: Scope = ALL
                              ) -> tuple[list[Arrival], list[StatusChange], dict[str, list[str]]]:
        """Arrivals of [start, end) at the sites `scope` sees (rejected ones excluded), every
        specialist's status changes, and each specialist's queues."""
        require_aware(start=start, end=end)
        s, e = sessions.c, session_events.c
        seen = scope.sites_clause(s.site_id)
        async with self._read() as conn:
            arrivals = [
                Arrival(str(r.queue), r.created_at, None if r.answered_at is None
                        else float(r.talk_s or 0.0))
                for r in await conn.execute(
                    sa.select(s.queue, s.created_at, s.answered_at, s.talk_s)
                    .where(s.created_at >= start, s.created_at < end,
                           s.state != ev.STATE_REJECTED, *scope.where(seen)))]
            changes = [
                StatusChange(str(r.data["agent_id"]), r.ts, str(r.data.get("new", "")))
                for r in await conn.execute(
                    sa.select(e.ts, e.data)
                    .where(e.type == ev.AGENT_STATUS, e.ts >= start - LOOKBACK, e.ts < end)
                    .order_by(e.ts, e.id))
                if r.data.get("agent_id")]
            skills = {str(r.id): sorted(r.skills or {}) for r in await conn.execute(
                sa.select(users.c.id, users.c.skills).where(users.c.role == "specialist"))}
        return arrivals, changes, skills
