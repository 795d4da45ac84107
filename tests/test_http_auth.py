"""HTTP: health, login, cookies and CSRF, throttling, and who may call which route."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from server import keys
from server.auth import Throttled, token_hash
from server.http.auth import CSRF_COOKIE, CSRF_HEADER
from tests.helpers import QUICK_PASSWORD, bearer, quick_manager, quick_specialist

App = Callable[..., web.Application]
PUBLIC = {"/healthz", "/api/login", "/api/logout", "/api/me", "/api/ws-ticket",
          "/api/password", "/api/openapi.json"}
# Booking is public (the /book page and kiosks); only the day's list is for managers.
PUBLIC_ROUTES = {("GET", "/api/appointments/slots"), ("POST", "/api/appointments")}
PUBLIC_PREFIXES = ("/api/appointments/{code",)
# A presented form's pages open with the form's random key, told only to the call's parties.
PUBLIC_ROUTES |= {("GET", "/api/forms/{form_id}/pages")}
# Specialists use these too (their department's actions and matters): a login is enough.
STAFF_PREFIXES = ("/api/action", "/api/matters", "/api/forms/")
# Materials and captured documents: specialists (and terminals) too (docs/documents.md).
STAFF_ROUTES = {("GET", "/api/materials"), ("POST", "/api/sessions/T1/materials"),
                ("POST", "/api/sessions/T1/documents"), ("GET", "/api/documents/T1")}


def manager_routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, path) of the API that only managers may use, read from the router."""
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if not path.startswith("/api/") or path in PUBLIC or route.method == "HEAD":
            continue
        if (route.method, path) in PUBLIC_ROUTES or path.startswith(PUBLIC_PREFIXES):
            continue
        routes.append((route.method, re.sub(r"\{[a-z_]+\}", "T1", path)))
    return routes


async def test_healthz(app_client: Any) -> None:
    resp = await app_client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_login_returns_token_and_cookies(app_client: Any) -> None:
    app = app_client.server.app
    await quick_specialist(app, "alice", {"tax": 1})
    resp = await app_client.post("/api/login", json={"username": "alice",
                                                     "password": QUICK_PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    assert body["role"] == "specialist" and len(body["token"]) >= 32
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)
    cookies = {c.split("=", 1)[0]: c.lower() for c in resp.headers.getall("Set-Cookie")}
    assert "httponly" in cookies["vwin_session"] and "samesite=strict" in cookies["vwin_session"]
    assert "httponly" not in cookies[CSRF_COOKIE] and "samesite=strict" in cookies[CSRF_COOKIE]
    me = await app_client.get("/api/me", headers=bearer(body["token"]))
    assert (await me.json())["username"] == "alice"
    out = await app_client.post("/api/logout", headers=bearer(body["token"]))
    assert out.status == 200
    assert (await app_client.get("/api/me", headers=bearer(body["token"]))).status == 401


async def test_bad_credentials_get_one_answer(app_client: Any) -> None:
    await quick_specialist(app_client.server.app, "alice", {"tax": 1})
    answers = []
    for username, password in (("alice", "wrong-pass"), ("mallory", QUICK_PASSWORD)):
        resp = await app_client.post("/api/login", json={"username": username,
                                                         "password": password})
        answers.append((resp.status, await resp.read(), "Set-Cookie" in resp.headers))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and answers[0][2] is False


@pytest.mark.parametrize("body", [b"not json", b'{"username": "a"}', b'{"username": 1, '
                                  b'"password": "x"}'])
async def test_malformed_login_is_400(app_client: Any, body: bytes) -> None:
    resp = await app_client.post("/api/login", data=body,
                                 headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_body"


async def test_failures_per_address_are_throttled(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(auth={"max_failures_per_address": 3}))
    app = client.server.app
    for name in ("u1", "u2", "u3", "u4"):
        await quick_specialist(app, name, {"tax": 1})
    for name in ("u1", "u2", "u3"):
        resp = await client.post("/api/login", json={"username": name, "password": "nope"})
        assert resp.status == 401
    resp = await client.post("/api/login", json={"username": "u4", "password": QUICK_PASSWORD})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert (await resp.json())["error"] == "throttled"


async def test_failures_per_user_and_address_are_throttled(aiohttp_client: Any,
                                                          make_app: App) -> None:
    client = await aiohttp_client(make_app(auth={"max_failures": 3}))
    auth = client.server.app[keys.AUTH]
    await quick_specialist(client.server.app, "alice", {"tax": 1})
    for _ in range(3):
        assert await auth.login("alice", "nope", "10.0.0.1") is None
    with pytest.raises(Throttled):
        await auth.login("ALICE", QUICK_PASSWORD, "10.0.0.1")
    assert await auth.login("alice", QUICK_PASSWORD, "10.0.0.4") is not None


async def test_manager_routes_need_a_manager(app_client: Any) -> None:
    app = app_client.server.app
    routes = manager_routes(app)
    assert ("GET", "/api/queues") in routes and ("POST", "/api/terminals/T1/revoke") in routes
    assert ("GET", "/api/appointments") in routes
    specialist = await quick_specialist(app, "alice", {"tax": 1})
    expired = "expired-token-value"
    await app[keys.DB].add_token(token_hash(expired), "alice",
                                 dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    for method, path in routes:
        checks = [({}, 401), (bearer("garbage"), 401), (bearer(expired), 401)]
        if not path.startswith(STAFF_PREFIXES) and (method, path) not in STAFF_ROUTES:
            checks.append((bearer(specialist), 403))
        for headers, status in checks:
            resp = await app_client.request(method, path, headers=headers)
            assert resp.status == status, (method, path, headers)
            assert (await resp.json())["error"] in ("unauthorized", "forbidden")


async def test_cookie_posts_need_the_csrf_header(app_client: Any) -> None:
    app = app_client.server.app
    await quick_manager(app)
    resp = await app_client.post("/api/login", json={"username": "boss",
                                                     "password": QUICK_PASSWORD})
    assert resp.status == 200
    site = {"id": "park9", "name": "Jiading Park", "kind": "park"}
    refused = await app_client.post("/api/sites", json=site)
    assert refused.status == 403 and (await refused.json())["error"] == "csrf"
    wrong = await app_client.post("/api/sites", json=site, headers={CSRF_HEADER: "guess"})
    assert wrong.status == 403
    assert (await app_client.get("/api/sites")).status == 200
    csrf = resp.cookies[CSRF_COOKIE].value
    ok = await app_client.post("/api/sites", json=site, headers={CSRF_HEADER: csrf})
    assert ok.status == 201
    sites = await (await app_client.get("/api/sites")).json()
    assert [s["id"] for s in sites["sites"]] == ["park9"]
