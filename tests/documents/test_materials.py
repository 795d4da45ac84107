"""Materials guidance: the checklist over HTTP, checked at load, ticks kept with the session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.config import ConfigError
from server.materials import load_materials
from tests.helpers import add_terminal, bearer, make_settings, quick_specialist


async def test_a_terminal_gets_its_queues_checklist_chinese_and_english(
        client: Any) -> None:
    token = await add_terminal(client.server.app, "T9")
    resp = await client.get("/api/materials?queue=deregistration", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    items = {item["id"]: item for item in body["items"]}
    assert list(items) == ["business_licence", "id_card", "tax_clearance"]
    licence = items["business_licence"]
    assert licence["name_zh"] == "营业执照（正、副本）原件" and licence["required"] is True
    assert licence["name_en"] and licence["note_zh"] and licence["for"] == "queue"
    assert licence["example"] == "/static/img/materials/business-licence.svg"
    assert items["tax_clearance"]["required"] is False
    picture = await client.get(licence["example"])
    assert picture.status == 200


async def test_queue_and_action_lists_merge_each_item_once(client: Any) -> None:
    token = await quick_specialist(client.server.app, "lin", {"deregistration": 1})
    resp = await client.get("/api/materials?queue=deregistration"
                            "&action=sole_proprietor_deregistration", headers=bearer(token))
    items = (await resp.json())["items"]
    ids = [i["id"] for i in items]
    assert ids == ["business_licence", "id_card", "tax_clearance",
                   "deregistration_application"]
    assert items[-1]["for"] == "action"


@pytest.mark.parametrize(("query", "status", "code"), [
    ("", 400, "invalid_query"),
    ("?queue=nope", 404, "unknown_queue"),
    ("?action=nope", 404, "unknown_action"),
    ("?queue=tax&colour=red", 400, "invalid_query"),
])
async def test_bad_materials_queries_are_refused(client: Any, query: str, status: int,
                                                 code: str) -> None:
    token = await add_terminal(client.server.app, "T9")
    resp = await client.get(f"/api/materials{query}", headers=bearer(token))
    assert resp.status == status and (await resp.json())["error"] == code


async def test_materials_need_a_token(client: Any) -> None:
    assert (await client.get("/api/materials?queue=tax")).status == 401
    bad = await client.get("/api/materials?queue=tax", headers=bearer("vwt_revoked"))
    assert bad.status == 401


async def test_ticks_are_stored_with_the_session_and_shown_to_managers(
        client: Any, call: Any, manager: str) -> None:
    url = f"/api/sessions/{call.session_id}/materials"
    for item, shown in (("business_licence", True), ("id_card", True), ("id_card", False)):
        resp = await client.post(url, json={"item": item, "shown": shown},
                                 headers=bearer(call.agent_token))
        assert resp.status == 200, await resp.text()
    await call.agent.send({"type": "call.hangup", "call_id": call.call_id})
    await call.kiosk.recv("call.ended")
    detail = await (await client.get(f"/api/sessions/{call.session_id}",
                                     headers=bearer(manager))).json()
    ticks = {t["item"]: (t["shown"], t["by"], t["by_name"]) for t in detail["materials"]}
    assert ticks == {"business_licence": (True, "alice", "Alice"),
                     "id_card": (False, "alice", "Alice")}


async def test_only_the_sessions_specialists_tick(client: Any, call: Any) -> None:
    url = f"/api/sessions/{call.session_id}/materials"
    stranger = await quick_specialist(client.server.app, "bob", {"tax": 1})
    resp = await client.post(url, json={"item": "id_card"}, headers=bearer(stranger))
    assert resp.status == 403
    resp = await client.post(url, json={"item": "id_card"}, headers=bearer(call.kiosk_token))
    assert resp.status == 401  # terminals do not tick
    resp = await client.post(url, json={"item": "no_such_item"},
                             headers=bearer(call.agent_token))
    assert resp.status == 400 and (await resp.json())["error"] == "unknown_item"
    resp = await client.post("/api/sessions/nope/materials", json={"item": "id_card"},
                             headers=bearer(call.agent_token))
    assert resp.status == 404


def _settings_with(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "materials.toml"
    path.write_text(text, encoding="utf-8")
    return make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                         materials={"file": str(path)})


@pytest.mark.parametrize(("text", "message"), [
    ('[[queues]]\nid = "tax"\ncolour = "red"\nitems = []\n', "colour"),
    ('[[queues]]\nid = "tax"\n[[queues.items]]\nid = "id_card"\nname_zh = "身份证"\n'
     'name_en = "ID card"\nexample = "img/materials/none.svg"\n', "does not exist"),
    ('[[queues]]\nid = "tax"\n[[queues.items]]\nid = "id_card"\nname_zh = "身份证"\n'
     'name_en = "ID"\n[[queues.items]]\nid = "id_card"\nname_zh = "身份证"\nname_en = "ID"\n',
     "listed twice"),
    ('[[queues]]\nid = "tax"\n[[queues.items]]\nid = "ID card"\nname_zh = "身份证"\n'
     'name_en = "ID"\n', "lower-case identifier"),
    ('[[queues]]\nid = "tax"\n[[queues.items]]\nid = "id_card"\nname_zh = "身份证"\n',
     "name_en"),
    ("[[queues]\n", "not valid TOML"),
])
def test_a_broken_materials_file_is_refused_at_load_naming_the_problem(
        tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_materials(_settings_with(tmp_path, text))


def test_the_shipped_file_covers_every_configured_queue_and_action() -> None:
    materials = load_materials(make_settings("sqlite+aiosqlite:///unused.db"))
    assert set(materials.queues) == set(materials.known_queues)
    assert set(materials.actions) == set(materials.known_actions)
