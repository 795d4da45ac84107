"""The Staff API: one-time passwords changed at first login, the password policy over HTTP,
disable and reset ending logins and live connections at once, the audit trail, CSRF, and a
district manager kept to their district's accounts."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from server.commands import _first_run
from server.revocation import DISABLED, PASSWORD_CHANGED
from tests.accounts.world import build_units, manager
from tests.helpers import WAIT_S, bearer, connect, make_settings, quick_manager


async def post(client: Any, path: str, token: str, body: Any = None, status: int = 200) -> Any:
    resp = await client.post(path, headers=bearer(token), json=body)
    assert resp.status == status, (path, await resp.text())
    return await resp.json()


async def login(client: Any, username: str, password: str) -> dict[str, Any]:
    resp = await client.post("/api/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """The close code and reason the server sent."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await ws.receive()
            if frame.type == aiohttp.WSMsgType.CLOSE:
                return int(frame.data), str(frame.extra or "")
            if frame.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return ws.close_code, ""


NEW_SPECIALIST = {"username": "lin", "role": "specialist", "name": "林晓",
                  "department": "tax", "skills": {"tax": 1, "general": 2}}


async def test_a_new_account_changes_its_one_time_password_first(app_client: Any) -> None:
    boss = await quick_manager(app_client.server.app)
    created = await post(app_client, "/api/users", boss, NEW_SPECIALIST, 201)
    assert created["user"]["must_change_password"] and created["user"]["name"] == "林晓"
    first = await login(app_client, "lin", created["one_time_password"])
    assert first["must_change_password"] is True
    token = first["token"]
    for path in ("/api/ws-ticket", "/api/matters"):
        resp = await app_client.get(path, headers=bearer(token))
        assert resp.status == 403 and (await resp.json())["error"] == "password_change_required"
    me = await (await app_client.get("/api/me", headers=bearer(token))).json()
    assert me["must_change_password"] is True
    hello = await app_client.ws_connect("/ws")
    await hello.send_json({"type": "hello", "token": token})
    assert (await hello.receive_json())["code"] == "password_change_required"
    await hello.close()

    current = created["one_time_password"]
    for weak, code in (("short-pw", "password_too_short"),
                       ("lin-is-my-name", "password_contains_username"),
                       ("1234567890", "password_common"), ("Password2024", "password_common")):
        refused = await post(app_client, "/api/password", token,
                             {"current": current, "new": weak}, 400)
        assert refused["error"] == code, weak
    wrong = await post(app_client, "/api/password", token,
                       {"current": "not-it-at-all", "new": "a fine new secret"}, 403)
    assert wrong["error"] == "wrong_password"
    await post(app_client, "/api/password", token, {"current": current, "new": "a fine new secret"})
    assert (await app_client.get("/api/me", headers=bearer(token))).status == 401  # logins end
    again = await login(app_client, "lin", "a fine new secret")
    assert again["must_change_password"] is False and again["next"] == "/console"
    assert first["next"] == "/password"
    ticket = await app_client.get("/api/ws-ticket", headers=bearer(again["token"]))
    assert ticket.status == 200
    changes = (await (await app_client.get("/api/users/audit", headers=bearer(boss))).json())
    assert [(c["action"], c["actor"], c["username"]) for c in changes["changes"]] == [
        ("password_changed", "lin", "lin"), ("created", "boss", "lin")]
    assert changes["changes"][1]["actor_name"] == "Boss" and changes["changes"][1]["ts"]


@pytest.mark.parametrize("how,code,reason", [("disable", DISABLED, "disabled"),
                                             ("reset-password", PASSWORD_CHANGED,
                                              "password_changed")])
async def test_disable_and_reset_end_the_live_console_at_once(
        app_client: Any, how: str, code: int, reason: str) -> None:
    boss = await quick_manager(app_client.server.app)
    created = await post(app_client, "/api/users", boss, NEW_SPECIALIST, 201)
    token = (await login(app_client, "lin", created["one_time_password"]))["token"]
    await post(app_client, "/api/password", token,
               {"current": created["one_time_password"], "new": "a fine new secret"})
    token = (await login(app_client, "lin", "a fine new secret"))["token"]
    console = await connect(app_client, token)
    await post(app_client, f"/api/users/lin/{how}", boss)
    assert await closed_with(console.ws) == (code, reason)
    assert (await app_client.get("/api/me", headers=bearer(token))).status == 401
    resp = await app_client.post("/api/login", json={"username": "lin",
                                                     "password": "a fine new secret"})
    assert resp.status == 401
    if how == "disable":
        await post(app_client, "/api/users/lin/enable", boss)
        assert (await login(app_client, "lin", "a fine new secret"))["role"] == "specialist"
    users = (await (await app_client.get("/api/users", headers=bearer(boss))).json())["users"]
    lin = next(u for u in users if u["username"] == "lin")
    assert lin["must_change_password"] is (how == "reset-password")


