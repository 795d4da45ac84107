"""Arrival by code at a kiosk, on both routing backends: an appointment within its window
waits ahead of walk-ins queued earlier; outside it, `appointment_window`; closed hours."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from server.storage.db import Database
from signaling.appointments import Appointments, Booking
from signaling.errors import Refused
from tests.appointments.conftest import SHANGHAI, booking, queues, tomorrow_at
from tests.helpers import add_terminal, connect, quick_specialist

pytestmark = pytest.mark.timeout(120)


async def next_slot(client: Any, queue: str = "tax") -> dt.datetime:
    """The first slot still ahead with a free seat (today's, or tomorrow's near midnight)."""
    today = dt.datetime.now(SHANGHAI).date()
    for day in (today, today + dt.timedelta(days=1)):
        found = await (await client.get("/api/appointments/slots", params={
            "queue": queue, "date": day.isoformat()})).json()
        for slot in found["slots"]:
            if slot["free"]:
                return dt.datetime.fromisoformat(slot["start"])
    raise AssertionError("no free slot")



async def with_booking(aiohttp_client: Any,
                 make_app: Callable[..., web.Application]) -> tuple[Any, dict[str, Any]]:
    """A client of an app with 5-minute slots and the appointment it booked in the next one."""
    client = await aiohttp_client(make_app(queues=queues(slot_minutes=5)))
    made = await (await client.post("/api/appointments",
                                    json=booking(await next_slot(client)))).json()
    return client, made

async def test_appointment_goes_ahead_of_earlier_walk_ins(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client, made = await with_booking(aiohttp_client, make_app)
    app = client.server.app
    agent = await connect(client, await quick_specialist(app, "alice", {"tax": 1}))
    walk_ins = []
    for terminal in ("W1", "W2"):
        kiosk = await connect(client, await add_terminal(app, terminal))
        await kiosk.send({"type": "call.request", "queue": "tax"})
        walk_ins.append((kiosk, await kiosk.recv("call.queued")))
    booked = await connect(client, await add_terminal(app, "B1"))
    await booked.send({"type": "call.request", "queue": "tax",
                       "appointment": made["code"].lower()})
    queued = await booked.recv("call.queued")
    assert queued["position"] == 1
    await walk_ins[0][0].recv("call.position", position=2)
    seen = await (await client.get(f"/api/appointments/{made['code']}")).json()
    assert seen["state"] == "arrived"

    await agent.send({"type": "agent.status", "status": "available"})
    offered = await agent.recv("call.offered")
    assert offered["call_id"] == queued["call_id"]
    await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
    await booked.recv("call.connected")
    seen = await (await client.get(f"/api/appointments/{made['code']}")).json()
    assert seen["state"] == "served"

    # served: the code is no longer open
    other = await connect(client, await add_terminal(app, "B2"))
    await other.send({"type": "call.request", "queue": "tax", "appointment": made["code"]})
    await other.error("appointment_unknown")


async def test_a_cancelled_arrival_may_arrive_again_but_not_twice_at_once(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client, made = await with_booking(aiohttp_client, make_app)
    app = client.server.app
    await connect(client, await quick_specialist(app, "alice", {"tax": 1}))  # away
    first = await connect(client, await add_terminal(app, "B1"))
    second = await connect(client, await add_terminal(app, "B2"))
    await first.send({"type": "call.request", "queue": "tax", "appointment": made["code"]})
    queued = await first.recv("call.queued")
    await second.send({"type": "call.request", "queue": "tax", "appointment": made["code"]})
    await second.error("appointment_used")
    await first.send({"type": "call.cancel", "call_id": queued["call_id"]})
    await first.recv("call.ended")
    await second.send({"type": "call.request", "queue": "tax", "appointment": made["code"]})
    assert (await second.recv("call.queued"))["position"] == 1
    seen = await (await client.get(f"/api/appointments/{made['code']}")).json()
    assert seen["state"] == "arrived"


async def test_outside_window_and_unknown_code(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(queues=queues()))
    app = client.server.app
    later = await (await client.post("/api/appointments", json=booking(tomorrow_at(15)))
                   ).json()
    await quick_specialist(app, "alice", {"tax": 1})
    kiosk = await connect(client, await add_terminal(app, "K1"))
    await kiosk.send({"type": "call.request", "queue": "tax", "appointment": later["code"]})
    assert (await kiosk.error("appointment_window"))["refused"] == "call.request"
    await kiosk.send({"type": "call.request", "queue": "general", "appointment": later["code"]})
    await kiosk.error("appointment_queue")
    await kiosk.send({"type": "call.request", "queue": "tax", "appointment": "WRONG-123"})
    await kiosk.error("appointment_unknown")
    seen = await (await client.get(f"/api/appointments/{later['code']}")).json()
    assert seen["state"] == "booked"


async def test_closed_by_hours(aiohttp_client: Any,
                               make_app: Callable[..., web.Application]) -> None:
    hour = (dt.datetime.now(SHANGHAI).hour + 2) % 24  # a half hour that is not now
    client = await aiohttp_client(make_app(queues=queues(hours=f"{hour:02d}:00-{hour:02d}:30")))
    app = client.server.app
    agent = await connect(client, await quick_specialist(app, "alice", {"tax": 1}))
    await agent.send({"type": "agent.status", "status": "available"})
    kiosk = await connect(client, await add_terminal(app, "K1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    rejected = await kiosk.recv("call.rejected")
    opens = dt.datetime.fromisoformat(rejected["opens_at"])
    assert rejected["reason"] == "closed"
    assert opens > dt.datetime.now(dt.UTC) and opens.astimezone(SHANGHAI).hour == hour
    status = await kiosk.recv("queue.status")
    tax = next(q for q in status["queues"] if q["id"] == "tax")
    assert (tax["open"], tax["hours"], tax["opens_at"]) == (
        False, f"{hour:02d}:00-{hour:02d}:30", rejected["opens_at"])
    assert tax["appointments"] is True


async def test_an_arrival_in_time_may_come_again_after_the_window(database: Database) -> None:
    """A visitor who arrived in time and whose call ended unanswered (its request lost with a
    node after the arrival was logged, on goal-size day B; or a cancel) may arrive again for
    `late_s` after that arrival, even past the slot's window; one who never arrived may not."""
    start = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)
    desk = Appointments(book=database, early_s=600.0, late_s=900.0)

    async def booked() -> Booking:
        return await database.book_appointment(
            queue="tax", start=start, end=start + dt.timedelta(minutes=5), seats=5,
            enterprise_name="嘉定预约企业", enterprise_uscc="91310114MA1GTEST0X", phone=None,
            now=start - dt.timedelta(days=1))

    _, closes = desk.window(await booked())
    came, never = await booked(), await booked()
    arrived_at = closes - dt.timedelta(seconds=10)
    assert await database.mark_arrived(came.id, "s-lost", arrived_at)
    later = closes + dt.timedelta(seconds=60)
    assert (await desk.arriving("tax", came.code, later)).id == came.id
    with pytest.raises(Refused) as refused:
        await desk.arriving("tax", never.code, later)
    assert refused.value.code == "appointment_window"
    with pytest.raises(Refused) as refused:
        await desk.arriving("tax", came.code, arrived_at + dt.timedelta(seconds=901))
    assert refused.value.code == "appointment_window"
