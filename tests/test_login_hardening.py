"""Login: JSON only, Origin checked (no login CSRF), only same-origin paths followed after it,
and throttling that an attacker elsewhere cannot turn against a real user."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.auth import AuthService, Throttled
from tests.helpers import QUICK_PASSWORD, make_settings, quick_manager, quick_specialist

LOGIN = {"username": "alice", "password": QUICK_PASSWORD}


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                                   server={"allowed_origins": ["https://kiosk.example.gov.cn"]}))
    await_client = await aiohttp_client(app)
    await quick_specialist(app, "alice", {"tax": 1})
    yield await_client


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
async def test_login_accepts_only_json(client: Any, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = b'{"username": "alice", "password": "secret-pass"}'
    resp = await client.post("/api/login", data=body, headers=headers)
    assert resp.status == 415
    assert (await resp.json())["error"] == "unsupported_media_type"
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize("origin", ["https://evil.example", "null",
                                    "http://127.0.0.1.evil.example"])
async def test_login_from_a_foreign_origin_is_refused(client: Any, origin: str) -> None:
    resp = await client.post("/api/login", json=LOGIN, headers={"Origin": origin})
    assert resp.status == 403
    assert (await resp.json())["error"] == "origin"
    assert "Set-Cookie" not in resp.headers


async def test_login_from_our_own_or_a_configured_origin(client: Any) -> None:
    own = f"http://{client.server.host}:{client.server.port}"
    for origin in (own, "https://kiosk.example.gov.cn", None):
        headers = {} if origin is None else {"Origin": origin}
        resp = await client.post("/api/login", json=LOGIN, headers=headers)
        assert resp.status == 200, origin


@pytest.mark.parametrize(("asked", "followed"), [
    ("/manage/sessions?queue=tax#x", "/manage/sessions?queue=tax#x"),
    ("/console", "/console"),
    ("https://evil.example/console", "/console"),
    ("//evil.example/console", "/console"),
    ("/\\evil.example", "/console"),
    ("\\\\evil.example", "/console"),
    ("/\t/evil.example", "/console"),
    ("javascript:alert(1)", "/console"),
    ("http:/evil.example", "/console"),
    ("console", "/console"),
    ("//[", "/console"),  # not a URL at all: urlsplit raises (it answered 500)
    ("/\\[x", "/console"),
    ("", "/console"),
    (None, "/console"),
])
async def test_only_a_same_origin_path_is_followed(client: Any, asked: str | None,
                                                    followed: str) -> None:
    body = dict(LOGIN) if asked is None else {**LOGIN, "next": asked}
    resp = await client.post("/api/login", json=body)
    assert resp.status == 200
    assert (await resp.json())["next"] == followed


async def test_a_manager_goes_home_to_manage(client: Any) -> None:
    await quick_manager(client.server.app)
    resp = await client.post("/api/login", json={"username": "boss", "password": QUICK_PASSWORD,
                                                 "next": "https://evil.example/"})
    assert (await resp.json())["next"] == "/manage"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_an_attacker_elsewhere_cannot_lock_a_user_out(client: Any) -> None:
    app = client.server.app
    auth = AuthService(app[keys.DB], app[keys.SETTINGS].auth, Clock())
    for _ in range(50):
        with contextlib.suppress(Throttled):
            await auth.login("alice", "guess", "203.0.113.9")
    assert await auth.login("alice", QUICK_PASSWORD, "10.1.2.3") is not None
    with pytest.raises(Throttled):
        await auth.login("alice", QUICK_PASSWORD, "203.0.113.9")


async def test_delays_grow_per_user_and_address_and_per_address(client: Any) -> None:
    app = client.server.app
    clock = Clock()
    settings = app[keys.SETTINGS].auth
    auth = AuthService(app[keys.DB], settings, clock)
    delays = []
    for _ in range(4):
        for _ in range(settings.max_failures):
            try:
                await auth.login("alice", "guess", "198.51.100.7")
            except Throttled:
                break
        with pytest.raises(Throttled) as caught:
            await auth.login("alice", "guess", "198.51.100.7")
        delays.append(caught.value.retry_after)
        clock.now += caught.value.retry_after
    assert delays == sorted(delays) and delays[-1] >= 4 * delays[0], delays
    # one address trying many usernames is slowed down too
    for n in range(settings.max_failures_per_address + 1):
        try:
            await auth.login(f"user{n}", "guess", "192.0.2.1")
        except Throttled:
            break
    else:
        pytest.fail("an address guessing many usernames was never slowed down")
    assert await auth.login("alice", QUICK_PASSWORD, "192.0.2.2") is not None
