"""Logout, token expiry, a password change and disabling a user end that identity's live
WebSocket at once, each with its own close code (docs/protocol.md, docs/security.md)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.auth import token_hash
from server.revocation import DISABLED, EXPIRED, LOGGED_OUT, PASSWORD_CHANGED, end_identity
from tests.helpers import (
    _QUICK_HASH,
    QUICK_PASSWORD,
    bearer,
    close_code,
    connect,
    make_settings,
    quick_specialist,
)


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    yield await aiohttp_client(app)


async def test_logout_closes_the_console_socket(client: Any) -> None:
    token = await quick_specialist(client.server.app, "alice", {"tax": 1})
    console = await connect(client, token)
    resp = await client.post("/api/logout", headers=bearer(token))
    assert resp.status == 200
    assert await close_code(console.ws) == LOGGED_OUT
    again = await client.ws_connect("/ws")
    await again.send_json({"type": "hello", "token": token})
    assert (await again.receive_json())["code"] == "unauthorized"


async def test_a_password_change_ends_every_login_and_socket(client: Any) -> None:
    token = await quick_specialist(client.server.app, "alice", {"tax": 1})
    console = await connect(client, token)
    resp = await client.post("/api/password", headers=bearer(token),
                             json={"current": "wrong", "new": "a-new-passphrase"})
    assert resp.status == 403
    resp = await client.post("/api/password", headers=bearer(token),
                             json={"current": QUICK_PASSWORD, "new": "short"})
    assert resp.status == 400
    resp = await client.post("/api/password", headers=bearer(token),
                             json={"current": QUICK_PASSWORD, "new": "a-new-passphrase"})
    assert resp.status == 200, await resp.text()
    assert await close_code(console.ws) == PASSWORD_CHANGED
    assert (await client.get("/api/me", headers=bearer(token))).status == 401
    resp = await client.post("/api/login", json={"username": "alice",
                                                 "password": "a-new-passphrase"})
    assert resp.status == 200


async def test_an_expired_login_loses_its_socket(client: Any) -> None:
    app = client.server.app
    await app[keys.DB].add_user("alice", "specialist", _QUICK_HASH, "Alice", None, {"tax": 1})
    token = secrets.token_urlsafe(32)
    await app[keys.DB].add_token(token_hash(token), "alice",
                                 dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
    console = await connect(client, token)
    assert await close_code(console.ws) == EXPIRED


async def test_disabling_a_user_ends_their_socket_here_and_from_another_process(
        client: Any) -> None:
    app = client.server.app
    token = await quick_specialist(app, "alice", {"tax": 1})
    console = await connect(client, token)
    await end_identity(app, "alice", DISABLED)
    assert await close_code(console.ws) == DISABLED
    assert (await client.get("/api/me", headers=bearer(token))).status == 401
    # `vwin user disable` runs in another process, on the database: the node notices
    bob = await connect(client, await quick_specialist(app, "bob", {"tax": 1}))
    await app[keys.DB].set_disabled("bob", True)
    assert await close_code(bob.ws) == DISABLED
