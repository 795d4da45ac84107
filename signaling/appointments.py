"""Appointments seen from the switchboard: arrival by code, served when answered.

A booking (`server/storage/appointments.py`) holds a seat of one slot of a queue. The
visitor types its code at a kiosk; within its window (`early_s` before the slot's start to
`late_s` after it) the call is queued with `APPOINTMENT_PRIORITY`, ahead of walk-ins on
both routers, and the booking becomes `arrived`; answered, it becomes `served`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import msgspec

from .errors import Refused

State = Literal["booked", "arrived", "served", "no_show", "cancelled"]
STATES: Final[tuple[str, ...]] = ("booked", "arrived", "served", "no_show", "cancelled")
OPEN_STATES: Final[tuple[str, ...]] = ("booked", "arrived")  # a code is unique among these
#: What a code is drawn from: no 0/O, 1/I/L look-alikes, so it reads and types without doubt.
CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 8
_CODE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    """One appointment as stored."""

    id: str
    code: str
    queue: str
    start: dt.datetime
    end: dt.datetime
    state: str
    enterprise_name: str
    enterprise_uscc: str
    phone: str | None = None
    created_at: dt.datetime
    session_id: str | None = None
    arrived_at: dt.datetime | None = None
    served_at: dt.datetime | None = None


def normalise_code(text: str) -> str | None:
    """What was typed, upper-cased without spaces or dashes; None if it cannot be a code."""
    code = re.sub(r"[\s-]", "", text).upper()
    return code if _CODE.match(code) else None


class AppointmentBook(Protocol):
    """What the switchboard needs of the stored appointments (the SQL store has it)."""

    async def appointment_by_code(self, code: str) -> Booking | None: ...

    async def mark_arrived(self, appointment_id: str, session_id: str, at: dt.datetime
                           ) -> bool:
        """booked -> arrived (or arrived again once its call ended unanswered); False: it
        is in use or someone else moved it first."""

    async def mark_served(self, appointment_id: str, at: dt.datetime) -> bool:
        """arrived -> served, only from arrived."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Appointments:
    """The book and the arrival window (`[appointments] early_s`, `late_s`)."""

    book: AppointmentBook
    early_s: float = 600.0
    late_s: float = 900.0

    def window(self, booking: Booking) -> tuple[dt.datetime, dt.datetime]:
        return (booking.start - dt.timedelta(seconds=self.early_s),
                booking.start + dt.timedelta(seconds=self.late_s))

    async def arriving(self, queue: str, typed: str, now: dt.datetime) -> Booking:
        """The booking a `call.request` names, checked; Refused with the code to show."""
        code = normalise_code(typed)
        booking = await self.book.appointment_by_code(code) if code else None
        if booking is None or booking.state not in OPEN_STATES:
            raise Refused("appointment_unknown", "no open appointment has this code")
        if booking.queue != queue:
            raise Refused("appointment_queue", f"this appointment is for queue {booking.queue}")
        opens, closes = self.window(booking)
        if booking.state == "arrived" and booking.arrived_at is not None \
                and opens <= booking.arrived_at <= closes:
            # It came in time and its call ended unanswered (`mark_arrived`): a cancel, or a
            # request its node lost after logging the arrival (goal-size day B: sent again,
            # it found the window closed). A window's end counts from that arrival.
            closes = max(closes, booking.arrived_at + dt.timedelta(seconds=self.late_s))
        if not opens <= now <= closes:
            raise Refused("appointment_window",
                          f"come between {opens.isoformat()} and {closes.isoformat()}")
        return booking

    async def answered(self, context: Mapping[str, Any], now: dt.datetime) -> None:
        """A call was answered: the booking it came with (if any) is served."""
        appointment = context.get("appointment")
        if isinstance(appointment, str):
            await self.book.mark_served(appointment, now)

    async def arrived(self, booking: Booking, session_id: str, now: dt.datetime) -> None:
        if not await self.book.mark_arrived(booking.id, session_id, now):
            raise Refused("appointment_used", "this appointment has already arrived")
