"""Appointments over HTTP: slots and booking (public, rate-limited), check and cancel by
code (public), the list (managers, unit-scoped). Refusals carry the codes of the desk
(`server/appointments.py`): 400 for a slot one may not book, 409 `slot_full`, 429 over
`[appointments] bookings_per_hour` per client address."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from aiohttp import web

from server import keys
from server.appointments import APPOINTMENTS, AppointmentDesk, qr_svg
from server.http.api import reply
from server.http.auth import fail, require
from server.http.params import body_of, query, takes_query
from signaling import limits as lim
from signaling.appointments import STATES, Booking, normalise_code
from signaling.errors import Refused

MANAGER = "manager"
Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$",
                                   description="a local date, YYYY-MM-DD")]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 -]{5,20}$")]
_CODE_ROUTE = "{code}"  # any text: one that is no code is a JSON 404, like an unknown one
_STATUS: dict[str, type[web.HTTPException]] = {
    "slot_full": web.HTTPConflict,
    "not_cancellable": web.HTTPConflict,
    "not_found": web.HTTPNotFound,
    "unknown_queue": web.HTTPNotFound,
}


class SlotsQuery(msgspec.Struct, forbid_unknown_fields=True):
    queue: lim.Slug
    date: Date


class ListQuery(msgspec.Struct, forbid_unknown_fields=True):
    date: Date | None = None
    queue: lim.Slug | None = None
    state: Annotated[str, msgspec.Meta(pattern="^[a-z_]{1,16}$")] | None = None


class BookingEnterprise(msgspec.Struct, forbid_unknown_fields=True):
    name: lim.Name
    uscc: lim.Uscc


class BookingBody(msgspec.Struct, forbid_unknown_fields=True):
    queue: lim.Slug
    start: Annotated[str, msgspec.Meta(max_length=40, description="ISO 8601 with offset")]
    enterprise: BookingEnterprise
    phone: Phone | None = None


class Slot(msgspec.Struct):
    start: str
    end: str
    free: int


class Slots(msgspec.Struct):
    slots: list[Slot]


class Booked(msgspec.Struct):
    """What the visitor keeps: the code, typed at a kiosk to arrive."""

    id: str
    code: str
    queue: str
    start: str
    end: str
    state: str = "booked"


class Listed(msgspec.Struct):
    id: str
    code: str
    queue: str
    start: str
    end: str
    state: str
    enterprise_name: str
    enterprise_uscc: str
    phone: str | None
    created_at: str
    arrived_at: str | None
    served_at: str | None
    session_id: str | None


class Listing(msgspec.Struct):
    appointments: list[Listed]


def _refusal(exc: Refused) -> web.HTTPException:
    status = _STATUS.get(exc.code, web.HTTPBadRequest)
    text = msgspec.json.encode({"error": exc.code, "message": exc.message}).decode()
    return status(text=text, content_type="application/json")


def _iso(desk: AppointmentDesk, when: dt.datetime | None) -> str | None:
    return None if when is None else desk.hours.calendar.local(when).isoformat()


def _booked(desk: AppointmentDesk, b: Booking) -> Booked:
    return Booked(id=b.id, code=b.code, queue=b.queue, start=_iso(desk, b.start) or "",
                  end=_iso(desk, b.end) or "", state=b.state)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(web.HTTPBadRequest, "invalid_query", f"{text!r} is not a date")


@takes_query(SlotsQuery)
async def slots(request: web.Request) -> web.Response:
    q = query(request, SlotsQuery)
    desk = request.app[APPOINTMENTS]
    try:
        found = await desk.slots(q.queue, _day(q.date))
    except Refused as exc:
        raise _refusal(exc) from None
    return reply(Slots(slots=[Slot(**s) for s in found]))


async def book(request: web.Request) -> web.Response:
    desk = request.app[APPOINTMENTS]
    if not desk.limit.allow(request.remote or "?"):
        response = reply({"error": "rate_limited",
                          "message": "too many bookings from this address; try later"}, 429)
        response.headers["Retry-After"] = "600"
        return response
    body = await body_of(request, BookingBody)
    try:
        start = dt.datetime.fromisoformat(body.start)
    except ValueError:
        fail(web.HTTPBadRequest, "invalid_start", f"{body.start!r} is not an ISO 8601 time")
    try:
        booking = await desk.book(body.queue, start, body.enterprise.name,
                                  body.enterprise.uscc.strip().upper(), body.phone)
    except Refused as exc:
        raise _refusal(exc) from None
    return reply(_booked(desk, booking), status=201)


async def _by_code(request: web.Request) -> Booking:
    code = normalise_code(request.match_info["code"])
    booking = await request.app[keys.DB].appointment_by_code(code) if code else None
    if booking is None:
        fail(web.HTTPNotFound, "not_found", "no appointment has this code")
    return booking


async def get_booking(request: web.Request) -> web.Response:
    return reply(_booked(request.app[APPOINTMENTS], await _by_code(request)))


async def cancel_booking(request: web.Request) -> web.Response:
    """The visitor cancels with the code; the seat is free again."""
    booking = await _by_code(request)
    desk = request.app[APPOINTMENTS]
    if not await desk.db.cancel_appointment(booking.id, desk.clock()):
        fail(web.HTTPConflict, "not_cancellable", f"this appointment is {booking.state}")
    return reply(_booked(desk, msgspec.structs.replace(booking, state="cancelled")))


async def booking_qr(request: web.Request) -> web.Response:
    """The code as an SVG QR code: it opens the booking page on that appointment."""
    booking = await _by_code(request)
    url = f"{request.scheme}://{request.host}/book?code={booking.code}"
    return web.Response(body=qr_svg(url), content_type="image/svg+xml",
                        headers={"Cache-Control": "no-store"})


@takes_query(ListQuery)
async def list_bookings(request: web.Request) -> web.Response:
    """A day's bookings (today by default), by slot start."""
    manager = await require(request, MANAGER)
    q = query(request, ListQuery)
    if q.state is not None and q.state not in STATES:
        fail(web.HTTPBadRequest, "invalid_query", f"state must be one of {', '.join(STATES)}")
    desk = request.app[APPOINTMENTS]
    tz = desk.hours.calendar.timezone
    day = _day(q.date) if q.date else desk.hours.calendar.local(desk.clock()).date()
    start = dt.datetime.combine(day, dt.time(), tz)
    db = request.app[keys.DB]
    scope = await db.scope_of(manager)
    found = await db.list_appointments(start, start + dt.timedelta(days=1), queue=q.queue,
                                       state=q.state, scope=scope)
    return reply(Listing(appointments=[Listed(
        id=b.id, code=b.code, queue=b.queue, start=_iso(desk, b.start) or "",
        end=_iso(desk, b.end) or "", state=b.state, enterprise_name=b.enterprise_name,
        enterprise_uscc=b.enterprise_uscc, phone=b.phone,
        created_at=_iso(desk, b.created_at) or "", arrived_at=_iso(desk, b.arrived_at),
        served_at=_iso(desk, b.served_at), session_id=b.session_id) for b in found]))


def setup_appointments(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/appointments/slots", slots)
    r.add_get("/api/appointments", list_bookings)
    r.add_post("/api/appointments", book)
    r.add_get(f"/api/appointments/{_CODE_ROUTE}/qr.svg", booking_qr)
    r.add_get(f"/api/appointments/{_CODE_ROUTE}", get_booking)
    r.add_delete(f"/api/appointments/{_CODE_ROUTE}", cancel_booking)
