"""Pending matters over HTTP: due dates on the working-day calendar, states, who sees what."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.joint import JOINT
from tests.helpers import bearer
from tests.joint.conftest import local, staff, uscc


def at(client: Any, moment: dt.datetime) -> None:
    client.server.app[JOINT].desk.clock = lambda: moment


async def open_matter(client: Any, token: str, klass: str, **extra: Any) -> dict[str, Any]:
    body = {"enterprise": {"name": "Nanxiang Dumplings", "uscc": uscc()},
            "description": "lost death certificate blocks a share inheritance",
            "class": klass, **extra}
    resp = await client.post("/api/matters", headers=bearer(token), json=body)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["matter"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("opened", "klass", "due"), [
    (local(2026, 2, 13, 10, 0), "general", "2026-02-25"),  # Friday before Spring Festival
    (local(2026, 2, 13, 10, 0), "complex", "2026-03-02"),  # ...make-up Saturdays count
    (local(2026, 2, 28, 10, 0), "simple", "2026-02-28"),  # on a make-up Saturday
    (local(2026, 2, 28, 10, 0), "general", "2026-03-04"),
    (local(2026, 3, 2, 17, 29), "simple", "2026-03-02"),  # just before the windows close
    (local(2026, 3, 2, 18, 0), "simple", "2026-03-03"),  # late on a working day
    (local(2026, 9, 30, 16, 0), "general", "2026-10-10"),  # National Day, make-up Saturday
])
async def test_due_date_follows_the_working_day_calendar(
        client: Any, opened: dt.datetime, klass: str, due: str) -> None:
    token = await staff(client.server.app, "tom", "tax")
    at(client, opened)
    matter = await open_matter(client, token, klass)
    assert (matter["due"], matter["class"], matter["state"]) == (due, klass, "open")
    assert matter["overdue"] is False


async def test_states_history_and_overdue(client: Any) -> None:
    app = client.server.app
    tom = await staff(app, "tom", "tax")
    boss = await staff(app, "boss", None, role="manager")
    at(client, local(2026, 3, 2, 10, 0))
    late = await open_matter(client, tom, "simple")
    kept = await open_matter(client, tom, "general")
    assert (await client.post("/api/matters", headers=bearer(tom), json={
        "enterprise": {"name": "X", "uscc": "91310114MA1GT3000A"}, "description": "d",
        "class": "simple"})).status == 400
    assert (await client.post("/api/matters", headers=bearer(tom), json={
        "enterprise": {"name": "X"}, "description": "d", "class": "urgent"})).status == 400

    at(client, local(2026, 3, 3, 9, 0))
    resp = await client.get("/api/matters?overdue=true", headers=bearer(tom))
    assert [m["id"] for m in (await resp.json())["matters"]] == [late["id"]]

    url = f"/api/matters/{late['id']}"
    resp = await client.patch(url, headers=bearer(tom), json={"state": "in_progress"})
    assert resp.status == 200
    resp = await client.patch(url, headers=bearer(tom), json={"state": "resolved"})
    assert resp.status == 400 and (await resp.json())["error"] == "resolution_required"
    at(client, local(2026, 3, 3, 11, 30))
    resp = await client.patch(url, headers=bearer(tom),
                              json={"state": "resolved", "note": "certificate reissued"})
    resolved = (await resp.json())["matter"]
    assert resolved["resolved_on_time"] is False and resolved["overdue"] is False
    resp = await client.patch(url, headers=bearer(boss), json={"state": "in_progress"})
    assert resp.status == 409

    history = (await (await client.get(url, headers=bearer(boss))).json())["history"]
    assert [(h["actor"], h["old_state"], h["new_state"]) for h in history] == [
        ("tom", None, "open"), ("tom", "open", "in_progress"),
        ("tom", "in_progress", "resolved")]
    assert history[-1]["note"] == "certificate reissued"
    assert history[-1]["ts"].startswith("2026-03-03T03:30")

    resp = await client.patch(f"/api/matters/{kept['id']}", headers=bearer(boss),
                              json={"state": "escalated"})
    assert (await resp.json())["matter"]["state"] == "escalated"
    summary = (await (await client.get("/api/matters", headers=bearer(boss))).json())
    assert summary["departments"] == [{"department": "tax", "unresolved": 1, "overdue": 0,
                                       "resolved": 1, "resolved_on_time": 0}]


async def test_a_specialist_sees_only_their_departments_matters(client: Any) -> None:
    app = client.server.app
    tom = await staff(app, "tom", "tax")
    rita = await staff(app, "rita", "market_regulation")
    boss = await staff(app, "boss", None, role="manager")
    at(client, local(2026, 3, 2, 10, 0))
    taxes = await open_matter(client, tom, "general")
    licence = await open_matter(client, boss, "complex", department="market_regulation")
    assert licence["department"] == "market_regulation"

    mine = await (await client.get("/api/matters", headers=bearer(tom))).json()
    assert [m["id"] for m in mine["matters"]] == [taxes["id"]] and "departments" not in mine
    resp = await client.get("/api/matters?department=market_regulation", headers=bearer(tom))
    assert resp.status == 403
    assert (await client.get(f"/api/matters/{licence['id']}", headers=bearer(tom))).status == 404
    resp = await client.patch(f"/api/matters/{licence['id']}", headers=bearer(tom),
                              json={"state": "in_progress"})
    assert resp.status == 403
    theirs = await (await client.get("/api/matters", headers=bearer(rita))).json()
    assert [m["id"] for m in theirs["matters"]] == [licence["id"]]
    every = await (await client.get("/api/matters", headers=bearer(boss))).json()
    assert {m["id"] for m in every["matters"]} == {taxes["id"], licence["id"]}
