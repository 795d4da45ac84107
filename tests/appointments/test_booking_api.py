"""Booking over HTTP on SQLite and PostgreSQL: seats held by the database, codes, refusals."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest

from server.app import create_app
from signaling.appointments import CODE_ALPHABET
from tests.appointments.conftest import ENTERPRISE, booking, queues, tomorrow_at
from tests.helpers import make_settings, quick_manager

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def client(aiohttp_client: Any, database_url: str) -> Any:
    settings = make_settings(database_url, queues=queues(),
                             appointments={"bookings_per_hour": 1000})
    return await aiohttp_client(create_app(settings))


@pytest.mark.parametrize("storage_backend", ["sqlite", "postgresql"])
async def test_hundred_concurrent_posts_give_two_bookings(client: Any) -> None:
    start = tomorrow_at(10)
    replies = await asyncio.gather(*(client.post("/api/appointments", json=booking(start))
                                     for _ in range(100)))
    statuses = Counter(r.status for r in replies)
    assert statuses == {201: 2, 409: 98}, statuses
    bodies = [await r.json() for r in replies]
    codes = {b["code"] for b in bodies if "code" in b}
    assert len(codes) == 2 and all(len(c) == 8 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert {b["error"] for b in bodies if "error" in b} == {"slot_full"}
    slots = await (await client.get("/api/appointments/slots", params={
        "queue": "tax", "date": start.date().isoformat()})).json()
    by_start = {dt.datetime.fromisoformat(s["start"]): s["free"] for s in slots["slots"]}
    assert by_start[start] == 0
    assert by_start[start + dt.timedelta(minutes=15)] == 2


@pytest.mark.parametrize("storage_backend", ["sqlite", "postgresql"])
async def test_cancel_gives_the_seat_back(client: Any) -> None:
    start = tomorrow_at(9, 15)
    first = await (await client.post("/api/appointments", json=booking(start))).json()
    assert (await client.post("/api/appointments", json=booking(start))).status == 201
    assert (await client.post("/api/appointments", json=booking(start))).status == 409
    seen = await (await client.get(f"/api/appointments/{first['code'].lower()}")).json()
    assert seen["state"] == "booked" and seen["start"] == start.isoformat()
    gone = await client.delete(f"/api/appointments/{first['code']}")
    assert gone.status == 200 and (await gone.json())["state"] == "cancelled"
    assert (await client.delete(f"/api/appointments/{first['code']}")).status == 409
    assert (await client.post("/api/appointments", json=booking(start))).status == 201
    qr = await client.get(f"/api/appointments/{first['code']}/qr.svg")
    assert qr.content_type == "image/svg+xml" and b"<svg" in await qr.read()


async def test_refusals(client: Any) -> None:
    def post(body: dict[str, Any]) -> Any:
        return client.post("/api/appointments", json=body)

    start = tomorrow_at(10)
    cases = [
        (booking(start - dt.timedelta(days=2)), 400, "slot_past"),
        (booking(start + dt.timedelta(days=14)), 400, "outside_horizon"),
        (booking(start + dt.timedelta(minutes=5)), 400, "outside_hours"),
        (booking(start, queue="general"), 400, "no_appointments"),
        (booking(start, queue="nope"), 404, "unknown_queue"),
        ({**booking(start), "enterprise": {**ENTERPRISE, "uscc": "91310114MA1GT3000X"}},
         400, "invalid_uscc"),
        ({**booking(start), "start": "tomorrow"}, 400, "invalid_start"),
        ({**booking(start), "extra": 1}, 400, "invalid_body"),
    ]
    for body, status, code in cases:
        answer = await post(body)
        assert (answer.status, (await answer.json())["error"]) == (status, code), body
    assert (await client.get("/api/appointments/ZZZZ2222")).status == 404


@pytest.mark.parametrize("storage_backend", ["sqlite"])
async def test_rate_limited_per_address(aiohttp_client: Any, database_url: str) -> None:
    settings = make_settings(database_url, queues=queues(appointments_per_slot=100),
                             appointments={"bookings_per_hour": 3})
    client = await aiohttp_client(create_app(settings))
    statuses = [(await client.post("/api/appointments", json=booking(tomorrow_at(11)))).status
                for _ in range(4)]
    assert statuses == [201, 201, 201, 429]


async def test_manager_list(client: Any) -> None:
    start = tomorrow_at(14)
    made = await (await client.post("/api/appointments", json=booking(start, phone="13800000000"))
                  ).json()
    assert (await client.get("/api/appointments")).status == 401
    token = await quick_manager(client.server.app)
    auth = {"Authorization": f"Bearer {token}"}
    listed = await (await client.get("/api/appointments", headers=auth, params={
        "date": start.date().isoformat(), "queue": "tax", "state": "booked"})).json()
    assert [a["code"] for a in listed["appointments"]] == [made["code"]]
    assert listed["appointments"][0]["enterprise_name"] == ENTERPRISE["name"]
    none = await (await client.get("/api/appointments", headers=auth, params={
        "date": start.date().isoformat(), "state": "served"})).json()
    assert none["appointments"] == []
    assert (await client.get("/api/appointments", headers=auth,
                             params={"state": "lost"})).status == 400
