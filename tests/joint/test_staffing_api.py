"""`GET /api/reports/staffing`: the day's arrivals, the Erlang C need and who was on duty."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from tests.helpers import bearer
from tests.joint.conftest import call_with, staff


async def test_a_served_call_shows_in_todays_staffing(client: Any) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    boss = await staff(app, "boss", None, role="manager")
    kiosk, agent, call_id, _ = await call_with(client, rita)
    await kiosk.send({"type": "call.hangup", "call_id": call_id})
    await agent.recv("call.ended")

    assert (await client.get("/api/reports/staffing", headers=bearer(rita))).status == 403
    resp = await client.get("/api/reports/staffing?day=yesterday", headers=bearer(boss))
    assert resp.status == 400
    resp = await client.get("/api/reports/staffing", headers=bearer(boss))
    assert resp.status == 200
    body = await resp.json()
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    assert body["day"] == now.date().isoformat()
    queues = {q["queue"]: q for q in body["queues"]}
    assert {"tax", "registration", "deregistration"} <= set(queues)
    [hour] = queues["registration"]["hours"]
    assert hour["hour"] == now.hour and hour["arrivals"] == 1
    assert hour["handle_s"] >= 30  # the talk plus the queue's 30 s wrap-up
    assert hour["needed"] == 1 and hour["on_duty"] >= 0  # rita, signed in a moment ago
    assert queues["tax"]["hours"] == []
    resp = await client.get("/api/reports/staffing?day=2020-01-01", headers=bearer(boss))
    assert all(q["hours"] == [] for q in (await resp.json())["queues"])
