"""The appointment desk of the server: slots, bookings, the no-show sweep, QR codes.

Slots come from each queue's opening hours on the working-day calendar
(`signaling/hours.py`); the seats of a slot are held by the database
(`server/storage/appointments.py`). Every node sweeps for no-shows every
`[appointments] no_show_check_s`: the conditional UPDATE hands each no-show to exactly
one node, which logs it. The same loop notices a queue opening or closing by its hours and
sends a fresh `queue.status`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

import segno
from aiohttp import web

from server.config import AppointmentSettings
from server.storage.appointments import SlotFull
from server.storage.db import Database
from signaling.appointments import Booking
from signaling.errors import Refused
from signaling.hours import OpeningHours
from signaling.model import QueueConfig
from signaling.queue_status import QueueStatus
from signaling.uscc import uscc_error

log = logging.getLogger(__name__)

RATE_WINDOW_S: Final = 3600.0
MAX_TRACKED_ADDRESSES: Final = 100_000  # beyond this the oldest address is forgotten


class RateLimit:
    """At most `per_hour` requests per client address in any hour (this node's count)."""

    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_hour = per_hour
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        now = self._clock()
        times = self._seen.pop(address, None) or deque()
        while times and times[0] <= now - RATE_WINDOW_S:
            times.popleft()
        allowed = len(times) < self._per_hour
        if allowed:
            times.append(now)
        self._seen[address] = times  # most recent last: the oldest is evicted first
        if len(self._seen) > MAX_TRACKED_ADDRESSES:
            self._seen.pop(next(iter(self._seen)))
        return allowed


def qr_svg(text: str) -> bytes:
    """`text` as a QR code, SVG drawn on the server (no script on the page draws it)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False,
                                     svgns=True, title="QR")
    return out.getvalue()


class AppointmentDesk:
    """Slots and bookings of the queues, by their hours and `[appointments]` settings."""

    def __init__(self, settings: AppointmentSettings, queues: Mapping[str, QueueConfig],
                 hours: OpeningHours, db: Database,
                 clock: Callable[[], dt.datetime]) -> None:
        self.settings = settings
        self.queues = queues
        self.hours = hours
        self.db = db
        self.clock = clock
        self.limit = RateLimit(settings.bookings_per_hour)

    def bookable_days(self, now: dt.datetime) -> tuple[dt.date, dt.date]:
        """The first and last local day one may book (`horizon_days`, today included)."""
        today = self.hours.calendar.local(now).date()
        return today, today + dt.timedelta(days=self.settings.horizon_days - 1)

    def _queue(self, queue: str) -> QueueConfig:
        config = self.queues.get(queue)
        if config is None:
            raise Refused("unknown_queue", f"no queue {queue!r}")
        if config.appointments_per_slot <= 0:
            raise Refused("no_appointments", f"queue {queue} takes no appointments")
        return config

    async def slots(self, queue: str, day: dt.date) -> list[dict[str, Any]]:
        """The slots of `day` still ahead, with their free seats."""
        config = self._queue(queue)
        now = self.clock()
        first, last = self.bookable_days(now)
        if not first <= day <= last:
            raise Refused("outside_horizon", f"book a day from {first} to {last}")
        slots = [(a, b) for a, b in self.hours.slots_on(queue, day, config.slot_minutes)
                 if a > now]
        if not slots:
            return []
        taken = await self.db.seats_taken(queue, slots[0][0], slots[-1][1])
        seats = config.appointments_per_slot
        return [{"start": a.isoformat(), "end": b.isoformat(),
                 "free": max(0, seats - taken.get(a.astimezone(dt.UTC), 0))}
                for a, b in slots]

    async def book(self, queue: str, start: dt.datetime, name: str, uscc: str,
                   phone: str | None) -> Booking:
        """A seat of the slot starting at `start`; Refused when it is not a slot one may
        book, `slot_full` when its seats are taken."""
        config = self._queue(queue)
        now = self.clock()
        if start.utcoffset() is None:
            raise Refused("invalid_start", "start needs a time zone offset")
        local = self.hours.calendar.local(start)
        if start <= now:
            raise Refused("slot_past", "this slot has already begun")
        first, last = self.bookable_days(now)
        if local.date() > last:
            raise Refused("outside_horizon", f"book a day from {first} to {last}")
        match = [(a, b) for a, b in self.hours.slots_on(queue, local.date(),
                                                        config.slot_minutes) if a == local]
        if not match:
            raise Refused("outside_hours", "this is not the start of a slot in opening hours")
        if not name.strip():
            raise Refused("invalid_enterprise", "the enterprise's name is required")
        problem = uscc_error(uscc)
        if problem is not None:
            raise Refused("invalid_uscc", problem)
        try:
            return await self.db.book_appointment(
                queue=queue, start=match[0][0], end=match[0][1],
                seats=config.appointments_per_slot, enterprise_name=name.strip(),
                enterprise_uscc=uscc, phone=phone, now=now)
        except SlotFull as exc:
            raise Refused("slot_full", str(exc)) from None

    async def sweep(self) -> list[Booking]:
        """Mark the bookings whose window ended without arrival as no-shows."""
        now = self.clock()
        late = now - dt.timedelta(seconds=self.settings.late_s)
        marked = await self.db.mark_no_shows(late, now)
        for booking in marked:
            log.info("appointment %s (%s at %s) no_show", booking.id, booking.queue,
                     booking.start.isoformat())
        return marked


APPOINTMENTS = web.AppKey("appointments", AppointmentDesk)


async def sweep_loop(desk: AppointmentDesk, status: QueueStatus) -> None:
    """Until cancelled: no-shows, and a new `queue.status` when hours open or close one."""
    opened = status.open_by_hours()
    while True:
        await asyncio.sleep(desk.settings.no_show_check_s)
        try:
            await desk.sweep()
            now_open = status.open_by_hours()
            if now_open != opened:
                opened = now_open
                status.changed_all()
        except Exception:
            log.exception("appointment sweep failed")


def start_sweeper(desk: AppointmentDesk, status: QueueStatus) -> asyncio.Task[None]:
    """The sweep as one task for the life of the switchboard (cancel and await it)."""
    return asyncio.get_running_loop().create_task(sweep_loop(desk, status))
