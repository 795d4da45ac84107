"""Joint work services of the server: action types, the working-day calendar, the matter desk.

Loaded once at start (`load_joint`): a broken actions file or calendar stops
the server with a message naming the file; a current year without calendar
data only warns, since weekends still count correctly.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Collection
from pathlib import Path

from aiohttp import web

from server.config import ROOT, ConfigError, JointSettings
from server.storage.db import Database
from server.storage.engine import Clock, utcnow
from server.storage.matters import Matter, MatterChange
from signaling.actions import ActionConfigError, ActionType, load_action_types
from signaling.calendar import CalendarError, MatterClass, WorkingCalendar
from signaling.errors import Refused
from signaling.joint_actions import JointWork
from signaling.uscc import uscc_error

log = logging.getLogger(__name__)


def project_path(value: str) -> Path:
    """An absolute path as given; a relative one from the working directory if it exists
    there, otherwise from the project root (where the shipped configs live)."""
    path = Path(value)
    if path.is_absolute() or path.exists():
        return path
    return ROOT / path


def _close_time(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"joint.close_time: {text!r} is not a time such as 17:30") from None


def load_joint(settings: JointSettings, timezone: str, now: dt.datetime | None = None,
               departments: Collection[str] | None = None,
               ) -> tuple[dict[str, ActionType], WorkingCalendar]:
    """Action types and the calendar; ConfigError naming the file when one is unusable,
    or when a step names a department that is not configured (`[[departments]]`)."""
    try:
        types = load_action_types(project_path(settings.actions_file))
        calendar = WorkingCalendar.from_dir(project_path(settings.calendar_dir),
                                            timezone=timezone,
                                            close=_close_time(settings.close_time))
    except (ActionConfigError, CalendarError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    known = set(departments) if departments is not None else None
    for action in types.values():
        unknown = sorted(set(action.departments) - known) if known is not None else []
        if unknown:
            raise ConfigError(f"{settings.actions_file}: action {action.id} names department(s) "
                              f"{unknown} missing from [[departments]]")
    year = calendar.local(now or utcnow()).year
    if not calendar.has_data_for(year):
        log.warning("no public-holiday calendar for %d in %s: pending-matter deadlines count "
                    "weekends only until %d.toml is added", year, settings.calendar_dir, year)
    return types, calendar


class MatterDesk:
    """Opens and moves pending matters, with their due dates from the calendar."""

    def __init__(self, db: Database, calendar: WorkingCalendar, clock: Clock = utcnow) -> None:
        self._db = db
        self.calendar = calendar
        self.clock = clock  # tests inject a fixed instant

    def today(self) -> dt.date:
        return self.calendar.local(self.clock()).date()

    def is_overdue(self, matter: Matter) -> bool:
        return matter.state != "resolved" and self.calendar.is_overdue(matter.due, self.clock())

    async def open(self, *, actor: str, enterprise_name: str, enterprise_uscc: str | None,
                   description: str, klass: MatterClass, department: str,
                   session_id: str | None, participant: str | None = None) -> Matter:
        """A new matter, due by its class counted on working days from now.

        `participant` (a specialist's participant id) must have taken part in `session_id`;
        None for a manager, who may link any session."""
        name, text = enterprise_name.strip(), description.strip()
        if not name or not text:
            raise Refused("invalid_body", "a matter needs the enterprise's name and a description")
        uscc = (enterprise_uscc or "").strip() or None
        if uscc is not None and (problem := uscc_error(uscc)) is not None:
            raise Refused("invalid_uscc", f"USCC {uscc!r}: {problem}")
        if session_id is not None:
            members = await self._db.session_members(session_id)
            if members is None:
                raise Refused("unknown_session", f"no session {session_id}")
            if participant is not None and participant not in members:
                raise Refused("not_a_participant", f"you took no part in session {session_id}")
        now = self.clock()
        matter = Matter(
            id="m_" + secrets.token_hex(8), session_id=session_id, enterprise_name=name,
            enterprise_uscc=uscc, description=text, matter_class=klass, department=department,
            state="open", opened_by=actor, opened_at=now,
            due=self.calendar.due_date(now, klass), updated_at=now,
        )
        return await self._db.open_matter(matter)

    async def change(self, matter_id: str, state: str, note: str | None, actor: str,
                     department: str | None) -> Matter | None:
        """Move a matter; `department` (a specialist's) must own it, None for managers."""

        def allowed(matter: Matter) -> None:
            if department is not None and matter.department != department:
                raise Refused("forbidden", f"matter {matter_id} belongs to {matter.department}")

        def on_time(matter: Matter, when: dt.datetime) -> bool:
            return self.calendar.local(when).date() <= matter.due

        return await self._db.change_matter(matter_id, state, note, actor, self.clock(),
                                            on_time, allowed)

    async def get(self, matter_id: str) -> tuple[Matter, list[MatterChange]] | None:
        return await self._db.get_matter(matter_id)


class JointServices:
    """What the joint-work HTTP handlers need, kept under `JOINT`."""

    def __init__(self, work: JointWork, desk: MatterDesk) -> None:
        self.work = work
        self.desk = desk


JOINT = web.AppKey("joint", JointServices)
