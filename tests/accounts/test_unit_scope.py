"""A manager sees what happened at the sites of their unit's subtree, nothing else (404),
in the API and the CSV; reports by unit roll up one level below the manager, on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server import keys
from server.app import create_app
from tests.accounts.world import SITES, build_units, manager, serve_calls
from tests.helpers import QUICK_PASSWORD, bearer, make_settings


class City:
    def __init__(self, client: Any, sessions: dict[str, list[str]], tokens: dict[str, str]):
        self.client, self.sessions, self.tokens = client, sessions, tokens

    async def get(self, who: str, path: str, status: int = 200, **params: Any) -> Any:
        resp = await self.client.get(path, headers=bearer(self.tokens[who]), params=params)
        assert resp.status == status, (path, await resp.text())
        return await resp.json() if resp.content_type == "application/json" else await resp.text()

    def of(self, *sites: str) -> set[str]:
        return {s for site in sites for s in self.sessions[site]}


@pytest.fixture
async def city(aiohttp_client: Any, database_url: str) -> AsyncIterator[City]:
    app = create_app(make_settings(database_url))
    client = await aiohttp_client(app)
    await build_units(app)
    sessions = await serve_calls(client)
    tokens = {"city": await manager(app, "cityboss", "sh"),
              "jd": await manager(app, "jdboss", "jd"),
              "xc": await manager(app, "xcboss", "jd-xc"),
              "nounit": await manager(app, "root", None)}
    yield City(client, sessions, tokens)


JD_SITES = ("site-xc", "site-at", "site-jd")


async def test_a_district_manager_sees_their_district_only(city: City) -> None:
    listed = await city.get("jd", "/api/sessions")
    assert {s["id"] for s in listed["sessions"]} == city.of(*JD_SITES)
    for who in ("city", "nounit"):
        everything = await city.get(who, "/api/sessions")
        assert {s["id"] for s in everything["sessions"]} == city.of(*SITES)
    xc = await city.get("xc", "/api/sessions")
    assert {s["id"] for s in xc["sessions"]} == city.of("site-xc")

    other = city.sessions["site-hp"][0]
    own = city.sessions["site-at"][0]
    await city.get("jd", f"/api/sessions/{other}", 404)
    assert (await city.get("jd", f"/api/sessions/{own}"))["session"]["id"] == own
    await city.get("xc", f"/api/sessions/{own}", 404)  # a sibling sub-district
    await city.get("jd", f"/api/sessions/{other}/recording-access", 404)
    assert (await city.get("city", f"/api/sessions/{other}/recording-access"))["access"] == []

    exported = await city.get("jd", "/api/sessions.csv")
    rows = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    assert {r["id"] for r in rows} == city.of(*JD_SITES)

    sites = await city.get("jd", "/api/sites")
    assert {s["id"] for s in sites["sites"]} == set(JD_SITES)
    terminals = await city.get("jd", "/api/terminals")
    assert {t["site_id"] for t in terminals["terminals"]} == set(JD_SITES)
    await city.client.post("/api/terminals/site-hp-0/revoke", headers=bearer(city.tokens["jd"]))
    assert not (await city.client.server.app[keys.DB].get_terminal("site-hp-0")).revoked_at


async def test_recordings_outside_the_district_are_404(city: City) -> None:
    db = city.client.server.app[keys.DB]
    other = city.sessions["site-hp"][0]
    await db.segment_started(session_id=other, participant_id="terminal:site-hp-0", segment=0,
                             recorder="r1", path="x/hp.webm")
    recording = (await db.list_recordings(other))[0]
    await city.get("jd", f"/api/recordings/{recording.id}", 404)
    # The city manager reaches it (the file itself is missing on this test server: 404
    # "missing", not "not_found").
    resp = await city.client.get(f"/api/recordings/{recording.id}",
                                 headers=bearer(city.tokens["city"]))
    assert (await resp.json())["error"] == "missing"
    assert await db.list_access(other) == []


async def test_report_rows_and_csv_stay_in_the_district(city: City) -> None:
    by_site = await city.get("jd", "/api/reports", by="site")
    assert {r["key"] for r in by_site["rows"]} == set(JD_SITES)
    assert sum(r["sessions"] for r in by_site["rows"]) == 4
    exported = await city.get("jd", "/api/reports.csv", by="site")
    keys_in_csv = {r["key"] for r in csv.DictReader(io.StringIO(exported.lstrip("\ufeff")))}
    assert keys_in_csv == set(JD_SITES)
    by_queue = await city.get("jd", "/api/reports", by="queue")
    assert [(r["key"], r["sessions"]) for r in by_queue["rows"]] == [("tax", 4)]


async def test_reports_by_unit_roll_up_and_add_up(city: City) -> None:
    total = sum(len(ids) for ids in city.sessions.values())
    city_rows = {r["key"]: r for r in (await city.get("city", "/api/reports", by="unit"))["rows"]}
    assert set(city_rows) == {"jd", "hp"}
    assert city_rows["jd"]["label"] == "嘉定区"
    assert (city_rows["jd"]["sessions"], city_rows["hp"]["sessions"]) == (4, 2)
    everything = (await city.get("city", "/api/reports", by="queue"))["rows"]
    for figure in ("sessions", "answered", "answered_within_target"):
        assert sum(r[figure] for r in city_rows.values()) == sum(r[figure] for r in everything)
    assert sum(r["sessions"] for r in city_rows.values()) == total
    unscoped = (await city.get("nounit", "/api/reports", by="unit"))["rows"]
    assert {r["key"]: r["sessions"] for r in unscoped} == {"jd": 4, "hp": 2}

    jd_rows = {r["key"]: r for r in (await city.get("jd", "/api/reports", by="unit"))["rows"]}
    assert {k: r["sessions"] for k, r in jd_rows.items()} == {"jd-xc": 2, "jd-at": 1, "jd": 1}
    for figure in ("sessions", "answered"):
        assert sum(r[figure] for r in jd_rows.values()) == city_rows["jd"][figure]
    exported = await city.get("jd", "/api/reports.csv", by="unit")
    labels = {r["key"]: r["label"] for r in csv.DictReader(io.StringIO(exported.lstrip("\ufeff")))}
    assert labels == {"jd-xc": "嘉定新城", "jd-at": "安亭镇", "jd": "嘉定区"}


async def test_the_unit_tree(city: City) -> None:
    tree = (await city.get("city", "/api/units"))["units"]
    assert [u["id"] for u in tree] == ["sh"]
    assert {u["id"]: [c["id"] for c in u["children"]] for u in tree[0]["children"]} == {
        "jd": ["jd-at", "jd-xc"], "hp": ["hp-wt"]}
    jd = (await city.get("jd", "/api/units"))["units"]
    assert [u["id"] for u in jd] == ["jd"] and len(jd[0]["children"]) == 2


async def test_session_pages_outside_the_district_are_404(city: City) -> None:
    resp = await city.client.post("/api/login", json={"username": "jdboss",
                                                      "password": QUICK_PASSWORD})
    assert resp.status == 200
    other = await city.client.get(f"/manage/sessions/{city.sessions['site-hp'][0]}")
    assert other.status == 404 and "没有这个会话" in await other.text()
    own = await city.client.get(f"/manage/sessions/{city.sessions['site-xc'][0]}")
    assert own.status == 200


async def test_pending_matters_follow_their_session(city: City) -> None:
    made = {}
    for site in ("site-hp", "site-xc"):
        resp = await city.client.post("/api/matters", headers=bearer(city.tokens["city"]), json={
            "enterprise": {"name": f"企业 {site}"}, "description": "补交材料",
            "class": "general", "department": "tax", "session_id": city.sessions[site][0]})
        assert resp.status == 201, await resp.text()
        made[site] = (await resp.json())["matter"]["id"]
    listed = await city.get("jd", "/api/matters")
    assert [m["id"] for m in listed["matters"]] == [made["site-xc"]]
    assert [d["unresolved"] for d in listed["departments"]] == [1]
    await city.get("jd", f"/api/matters/{made['site-hp']}", 404)
    await city.get("jd", f"/api/matters/{made['site-xc']}")
    resp = await city.client.patch(f"/api/matters/{made['site-hp']}",
                                   headers=bearer(city.tokens["jd"]),
                                   json={"state": "in_progress"})
    assert resp.status == 404
    resp = await city.client.post("/api/matters", headers=bearer(city.tokens["jd"]), json={
        "enterprise": {"name": "X"}, "description": "d", "class": "simple",
        "department": "tax", "session_id": city.sessions["site-hp"][1]})
    assert resp.status == 404
    everything = await city.get("city", "/api/matters")
    assert len(everything["matters"]) == 2
