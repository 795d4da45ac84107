"""Fixtures of the joint-work tests: the real app on SQLite, staff with departments."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server import keys
from server.app import create_app
from signaling.uscc import check_character
from tests.helpers import _QUICK_HASH, add_terminal, connect, issue_token, make_settings

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def uscc(body: str = "91310114MA1GT3") -> str:
    """A valid USCC: pads the first 17 characters and adds the check character."""
    first17 = (body + "0" * 17)[:17]
    return first17 + check_character(first17)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A moment in Shanghai local time."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


async def staff(app: web.Application, username: str, department: str | None,
                skills: dict[str, int] | None = None, role: str = "specialist") -> str:
    """An account of `department`, with a login token."""
    await app[keys.DB].add_user(username, role, _QUICK_HASH, username.title(), department,
                                skills or {})
    return await issue_token(app, username)


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """The real app (SQLite, memory routing) and an HTTP/WebSocket client."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    yield await aiohttp_client(app)


async def call_with(client: Any, token: str, queue: str = "registration",
                    terminal: str = "T1") -> tuple[Any, Any, str, str]:
    """A terminal connected to the specialist of `token`: (kiosk, agent, call_id, session_id)."""
    from tests.helpers import specialist_ready

    agent = await specialist_ready(client, token)
    kiosk = await connect(client, await add_terminal(client.server.app, terminal))
    await kiosk.send({"type": "call.request", "queue": queue})
    queued = await kiosk.recv("call.queued")
    await agent.recv("call.offered", call_id=queued["call_id"])
    await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
    connected = await kiosk.recv("call.connected")
    await agent.recv("call.connected")
    return kiosk, agent, connected["call_id"], connected["session_id"]
