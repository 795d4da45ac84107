"""Appointments: bookings of slots, their codes and states, and their figures.

A slot never holds more bookings than it has seats, whatever the concurrency: each
booking takes a seat number 1..N of its (queue, start), and a unique index on (queue,
start_at, seat) lets only one insert have each seat. A booking tries the seats it did not see
taken, in turn, each insert its own transaction; a cancelled booking gives its seat back (seat NULL,
which the index does not count). A code is unique among open (booked, arrived) bookings,
by a partial unique index. Every change of state is a conditional UPDATE from the state
it leaves, so two nodes marking the same no-show change it once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import InvalidRecord, StorageError
from server.storage.schema import UTCDateTime, metadata, sessions
from server.storage.units import ALL, Scope
from signaling import events as ev
from signaling.appointments import CODE_ALPHABET, CODE_LENGTH, OPEN_STATES, STATES, Booking

MAX_LIST: Final = 1000
_CODE_TRIES: Final = 5  # a fresh code after a clash with an open one (about 1 in 10^11 each)

appointments = sa.Table(
    "appointments",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("code", sa.String, nullable=False),
    sa.Column("queue", sa.String, nullable=False),
    sa.Column("start_at", UTCDateTime, nullable=False),
    sa.Column("end_at", UTCDateTime, nullable=False),
    sa.Column("seat", sa.Integer),  # 1..appointments_per_slot; NULL once cancelled
    sa.Column("state", sa.String, nullable=False),
    sa.Column("enterprise_name", sa.String, nullable=False),
    sa.Column("enterprise_uscc", sa.String, nullable=False),
    sa.Column("phone", sa.String),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("session_id", sa.String),
    sa.Column("arrived_at", UTCDateTime),
    sa.Column("served_at", UTCDateTime),
    sa.Index("uq_appointments_seat", "queue", "start_at", "seat", unique=True),
    sa.Index("uq_appointments_open_code", "code", unique=True,
             sqlite_where=sa.text("state IN ('booked', 'arrived')"),
             postgresql_where=sa.text("state IN ('booked', 'arrived')")),
    sa.Index("ix_appointments_start", "start_at"),
    sa.Index("ix_appointments_state", "state", "start_at"),
    sa.Index("ix_appointments_session", "session_id"),
)
_t = appointments.c


class SlotFull(StorageError):
    """Every seat of the slot is taken."""


class AppointmentFigures(msgspec.Struct, kw_only=True):
    """One queue's or site's bookings in a period, by state, and the waits of the answered
    ones; `booked` counts every booking not cancelled."""

    key: str | None
    booked: int = 0
    served: int = 0
    no_show: int = 0
    cancelled: int = 0
    avg_wait_from_slot_s: float | None = None  # appointment calls: answer - slot start
    avg_wait_walk_in_s: float | None = None  # calls without appointment: answer - arrival


def _booking(row: Any) -> Booking:
    return Booking(id=row.id, code=row.code, queue=row.queue, start=row.start_at,
                   end=row.end_at, state=row.state, enterprise_name=row.enterprise_name,
                   enterprise_uscc=row.enterprise_uscc, phone=row.phone,
                   created_at=row.created_at, session_id=row.session_id,
                   arrived_at=row.arrived_at, served_at=row.served_at)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class AppointmentStore(StoreBase):
    """Book, look up, move and count appointments."""

    async def book_appointment(self, *, queue: str, start: dt.datetime, end: dt.datetime,
                               seats: int, enterprise_name: str, enterprise_uscc: str,
                               phone: str | None, now: dt.datetime) -> Booking:
        """Take a free seat of the slot, or raise SlotFull; the database decides."""
        require_aware(start=start, end=end, now=now)
        if seats < 1:
            raise SlotFull("this queue takes no appointments")
        async with self._read() as conn:  # a shortcut past seats seen taken; the index decides
            taken = set((await conn.scalars(sa.select(_t.seat).where(
                _t.queue == queue, _t.start_at == start, _t.seat.is_not(None)))).all())
        for seat in (n for n in range(1, seats + 1) if n not in taken):
            for _ in range(_CODE_TRIES):
                booking_id, code = "ap_" + secrets.token_hex(8), new_code()
                values = {"id": booking_id, "code": code,
                          "queue": queue, "start_at": start, "end_at": end, "seat": seat,
                          "state": "booked", "enterprise_name": enterprise_name,
                          "enterprise_uscc": enterprise_uscc, "phone": phone,
                          "created_at": now, "changed_at": now}
                try:
                    async with self._write() as conn:
                        await conn.execute(appointments.insert().values(values))
                except IntegrityError:
                    if await self._seat_taken(queue, start, seat):
                        break  # someone has this seat: try the next
                    continue  # the code clashed with an open booking: draw another
                return Booking(id=booking_id, code=code, queue=queue,
                               start=start, end=end, state="booked",
                               enterprise_name=enterprise_name,
                               enterprise_uscc=enterprise_uscc, phone=phone, created_at=now)
        raise SlotFull(f"every seat of {queue} at {start.isoformat()} is taken")

    async def _seat_taken(self, queue: str, start: dt.datetime, seat: int) -> bool:
        async with self._read() as conn:
            found = await conn.scalar(sa.select(_t.id).where(
                _t.queue == queue, _t.start_at == start, _t.seat == seat))
        return found is not None

    async def seats_taken(self, queue: str, start: dt.datetime, end: dt.datetime
                          ) -> dict[dt.datetime, int]:
        """Slot start -> bookings holding a seat, for slots starting in [start, end)."""
        require_aware(start=start, end=end)
        query = (sa.select(_t.start_at, sa.func.count().label("n"))
                 .where(_t.queue == queue, _t.start_at >= start, _t.start_at < end,
                        _t.seat.is_not(None))
                 .group_by(_t.start_at))
        async with self._read() as conn:
            return {r.start_at: int(r.n) for r in await conn.execute(query)}

    async def appointment_by_code(self, code: str) -> Booking | None:
        """The open booking with this code, else the latest one that had it."""
        query = (sa.select(appointments).where(_t.code == code)
                 .order_by(_t.state.in_(OPEN_STATES).desc(), _t.created_at.desc()).limit(1))
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _booking(row)

    async def _move(self, appointment_id: str, old: str, new: dict[str, Any]) -> bool:
        async with self._write() as conn:
            done = await conn.execute(appointments.update()
                                      .where(_t.id == appointment_id, _t.state == old)
                                      .values(new))
        return bool(done.rowcount)

    async def cancel_appointment(self, appointment_id: str, now: dt.datetime) -> bool:
        """booked -> cancelled, giving the seat back; False if it was no longer booked."""
        require_aware(now=now)
        return await self._move(appointment_id, "booked",
                                {"state": "cancelled", "seat": None, "changed_at": now})

    async def mark_arrived(self, appointment_id: str, session_id: str, at: dt.datetime
                           ) -> bool:
        """booked -> arrived; or arrived again when its call ended before an answer (the
        visitor cancelled, or left): one call at a time per booking."""
        require_aware(at=at)
        s = sessions.c
        unanswered = sa.select(s.id).where(
            s.answered_at.is_(None),
            s.state.in_((ev.STATE_ABANDONED, ev.STATE_REJECTED, ev.STATE_INTERRUPTED)))
        async with self._write() as conn:
            done = await conn.execute(
                appointments.update()
                .where(_t.id == appointment_id,
                       sa.or_(_t.state == "booked",
                              sa.and_(_t.state == "arrived", _t.session_id.in_(unanswered))))
                .values(state="arrived", session_id=session_id, arrived_at=at, changed_at=at))
        return bool(done.rowcount)

    async def mark_served(self, appointment_id: str, at: dt.datetime) -> bool:
        require_aware(at=at)
        return await self._move(appointment_id, "arrived",
                                {"state": "served", "served_at": at, "changed_at": at})

    async def mark_no_shows(self, started_before: dt.datetime, now: dt.datetime
                            ) -> list[Booking]:
        """Booked ones whose slot started before `started_before` (start + late_s is past)
        become no_show; each is returned by exactly one caller, however many sweep."""
        require_aware(started_before=started_before, now=now)
        async with self._write() as conn:
            rows = (await conn.execute(
                appointments.update()
                .where(_t.state == "booked", _t.start_at < started_before)
                .values(state="no_show", changed_at=now)
                .returning(*appointments.c))).all()
        return [_booking(r) for r in rows]

    async def list_appointments(self, start: dt.datetime, end: dt.datetime, *,
                                queue: str | None = None, state: str | None = None,
                                scope: Scope = ALL, limit: int = MAX_LIST) -> list[Booking]:
        """Bookings whose slot starts in [start, end), by start. A manager of some units
        sees the ones that arrived at their sites (a booking has no site before)."""
        require_aware(start=start, end=end)
        if state is not None and state not in STATES:
            raise InvalidRecord(f"state must be one of {STATES}")
        query = sa.select(appointments).where(
            _t.start_at >= start, _t.start_at < end,
            *scope.where(scope.sessions_clause(_t.session_id)))
        if queue:
            query = query.where(_t.queue == queue)
        if state:
            query = query.where(_t.state == state)
        query = query.order_by(_t.start_at, _t.created_at, _t.id).limit(limit)
        async with self._read() as conn:
            return [_booking(r) for r in await conn.execute(query)]

    async def appointment_report(self, by: str, start: dt.datetime, end: dt.datetime,
                                 scope: Scope = ALL) -> dict[str | None, AppointmentFigures]:
        """By queue or site (`by`), bookings whose slot starts in [start, end): how each
        ended; the mean wait of served ones from their slot's start (arriving early is no
        wait) beside that of walk-ins from their arrival (sessions queued in the period).
        A booking has a site once it arrives: by site, the others are under key None."""
        require_aware(start=start, end=end)
        if by not in ("queue", "site"):
            raise InvalidRecord("appointment figures are by queue or site")
        s = sessions.c
        key = _t.queue if by == "queue" else s.site_id
        source = appointments.outerjoin(sessions, s.id == _t.session_id)
        seen = scope.where(scope.sessions_clause(_t.session_id))
        out: dict[str | None, AppointmentFigures] = {}

        def row(k: str | None) -> AppointmentFigures:
            return out.setdefault(k, AppointmentFigures(key=k))

        def count(state: str) -> sa.ColumnElement[Any]:
            return sa.func.count(sa.case((_t.state == state, 1)))

        in_period = (_t.start_at >= start, _t.start_at < end, *seen)
        query = (sa.select(key.label("key"), count("served").label("served"),
                           count("no_show").label("no_show"),
                           count("cancelled").label("cancelled"), sa.func.count().label("n"))
                 .select_from(source).where(*in_period).group_by(key))
        waits: dict[str | None, list[float]] = {}
        walk_key = s.queue if by == "queue" else s.site_id
        walk_ins = (sa.select(walk_key.label("key"), sa.func.avg(s.wait_s).label("wait"))
                    .where(s.created_at >= start, s.created_at < end,
                           s.answered_at.is_not(None), s.wait_s.is_not(None),
                           s.id.not_in(sa.select(_t.session_id)
                                       .where(_t.session_id.is_not(None))),
                           *scope.where(scope.sites_clause(s.site_id)))
                    .group_by(walk_key))
        async with self._read() as conn:
            for r in await conn.execute(query):
                item = row(r.key)
                item.booked = int(r.n) - int(r.cancelled)
                item.served, item.no_show = int(r.served), int(r.no_show)
                item.cancelled = int(r.cancelled)
            for r in await conn.execute(
                    sa.select(key.label("key"), _t.start_at, _t.served_at).select_from(source)
                    .where(_t.state == "served", _t.served_at.is_not(None), *in_period)):
                waits.setdefault(r.key, []).append(
                    max(0.0, (r.served_at - r.start_at).total_seconds()))
            for r in await conn.execute(walk_ins):
                row(r.key).avg_wait_walk_in_s = float(r.wait)
        for k, found in waits.items():
            row(k).avg_wait_from_slot_s = sum(found) / len(found)
        return out
