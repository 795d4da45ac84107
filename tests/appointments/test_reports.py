"""Appointment figures in the managers' report, on SQLite and PostgreSQL: booked, served,
no-show and cancelled per queue and site; appointment waits from the slot's start beside
walk-in waits from arrival."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server import keys
from server.app import create_app
from tests.appointments.conftest import SHANGHAI, booking, queues, tomorrow_at
from tests.appointments.test_arrival import next_slot
from tests.helpers import add_terminal, connect, make_settings, quick_manager, quick_specialist
from tests.joint.conftest import uscc

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("storage_backend", ["sqlite", "postgresql"])
async def test_report_counts_appointments_and_splits_waits(aiohttp_client: Any,
                                                           database_url: str) -> None:
    settings = make_settings(database_url, queues=queues(slot_minutes=5))
    client = await aiohttp_client(create_app(settings))
    app = client.server.app
    db = app[keys.DB]
    made = await (await client.post("/api/appointments",
                                    json=booking(await next_slot(client)))).json()
    cancelled = await (await client.post("/api/appointments",
                                         json=booking(tomorrow_at(9)))).json()
    assert (await client.delete(f"/api/appointments/{cancelled['code']}")).status == 200
    now = dt.datetime.now(dt.UTC)
    missed = await db.book_appointment(
        queue="tax", start=now - dt.timedelta(hours=1), end=now, seats=2,
        enterprise_name="未到企业", enterprise_uscc=uscc(), phone=None, now=now)
    # slots started over half an hour ago: `made` may be the slot under way (a clock in the
    # small hours of Shanghai, when the first free slot is the current one)
    swept = await db.mark_no_shows(now - dt.timedelta(minutes=30), now)
    assert [b.id for b in swept] == [missed.id]

    agent = await connect(client, await quick_specialist(app, "alice", {"tax": 1}))
    await agent.send({"type": "agent.status", "status": "available"})
    for terminal, fields in (("B1", {"appointment": made["code"]}), ("W1", {})):
        kiosk = await connect(client, await add_terminal(app, terminal))
        await kiosk.send({"type": "call.request", "queue": "tax", **fields})
        queued = await kiosk.recv("call.queued")
        await agent.recv("call.offered", call_id=queued["call_id"])
        await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
        await kiosk.recv("call.connected")
        await agent.send({"type": "call.hangup", "call_id": queued["call_id"]})
        await kiosk.recv("call.ended")
        await agent.send({"type": "agent.wrapup_done"})
        await agent.recv("agent.status", status="available")

    today = dt.datetime.now(SHANGHAI).date()
    span = {"from": (today - dt.timedelta(days=1)).isoformat(),
            "to": (today + dt.timedelta(days=2)).isoformat()}
    auth = {"Authorization": f"Bearer {await quick_manager(app)}"}
    by_queue = await (await client.get("/api/reports", headers=auth,
                                       params={**span, "by": "queue"})).json()
    tax = next(r for r in by_queue["rows"] if r["key"] == "tax")
    assert (tax["appointments_booked"], tax["appointments_served"], tax["appointments_no_show"],
            tax["appointments_cancelled"]) == (2, 1, 1, 1)
    assert tax["avg_wait_appointment_s"] == 0.0  # answered before its slot began
    assert tax["avg_wait_walk_in_s"] is not None and tax["avg_wait_walk_in_s"] >= 0
    by_site = await (await client.get("/api/reports", headers=auth,
                                      params={**span, "by": "site"})).json()
    park = next(r for r in by_site["rows"] if r["key"] == "park1")
    assert (park["appointments_booked"], park["appointments_served"]) == (1, 1)
    nowhere = next(r for r in by_site["rows"] if r["key"] is None)  # never arrived: no site
    assert (nowhere["appointments_no_show"], nowhere["appointments_cancelled"]) == (1, 1)
    csv = await (await client.get("/api/reports.csv", headers=auth,
                                  params={**span, "by": "queue"})).text()
    assert "appointments_no_show" in csv.splitlines()[0]