async def test_unsafe_staff_calls_with_the_cookie_need_the_csrf_header(app_client: Any) -> None:
    await quick_manager(app_client.server.app)
    from tests.helpers import QUICK_PASSWORD

    await login(app_client, "boss", QUICK_PASSWORD)
    refused = await app_client.post("/api/users", json=NEW_SPECIALIST)
    assert refused.status == 403 and (await refused.json())["error"] == "csrf"
    csrf = app_client.session.cookie_jar.filter_cookies(app_client.make_url("/"))["vwin_csrf"]
    made = await app_client.post("/api/users", json=NEW_SPECIALIST,
                                 headers={"X-CSRF-Token": csrf.value})
    assert made.status == 201


async def test_a_district_manager_keeps_to_their_district(app_client: Any) -> None:
    app = app_client.server.app
    await build_units(app)
    jd = await manager(app, "jdboss", "jd")
    hp = await manager(app, "hpboss", "hp")
    made = await post(app_client, "/api/users", jd, NEW_SPECIALIST, 201)
    assert made["user"]["unit_id"] == "jd" and made["user"]["unit_name"] == "嘉定区"
    outside = await post(app_client, "/api/users", jd,
                         {"username": "wu", "role": "manager", "name": "吴", "unit_id": "hp"}, 403)
    assert outside["error"] == "outside_unit"
    await post(app_client, "/api/users", jd,
               {"username": "xu", "role": "manager", "name": "徐", "unit_id": "jd-xc"}, 201)
    seen = (await (await app_client.get("/api/users", headers=bearer(hp))).json())["users"]
    assert [u["username"] for u in seen] == ["hpboss"]
    for how in ("disable", "reset-password"):
        await post(app_client, f"/api/users/lin/{how}", hp, None, 404)
    resp = await app_client.patch("/api/users/lin", headers=bearer(hp), json={"name": "x"})
    assert resp.status == 404
    resp = await app_client.patch("/api/users/lin", headers=bearer(jd),
                                  json={"name": "林晓明", "skills": {"tax": 2}})
    assert resp.status == 200 and (await resp.json())["user"]["skills"] == {"tax": 2}
    audit = (await (await app_client.get("/api/users/audit", headers=bearer(hp))).json())
    assert audit["changes"] == []


async def test_the_first_admin_must_change_its_password(aiohttp_client: Any, sqlite_url: str,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    settings = make_settings(sqlite_url)
    await _first_run(settings)
    password = capsys.readouterr().out.split("with password ")[1].split()[0]
    from server.app import create_app

    client = await aiohttp_client(create_app(settings))
    first = await login(client, "admin", password)
    assert first["must_change_password"] is True
    page = await client.get("/manage", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/password"
    form = await client.get("/password")
    assert form.status == 200 and "修改密码" in await form.text()


async def test_weak_new_accounts_from_the_staff_page_are_refused(app_client: Any) -> None:
    boss = await quick_manager(app_client.server.app)
    bad = await post(app_client, "/api/users", boss, NEW_SPECIALIST | {"skills": {"fishing": 1}},
                     400)
    assert bad["error"] == "unknown_queue"
    bad = await post(app_client, "/api/users", boss, NEW_SPECIALIST | {"username": "no spaces"},
                     400)
    assert bad["error"] == "invalid_body"
    await post(app_client, "/api/users", boss, NEW_SPECIALIST, 201)
    await post(app_client, "/api/users", boss, NEW_SPECIALIST, 409)




async def test_people_are_named_by_their_name(app_client: Any) -> None:
    boss = await quick_manager(app_client.server.app)
    await post(app_client, "/api/matters", boss, {
        "enterprise": {"name": "嘉定某贸易公司"}, "description": "补交材料", "class": "simple",
        "department": "tax"}, 201)
    listed = await (await app_client.get("/api/matters", headers=bearer(boss))).json()
    assert [(m["opened_by"], m["opened_by_name"]) for m in listed["matters"]] == [
        ("boss", "Boss")]
