"""Reports over HTTP: only managers, JSON and CSV, the period and dimension checked."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from tests.helpers import bearer
from tests.joint.conftest import call_with, staff, uscc


async def test_only_managers_see_reports_as_json_and_csv(client: Any) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    boss = await staff(app, "boss", None, role="manager")
    kiosk, agent, call_id, _ = await call_with(client, rita)
    await agent.send({"type": "action.start", "call_id": call_id,
                      "action": "sole_proprietor_deregistration",
                      "enterprise": {"name": "Jiading Noodles", "uscc": uscc()}})
    await kiosk.recv("action.updated")
    await kiosk.send({"type": "call.hangup", "call_id": call_id})
    await agent.recv("call.ended")

    assert (await client.get("/api/reports", headers=bearer(rita))).status == 403
    assert (await client.get("/api/reports.csv", headers=bearer(rita))).status == 403
    assert (await client.get("/api/reports")).status == 401
    resp = await client.get("/api/reports?by=colour", headers=bearer(boss))
    assert resp.status == 400
    resp = await client.get("/api/reports?by=specialist", headers=bearer(boss))
    report = await resp.json()
    assert [(r["key"], r["sessions"], r["answered"]) for r in report["rows"]] == [
        ("rita", 1, 1)]
    assert report["actions_completed"] == {}  # started, not completed
    resp = await client.get("/api/reports.csv?by=queue&from=2020-01-01", headers=bearer(boss))
    assert resp.status == 200 and resp.content_type == "text/csv"
    lines = (await resp.text()).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("key,label,sessions,answered,")
    assert lines[1].startswith("registration,企业登记,1,1,1,0,")  # the queue's name, not its id
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="report-queue-20200101-{today}.csv"')


async def test_the_manager_pages_render_for_managers_only(client: Any) -> None:
    app = client.server.app
    boss = await staff(app, "boss", None, role="manager")
    rita = await staff(app, "rita", "market_regulation")
    for page in ("reports", "actions", "matters"):
        client.session.cookie_jar.update_cookies({"vwin_session": boss})
        resp = await client.get(f"/manage/{page}")
        assert resp.status == 200, page
        assert f'src="/static/js/manage-{page}.js"' in await resp.text()
        client.session.cookie_jar.update_cookies({"vwin_session": rita})
        assert (await client.get(f"/manage/{page}", allow_redirects=False)).status == 403
    resp = await client.get("/console")
    assert resp.status == 200 and 'id="action-form"' in await resp.text()
