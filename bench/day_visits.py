"""The visits that use a service beyond the call (bench.day_plan.VISITS): an appointment
booked ahead over the public HTTP API, a hand-off to a phone, a form signed in the call.

Each coroutine plays one visit on a kiosk (`KioskLike`: bench.day_load.Kiosk) and
writes what the visitor saw into the visit's ledger record; bench.day_services holds
that against the log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any, Protocol

import aiohttp

from bench.day_line import Closed, Line, Message
from bench.day_plan import FORM_ENTERPRISE, Clock, Visit
from signaling.uscc import check_character

REPLY_S = 600.0  # as bench.day_load: the drain cuts a visit short, not a timeout
PHONE_HELLO_S = 30.0  # the phone's first hello (its ticket refused: the kiosk keeps the call)
FORM_WAIT_S = 60.0  # real seconds a visitor waits for the desk's form, then for its signing
SIGNATURE = {"width": 320, "height": 120,
             "strokes": [[[12, 80], [40, 30], [70, 90], [110, 40]], [[150, 60], [260, 62]]]}
ON_TIME = (-0.8, -0.2)  # arrival, as a share of the window before the slot
LATE = (0.15, 0.5)  # ... and after it (the window's end keeps a margin for latency)


class KioskLike(Protocol):
    id: str
    line: Line
    clock: Clock

    async def request(self, v: Visit, record: dict[str, Any], enterprise: Message | None,
                      appointment: str | None = None) -> bool: ...

    async def wait_answer(self, v: Visit, record: dict[str, Any]) -> bool: ...

    async def talk(self, v: Visit, record: dict[str, Any]) -> None: ...

    def on(self, line: Line) -> KioskLike: ...


def enterprise(name: str) -> Message:
    first17 = f"92310114MA{random.randrange(10**7):07d}"
    return {"name": name, "uscc": first17 + check_character(first17)}


def arrival(v: Visit, slot: float, early_s: float, late_s: float) -> float:
    """When (epoch) an appointment visitor comes to a kiosk: before or after the slot."""
    if v.arrive == "late":
        return slot + late_s * random.uniform(*LATE)
    return slot + early_s * random.uniform(*ON_TIME)


async def book(http: aiohttp.ClientSession, url: str, v: Visit, slot: dt.datetime) -> str:
    """A booking over the public API (as the booking page does); "" when refused."""
    async with http.post(url + "/api/appointments", json={
            "queue": v.queue, "start": slot.isoformat(),
            "enterprise": enterprise("嘉定预约企业"), "phone": "13800000000"}) as resp:
        body = await resp.json()
        return str(body["code"]) if resp.status == 201 else ""


async def appointment(k: KioskLike, v: Visit, record: dict[str, Any]) -> None:
    """Comes with the code (ahead of the walk-ins); refused (window, code), walks in."""
    record.update(arrive=v.arrive, appointment=v.code)
    if v.arrive == "no_show":
        record["outcome"] = "no_show"
        return
    if v.code and await k.request(v, record, None, v.code):
        record["kept"] = True
    else:
        reply = record.pop("reply", None) or {}
        if v.code and reply.get("type") != "error":  # rejected (logged) or no reply at all
            record["reply"] = reply
            return
        record["appointment_refused"] = reply.get("code") or "unbooked"
        record.pop("outcome", None)
        if not await k.request(v, record, None):
            return
    if await k.wait_answer(v, record):
        await k.talk(v, record)


async def handoff(k: KioskLike, v: Visit, record: dict[str, Any]) -> None:
    """Asks for a call, hands it over to a phone while it waits; the phone is served."""
    if not await k.request(v, record, None):
        return
    await k.line.send({"type": "call.handoff", "call_id": record["call_id"]})
    ready = await k.line.recv({"call.handoff_ready", "call.connected", "call.ended"}, REPLY_S)
    phone: Line | None = None
    if ready is not None and ready["type"] == "call.handoff_ready":
        phone = await _phone(k.line, str(ready["url"]).removeprefix("/m/"), record)
    elif ready is not None:
        k.line.inbox.put_nowait(ready)  # answered (or over) before the visitor could leave
        record["handoff"] = "too_late"
    try:
        visitor = k.on(phone) if phone is not None else k
        if phone is not None:
            handed = await k.line.recv({"call.handed_off"}, REPLY_S)
            record["handed_off_seen"] = handed is not None
        if await visitor.wait_answer(v, record):
            await visitor.talk(v, record)
    finally:
        if phone is not None:
            await phone.close()


async def _phone(kiosk: Line, ticket: str, record: dict[str, Any]) -> Line | None:
    """The phone opens the ticket, on the other node when there are two."""
    phone = Line(kiosk.http, kiosk.urls, ticket, kiosk.home + 1, refusable=True)
    try:
        await asyncio.wait_for(phone.open(), PHONE_HELLO_S)
    except (Closed, TimeoutError):
        await phone.close()
        refused = phone.refused.get("code") if phone.refused else "no_welcome"
        record["handoff"] = f"refused:{refused}"  # answered meanwhile: the kiosk has it
        return None
    record["handoff"] = "phone"
    record["visitor"] = phone.welcome.get("participant_id")
    return phone


async def form(k: KioskLike, v: Visit, record: dict[str, Any]) -> None:
    """Deregistration: the desk starts the action and presents its form; the visitor signs."""
    if not (await k.request(v, record, enterprise(FORM_ENTERPRISE))
            and await k.wait_answer(v, record)):
        return
    wait = max(k.clock.real(v.talk_s), FORM_WAIT_S)
    shown = await k.line.recv({"form.presented", "call.ended"}, wait)
    if shown is not None and shown["type"] == "form.presented":
        record["form_id"] = shown["form_id"]
        await k.line.send({"type": "form.sign", "form_id": shown["form_id"],
                           "signature": SIGNATURE})
        signed = await k.line.recv({"form.signed", "form.declined", "call.ended", "error"},
                                   FORM_WAIT_S)
        if signed is not None and signed["type"] == "form.signed":
            record["form_sha256"] = signed["sha256"]
        elif signed is not None:
            record["form_problem"] = signed.get("code") or signed["type"]
            if signed["type"] == "call.ended":
                k.line.inbox.put_nowait(signed)
    elif shown is not None:
        k.line.inbox.put_nowait(shown)  # the call ended first: `talk` reads it
    else:
        record["form_problem"] = "not_presented"
    await k.talk(v, record)
