"""HTTP: queue figures, the session list (filters, order, pages, CSV) and terminal management."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

from server import keys
from tests.helpers import (
    add_terminal,
    bearer,
    close_code,
    connect,
    connected_call,
    eventually,
    quick_manager,
    quick_specialist,
    refused,
)


async def get(client: Any, path: str, token: str, status: int = 200, **params: Any) -> Any:
    resp = await client.get(path, headers=bearer(token), params=params)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_queue_figures_follow_the_calls(app_client: Any) -> None:
    app = app_client.server.app
    manager = await quick_manager(app)
    call = await connected_call(app_client, "T1", "alice")  # answered, still talking
    await connect(app_client, await quick_specialist(app, "bob", {"tax": 1}))  # away
    t2 = await connect(app_client, await add_terminal(app, "T2"))
    await t2.send({"type": "call.request", "queue": "tax"})
    cancelled = (await t2.recv("call.queued"))["call_id"]
    await t2.send({"type": "call.cancel", "call_id": cancelled})
    await t2.recv("call.ended")
    await t2.send({"type": "call.request", "queue": "general"})
    assert (await t2.recv("call.rejected"))["reason"] == "no_specialist"
    t3 = await connect(app_client, await add_terminal(app, "T3"))
    await t3.send({"type": "call.request", "queue": "tax"})
    await t3.recv("call.queued")
    body = await get(app_client, "/api/queues", manager)
    tax = next(q for q in body["queues"] if q["id"] == "tax")
    general = next(q for q in body["queues"] if q["id"] == "general")
    assert (tax["offered"], tax["answered"], tax["abandoned"]) == (3, 1, 1)
    assert tax["service_level"] == 50.0 and tax["avg_wait_s"] < 10
    assert (tax["waiting"], tax["agents_available"], tax["agents_busy"],
            tax["agents_logged_in"]) == (1, 0, 1, 2)
    assert 0 <= tax["longest_wait_s"] < 10
    assert (general["offered"], general["answered"], general["waiting"]) == (0, 0, 0)
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.agent.recv("agent.status", status="wrap_up")
    await call.agent.send({"type": "agent.wrapup_done"})
    await call.agent.recv("call.offered")
    body = await get(app_client, "/api/queues", manager)
    tax = next(q for q in body["queues"] if q["id"] == "tax")
    assert (tax["waiting"], tax["agents_busy"], tax["agents_available"]) == (1, 1, 0)


async def make_log(client: Any) -> tuple[str, list[str]]:
    """Two answered sessions with notes and ratings, then five rejected ones; newest last."""
    app = client.server.app
    await app[keys.DB].add_site("office2", "Market office", "market_office")
    ids = []
    for terminal, site, user, queue, outcome, score in (
            ("T1", "park1", "alice", "tax", "resolved", 5),
            ("T2", "office2", "bob", "registration", "follow_up", 3)):
        agent = await connect(client, await quick_specialist(app, user, {queue: 1}))
        await agent.send({"type": "agent.status", "status": "available"})
        kiosk = await connect(client, await add_terminal(app, terminal, site))
        await kiosk.send({"type": "call.request", "queue": queue})
        offered = await agent.recv("call.offered")
        await agent.send({"type": "call.accept", "call_id": offered["call_id"]})
        session_id = (await kiosk.recv("call.connected"))["session_id"]
        await kiosk.send({"type": "call.hangup", "call_id": offered["call_id"]})
        await kiosk.recv("call.ended")
        await kiosk.send({"type": "session.rate", "session_id": session_id, "score": score})
        await agent.send({"type": "session.wrapup", "session_id": session_id,
                          "outcome": outcome})
        await kiosk.recv("saved")
        await agent.recv("saved")
        ids.append(session_id)
    kiosk = await connect(client, await add_terminal(app, "T3"))
    for _ in range(5):
        await kiosk.send({"type": "call.request", "queue": "general"})
        await kiosk.recv("call.rejected")
    rows, _ = await app[keys.DB].list_sessions(terminal="T3")
    ids.extend(r.id for r in reversed(rows))
    return await quick_manager(app), ids


async def test_session_list_filters_order_and_pages(app_client: Any) -> None:
    manager, ids = await make_log(app_client)
    newest_first = list(reversed(ids))
    everything = await get(app_client, "/api/sessions", manager)
    assert [s["id"] for s in everything["sessions"]] == newest_first
    assert everything["next_cursor"] is None
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"queue": "tax"}, [ids[0]]),
        ({"site": "office2"}, [ids[1]]),
        ({"terminal": "T1"}, [ids[0]]),
        ({"specialist": "bob"}, [ids[1]]),
        ({"outcome": "resolved"}, [ids[0]]),
        ({"rating": "3"}, [ids[1]]),
        ({"queue": "general", "terminal": "T3"}, newest_first[:5]),
        ({"from": today.isoformat(), "to": today.isoformat()}, newest_first),
        ({"to": (today - dt.timedelta(days=1)).isoformat()}, []),
        ({"from": (today + dt.timedelta(days=1)).isoformat()}, []),
    ]
    for params, expected in cases:
        body = await get(app_client, "/api/sessions", manager, **params)
        assert [s["id"] for s in body["sessions"]] == expected, params
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await get(app_client, "/api/sessions", manager, **params)
        assert len(page["sessions"]) <= 3
        seen.extend(s["id"] for s in page["sessions"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    for bad in ({"cursor": "not-a-cursor"}, {"limit": "0"}, {"limit": "x"}, {"from": "May"},
                {"colour": "red"}):
        body = await get(app_client, "/api/sessions", manager, 400, **bad)
        assert body["error"] in ("invalid_cursor", "invalid_query"), bad


async def test_session_csv_export(app_client: Any) -> None:
    manager, ids = await make_log(app_client)
    resp = await app_client.get("/api/sessions.csv", headers=bearer(manager),
                                params={"queue": "general"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert {r["id"] for r in rows} == set(ids[2:])
    assert {(r["state"], r["terminal_id"], r["site_id"]) for r in rows} == {
        ("rejected", "T3", "park1")}
    everything = await app_client.get("/api/sessions.csv", headers=bearer(manager))
    rows = list(csv.DictReader(io.StringIO((await everything.read()).decode("utf-8-sig"))))
    tax = next(r for r in rows if r["id"] == ids[0])
    assert (tax["specialist_id"], tax["outcome"], tax["rating"]) == ("alice", "resolved", "5")
    # Times in the configured zone with its offset, the queue by name, the file by local days.
    assert tax["queue_name"] == "税务咨询"
    created = dt.datetime.fromisoformat(tax["created_at"])
    assert tax["created_at"].endswith("+08:00") and created.utcoffset() == dt.timedelta(hours=8)
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    assert everything.headers["Content-Disposition"] == (
        f'attachment; filename="sessions-start-{today}.csv"')
    period = await app_client.get("/api/sessions.csv", headers=bearer(manager),
                                  params={"from": "2026-03-01", "to": "2026-03-31"})
    assert period.headers["Content-Disposition"] == (
        'attachment; filename="sessions-20260301-20260331.csv"')


async def test_terminals_online_provisioning_and_revocation(app_client: Any) -> None:
    app = app_client.server.app
    manager = await quick_manager(app)
    await add_terminal(app, "T2")
    resp = await app_client.post("/api/terminals", headers=bearer(manager),
                                 json={"id": "T1", "site": "park1", "name": "Lobby"})
    assert resp.status == 201
    token = (await resp.json())["token"]
    kiosk = await connect(app_client, token)
    assert (kiosk.welcome["id"], kiosk.welcome["name"]) == ("T1", "Lobby")
    listed = {t["id"]: t for t in (await get(app_client, "/api/terminals", manager))["terminals"]}
    assert (listed["T1"]["online"], listed["T2"]["online"]) == (True, False)
    assert listed["T1"]["site_id"] == "park1" and listed["T1"]["revoked"] is False
    for body, status in (({"id": "T1", "site": "park1"}, 409), ({"id": "T3", "site": "nowhere"},
                                                                  400), ({"id": "T3"}, 400)):
        again = await app_client.post("/api/terminals", headers=bearer(manager), json=body)
        assert again.status == status, body
    revoked = await app_client.post("/api/terminals/T1/revoke", headers=bearer(manager))
    assert revoked.status == 200
    assert await close_code(kiosk.ws) == 4410
    error, code = await refused(app_client, {"type": "hello", "token": token})
    assert (error["code"], code) == ("unauthorized", 4401)

    async def offline_and_revoked() -> bool:
        body = await get(app_client, "/api/terminals", manager)
        t1 = next(t for t in body["terminals"] if t["id"] == "T1")
        return (t1["online"], t1["revoked"]) == (False, True)

    await eventually(offline_and_revoked)
    missing = await app_client.post("/api/terminals/T404/revoke", headers=bearer(manager))
    assert missing.status == 404
