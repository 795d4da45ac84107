"""Expired tokens, tickets and login-throttle records are purged periodically."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.auth import token_hash
from tests.helpers import eventually, make_settings, quick_specialist


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                                   auth={"purge_interval_s": 0.2}))
    yield await aiohttp_client(app)


async def token_count(app: Any) -> int:
    async with app[keys.DB]._read() as conn:
        result = await conn.exec_driver_sql("SELECT count(*) FROM auth_tokens")
        return int(result.scalar_one())


async def test_expired_credentials_and_throttle_records_are_purged(client: Any) -> None:
    app = client.server.app
    clock = Clock()
    auth = app[keys.AUTH]
    auth.clock = clock
    await quick_specialist(app, "alice", {"tax": 1})  # a token for an hour
    user = await app[keys.DB].get_user("alice")
    assert user is not None
    await auth.issue_ticket(user)
    await app[keys.DB].add_token(token_hash("soon"), "alice",
                                 dt.datetime.fromtimestamp(clock.now + 120, dt.UTC))
    assert await auth.login("alice", "wrong", "203.0.113.5") is None
    assert len(auth.pair_throttle) == 1 and len(auth.address_throttle) == 1
    clock.now += 400  # past the ticket, the 2-minute token and the failure window

    async def purged() -> bool:
        return await token_count(app) == 1 and len(auth.pair_throttle) == 0 \
            and len(auth.address_throttle) == 0

    await eventually(purged)
